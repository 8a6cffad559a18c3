# SPDX-License-Identifier: LGPL-2.1-or-later
"""The suite's own conventions."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_says_what_it_would_catch() -> None:
    """Would catch: a test added without a docstring saying which bug it is
    there for (a test whose purpose nobody can state cannot be judged
    redundant or weak)."""
    bare = [
        f"{path.relative_to(TESTS)}::{node.name}"
        for path in sorted(TESTS.glob("*/test_*.py"))
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef)
        and node.name.startswith("test_")
        and not ast.get_docstring(node)
    ]
    assert bare == []


def test_mutation_benchmark_equivalents_are_real_candidates() -> None:
    """Would catch: an entry of the mutation benchmark's EQUIVALENT list that
    no longer names a mutant (the code moved or changed), which would
    silently stop excusing anything, or excuse a mutant nobody reviewed."""
    from tests.support.mutants import EQUIVALENT, MODULES, mutants_of, sample

    candidates = [m for path in MODULES for m in mutants_of(path)]
    keys = {(m.path, m.source, m.old.strip(), m.new) for m in candidates}
    assert [k for k in EQUIVALENT if (k[0], k[1], k[2].strip(), k[3]) not in keys] == []
    # A fixed seed draws the same mutants, one in each module first.
    chosen = sample(candidates, 40, 22)
    assert chosen == sample(candidates, 40, 22) and len(chosen) == 40
    assert {m.path for m in chosen} == set(MODULES)
    for m in chosen:
        text = (TESTS.parent / m.path).read_text()
        ast.parse(m.apply(text))  # every mutant is still Python


def test_test_modules_do_not_import_each_other() -> None:
    """Would catch: a test module importing another's code (test_live took
    test_diff's story, test_suite the benchmark's mutants): shared code
    lives in tests/support, so a module runs and reads on its own."""
    import ast
    from pathlib import Path

    tests = Path(__file__).resolve().parents[1]
    crossing = []
    for path in sorted(tests.rglob("*.py")):
        if "support" in path.relative_to(tests).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                ("tests.real", "tests.unit", "tests.bench")
            ):
                crossing.append(f"{path.relative_to(tests)}: {node.module}")
    assert crossing == []
