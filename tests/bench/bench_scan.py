# SPDX-License-Identifier: LGPL-2.1-or-later
"""Benchmark: ``luo-inspect scan`` against one ``luo-inspect check`` per dump.

Not a test (nothing here asserts a time).  It takes the committed fixtures
whose vmcore is a whole file (of the ``luo`` and ``no-luo`` kernels),
decompressed, with a debug directory where each kernel's debug info sits
under its build ID, as a fleet's would; then, over N rounds, times

- one ``luo-inspect -c DUMP -s DIR check --format json`` process per dump,
  one after the other (what a shell loop over the fleet costs);
- ``luo-inspect scan DIR... -s DIR --jobs 1`` and ``--jobs 2``, as they
  run by default (each worker gets CPUs / jobs OpenMP threads: one worker
  indexes each dump's debug info on every CPU), and again with
  ``OMP_NUM_THREADS=1`` (the processes alone in parallel);

and prints the medians: targets per minute, the scan's per-target cost
against one check process's (each loads its dump's debug info: drgn binds a
Program to one dump), and what the second worker adds.

    python tests/bench/bench_scan.py [--rounds 3] [--copies 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP))

from luo_drgn import examples  # noqa: E402
from luo_drgn.debuginfo import build_id_path  # noqa: E402


def _build_id(path: Path) -> str:
    notes = subprocess.run(["readelf", "-n", path], capture_output=True, text=True, check=True)
    return notes.stdout.split("Build ID: ", 1)[1].split()[0]


def fleet(root: Path, copies: int) -> tuple[list[Path], Path]:
    """Whole committed vmcores (each ``copies`` times, as hard links) and a
    build-ID debug directory."""
    dumps, debug = [], root / "debug"
    for name in examples.fixture_names():
        manifest = json.loads((examples.DATA / "fixtures" / name / "manifest.json").read_text())
        if not manifest.get("vmcore"):
            continue
        ex = examples.load(name)
        for i in range(copies):
            dest = root / "targets" / f"{name}-{i}.vmcore"
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(ex.core, dest)
            dumps.append(dest)
        link = debug / build_id_path(_build_id(ex.debug[0]))
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(ex.debug[0])
    return dumps, debug


def timed(args: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "luo_drgn", *args],
        capture_output=True,
        cwd=TOP,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=2, help="links to each dump")
    opts = parser.parse_args()
    configs = {
        "scan --jobs 1": (1, None),
        "scan --jobs 2": (2, None),
        "scan --jobs 1, OMP_NUM_THREADS=1": (1, {"OMP_NUM_THREADS": "1"}),
        "scan --jobs 2, OMP_NUM_THREADS=1": (2, {"OMP_NUM_THREADS": "1"}),
    }
    with tempfile.TemporaryDirectory(dir=examples.cache_dir()) as tmp:
        dumps, debug = fleet(Path(tmp), opts.copies)
        n = len(dumps)
        targets = str(Path(tmp) / "targets")
        times: dict[str, list[float]] = {"one check each": [], **{k: [] for k in configs}}
        for _ in range(opts.rounds):
            check = ["-s", str(debug), "check", "--format", "json"]
            times["one check each"].append(sum(timed(["-c", str(d), *check]) for d in dumps))
            for name, (jobs, env) in configs.items():
                scan = ["scan", targets, "-s", str(debug), "--jobs", str(jobs), "-o", os.devnull]
                times[name].append(timed([*scan, "--summary", "none"], env))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{n} dumps ({n // opts.copies} fixtures x {opts.copies}), medians of {opts.rounds}")
    for k, total in med.items():
        print(
            f"{k:<34} {total:6.2f} s  {n / total * 60:6.1f} targets/min  {total / n:.2f} s/target"
        )
    single, one, two = med["one check each"], med["scan --jobs 1"], med["scan --jobs 2"]
    omp = med["scan --jobs 1, OMP_NUM_THREADS=1"] / med["scan --jobs 2, OMP_NUM_THREADS=1"]
    print(f"per-target cost, scan --jobs 1 / one check process:   {one / single:.2f}x")
    print(f"throughput, 2 workers / 1 worker:                     {one / two:.2f}x")
    print(f"  the same with OMP_NUM_THREADS=1 (processes alone):  {omp:.2f}x")
    print(f"throughput, scan --jobs 2 / one check process each:   {single / two:.2f}x")


if __name__ == "__main__":
    main()
