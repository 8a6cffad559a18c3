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
import ast
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP))

from tests.support.tree import copy_tree, run_pytest  # noqa: E402

# The modules that decide something: what is read, checked, concluded, and
# which exit status follows.  (Rendering and the front-ends are held to
# their output by the document and door tests instead.)
MODULES = (
    "luo_drgn/checks/files.py",
    "luo_drgn/checks/flbs.py",
    "luo_drgn/checks/state.py",
    "luo_drgn/checks/structure.py",
    "luo_drgn/collector.py",
    "luo_drgn/collector_base.py",
    "luo_drgn/collector_handover.py",
    "luo_drgn/derive.py",
    "luo_drgn/diff.py",
    "luo_drgn/engine.py",
    "luo_drgn/findings.py",
    "luo_drgn/freeze.py",
    "luo_drgn/helpers/bounded.py",
    "luo_drgn/helpers/cmdline.py",
    "luo_drgn/helpers/file_holders.py",
    "luo_drgn/helpers/kexec.py",
    "luo_drgn/helpers/kho.py",
    "luo_drgn/helpers/liveupdate.py",
    "luo_drgn/helpers/liveupdate_handover.py",
    "luo_drgn/helpers/liveupdate_layout.py",
    "luo_drgn/helpers/liveupdate_state.py",
    "luo_drgn/helpers/vfs.py",
    "luo_drgn/holders.py",
    "luo_drgn/nextboot.py",
    "luo_drgn/nextkernel.py",
    "luo_drgn/preflight.py",
    "luo_drgn/report/saved.py",
    "luo_drgn/restore.py",
)

# Test files never run for a mutant: the live guests and the scale cores
# are benchmarks of their own, and the mutation test copies trees itself.
IGNORED = ("tests/real/test_live.py", "tests/real/test_scale.py", "tests/real/test_mutations.py")
# Tests of the installed package (its console script and drgn entry point):
# in a copy they run the checkout's code, not the mutant's.
DESELECTED = (
    "tests/real/test_cli.py::test_luo_inspect_executable",
    "tests/real/test_cli.py::test_plugin_through_its_entry_point",
)

COMPARISON = {
    "<": "<=",
    "<=": "<",
    ">": ">=",
    ">=": ">",
    "==": "!=",
    "!=": "==",
    "is": "is not",
    "is not": "is",
    "in": "not in",
    "not in": "in",
}
SEVERITY = {"ERROR": "WARNING", "WARNING": "INFO", "INFO": "WARNING"}

# Mutants no test can catch because the program behaves the same, each with
# why: (module, the mutated line stripped, old, new) -> reason.
EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    (
        "luo_drgn/helpers/kexec.py",
        "if offset < 0 or limit <= 0:",
        "<=",
        "<",
    ): "a limit of 0 reads nothing: kimage_read_segment(image, i, offset, 0) is b'', "
    "the same empty command line the early return gives",
    (
        "luo_drgn/nextkernel.py",
        "while pos + 12 <= end:",
        "<=",
        "<",
    ): "a note header that ends its segment leaves no room for the name 'GNU\\0' the "
    "build ID is found by (a longer note stops the walk): no build ID either way",
    (
        "luo_drgn/helpers/liveupdate.py",
        "return 1 if raw > 0 else raw",
        "0",
        "1",
    ): "the two differ only at raw == 1, where the else branch returns raw: 1 either way",
}


@dataclass(frozen=True)
class Mutant:
    path: str
    line: int  # 1-based
    col: int  # character offset in the line
    old: str
    new: str
    kind: str  # comparison | boundary | boolean | severity
    source: str  # the line, stripped

    @property
    def name(self) -> str:
        return f"{self.path}:{self.line}: {self.old!r} -> {self.new!r}"

    def apply(self, text: str) -> str:
        lines = text.splitlines(keepends=True)
        line = lines[self.line - 1]
        assert line[self.col : self.col + len(self.old)] == self.old, self.name
        lines[self.line - 1] = line[: self.col] + self.new + line[self.col + len(self.old) :]
        return "".join(lines)


def _char_col(line: str, byte_col: int) -> int:
    """ast's offsets count UTF-8 bytes; the line is indexed by character."""
    return len(line.encode()[:byte_col].decode())


