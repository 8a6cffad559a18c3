# SPDX-License-Identifier: LGPL-2.1-or-later
"""A document as text (:mod:`luo_drgn.report.text`): each section shows
what the document holds, in words a reader of the kernel knows."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from luo_drgn.engine import open_side
from luo_drgn.report.document import document, select
from luo_drgn.report.text import _flb_status, _holders_text, _status, render_text


def _doc(name: str, command: str) -> dict[str, Any]:
    return select(document(open_side(f"example:{name}")), command)


def test_retrieve_status_in_the_kernels_words() -> None:
    """Would catch: a luo_file's retrieve_status (luo_file.c: > 0 once
    retrieved, 0 before, -errno after a failed retrieve) shown as a bare
    number, or an errno not spelled as the kernel spells it (95 is
    EOPNOTSUPP, not ENOTSUP)."""
    assert _status(1) == "retrieved"
    assert _status(0) == "-"
    assert _status(-errno.EIO) == "failed EIO"
    assert _status(-95) == "failed EOPNOTSUPP"
    # An FLB's: 0 not yet, 1 retrieved, -errno its .retrieve() failed.
    assert _flb_status(None) == "-"
    assert _flb_status(0) == "not yet"
    assert _flb_status(1) == "retrieved"
    assert _flb_status(-errno.ENOENT) == "failed (ENOENT)"


def test_every_holder_kind_is_named() -> None:
    """Would catch: a holder kind shown as its internal name or dropped, or
    the process behind a kernel object left out."""
    holders = [
        {"pid": 1, "comm": "init", "fd": 5},
        {"pid": 1, "comm": "init", "vma": "0x7f0000000000"},
        {"kind": "luo"},
        {"kind": "scm", "object": "0xffff1", "pid": 7, "comm": "agent", "fd": 3},
        {"kind": "io_uring", "object": "0xffff2", "pid": 8, "comm": "vmm", "fd": None, "slot": 2},
        {"kind": "loop", "object": "0xffff3", "device": "loop0"},
        {"kind": "iommufd", "object": "0xffff4", "pid": 9, "comm": "vmm", "fd": 4, "ioas": 1},
        {"kind": "exe", "pid": 10, "comm": "qemu"},
    ]
    assert _holders_text(holders).split(", ") == [
        "1/init fd 5",
        "1/init map 0x7f0000000000",
        "LUO",
        "SCM_RIGHTS in flight on unix socket 0xffff1 (7/agent fd 3)",
        "io_uring fixed file 2 (8/vmm registered ring)",
        "loop0 backing file",
        "iommufd IOAS 1 (9/vmm fd 4)",
        "10/qemu executable",
    ]
    assert _holders_text([]) == "-"


@pytest.mark.parametrize("name", ["outgoing", "doomed"])
def test_files_table_shows_every_file(name: str) -> None:
    """Would catch: a preserved file missing from the files table, its
    token not in hex, or its references without the explained count."""
    doc = _doc(name, "files")
    text = render_text(doc, "files")
    lines = text.splitlines()
    files = [(s, f) for s in doc["sessions"] for f in s["files"]]
    assert files
    for s, f in files:
        assert any(
            s["name"] in line
            and f"{f['token']:#x}" in line.split()
            and (f["refcount"] is None or f"{f['refcount']}/{f['explained_refs']}" in line.split())
            for line in lines
        ), (s["name"], f["token"])


def test_findings_and_errors_are_shown() -> None:
    """Would catch: a finding missing from check's table, or a snapshot
    with no walk error not saying that every walk completed."""
    doc = _doc("doomed", "check")
    assert doc["findings"]
    text = render_text(doc, "check")
    findings = text.split("Findings", 1)[1].split("Errors", 1)[0]
    for f in doc["findings"]:
        assert f["code"] in findings and f["message"][:40] in " ".join(findings.split())
    assert doc["errors"] == []  # the doomed dump's own walks all complete
    assert "(none: every walk completed)" in text.split("Errors", 1)[1]
