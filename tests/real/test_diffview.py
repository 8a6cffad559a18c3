# SPDX-License-Identifier: LGPL-2.1-or-later
"""The diff across a kexec as a document, text and Markdown
(:mod:`luo_drgn.report.diffview`), on the committed fixtures' diffs.  What
each row says is tests/real/test_diff.py's; here, that every output shows
it."""

from __future__ import annotations

import json

import pytest

from luo_drgn.diff import Diff, diff
from luo_drgn.engine import open_side
from luo_drgn.report.diffview import _size_text, diff_document, render_diff

PAIRS = (
    ("frozen", "incoming"),  # one handover, nothing lost
    ("doomed", "doomed-panic"),  # the next kernel panicked
    ("doomed-frozen", "incoming"),  # not one handover
)


@pytest.fixture(scope="module", params=PAIRS, ids="->".join)
def d(request: pytest.FixtureRequest) -> Diff:
    before, after = request.param
    return diff(open_side(f"example:{before}"), open_side(f"example:{after}"))


def test_json_is_the_document(d: Diff) -> None:
    """Would catch: the JSON diff saying otherwise than its document: a row,
    a side or the verdict lost on the way."""
    doc = json.loads(render_diff(d, "json"))
    assert doc == json.loads(json.dumps(diff_document(d)))
    assert [(r["session"], r["token"], r["state"]) for r in doc["rows"]] == [
        (r.session, r.token, r.state) for r in d.rows
    ]
    assert (doc["lost"], doc["unrelated"], doc["verdict"]) == (d.lost, d.unrelated, d.verdict)


def test_text_shows_every_row_and_the_summary(d: Diff) -> None:
    """Would catch: a row missing from the table, a token not in hex, a
    summary whose counts are not the rows', "nothing was lost" on a diff
    that lost something, or two unrelated dumps not called out on top."""
    text = render_diff(d)
    table = text.split("Across the kexec", 1)[1]
    for r in d.rows:
        row = next(
            line
            for line in table.splitlines()
            if line.split()[:1] == [r.session]
            and ("-" if r.token is None else f"{r.token:#x}") in line.split()
        )
        assert r.state in row.split()
    states = [r.state for r in d.rows]
    counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
    (summary,) = [line for line in text.splitlines() if line.startswith("summary: ")]
    assert summary == "summary: " + (counts or "nothing was sent") + (
        "; something was lost or failed" if d.lost else "; nothing was lost"
    )
    assert ("NOT ONE HANDOVER" in text.split("Across the kexec", 1)[0]) == d.unrelated


def test_markdown_is_a_table(d: Diff) -> None:
    """Would catch: Markdown written as plain text (a bug report would show
    a garbled table), or its rows differing from the text's."""
    md = render_diff(d, "markdown")
    assert md.startswith("# luo-inspect diff: ")
    heading, table = md.split("Across the kexec", 1)
    assert heading.endswith("## ")
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + len(d.rows)  # header, rule, a line a row
    assert rows[1].replace("|", "").replace("-", "").strip() == ""


def test_sizes_say_their_folios() -> None:
    """Would catch: a size shown without its folios, a folio count without
    its plural, or an unknown size shown as 0."""
    assert _size_text(4096, 1) == "4096 (1 folio)"
    assert _size_text(8192, 2) == "8192 (2 folios)"
    assert _size_text(100, None) == "100"
    assert _size_text(None, 3) == "-"
