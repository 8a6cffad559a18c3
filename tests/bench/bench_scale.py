# SPDX-License-Identifier: LGPL-2.1-or-later
"""Benchmark: luo-inspect at fleet scale, against a plain drgn walk.

Not a test (nothing here asserts a time): it prints ratios.  On the scale
scenario (``python -m vmcores scale``: sessions of 25 one-page memfds, every
fd open in 9 processes, made on demand under QEMU and kept in the cache), it
runs the floor (``tests/support/scale_floor.py``: the plain drgn walk of every
session, every luo_file, each file's refcount and each distinct fd table)
and ``luo-inspect --format json check`` and ``report``, each a fresh process
as a user runs them, interleaved over several rounds (the order rotates each
round), and prints the median wall and CPU times, their ratios to the
floor, and each one's peak RSS.  With two sizes it prints how the time
scales.  ``--live N`` runs the same comparison inside a live-mode guest
with N preserved files, on its own /proc/kcore, where each small read is a
system call (under TCG: a smaller N).

    python tests/bench/bench_scale.py [--files 10000 [--files 100000]] [--rounds 5]
                                [--kernel full|luo] [--live 1000] [--format text|json]

luo_drgn is byte-compiled first, as ``pip install`` leaves it.  Before
timing, each tool's counts are checked against the guest's own log
(sessions and preserved files) and against each other (sessions, files,
references), and luo-inspect must find no error, so the ratios compare runs
that read the same healthy state.  Peak RSS is each child's own (wait4), which
is why the benchmark never holds a large report itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP))

FLOOR = TOP / "tests" / "support" / "scale_floor.py"
TOOLS = ("floor", "check", "report")


@dataclass
class Sample:
    wall: float
    cpu: float
    rss_mb: float


@dataclass
class Result:
    label: str
    files: int
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def median(self, tool: str, what: str) -> float:
        return statistics.median(getattr(s, what) for s in self.samples[tool])

    def ratio(self, tool: str, what: str = "wall") -> float:
        return self.median(tool, what) / self.median("floor", what)

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "files": self.files,
            "rounds": len(self.samples["floor"]),
            **{
                tool: {
                    "wall_s": round(self.median(tool, "wall"), 3),
                    "cpu_s": round(self.median(tool, "cpu"), 3),
                    "peak_rss_mb": round(max(s.rss_mb for s in self.samples[tool]), 1),
                    **(
                        {
                            "wall_ratio": round(self.ratio(tool), 2),
                            "cpu_ratio": round(self.ratio(tool, "cpu"), 2),
                        }
                        if tool != "floor"
                        else {}
                    ),
                }
                for tool in TOOLS
            },
        }


def commands(core: str, debug: list[str]) -> dict[str, list[str]]:
    inspector = [sys.executable, "-m", "luo_drgn"]
    symbols = [a for d in debug for a in ("-s", d)]
    core_args = [] if core == "/proc/kcore" else ["-c", core]
    return {
        "floor": [sys.executable, str(FLOOR), core, *debug],
        "check": [*inspector, *core_args, *symbols, "--format", "json", "check"],
        "report": [*inspector, *core_args, *symbols, "--format", "json", "report"],
    }


def measure(argv: list[str]) -> tuple[Sample, str, int]:
    """One run in a fresh process: wall and CPU time, peak RSS, stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=TOP, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    # wait4() gives the child's own resource usage: CPU and peak RSS (KiB).
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return (
        Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024),
        out,
        proc.returncode,
    )


# Run in a process of its own: a child's peak RSS (wait4's ru_maxrss)
# includes its parent's at fork, so the benchmark itself must stay small
# (a 100,000-file report is 75 MB of JSON).
_COUNT = """
import json, sys
report = json.load(open(sys.argv[1]))
files = [f for s in report["sessions"] for f in s["files"]]
errors = [f for f in report["findings"] if f["severity"] == "error"] + report["errors"]
print(json.dumps({
    "sessions": len(report["sessions"]),
    "files": len(files),
    "references": sum(f["refcount"] for f in files),
    "errors": errors[:3],
}))
"""


