# SPDX-License-Identifier: LGPL-2.1-or-later
"""One layer reads the kernel: no module outside ``luo_drgn/helpers/`` names
a kernel member or reads kernel memory (``luo_drgn/target.py``, which opens
the target and reads what identifies it, is the one exception)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
PACKAGE = TOP / "luo_drgn"
EXEMPT = {PACKAGE / "target.py"}
# Reads of kernel memory: a Program's or a word reader's read methods.
READS = {"read", "read_bytes", "read_word", "read_u8", "read_u16", "read_u32", "read_u64"}
READERS = {"prog", "words", "self.prog"}


def kernel_reads(source: str) -> list[str]:
    """The places in ``source`` that read a kernel member or kernel memory:
    ``.member_(``, ``prog[``, ``prog.read(`` (and the other read methods, on a
    program or a word reader), and any use of the helpers' ``Words``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = ast.unparse(node.func.value)
            if (
                node.func.attr == "member_"
                or node.func.attr in READS
                and (receiver in READERS or receiver.startswith("Words"))
            ):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in READERS:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Name) and node.id == "Words":
            found.append(f"{node.lineno}: Words")
    return found


MODULES = sorted(
    p for p in PACKAGE.rglob("*.py") if PACKAGE / "helpers" not in p.parents and p not in EXEMPT
)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(TOP)))
def test_only_the_helpers_read_the_kernel(path: Path) -> None:
    """Would catch: a module outside the helpers reading a member, a
    variable or raw memory itself, so that a layout change would have to
    be made in two layers again (blockread.py and layout.py did)."""
    assert kernel_reads(path.read_text()) == []


@pytest.mark.parametrize(
    "line",
    [
        'prog["luo_global"].enabled',
        'self.prog["saved_command_line"].string_()',
        'flb.member_("private")',
        "prog.read(address, 8)",
        "words.read(prog, address)",
        "Words.cached(prog).read(prog, address)",
        "prog.read_u64(address)",
    ],
)
def test_the_markers_find_a_kernel_read(line: str) -> None:
    """The static test above can fail: each marker finds its read."""
    assert kernel_reads(line)


def test_a_file_read_is_not_a_kernel_read() -> None:
    """Reading a file (a vmcore's header, a compressed dump) is not one."""
    assert kernel_reads("with open(p, 'rb') as f:\n    f.read(16)\n") == []
