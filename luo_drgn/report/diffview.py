# SPDX-License-Identifier: LGPL-2.1-or-later
"""The diff across a kexec, as the ``luo-inspect-diff/1`` document, text
and Markdown."""

from __future__ import annotations

import json
from typing import Any

from ..diff import Diff
from .blocks import Page, render_page
from .document import tool_info

DIFF_SCHEMA = "luo-inspect-diff/1"


def _side(t: Any) -> dict[str, Any]:
    return {"kind": t.kind, "path": t.path, "kernel_release": t.kernel_release}


def diff_document(d: Diff) -> dict[str, Any]:
    """The ``luo-inspect-diff/1`` document of a diff."""
    return {
        "schema": DIFF_SCHEMA,
        "tool": tool_info(),
        "before": _side(d.before.target),
        "after": _side(d.after.target),
        "lost": d.lost,
        "unrelated": d.unrelated,
        "verdict": d.verdict,
        "rows": [
            {
                "session": r.session,
                "token": r.token,
                "state": r.state,
                "detail": r.detail,
                "before": {"size": r.before_size, "nr_folios": r.before_folios},
                "after": {"size": r.after_size, "nr_folios": r.after_folios},
            }
            for r in d.rows
        ],
    }


def _size_text(size: int | None, folios: int | None) -> str:
    if size is None:
        return "-"
    if folios is None:
        return f"{size}"
    return f"{size} ({folios} folio{'' if folios == 1 else 's'})"


def render_diff(d: Diff, fmt: str = "text") -> str:
    """A diff as JSON, text or Markdown."""
    doc = diff_document(d)
    if fmt == "json":
        return json.dumps(doc, indent=2) + "\n"
    w = Page()
    b, a = doc["before"], doc["after"]
    w.title(f"luo-inspect diff: {b['kernel_release']} -> {a['kernel_release']}")
    tool = doc["tool"]
    w.fields(
        [
            ["tool", f"{tool['name']} {tool['version']} (drgn {tool['drgn']})"],
            ["before", f"{b['kind']}: {b['path'] or 'the program of this drgn session'}"],
            ["after", f"{a['kind']}: {a['path'] or 'the program of this drgn session'}"],
        ]
    )
    if doc["unrelated"]:
        w.line(f"NOT ONE HANDOVER: {doc['verdict']}")
        w.line()
    w.heading("Across the kexec")
    w.table(
        ["session", "token", "state", "size before", "size after", "what happened"],
        [
            [
                r["session"],
                "-" if r["token"] is None else f"{r['token']:#x}",
                r["state"],
                _size_text(r["before"]["size"], r["before"]["nr_folios"]),
                _size_text(r["after"]["size"], r["after"]["nr_folios"]),
                r["detail"],
            ]
            for r in doc["rows"]
        ],
    )
    counts: dict[str, int] = {}
    for r in doc["rows"]:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    w.line(
        "summary: "
        + (", ".join(f"{n} {state}" for state, n in counts.items()) or "nothing was sent")
        + ("; something was lost or failed" if doc["lost"] else "; nothing was lost")
    )
    if doc["verdict"] and not doc["unrelated"]:
        w.line(f"why: {doc['verdict']}")
    return render_page(w, fmt == "markdown")
