# SPDX-License-Identifier: LGPL-2.1-or-later
"""The ``luo-inspect/1`` document: a snapshot as JSON-ready data, the one
source every format is rendered from (so ``--redact``, applied to the
document, covers every format the same way), and the part each command
shows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Callable, overload

import drgn

from .. import __version__
from ..findings import errno_name
from ..holders import NEVER_SCANNED
from ..model import (
    Finding,
    Holder,
    HolderList,
    PreservedFile,
    Session,
    Snapshot,
)
from ..preflight import Preflight

SCHEMA = "luo-inspect/1"


TOP_LEVEL = (
    "schema",
    "tool",
    "target",
    "luo",
    "handlers",
    "sessions",
    "pending_incoming",
    "holder_scan",
    "flbs",
    "serialized_flbs",
    "findings",
    "errors",
    "not_in_dump",
)


# What each command's JSON holds besides schema, tool and target.
PARTS: dict[str, tuple[str, ...]] = {
    "summary": ("luo", "findings"),
    "handlers": ("handlers",),
    "sessions": ("sessions",),
    "files": ("sessions", "holder_scan"),
    "check": ("findings", "errors", "not_in_dump"),
    "report": TOP_LEVEL[3:],
    "preflight": ("luo", "preflight", "findings", "errors"),
}


TEXT_ONLY = "text_only"


LIVE_WARNING = "live kernel: memory changed while it was read, so the data may be inconsistent"


def _hex(v: int | None) -> str | None:
    return None if v is None else f"{v:#x}"


def _holder(x: Holder) -> dict[str, Any]:
    if x.kind == "luo":
        return {"kind": "luo"}
    if x.kind == "vma":
        return {"pid": x.pid, "comm": x.comm, "vma": _hex(x.vma)}
    if x.kind == "fd":
        return {"pid": x.pid, "comm": x.comm, "fd": x.fd}
    extra = {
        k: v for k, v in (("slot", x.slot), ("device", x.device), ("ioas", x.ioas)) if v is not None
    }
    return {
        "kind": x.kind,
        "object": _hex(x.obj),
        "pid": x.pid,
        "comm": x.comm,
        "fd": x.fd,
        **extra,
    }


def _holders(holders: Sequence[Holder]) -> list[dict[str, Any]]:
    """Each holder as :func:`_holder` writes it; the fd holders of a
    HolderList a run at a time (a host's report has a million)."""
    if not isinstance(holders, HolderList):
        return [_holder(x) for x in holders]
    out: list[dict[str, Any]] = []
    for run in holders.runs():
        if isinstance(run, Holder):
            out.append(_holder(run))
        else:
            out.extend({"pid": pid, "comm": comm, "fd": fd} for pid, comm, fd in run)
    return out


def _file(f: PreservedFile) -> dict[str, Any]:
    return {
        "address": _hex(f.address),
        "token": f.token,
        "handler": f.handler,
        "file": _hex(f.file),
        "path": f.path,
        "retrieve_status": f.retrieve_status,
        "serialized_data": _hex(f.serialized_data),
        "frozen": f.frozen,
        "refcount": f.refcount,
        "explained_refs": f.explained_refs,
        "holders": _holders(f.holders),
        "size": f.size,
        "memfd": (
            {"size": f.memfd.get("size"), "nr_folios": f.memfd.get("nr_folios")}
            if f.memfd is not None
            else None
        ),
    }


def _session(s: Session) -> dict[str, Any]:
    return {
        "address": _hex(s.address),
        "name": s.name,
        "direction": s.direction,
        "retrieved": s.retrieved,
        "finished": s.finished,
        "file_count": s.file_count,
        "holders": [_holder(x) for x in s.holders],
        "mutex_owner": (
            {"pid": s.mutex_owner[0], "comm": s.mutex_owner[1]} if s.mutex_owner else None
        ),
        "files": [_file(f) for f in s.files],
    }


class _Lazy(Sequence[Any]):
    """A list of the document whose items are made as they are read: a
    host's report has a million holders, and JSON written session by session
    never holds all their dicts at once."""

    def __init__(self, items: Sequence[Any], make: Callable[[Any], Any]) -> None:
        self.items, self.make = items, make

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Any]:
        return map(self.make, self.items)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self.make(x) for x in self.items[index]]
        return self.make(self.items[index])


def tool_info() -> dict[str, str]:
    return {"name": "luo-inspect", "version": __version__, "drgn": drgn.__version__}


def _kexec_image(snap: Snapshot) -> dict[str, Any] | None:
    if not snap.kexec_read:
        return None
    image = snap.kexec_image
    if image is None:
        return {"loaded": False}
    return {
        "loaded": True,
        "address": _hex(image.address),
        "file_mode": image.file_mode,
        "preserve_context": image.preserve_context,
        "kho_fdt": _hex(image.kho_fdt),
        "cmdline": image.cmdline,
        "cmdline_note": image.cmdline_note,
        "kernel_note": image.payload_note,
    }


def _next_kernel(snap: Snapshot) -> dict[str, Any] | None:
    """Which kernel the verdict is for, and how much of it is known."""
    nk = snap.next_kernel
    if nk is None:
        return None
    return {
        "source": nk.source,
        "path": nk.path if nk.source == "--next-kernel" else None,
        "release": nk.release,
        "banner": nk.banner,
        "build_id": nk.build_id,
        "same_build": nk.build_id is not None and nk.build_id == snap.target.build_id,
        "debug_file": nk.debug_file,
        "luo_abi": nk.abi,
        "kho_abi": nk.kho_abi,
        "unknown": list(nk.unknown.values()),
    }


