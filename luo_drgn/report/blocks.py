# SPDX-License-Identifier: LGPL-2.1-or-later
"""The typed model text and Markdown are written from: a page of blocks
(title, headings, field lists, tables, lines, quotes) whose cells may carry
a severity to colour.  Sections build a page; :func:`render_page` writes it
as plain text (aligned tables, underlined headings) or Markdown (GitHub
tables, ``##`` headings), and colours severities only where asked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Union

__all__ = (
    "Cell",
    "Fields",
    "Heading",
    "Line",
    "Page",
    "Quote",
    "Spans",
    "Styled",
    "Table",
    "Title",
    "render_page",
)


@dataclass(frozen=True)
class Styled:
    """Text to colour by a finding's severity (on a terminal)."""

    text: str
    severity: str


# A cell: plain text, styled text, a run of both, or a value shown as it is.
Spans = tuple[Union[str, Styled], ...]
Cell = Union[str, Styled, Spans, Any]


@dataclass
class Title:
    """The page's title: Markdown's ``#`` line; plain text has none."""

    text: str


@dataclass
class Heading:
    text: str


@dataclass
class Line:
    cell: Cell = ""


@dataclass
class Quote:
    """A warning set apart: ``>`` in Markdown, a plain line in text."""

    text: str


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]]


@dataclass
class Fields:
    """Key-value lines."""

    rows: list[tuple[str, Cell]]


Block = Union[Title, Heading, Line, Quote, Table, Fields]


@dataclass
class Page:
    """The blocks of one output, in order; sections append to it."""

    blocks: list[Block] = field(default_factory=list)

    def title(self, text: str) -> None:
        self.blocks.append(Title(text))

    def heading(self, text: str) -> None:
        self.blocks.append(Heading(text))

    def line(self, cell: Cell = "") -> None:
        self.blocks.append(Line(cell))

    def quote(self, text: str) -> None:
        self.blocks.append(Quote(text))

    def table(self, headers: list[str], rows: Sequence[Sequence[Cell]]) -> None:
        self.blocks.append(Table(headers, [list(row) for row in rows]))

    def fields(self, rows: Sequence[Sequence[Cell]]) -> None:
        self.blocks.append(Fields([(str(k), v) for k, v in rows]))

    @staticmethod
    def style(text: str, severity: str) -> Styled:
        return Styled(text, severity)


def _cell(cell: Cell, style: Callable[[str, str], str]) -> Any:
    if isinstance(cell, Styled):
        return style(cell.text, cell.severity)
    if isinstance(cell, tuple):
        return "".join(_cell(part, style) for part in cell)
    return cell


def render_page(
    page: Page,
    markdown: bool,
    style: Callable[[str, str], str] = lambda text, severity: text,
) -> str:
    """Write ``page`` as Markdown or plain text; ``style`` colours the
    severities (plain text only: Markdown is never coloured)."""
    if markdown:
        style = lambda text, severity: text  # noqa: E731
    fmt = "github" if markdown else "simple"
    out: list[str] = []

    def table(headers: list[str], rows: list[list[Any]]) -> None:
        if not rows:
            out.extend(["(none)", ""])
            return
        # Imported here: a JSON report draws no table, and tabulate is a
        # tenth of luo-inspect's start-up.
        from tabulate import tabulate

        out.extend([tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True), ""])

    for block in page.blocks:
        if isinstance(block, Title):
            if markdown:
                out.extend([f"# {block.text}", ""])
        elif isinstance(block, Heading):
            underline = "-" * len(block.text)
            out.extend([f"## {block.text}", ""] if markdown else [block.text, underline])
        elif isinstance(block, Line):
            out.append(str(_cell(block.cell, style)))
        elif isinstance(block, Quote):
            out.append(("> " if markdown else "") + block.text)
        elif isinstance(block, Table):
            table(block.headers, [[_cell(c, style) for c in row] for row in block.rows])
        else:
            rows = [[k, _cell(v, style)] for k, v in block.rows]
            if markdown:
                table(["", ""], rows)
            else:
                width = max(len(k) for k, _ in rows) + 1
                out.extend([f"{k + ':':{width}} {v}" for k, v in rows] + [""])
    return "\n".join(out).rstrip() + "\n"
