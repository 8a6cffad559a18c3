# SPDX-License-Identifier: LGPL-2.1-or-later
"""A saved ``luo-inspect --format json report`` read back as a snapshot: an
operator saves one right before ``kexec -e`` and diffs it against the kernel
the update booted.  :func:`from_document` reads the document that
:mod:`luo_drgn.report.document` writes (a round trip the tests hold), and
:func:`load_report` the file."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path
from typing import Any

from ..model import (
    Finding,
    Flb,
    Handler,
    Holder,
    LuoState,
    Panic,
    PreservedFile,
    SerializedFile,
    SerializedFlb,
    SerializedSession,
    Session,
    Snapshot,
    Target,
    WalkErrorRecord,
)
from .document import SCHEMA

__all__ = ("DocumentError", "SavedReportError", "from_document", "is_redacted", "load_report")


class SavedReportError(Exception):
    """Not a saved luo-inspect report; ``str(e)`` says why."""


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
    try:
        snap = from_document(doc)
    except DocumentError as e:
        raise SavedReportError(
            f"{path}: {e}: save one with 'luo-inspect --format json report'"
        ) from None
    t = snap.target
    t.kind, t.path = f"saved {t.kind}", f"{path} ({t.path})"
    return snap


# -- reading a document back -------------------------------------------------


class DocumentError(Exception):
    """Not a ``luo-inspect/1`` document this reader can use; ``str(e)``
    says why in one line."""


def _int(value: Any) -> int | None:
    # Addresses are "0x..." strings; a redaction placeholder ("<addr-1>")
    # has no value any more.
    if not isinstance(value, str) or not value.startswith("0x"):
        return None
    return int(value, 16)


def _need(node: Any, key: str, where: str) -> Any:
    if not isinstance(node, dict) or key not in node:
        raise DocumentError(f"{where} is without {key!r}, which every luo-inspect/1 report holds")
    return node[key]


def _holder_from(x: dict[str, Any]) -> Holder:
    """The inverse of :func:`_holder`: an entry without ``kind`` is an fd
    or a mapping, one with it a kernel object (or LUO)."""
    kind = x.get("kind")
    if kind == "luo":
        return Holder("luo")
    if kind is None:
        if "vma" in x:
            return Holder("vma", pid=x.get("pid"), comm=x.get("comm"), vma=_int(x["vma"]))
        return Holder("fd", pid=x.get("pid"), comm=x.get("comm"), fd=x.get("fd"))
    return Holder(
        kind,
        pid=x.get("pid"),
        comm=x.get("comm"),
        fd=x.get("fd"),
        obj=_int(x.get("object")),
        slot=x.get("slot"),
        device=x.get("device"),
        ioas=x.get("ioas"),
    )


def _file_from(f: dict[str, Any], where: str) -> PreservedFile:
    memfd = f.get("memfd")
    handler = f.get("handler")
    return PreservedFile(
        address=_int(f.get("address")) or 0,
        token=_need(f, "token", where),
        handler=handler,
        handler_address=0,
        handler_registered=handler is not None,
        file=_int(f.get("file")),
        path=f.get("path"),
        size=f.get("size"),
        retrieve_status=f.get("retrieve_status", 0),
        serialized_data=_int(f.get("serialized_data")) or 0,
        frozen=f.get("frozen"),
        refcount=f.get("refcount"),
        explained_refs=f.get("explained_refs"),
        holders=[_holder_from(x) for x in f.get("holders") or []],
        memfd={k: v for k, v in memfd.items()} if memfd else None,
    )


def _session_from(s: dict[str, Any], i: int) -> Session:
    where = f"session {i}"
    owner = s.get("mutex_owner")
    return Session(
        _int(s.get("address")) or 0,
        _need(s, "name", where),
        _need(s, "direction", where),
        bool(s.get("retrieved")),
        s.get("finished"),
        s.get("file_count", len(s.get("files") or [])),
        [_file_from(f, f"{where} file {j}") for j, f in enumerate(_need(s, "files", where))],
        holders=[_holder_from(x) for x in s.get("holders") or []],
        mutex_owner=(owner["pid"], owner["comm"]) if owner else None,
    )


def _luo_from(luo: dict[str, Any]) -> LuoState:
    out = luo.get("outgoing") or {}
    inc = luo.get("incoming") or {}
    device = luo.get("device") or {}
    freeze = out.get("freeze")
    state = LuoState(
        _need(luo, "state", "luo"),
        luo.get("reason"),
        luo.get("liveupdate_num"),
        frozen=out.get("frozen"),
        incoming_present=inc.get("present"),
        incoming_deserialized=inc.get("deserialized"),
        device_in_use=device.get("in_use"),
    )
    if freeze:
        state.freeze = freeze.get("state")
        state.freeze_reserved = freeze.get("reserved", 0)
        state.freeze_written = freeze.get("written", 0)
    error = inc.get("deserialize_error")
    if error is not None:
        state.deserialize_error = -getattr(errno, error, 0) or None
    state.outgoing.session_count = out.get("session_count")
    state.incoming.session_count = inc.get("session_count")
    return state


def from_document(doc: Any) -> Snapshot:
    """
    The snapshot a ``luo-inspect/1`` document (what :func:`document`
    writes) describes: :func:`document` of the result is ``doc`` again.  An
    optional field a writer left out reads as unknown (None); a report
    redacted with ``--redact`` is read as it is and flagged
    (``snap.redacted``).

    :raises DocumentError: for another schema, or a required field absent
    """
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else None
        raise DocumentError(
            f"not a {SCHEMA} report (schema: {found!r})" if found else f"not a {SCHEMA} report"
        )
    t = _need(doc, "target", "the report")
    panic = t.get("panic")
    snap = Snapshot(
        Target(
            t.get("kind", "vmcore"),
            t.get("path"),
            t.get("kernel_release"),
            list(t.get("debuginfo") or []),
            t.get("layout"),
            hostname=t.get("hostname"),
            build_id=t.get("build_id"),
        )
    )
    if panic:
        snap.target.panic = Panic(
            panic.get("reason"),
            panic.get("cause"),
            panic.get("pid"),
            panic.get("comm"),
            panic.get("cpu"),
        )
    snap.redacted = is_redacted(doc)
    luo = _need(doc, "luo", "the report")
    snap.luo = _luo_from(luo)
    snap.luo_device_holders = [
        _holder_from(x) for x in (luo.get("device") or {}).get("holders") or []
    ]
    snap.handlers = [
        Handler(_int(x.get("address")) or 0, x["compatible"], _int(x.get("ops")))
        for x in doc.get("handlers") or []
    ]
    snap.sessions = [
        _session_from(s, i) for i, s in enumerate(_need(doc, "sessions", "the report"))
    ]
    snap.pending_incoming = [
        SerializedSession(
            p["name"],
            len(p["files"]),
            [
                SerializedFile(f["token"], f.get("handler"), _int(f.get("data")) or 0)
                for f in p["files"]
            ],
        )
        for p in doc.get("pending_incoming") or []
    ]
    scan = doc.get("holder_scan") or {}
    snap.holders_scanned = bool(scan.get("scanned"))
    snap.holders_unscanned = [(x["kind"], x["why"]) for x in scan.get("not_scanned") or []]
    snap.flbs = [
        Flb(
            _int(x.get("address")) or 0,
            x["compatible"],
            x.get("outgoing_count", 0),
            x.get("incoming_count", 0),
            list(x.get("handlers") or []),
            _int(x.get("outgoing_data")),
            _int(x.get("incoming_data")),
            x.get("retrieve_status"),
            x.get("finished"),
        )
        for x in doc.get("flbs") or []
    ]
    snap.serialized_flbs = {
        direction: None
        if entries is None
        else [SerializedFlb(e["name"], _int(e.get("data")) or 0, e["count"]) for e in entries]
        for direction, entries in (doc.get("serialized_flbs") or {}).items()
    }
    snap.findings = [
        Finding(
            _need(f, "code", "a finding"),
            f.get("severity", "info"),
            f.get("message", ""),
            f.get("session"),
            f.get("token"),
            _int(f.get("address")),
            f.get("direction"),
        )
        for f in _need(doc, "findings", "the report")
    ]
    snap.errors = [WalkErrorRecord(e["where"], e["message"]) for e in doc.get("errors") or []]
    snap.not_in_dump = [
        WalkErrorRecord(r["where"], "not in the dump", _int(r.get("address")))
        for r in doc.get("not_in_dump") or []
    ]
    return snap


# What --redact leaves: a session name, a process name or an address
# replaced by a numbered placeholder.
_PLACEHOLDER = re.compile(r"<(session|comm|addr|path|memfd|host)-[0-9]+>")


def is_redacted(doc: dict[str, Any]) -> bool:
    """Whether a document was written with ``--redact``: said in its
    ``tool`` part since this release, told by its placeholders before."""
    if (doc.get("tool") or {}).get("redacted"):
        return True
    names = [s.get("name") for s in doc.get("sessions") or [] if isinstance(s, dict)]
    return any(isinstance(n, str) and _PLACEHOLDER.fullmatch(n) for n in names)
