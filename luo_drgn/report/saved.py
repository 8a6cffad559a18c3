# SPDX-License-Identifier: LGPL-2.1-or-later
"""A saved ``luo-inspect --format json report`` read back as a snapshot: an
operator saves one right before ``kexec -e`` and diffs it against the kernel
the update booted."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

from ..model import (
    Finding,
    Holder,
    LuoState,
    PreservedFile,
    SerializedFile,
    SerializedSession,
    Session,
    Snapshot,
    Target,
)

__all__ = ("SavedReportError", "load_report")


class SavedReportError(Exception):
    """Not a saved luo-inspect report; ``str(e)`` says why."""


def _int(value: str | None) -> int | None:
    # Addresses are "0x..." strings (or redaction placeholders, which have
    # no value any more).
    if value is None or not value.startswith("0x"):
        return None
    return int(value, 16)


def _holder(x: dict[str, Any]) -> Holder:
    if x.get("kind") == "luo":
        return Holder("luo")
    if "fd" in x:
        return Holder("fd", pid=x["pid"], comm=x["comm"], fd=x["fd"])
    return Holder("vma", pid=x["pid"], comm=x["comm"], vma=_int(x["vma"]))


def _file(f: dict[str, Any]) -> PreservedFile:
    memfd = f.get("memfd")
    return PreservedFile(
        address=_int(f["address"]) or 0,
        token=f["token"],
        handler=f["handler"],
        handler_address=0,
        handler_registered=f["handler"] is not None,
        file=_int(f["file"]),
        path=f["path"],
        retrieve_status=f["retrieve_status"],
        serialized_data=_int(f["serialized_data"]) or 0,
        frozen=f["frozen"],
        refcount=f["refcount"],
        explained_refs=f["explained_refs"],
        holders=[_holder(x) for x in f["holders"]],
        memfd=dict(memfd) if memfd else None,
        size=f.get("size"),
    )


def load_report(path: str) -> Snapshot:
    """
    Read a JSON report saved by ``luo-inspect --format json report``.

    :raises SavedReportError: if the file is not one
    """
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise SavedReportError(f"{path}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise SavedReportError(f"{path}: not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != "luo-inspect/1":
        raise SavedReportError(f"{path}: not a luo-inspect/1 report")
    missing = [k for k in ("luo", "sessions", "findings") if k not in doc]
    if missing:
        raise SavedReportError(
            f"{path}: a luo-inspect document without {', '.join(missing)}: save it with "
            "'luo-inspect --format json report'"
        )
    t = doc["target"]
    target = Target(
        f"saved {t['kind']}",
        f"{path} ({t['path']})",
        t["kernel_release"],
        t["debuginfo"],
        t["layout"],
    )
    luo = doc["luo"]
    snap = Snapshot(target)
    snap.luo = LuoState(
        luo["state"],
        luo["reason"],
        luo["liveupdate_num"],
        frozen=luo["outgoing"]["frozen"],
        incoming_present=luo["incoming"]["present"],
        incoming_deserialized=luo["incoming"]["deserialized"],
    )
    error = luo["incoming"].get("deserialize_error")
    if error is not None:
        snap.luo.deserialize_error = -getattr(errno, error, 0) or None
    snap.luo.outgoing.session_count = luo["outgoing"]["session_count"]
    snap.luo.incoming.session_count = luo["incoming"]["session_count"]
    snap.sessions = [
        Session(
            _int(s["address"]) or 0,
            s["name"],
            s["direction"],
            s["retrieved"],
            s["finished"],
            s["file_count"],
            [_file(f) for f in s["files"]],
            holders=[_holder(x) for x in s["holders"]],
        )
        for s in doc["sessions"]
    ]
    snap.pending_incoming = [
        SerializedSession(
            p["name"],
            len(p["files"]),
            [SerializedFile(f["token"], f["handler"], _int(f["data"]) or 0) for f in p["files"]],
        )
        for p in doc.get("pending_incoming", [])
    ]
    snap.findings = [
        Finding(
            f["code"], f["severity"], f["message"], f["session"], f["token"], _int(f["address"])
        )
        for f in doc["findings"]
    ]
    return snap
