# SPDX-License-Identifier: LGPL-2.1-or-later
"""Benchmark: the share of planted bugs the test suite catches.

Not a test, and not in CI's time budget (about half an hour on 2 cores): it
reports a kill rate.  Every analysis module is parsed, and each place where
a plausible one-token bug could sit becomes a candidate mutant:

- comparison: ``<`` and ``<=``, ``>`` and ``>=``, ``==`` and ``!=``, ``is``
  and ``is not``, ``in`` and ``not in`` swapped;
- boundary: an integer compared or added to moved by one;
- boolean: ``and`` and ``or`` swapped, a ``not`` dropped, ``True`` and
  ``False`` swapped;
- severity: a finding's ``ERROR``, ``WARNING`` or ``INFO`` changed.

A fixed seed samples ``--count`` of them (one in each module first, so none
goes untested), and each is written into a copy of the tree, where the
suite runs (``-x``; a timeout counts as caught: a hang is a failure there
too) on the committed fixtures and on the fresh and full runs regenerated
once into the cache (``--fixtures``).  A mutant that no test catches is
either a missing test or equivalent (the program cannot behave
differently); the equivalent ones are listed in ``EQUIVALENT`` with why,
and do not count against the rate.

    python tests/bench/bench_mutations.py [--count 40] [--seed 22] [--jobs 2]
        [--fixtures DIR] [--only MODULE] [--list] [--format text|json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP))

from tests.support.mutants import EQUIVALENT, MODULES, Mutant, mutants_of, sample  # noqa: E402
from tests.support.tree import copy_tree, run_pytest  # noqa: E402

# Test files never run for a mutant: the live guests and the scale cores
# are benchmarks of their own, and the mutation test copies trees itself.
IGNORED = ("tests/real/test_live.py", "tests/real/test_scale.py", "tests/real/test_mutations.py")
# Tests of the installed package (its console script and drgn entry point):
# in a copy they run the checkout's code, not the mutant's.
DESELECTED = (
    "tests/real/test_cli.py::test_luo_inspect_executable",
    "tests/real/test_cli.py::test_plugin_through_its_entry_point",
)


def ordered_tests(path: str, tree: Path) -> list[str]:
    """The unit tests first, then the real ones whose name is the mutated
    module's, then the rest: with -x, a caught mutant stops early."""
    stem = Path(path).stem
    # The copy's tests, not the checkout's: it may have changed since.
    tests = sorted(str(p.relative_to(tree)) for p in (tree / "tests").glob("*/test_*.py"))
    tests = [t for t in tests if t not in IGNORED]
    ordered = sorted(tests, key=lambda t: (not t.startswith("tests/unit"), stem not in t))
    return ordered + [a for test in DESELECTED for a in ("--deselect", test)]


@dataclass
class Outcome:
    mutant: str
    kind: str
    source: str
    status: str  # killed | survived | equivalent | error (the run gave no verdict)
    by: str  # the first failing test, or why the mutant is equivalent
    seconds: float


def run_mutant(mutant: Mutant, tree: Path, env: dict[str, str], timeout: float) -> Outcome:
    key = (mutant.path, mutant.source, mutant.old, mutant.new)
    if key in EQUIVALENT:
        return Outcome(mutant.name, mutant.kind, mutant.source, "equivalent", EQUIVALENT[key], 0)
    target = tree / mutant.path
    original = target.read_text()
    target.write_text(mutant.apply(original))
    started = time.monotonic()
    try:
        proc = run_pytest(
            tree,
            "-x",
            "-o",
            f"timeout={timeout:.0f}",
            *ordered_tests(mutant.path, tree),
            env=env,
            timeout=4 * 3600,
        )
        lines = proc.stdout.splitlines()
        failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
        if proc.returncode == 0:
            status, by = "survived", ""
        elif proc.returncode == 1:
            # Tests ran and one failed (a timeout is a failure too).
            status, by = "killed", failed[0] if failed else lines[-1]
        else:
            # 2-5: interrupted, an internal error, no tests: not a verdict.
            status, by = "error", f"pytest exit {proc.returncode}: " + " | ".join(lines[-5:])
    finally:
        target.write_text(original)
    return Outcome(mutant.name, mutant.kind, mutant.source, status, by, time.monotonic() - started)