def sanity(core: str, debug: list[str], expect: dict[str, int] | None) -> int:
    """Each tool reads the same state, the one the guest logged: sessions,
    files, refcounts.  Returns the number of preserved files."""
    import tempfile

    argv = commands(core, debug)
    _, out, rc = measure(argv["floor"])
    if rc != 0:
        sys.exit(f"the floor failed on {core} (exit {rc})")
    floor = json.loads(out)
    with tempfile.NamedTemporaryFile(suffix=".json") as saved:
        _, _, rc = measure([*argv["report"][:-1], "-o", saved.name, "report"])
        if rc not in (0, 1):
            sys.exit(f"luo-inspect report failed on {core} (exit {rc})")
        _, out, rc = measure([sys.executable, "-c", _COUNT, saved.name])
    seen = json.loads(out)
    if seen.pop("errors"):
        sys.exit(f"{core}: luo-inspect found errors on the healthy scale state")
    for key, value in seen.items():
        if floor[key] != value:
            sys.exit(f"{core}: the floor counts {floor[key]} {key}, luo-inspect {value}")
    if expect is not None:
        for key in ("sessions", "files"):
            if expect[key] != seen[key]:
                sys.exit(
                    f"{core}: the guest logged {expect[key]} {key}, the tools read {seen[key]}"
                )
    print(
        f"  read: {seen['sessions']} sessions, {seen['files']} preserved files, "
        f"{floor['fd_tables']} fd tables, {floor['fds']} open fds, no error",
        file=sys.stderr,
    )
    return int(seen["files"])


def bench(label: str, core: str, debug: list[str], files: int, rounds: int) -> Result:
    argv = commands(core, debug)
    result = Result(label, files, {tool: [] for tool in TOOLS})
    for r in range(rounds):
        order = TOOLS[r % 3 :] + TOOLS[: r % 3]  # no tool always first after another
        for tool in order:
            sample, _, rc = measure(argv[tool])
            if rc not in (0, 1):
                sys.exit(f"{tool} failed on {core} (exit {rc})")
            result.samples[tool].append(sample)
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr)
    return result


def scale_core(files: int, kernel: str, regenerate: bool) -> tuple[Path, dict[str, int]]:
    """The scale core of ``files`` files, made unless cached; and what its
    guest logged."""
    from vmcores import paths, scenarios

    run = scenarios.scale_run(files, kernel)
    root = paths.cache_dir() / "scale"
    if regenerate or not (root / run.name / "manifest.json").is_file():
        print(f"making {run.name} ({run.memory_mb} MiB guest)...", file=sys.stderr)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="luo-scale-", dir=paths.cache_dir()) as work:
            scenarios.generate_scale(run, root, Path(work))
    manifest = json.loads((root / run.name / "manifest.json").read_text())
    if manifest["made"]["kernel"] != kernel:
        return scale_core(files, kernel, True)
    return root / run.name, _logged(manifest["guest_log"])


def _logged(guest_log: list[str]) -> dict[str, int]:
    for line in guest_log:
        if '"op":"scale"' in line:
            doc = json.loads(line.split(" ", 1)[1])
            if doc["failed"]:
                sys.exit(f"the scale guest failed {doc['failed']} steps: {line}")
            return {"sessions": doc["sessions"], "files": doc["preserved"]}
    sys.exit("the scale guest logged no summary")


def debug_info(kernel: str) -> list[str]:
    from luo_drgn.examples import decompressed, kernel_dir

    return [str(decompressed(kernel_dir(kernel) / "vmlinux.debug.xz"))]