def preflight_part(snap: Snapshot, verdict: Preflight) -> dict[str, Any]:
    """The ``preflight`` part of the document: the verdict and what it was
    reached on."""
    ho = snap.handover_out
    handed = ho is not None and ho.chain is not None
    return {
        "accepted": verdict.accepted,
        "exit_status": verdict.status,
        "handover": ho.source if handed and ho is not None else "none",
        "sessions": len(ho.listed) if ho is not None else 0,
        "files": sum(len(s.files) for s in ho.sessions) if ho is not None else 0,
        "next_cmdline": snap.next_cmdline,
        "next_cmdline_source": snap.next_cmdline_source,
        "next_kernel": snap.next_kernel.path if snap.next_kernel is not None else None,
        "next_kernel_identity": _next_kernel(snap),
        "kexec_image": _kexec_image(snap),
        "losses": sum(1 for f in verdict.losses if f.severity != "info"),
    }


def finding_part(f: Finding) -> dict[str, Any]:
    """One finding as the document holds it."""
    return {
        "code": f.code,
        "severity": f.severity,
        "message": f.message,
        "session": f.session,
        "direction": f.direction,
        "token": f.token,
        "address": _hex(f.address),
    }


def prints_findings(command: str) -> bool:
    """Whether ``command``'s output shows findings (which then take in the
    kernel the loaded image boots)."""
    return "findings" in PARTS.get(command, TOP_LEVEL)


def prints_paths(command: str) -> bool:
    """Whether ``command``'s output shows the files' paths (which the
    collector then reads)."""
    return "sessions" in PARTS.get(command, TOP_LEVEL)


def document(snap: Snapshot, sessions: bool = True, lazy: bool = False) -> dict[str, Any]:
    """The full ``luo-inspect/1`` document of a snapshot.

    :param sessions: whether to fill in the sessions and their files (the
        bulk of it), or leave them empty for a command that does not show them
    :param lazy: make each session's part only as it is read (for JSON
        written once)
    """
    luo = snap.luo
    t = snap.target
    return {
        "schema": SCHEMA,
        "tool": tool_info(),
        "target": {
            "kind": t.kind,
            "path": t.path,
            "kernel_release": t.kernel_release,
            "debuginfo": list(t.debuginfo),
            "layout": t.layout,
            "hostname": t.hostname,
            "build_id": t.build_id,
            "panic": (
                {
                    "reason": t.panic.reason,
                    "cause": t.panic.cause,
                    "pid": t.panic.pid,
                    "comm": t.panic.comm,
                    "cpu": t.panic.cpu,
                }
                if t.panic is not None
                else None
            ),
        },
        "luo": {
            "state": luo.state,
            "device": {
                "in_use": luo.device_in_use,
                "holders": [_holder(x) for x in snap.luo_device_holders],
            },
            "reason": luo.reason,
            "liveupdate_num": luo.liveupdate_num,
            "outgoing": {
                "frozen": luo.frozen,
                "freeze": (
                    {
                        "state": luo.freeze,
                        "reserved": luo.freeze_reserved,
                        "written": luo.freeze_written,
                    }
                    if luo.freeze is not None
                    else None
                ),
                "session_count": luo.outgoing.session_count,
            },
            "incoming": {
                "present": luo.incoming_present,
                "deserialized": luo.incoming_deserialized,
                "deserialize_error": (
                    errno_name(luo.deserialize_error) if luo.deserialize_error else None
                ),
                "session_count": luo.incoming.session_count,
            },
        },
        "handlers": [
            {"address": _hex(x.address), "compatible": x.compatible, "ops": _hex(x.ops)}
            for x in snap.handlers
        ],
        "sessions": (
            _Lazy(snap.sessions, _session) if lazy else [_session(s) for s in snap.sessions]
        )
        if sessions
        else [],
        "pending_incoming": [
            {
                "name": p.name,
                "files": [
                    {"token": f.token, "handler": f.handler, "data": _hex(f.data)} for f in p.files
                ],
            }
            for p in snap.pending_incoming
        ],
        "holder_scan": {
            "scanned": snap.holders_scanned,
            "not_scanned": [{"kind": k, "why": why} for k, why in snap.holders_unscanned],
            "never_scanned": list(NEVER_SCANNED),
        },
        "flbs": [
            {
                "address": _hex(x.address),
                "compatible": x.compatible,
                "outgoing_count": x.outgoing_count,
                "incoming_count": x.incoming_count,
                "handlers": list(x.handlers),
                "outgoing_data": _hex(x.outgoing_data),
                "incoming_data": _hex(x.incoming_data),
                "retrieve_status": x.retrieve_status,
                "finished": x.finished,
            }
            for x in snap.flbs
        ],
        "serialized_flbs": {
            direction: (
                None
                if entries is None
                else [{"name": e.name, "data": _hex(e.data), "count": e.count} for e in entries]
            )
            for direction, entries in snap.serialized_flbs.items()
        },
        "findings": [finding_part(f) for f in snap.findings],
        "errors": [{"where": e.where, "message": e.message} for e in snap.errors],
        "not_in_dump": [{"where": r.where, "address": _hex(r.address)} for r in snap.not_in_dump],
        # Shown by the text and Markdown reports only: the luo-inspect/1
        # schema has no place for them.
        TEXT_ONLY: {"notes": list(snap.notes)},
    }


def select(doc: dict[str, Any], command: str, session: str | None = None) -> dict[str, Any]:
    """The relevant part of ``doc`` for one command."""
    out = {k: doc[k] for k in ("schema", "tool", "target", TEXT_ONLY)}
    for k in PARTS[command]:
        out[k] = doc[k]
    if session is not None and "sessions" in out:
        out["sessions"] = [s for s in out["sessions"] if s["name"] == session]
    return out