def _between(lines: list[str], left: ast.AST, right: ast.AST) -> tuple[int, int, str] | None:
    """The text between two nodes on one line: (line, first column, text)."""
    if left.end_lineno != right.lineno:  # type: ignore[attr-defined]
        return None
    line = lines[right.lineno - 1]  # type: ignore[attr-defined]
    start = _char_col(line, left.end_col_offset)  # type: ignore[attr-defined]
    end = _char_col(line, right.col_offset)  # type: ignore[attr-defined]
    return right.lineno, start, line[start:end]  # type: ignore[attr-defined]


def _operator(
    lines: list[str], left: ast.AST, right: ast.AST, path: str, kind: str, table: dict[str, str]
) -> Iterator[Mutant]:
    found = _between(lines, left, right)
    if found is None:
        return
    lineno, start, text = found
    token = " ".join(text.strip(" ()").split())
    if token not in table:
        return
    col = start + text.index(token.split()[0])
    old = text[col - start :].rstrip(" ()")
    if " ".join(old.split()) != token:
        return
    yield Mutant(path, lineno, col, old, table[token], kind, lines[lineno - 1].strip())


def _skipped(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Code where a mutant means nothing: ``__all__``, type-checking
    imports, assertions of the tool's own invariants, and docstrings."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return True
    return False


def mutants_of(path: str) -> list[Mutant]:
    text = (TOP / path).read_text()
    lines = text.splitlines()
    tree = ast.parse(text)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: list[Mutant] = []
    for node in ast.walk(tree):
        if _skipped(node, parents):
            continue
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for left, right in zip(operands, operands[1:]):
                found += _operator(lines, left, right, path, "comparison", COMPARISON)
        elif isinstance(node, ast.BoolOp):
            for left, right in zip(node.values, node.values[1:]):
                found += _operator(lines, left, right, path, "boolean", {"and": "or", "or": "and"})
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            if node.lineno == node.operand.lineno:
                line = lines[node.lineno - 1]
                start = _char_col(line, node.col_offset)
                end = _char_col(line, node.operand.col_offset)
                if line[start:end].startswith("not"):
                    found.append(
                        Mutant(
                            path, node.lineno, start, line[start:end], "", "boolean", line.strip()
                        )
                    )
        elif isinstance(node, ast.Constant) and node.end_lineno == node.lineno:
            line = lines[node.lineno - 1]
            start = _char_col(line, node.col_offset)
            end = _char_col(line, node.end_col_offset)  # type: ignore[arg-type]
            old = line[start:end]
            if isinstance(node.value, bool):
                new = str(not node.value)
                found.append(Mutant(path, node.lineno, start, old, new, "boolean", line.strip()))
            elif (
                isinstance(node.value, int)
                and old.isdigit()
                and isinstance(parents.get(node), (ast.Compare, ast.BinOp))
                and not isinstance(getattr(parents.get(node), "op", None), (ast.LShift, ast.RShift))
            ):
                new = str(node.value + 1)
                found.append(Mutant(path, node.lineno, start, old, new, "boundary", line.strip()))
        elif isinstance(node, ast.Name) and node.id in SEVERITY and isinstance(node.ctx, ast.Load):
            line = lines[node.lineno - 1]
            start = _char_col(line, node.col_offset)
            found.append(
                Mutant(
                    path, node.lineno, start, node.id, SEVERITY[node.id], "severity", line.strip()
                )
            )
    return sorted(set(found), key=lambda m: (m.path, m.line, m.col, m.new))


def sample(candidates: list[Mutant], count: int, seed: int) -> list[Mutant]:
    """One mutant in each module, then the rest drawn from all: with a fixed
    seed, the same mutants at each run of the same source."""
    rng = random.Random(seed)
    chosen: list[Mutant] = []
    for path in MODULES:
        own = [m for m in candidates if m.path == path]
        if own and len(chosen) < count:
            chosen.append(rng.choice(own))
    rest = [m for m in candidates if m not in chosen]
    chosen += rng.sample(rest, min(count - len(chosen), len(rest)))
    return sorted(chosen, key=lambda m: (m.path, m.line, m.col))


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