def ensure_fixtures(root: Path) -> dict[str, str]:
    """The fresh and full runs, regenerated once for every mutant."""
    from tests.conftest import FRESH_RUNS, FULL_RUNS

    env = {}
    for name, runs in (("fresh", FRESH_RUNS), ("full", FULL_RUNS)):
        dest = root / name
        if not (dest / ".complete").exists():
            print(f"regenerating the {name} runs into {dest} (once)", file=sys.stderr)
            args = ["vmcores", "vmcores", *runs, "--dest", str(dest), "--no-compress"]
            subprocess.run([sys.executable, "-m", *args], check=True, cwd=TOP)
            (dest / ".complete").touch()
        env[f"LUO_DRGN_REUSE_{name.upper()}"] = str(dest)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300, help="per test, seconds")
    parser.add_argument("--fixtures", type=Path, default=None, help="fresh/full runs' cache")
    parser.add_argument("--only", action="append", default=[], help="a module's path")
    parser.add_argument("--list", action="store_true", help="list the sample, run nothing")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the run of the unmutated copy"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args()

    candidates = [m for path in MODULES for m in mutants_of(path)]
    chosen = sample(candidates, args.count, args.seed)
    if args.only:
        chosen = [m for m in chosen if m.path in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.kind:10} {m.name}    {m.source}")
        print(f"{len(chosen)} of {len(candidates)} candidates")
        return

    from luo_drgn.examples import cache_dir

    env = ensure_fixtures(args.fixtures or cache_dir() / "mutation-fixtures")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="luo-mutants-") as scratch:
        trees = []
        for i in range(args.jobs):
            tree = Path(scratch) / str(i)
            tree.mkdir()
            copy_tree(tree)
            trees.append(tree)
        free = list(trees)
        if not args.no_baseline:
            # A suite that fails unmutated would count every mutant as caught.
            proc = run_pytest(trees[0], *ordered_tests("", trees[0]), env=env, timeout=4 * 3600)
            if proc.returncode != 0:
                sys.exit("the unmutated copy fails its tests:\n" + proc.stdout[-3000:])
            print(f"baseline: {proc.stdout.splitlines()[-1]}", file=sys.stderr)

        def one(mutant: Mutant) -> Outcome:
            tree = free.pop()
            try:
                outcome = run_mutant(mutant, tree, env, args.timeout)
            finally:
                free.append(tree)
            print(f"{outcome.status:10} {outcome.seconds:6.0f}s {outcome.mutant}", file=sys.stderr)
            return outcome

        with ThreadPoolExecutor(args.jobs) as pool:
            outcomes = list(pool.map(one, chosen))
    elapsed = time.monotonic() - started

    killed = sum(o.status == "killed" for o in outcomes)
    equivalent = sum(o.status == "equivalent" for o in outcomes)
    counted = len(outcomes) - equivalent
    rate = killed / counted if counted else 1.0
    if args.format == "json":
        doc = {
            "seed": args.seed,
            "candidates": len(candidates),
            "mutants": len(outcomes),
            "killed": killed,
            "equivalent": equivalent,
            "kill_rate": round(rate, 4),
            "seconds": round(elapsed),
            "outcomes": [asdict(o) for o in outcomes],
        }
        print(json.dumps(doc, indent=2))
        return
    for o in outcomes:
        print(f"{o.status:10} {o.kind:10} {o.mutant}")
        print(f"{'':21}{o.source}")
        if o.by:
            print(f"{'':21}-> {o.by}")
    survivors = [o for o in outcomes if o.status == "survived"]
    print(
        f"\nseed {args.seed}: {len(outcomes)} mutants of {len(candidates)} candidates in "
        f"{len(MODULES)} modules; killed {killed} of {counted} ({rate:.1%}), "
        f"{equivalent} equivalent, {len(survivors)} survived; {elapsed / 60:.0f} min"
    )


if __name__ == "__main__":
    main()
