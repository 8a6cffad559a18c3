# SPDX-License-Identifier: LGPL-2.1-or-later
"""The suite catches the bugs it claims to: each plausible bug below is
planted in a copy of the tree, and the tests that guard against it must then
fail.  (A mutation run of an earlier suite let all three through; the
broader, sampled run is ``tests/bench/bench_mutations.py``.)

Each mutation names the exact source it replaces, so a refactoring that
moves the code fails here loudly instead of silently testing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.tree import copy_tree, run_pytest


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments that must fail with the bug


MUTATIONS = (
    Mutation(
        "missing-file-reference demoted from error to info",
        "luo_drgn/findings.py",
        '"missing-file-reference",\n        ERROR,',
        '"missing-file-reference",\n        INFO,',
        ("tests/unit/test_checks.py",),
    ),
    Mutation(
        "an empty retrieved session always reported finished",
        "luo_drgn/helpers/liveupdate.py",
        "            # Handed over with no files: nothing was restored to destroy.\n"
        "            return None\n",
        "            return True\n",
        ("tests/real/test_helpers_liveupdate.py", "-k", "finished"),
    ),
    Mutation(
        "cycle detection deleted from the list walk",
        "luo_drgn/helpers/bounded.py",
        '        if addr in seen:\n            raise WalkError(what, addr, "cycle (a node is '
        'reached twice)")\n',
        "",
        ("tests/real/test_walk.py",),
    ),
)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_mutation_is_caught(mutation: Mutation, tmp_path: Path) -> None:
    """Would catch: the suite no longer failing with a bug it was written against."""
    copy_tree(tmp_path)
    target = tmp_path / mutation.path
    source = target.read_text()
    assert source.count(mutation.old) == 1, f"{mutation.path} no longer has the code mutated"
    target.write_text(source.replace(mutation.old, mutation.new))
    proc = run_pytest(tmp_path, "-x", *mutation.tests)
    # Exit status 1: tests ran and failed (not 2-5: an error, no tests).
    # The failure is the bug's, not the copy's: test_unmutated_copy_passes.
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " failed" in proc.stdout.splitlines()[-1]


def test_unmutated_copy_passes(tmp_path: Path) -> None:
    """Would catch: a copied tree that fails unmutated: every mutant would look caught."""
    copy_tree(tmp_path)
    args = [a for m in MUTATIONS for a in m.tests if a.startswith("tests/")]
    proc = run_pytest(tmp_path, *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
