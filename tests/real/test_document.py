# SPDX-License-Identifier: LGPL-2.1-or-later
"""The luo-inspect/1 document has one owner (luo_drgn.report.document):
what it writes it reads back, and writing that again gives the same
document, on every fixture (the full kernel's holds every holder kind)."""

from __future__ import annotations

import json
from typing import Any

from luo_drgn.model import Snapshot
from luo_drgn.report.document import TEXT_ONLY, document, from_document


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
