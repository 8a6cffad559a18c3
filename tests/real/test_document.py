# SPDX-License-Identifier: LGPL-2.1-or-later
"""The luo-inspect/1 document has one owner (luo_drgn.report.document):
what it writes it reads back, and writing that again gives the same
document, on every fixture (the full kernel's holds every holder kind)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from luo_drgn.model import Snapshot
from luo_drgn.report.document import TEXT_ONLY, document
from luo_drgn.report.saved import from_document, load_report


def written(snap: Snapshot) -> dict[str, Any]:
    doc = document(snap)
    doc.pop(TEXT_ONLY)  # notes: text output only, not in the JSON
    parsed: dict[str, Any] = json.loads(json.dumps(doc))
    return parsed


def test_document_round_trip(snapshot: Snapshot) -> None:
    """Would catch: a holder kind (scm, io_uring, loop, iommufd, exe) read
    back as another (issue #20: scm came back as an fd holder), or any
    field one side forgets."""
    doc = written(snapshot)
    again = written(from_document(doc))
    assert again == doc
    kinds = {
        h.get("kind", "vma" if "vma" in h else "fd")
        for s in doc["sessions"]
        for f in s["files"]
        for h in f["holders"]
    }
    back = {h.kind for s in from_document(doc).sessions for f in s.files for h in f.holders}
    assert back == kinds


# Reports luo-inspect 0.1.0 wrote (--format json report), kept as written:
# the outgoing example (fd, vma and LUO holders), the same redacted, and the
# full kernel's holders dump (scm, io_uring, loop, iommufd).
SAVED = Path(__file__).resolve().parents[1] / "data" / "saved-reports"


@pytest.mark.parametrize("name", sorted(p.name for p in SAVED.glob("*.json")))
def test_saved_reports_of_0_1_0_are_read(name: str) -> None:
    """Every later reader reads what this release wrote: each fact of the
    saved document comes back (the writer's own identity aside), and a
    redacted one is known as such.  Would catch: a reader change that
    drops or misreads a field old reports carry."""
    path = SAVED / name
    doc = json.loads(path.read_text())
    assert doc["tool"]["version"] == "0.1.0"
    snap = load_report(str(path))
    redacted = name.endswith("-redacted.json")
    assert snap.redacted is redacted
    back = written(from_document(doc))
    if redacted:
        # Placeholders carry no value to write back; the structure does.
        assert [(s["direction"], [f["token"] for f in s["files"]]) for s in back["sessions"]] == [
            (s["direction"], [f["token"] for f in s["files"]]) for s in doc["sessions"]
        ]
        return
    for key, value in doc.items():
        if key == "target":
            # Fields added since (the host name, the build ID) read as unknown.
            assert {k: back[key][k] for k in value} == value
            assert (back[key]["hostname"], back[key]["build_id"]) == (None, None)
        elif key != "tool":
            assert back[key] == value, key