def live(files: int, rounds: int) -> Result:
    """The benchmark inside a live-mode guest, against its /proc/kcore."""
    from vmcores import live as live_mode
    from vmcores import scenarios

    run = scenarios.scale_run(files, "luo")
    debug_info("luo")  # decompressed here: the guest sees the host read-only
    inside = (
        f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))} "
        f"--inside --rounds {rounds} --kernel luo"
    )
    lr = live_mode.run(
        "scale",
        memory_mb=run.memory_mb,
        cmdline_extra=run.cmdline_extra,
        command_line=inside,
        inspect_timeout=3000,
        timeout=3600,
    )
    rc, out, err = lr.inspections.get("phase1", (None, "", ""))
    if rc != 0:
        sys.exit(f"the benchmark in the guest failed (exit {rc}):\n{err[-3000:]}")
    doc = json.loads(out)
    result = Result(f"live /proc/kcore (TCG guest, {run.memory_mb} MiB)", doc["files"])
    for tool in TOOLS:
        result.samples[tool] = [Sample(**s) for s in doc["samples"][tool]]
    return result


def inside(rounds: int, kernel: str) -> None:
    """In the live guest: sanity, then the rounds; JSON on stdout."""
    debug = debug_info(kernel)
    files = sanity("/proc/kcore", debug, None)
    result = bench("live", "/proc/kcore", debug, files, rounds)
    print(
        json.dumps(
            {
                "files": files,
                "samples": {
                    t: [s.__dict__ for s in samples] for t, samples in result.samples.items()
                },
            }
        )
    )


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def print_text(results: list[Result]) -> None:
    import drgn

    print(f"machine: {machine()}, drgn {drgn.__version__}")
    for r in results:
        d = r.as_dict()
        print(f"\n{r.label}: {r.files} preserved files, median of {d['rounds']} rounds")
        print(f"  {'':8} {'wall s':>8} {'cpu s':>8} {'x floor':>8} {'cpu x':>6} {'peak RSS':>9}")
        for tool in TOOLS:
            t = d[tool]
            ratio = f"{t['wall_ratio']:.2f}" if tool != "floor" else "1"
            cratio = f"{t['cpu_ratio']:.2f}" if tool != "floor" else "1"
            print(
                f"  {tool:8} {t['wall_s']:8.2f} {t['cpu_s']:8.2f} {ratio:>8} {cratio:>6} "
                f"{t['peak_rss_mb']:7.0f} MB"
            )
    cores = [r for r in results if not r.label.startswith("live")]
    if len(cores) >= 2:
        small, big = cores[0], cores[-1]
        print(f"\nscaling, {small.files} -> {big.files} files ({big.files / small.files:.0f}x):")
        for tool in TOOLS:
            print(f"  {tool:8} {big.median(tool, 'wall') / small.median(tool, 'wall'):6.1f}x time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--files",
        type=int,
        action="append",
        help="preserved files of a scale core (repeatable; default 10000)",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kernel", choices=("full", "luo"), default="full")
    parser.add_argument("--live", type=int, metavar="N", help="also live, with N files")
    parser.add_argument("--regenerate", action="store_true", help="make the cores again")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    kernel = args.kernel
    if args.inside:
        inside(args.rounds, kernel)
        return
    # As an install runs it: pip byte-compiles luo_drgn's modules, which an
    # editable install under PYTHONDONTWRITEBYTECODE=1 never has, and every
    # run then compiles its sixty modules again (drgn's, the floor's only
    # import, came compiled from its wheel).
    import compileall

    compileall.compile_dir(str(TOP / "luo_drgn"), quiet=1)
    results = []
    for files in args.files or [10_000]:
        core, logged = scale_core(files, kernel, args.regenerate)
        debug = debug_info(kernel)
        print(f"{core.name} (kernel {kernel}):", file=sys.stderr)
        sanity(str(core / "vmcore"), debug, logged)
        results.append(
            bench(f"vmcore {core.name}", str(core / "vmcore"), debug, files, args.rounds)
        )
    if args.live:
        print(f"live guest, {args.live} files:", file=sys.stderr)
        results.append(live(args.live, max(3, args.rounds // 2)))
    if args.format == "json":
        print(json.dumps({"machine": machine(), "results": [r.as_dict() for r in results]}))
    else:
        print_text(results)


if __name__ == "__main__":
    main()
