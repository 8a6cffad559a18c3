# SPDX-License-Identifier: LGPL-2.1-or-later
"""The mutation benchmark's candidates (``tests/bench/bench_mutations.py``):
the modules that decide something, the one-token bugs that could sit in
them, the sample taken, and the mutants known to be equivalent; shared with
``tests/unit/test_suite.py``, which holds the equivalents to real
candidates."""

from __future__ import annotations

import ast
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]


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
