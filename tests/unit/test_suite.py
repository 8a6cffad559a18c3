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
