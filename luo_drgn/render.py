# SPDX-License-Identifier: LGPL-2.1-or-later
"""Renderers: a snapshot as the ``luo-inspect/1`` JSON document, as text,
and as Markdown for bug reports.

Everything is rendered from the JSON document, so ``--redact`` (applied to
the document) covers every format the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any, Callable, overload

import drgn
from tabulate import tabulate

from . import __version__
from .checks import errno_name, handover_accepted, preflight_findings
from .diff import Diff
from .holders import NEVER_SCANNED
from .model import Holder, PreservedFile, Session, Snapshot, paused_gc

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
ADDRESS_KEYS = {"address", "ops", "file", "serialized_data", "data", "vma", "object"}
TEXT_KEYS = (
    "message",
    "where",
    "notes",
    "why",
    "reason",
    "cause",
)  # free text that may quote addresses
# File paths: a file's, the target's, the debug info's, the next kernel's.
PATH_KEYS = {"path", "debuginfo", "next_kernel"}
# Kept as they are: luo-inspect's own name and versions.
KEPT_KEYS = {"tool", "schema"}
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
        "holders": [_holder(x) for x in f.holders],
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


def _preflight(snap: Snapshot) -> dict[str, Any]:
    ho = snap.handover_out
    handed = ho is not None and ho.chain is not None
    return {
        "accepted": handover_accepted(snap),
        "handover": ho.source if handed and ho is not None else "none",
        "sessions": len(ho.listed) if ho is not None else 0,
        "files": sum(len(s.files) for s in ho.sessions) if ho is not None else 0,
        "next_cmdline": snap.next_cmdline,
        "next_kernel": snap.next_kernel.path if snap.next_kernel is not None else None,
    }


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
        "findings": [
            {
                "code": f.code,
                "severity": f.severity,
                "message": f.message,
                "session": f.session,
                "token": f.token,
                "address": _hex(f.address),
            }
            for f in snap.findings
        ],
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


# -- redaction -----------------------------------------------------------------

_HEX = re.compile(r"0x[0-9a-f]+")


class Redactor:
    """Stable placeholders for what a public report must not show: kernel
    addresses (the KASLR layout) and every name a user chose (session names,
    memfd names and file paths, process names, the dump's and debug info's
    paths), wherever they appear, free text included.  The same value gets
    the same placeholder throughout one report.  Tokens, counts, states,
    errnos, the kernel release and handler compatibles are kept: a triager
    needs them."""

    # key -> (table, placeholder stem) of the values it holds.
    NAME_KEYS = {"name": "session", "session": "session", "comm": "comm"}

    def __init__(self) -> None:
        self.addresses: dict[str, str] = {}
        self.comms: dict[str, str] = {}
        self.names: dict[str, dict[str, str]] = {"session": {}, "comm": self.comms}
        self.memfds: dict[str, str] = {}
        self.paths: dict[str, str] = {}

    def address(self, value: str) -> str:
        return self.addresses.setdefault(value, f"<addr-{len(self.addresses) + 1}>")

    def comm(self, value: str) -> str:
        return self.comms.setdefault(value, f"<comm-{len(self.comms) + 1}>")

    def name(self, stem: str, value: str) -> str:
        table = self.names[stem]
        return table.setdefault(value, f"<{stem}-{len(table) + 1}>")

    def path(self, value: str) -> str:
        """A memfd keeps its shape (``/memfd:<memfd-1> (deleted)``): that it
        is a memfd matters to a triager, its name does not."""
        if m := _MEMFD_PATH.fullmatch(value):
            memfd = self.memfds.setdefault(m.group(1), f"<memfd-{len(self.memfds) + 1}>")
            return f"/memfd:{memfd}{m.group(2) or ''}"
        return self.paths.setdefault(value, f"<path-{len(self.paths) + 1}>")

    def _collect(self, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in KEPT_KEYS:
                    continue
                if k in ADDRESS_KEYS and isinstance(v, str):
                    self.address(v)
                elif k in self.NAME_KEYS and isinstance(v, str):
                    self.name(self.NAME_KEYS[k], v)
                elif k in PATH_KEYS and isinstance(v, str):
                    self.path(v)
                elif k in PATH_KEYS and isinstance(v, list):
                    for x in v:
                        if isinstance(x, str):
                            self.path(x)
                else:
                    self._collect(v)
        elif isinstance(node, list):
            for v in node:
                self._collect(v)

    def _apply(self, node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            return {k: v if k in KEPT_KEYS else self._apply(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [self._apply(v, key) for v in node]
        if not isinstance(node, str):
            return node
        if key in ADDRESS_KEYS:
            return self.address(node)
        if key in self.NAME_KEYS:
            return self.name(self.NAME_KEYS[key], node)
        if key in PATH_KEYS:
            return self.path(node)
        if key in TEXT_KEYS:
            # Addresses quoted in messages; tokens and small numbers are
            # not addresses and stay.
            return self.text(node)
        return node

    def text(self, text: str) -> str:
        """Redact, in free text (messages, notes, quoted kernel log lines),
        the addresses and names already seen in the document."""
        text = _HEX.sub(lambda m: self.addresses.get(m.group(), m.group()), text)
        if self._names_re is not None:
            text = self._names_re.sub(lambda m: self._placeholders[m.group()], text)
        return text

    _names_re: re.Pattern[str] | None = None
    _placeholders: dict[str, str] = {}

    def _compile_names(self) -> None:
        """One pattern for every name seen, longest first, each matched as a
        whole word (``vm-alpha`` is not redacted inside ``vm-alpha-2``)."""
        placeholders: dict[str, str] = {}
        for table in self.names.values():
            placeholders.update(table)
        for memfd, placeholder in self.memfds.items():
            placeholders[memfd] = placeholder
        for path in self.paths:
            placeholders[path] = self.paths[path]
        for path in list(placeholders):
            if _MEMFD_PATH.fullmatch(path):
                placeholders[path] = self.path(path)
        names = sorted((n for n in placeholders if n), key=len, reverse=True)
        self._placeholders = placeholders
        self._names_re = (
            re.compile("|".join(rf"(?<![\w.-]){re.escape(n)}(?![\w-])" for n in names))
            if names
            else None
        )

    def redact(self, doc: dict[str, Any]) -> dict[str, Any]:
        self._collect(doc)
        # Addresses that only appear inside messages (e.g. list nodes).
        for text in _strings(doc, TEXT_KEYS):
            for m in _HEX.finditer(text):
                if len(m.group()) >= 10:  # 32 bits and more: an address
                    self.address(m.group())
        self._compile_names()
        redacted: dict[str, Any] = self._apply(doc)
        return redacted


_MEMFD_PATH = re.compile(r"/memfd:(.*?)( \(deleted\))?")


def _strings(node: Any, keys: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in keys and isinstance(v, str):
                out.append(v)
            elif k in keys and isinstance(v, list):
                out += [x for x in v if isinstance(x, str)]
            else:
                out += _strings(v, keys)
    elif isinstance(node, list):
        for v in node:
            out += _strings(v, keys)
    return out


# -- text and Markdown ---------------------------------------------------------


# Containers this deep (a session's file, a finding's fields...) are written
# on one line: json.dumps() with an indent runs its pure-Python encoder, five
# times slower than everything else a 10,000-file report does.
_JSON_ONE_LINE_DEPTH = 4


def _json_chunks(value: Any, depth: int = 0) -> Iterator[str]:
    """``value`` as json.dumps(indent=2) writes it, down to
    ``_JSON_ONE_LINE_DEPTH``; deeper containers on one line (C encoder)."""
    if isinstance(value, _Lazy) and not value:
        value = []
    if depth >= _JSON_ONE_LINE_DEPTH or not value or not isinstance(value, (dict, list, _Lazy)):
        yield json.dumps(value)
        return
    pad, end = "  " * (depth + 1), "  " * depth
    if isinstance(value, dict):
        opening, separator = "{\n", ",\n"
        for k, v in value.items():
            yield f"{opening}{pad}{json.dumps(k)}: "
            opening = separator
            yield from _json_chunks(v, depth + 1)
        yield f"\n{end}}}"
        return
    opening = "[\n"
    for v in value:
        yield opening + pad
        opening = ",\n"
        yield from _json_chunks(v, depth + 1)
    yield f"\n{end}]"


def _holders_text(holders: list[dict[str, Any]]) -> str:
    parts = []
    for x in holders:
        kind = x.get("kind")
        if kind == "luo":
            parts.append("LUO")
        elif kind is not None:
            parts.append(_kernel_holder_text(x))
        elif "fd" in x:
            parts.append(f"{x['pid']}/{x['comm']} fd {x['fd']}")
        else:
            parts.append(f"{x['pid']}/{x['comm']} map {x['vma']}")
    return ", ".join(parts) or "-"


def _kernel_holder_text(x: dict[str, Any]) -> str:
    """A kernel object holding a file, and the process fd behind it."""
    via = f" ({x['pid']}/{x['comm']} fd {x['fd']})" if x.get("fd") is not None else ""
    kind = x["kind"]
    if kind == "scm":
        return f"SCM_RIGHTS in flight on unix socket {x['object']}{via}"
    if kind == "io_uring":
        return f"io_uring fixed file {x.get('slot')}{via}"
    if kind == "loop":
        return f"{x.get('device')} backing file"
    if kind == "iommufd":
        return f"iommufd IOAS {x.get('ioas')}{via}"
    if kind == "exe":
        return f"{x['pid']}/{x['comm']} executable"
    return f"{kind} {x.get('object')}"


def _v(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _status(status: int) -> str:
    if status > 0:
        return "retrieved"
    if status == 0:
        return "-"
    return f"failed {errno_name(status)}"


class _Writer:
    """Sections for text (plain headings) or Markdown (## headings, GitHub
    tables); ``style`` colours severities on a terminal."""

    def __init__(self, markdown: bool, style: Callable[[str, str], str]) -> None:
        self.md = markdown
        self.style = style
        self.out: list[str] = []

    def heading(self, text: str) -> None:
        if self.md:
            self.out += [f"## {text}", ""]
        else:
            self.out += [text, "-" * len(text)]

    def line(self, text: str = "") -> None:
        self.out.append(text)

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        if not rows:
            self.out += ["(none)", ""]
            return
        fmt = "github" if self.md else "simple"
        self.out += [tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True), ""]

    def fields(self, rows: list[list[Any]]) -> None:
        """Key-value lines: a two-column table in Markdown, aligned text else."""
        if self.md:
            self.table(["", ""], rows)
        else:
            width = max(len(str(k)) for k, _ in rows) + 1
            self.out += [f"{str(k) + ':':{width}} {v}" for k, v in rows] + [""]

    def text(self) -> str:
        return "\n".join(self.out).rstrip() + "\n"


def _header(w: _Writer, doc: dict[str, Any]) -> None:
    t, tool = doc["target"], doc["tool"]
    if w.md:
        w.line(f"# luo-inspect report: {t.get('kernel_release') or 'unknown kernel'}")
        w.line()
    rows = [
        ["tool", f"luo-inspect {tool['version']} (drgn {tool['drgn']})"],
        ["target", f"{t['kind']}: {_v(t['path'])}"],
        ["kernel", _v(t["kernel_release"])],
        ["layout", _v(t["layout"])],
        ["debug info", ", ".join(t["debuginfo"]) or "-"],
    ]
    if panic := t.get("panic"):
        who = f" in {panic['pid']}/{panic['comm']}" if panic.get("pid") is not None else ""
        cpu = f" on CPU {panic['cpu']}" if panic.get("cpu") is not None else ""
        rows.append(["panic", f"{panic['reason']}{who}{cpu}"])
        if panic.get("cause"):
            rows.append(["after", panic["cause"]])
    w.fields(rows)
    if t["kind"] == "live":
        w.line(("> " if w.md else "") + "warning: " + LIVE_WARNING)
        w.line()


def _frozen_text(o: dict[str, Any]) -> str:
    freeze = o.get("freeze") or {}
    if freeze.get("state") == "freezing":
        return f"no, freezing (in progress: {freeze['written']} written)"
    if freeze.get("state") == "rolled-back":
        return "no, a freeze failed and was rolled back"
    return _v(o["frozen"])


def _luo(w: _Writer, doc: dict[str, Any]) -> None:
    luo = doc["luo"]
    w.heading("LUO")
    rows = [["state", luo["state"] + (f" ({luo['reason']})" if luo["reason"] else "")]]
    if luo["state"] == "enabled":
        o, i = luo["outgoing"], luo["incoming"]
        rows += [
            ["live updates before this boot", _v(luo["liveupdate_num"])],
            ["outgoing sessions", f"{_v(o['session_count'])}, frozen: {_frozen_text(o)}"],
            [
                "incoming",
                f"present: {_v(i['present'])}, deserialized: "
                + (
                    f"failed ({i['deserialize_error']})"
                    if i.get("deserialize_error")
                    else _v(i["deserialized"])
                )
                + f", sessions: {_v(i['session_count'])}",
            ],
            ["/dev/liveupdate held by", _holders_text(luo["device"]["holders"]) or "-"],
        ]
    scan = doc.get("holder_scan") or {}
    if scan.get("scanned") and scan.get("not_scanned"):
        # Grouped by reason: "io_uring fixed files, loop devices: not built in".
        by_why: dict[str, list[str]] = {}
        for x in scan["not_scanned"]:
            by_why.setdefault(x["why"], []).append(x["kind"])
        rows.append(
            [
                "file holders not scanned",
                "; ".join(f"{', '.join(kinds)}: {why}" for why, kinds in by_why.items()),
            ]
        )
    w.fields(rows)


def _handlers(w: _Writer, doc: dict[str, Any]) -> None:
    w.heading("File handlers")
    w.table(
        ["compatible", "address", "ops"],
        [[h["compatible"], h["address"], _v(h["ops"])] for h in doc["handlers"]],
    )


def _sessions(w: _Writer, doc: dict[str, Any]) -> None:
    w.heading("Sessions")
    w.table(
        ["direction", "name", "retrieved", "finished", "files", "held by", "mutex", "address"],
        [
            [
                s["direction"],
                s["name"],
                _v(s["retrieved"]),
                _v(s["finished"]),
                s["file_count"],
                _holders_text(s["holders"]),
                (
                    f"held by {s['mutex_owner']['pid']}/{s['mutex_owner']['comm']}"
                    if s.get("mutex_owner")
                    else "free"
                ),
                s["address"],
            ]
            for s in doc["sessions"]
        ],
    )


def _files(w: _Writer, doc: dict[str, Any]) -> None:
    w.heading("Preserved files")
    rows = []
    for s in doc["sessions"]:
        for f in s["files"]:
            refs = "-" if f["refcount"] is None else f"{f['refcount']}/{f['explained_refs']}"
            rows.append(
                [
                    f"{s['direction'][:3]} {s['name']}",
                    f"{f['token']:#x}",
                    _v(f["handler"]),
                    _v(f["path"]),
                    _status(f["retrieve_status"]),
                    _v(f["frozen"]),
                    refs,
                    _holders_text(f["holders"]),
                    _v(f["file"]),
                ]
            )
    w.table(
        [
            "session",
            "token",
            "handler",
            "path",
            "retrieve",
            "frozen",
            "refs/expl.",
            "held by",
            "struct file",
        ],
        rows,
    )


def _pending(w: _Writer, doc: dict[str, Any]) -> None:
    w.heading("Incoming data not yet deserialized")
    w.table(
        ["session", "token", "handler", "data"],
        [
            [p["name"], f"{f['token']:#x}", f["handler"], f["data"]]
            for p in doc["pending_incoming"]
            for f in p["files"]
        ]
        + [[p["name"], "-", "-", "-"] for p in doc["pending_incoming"] if not p["files"]],
    )


def _flbs(w: _Writer, doc: dict[str, Any]) -> None:
    w.heading("FLBs")
    handed = {
        direction: {e["name"]: e["count"] for e in entries}
        for direction, entries in (doc.get("serialized_flbs") or {}).items()
        if entries is not None
    }
    w.table(
        [
            "compatible",
            "outgoing",
            "serialized",
            "incoming",
            "handed over",
            "retrieve",
            "finished",
            "handlers",
            "address",
        ],
        [
            [
                x["compatible"],
                x["outgoing_count"],
                _v(handed["outgoing"].get(x["compatible"])) if "outgoing" in handed else "-",
                x["incoming_count"],
                _v(handed["incoming"].get(x["compatible"])) if "incoming" in handed else "-",
                _flb_status(x.get("retrieve_status")),
                _v(x.get("finished")),
                ", ".join(x["handlers"]) or "-",
                x["address"],
            ]
            for x in doc["flbs"]
        ],
    )
    # Handed over for an FLB not registered here: its data waits unused.
    known = {x["compatible"] for x in doc["flbs"]}
    for name, count in (handed.get("incoming") or {}).items():
        if name not in known:
            w.line(f"handed over, not registered here: {name} (count {count})")


def _flb_status(status: int | None) -> str:
    if status is None:
        return "-"
    if status == 0:
        return "not yet"
    if status == 1:
        return "retrieved"
    return f"failed ({errno_name(status)})"


def _findings(w: _Writer, doc: dict[str, Any]) -> None:
    w.heading("Findings")
    w.table(
        ["severity", "code", "message"],
        [[w.style(f["severity"], f["severity"]), f["code"], f["message"]] for f in doc["findings"]],
    )


def _errors(w: _Writer, doc: dict[str, Any]) -> None:
    notes = doc[TEXT_ONLY]["notes"]
    w.heading("Errors")
    if doc["errors"]:
        w.table(["where", "message"], [[e["where"], e["message"]] for e in doc["errors"]])
    else:
        w.line("(none: every walk completed)")
        w.line()
    if notes:
        w.heading("Notes")
        for n in notes:
            w.line(f"- {n}")


def _preflight_text(w: _Writer, doc: dict[str, Any]) -> None:
    p = doc["preflight"]
    w.heading("Preflight")
    if p["accepted"]:
        verdict = "the next kernel will accept the handover"
    else:
        verdict = w.style("the next kernel will NOT accept the handover", "error") + (
            " (the findings below say why)"
        )
    source = {
        "frozen": "as the freeze wrote it",
        "predicted": "as the freeze will write it (not frozen yet)",
        "none": "nothing to hand over",
    }[p["handover"]]
    cmdline = p["next_cmdline"]
    w.fields(
        [
            ["verdict", verdict],
            ["handover", f"{p['sessions']} sessions, {p['files']} files, {source}"],
            [
                "next kernel",
                p["next_kernel"] or "not given: this kernel's LUO ABI and file handlers assumed",
            ],
            [
                "next command line",
                cmdline
                if cmdline is not None
                else "not given: the next kernel opens the handover only with liveupdate=on",
            ],
        ]
    )


def _summary(w: _Writer, doc: dict[str, Any]) -> None:
    _luo(w, doc)
    counts: dict[str, int] = {}
    for f in doc["findings"]:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    w.line("findings: " + (", ".join(f"{n} {w.style(s, s)}" for s, n in counts.items()) or "none"))
    serious = [f for f in doc["findings"] if f["severity"] != "info"]
    for f in serious:
        w.line(f"  {w.style(f['severity'], f['severity'])}: {f['code']}: {f['message']}")
    w.line()


SECTIONS: dict[str, list[Callable[[_Writer, dict[str, Any]], None]]] = {
    "summary": [_summary],
    "handlers": [_handlers],
    "sessions": [_sessions],
    "files": [_files],
    "check": [_findings],
    "report": [_luo, _handlers, _sessions, _files, _pending, _flbs, _findings],
    "preflight": [_preflight_text, _findings],
}


def render_text(
    doc: dict[str, Any],
    command: str,
    markdown: bool = False,
    style: Callable[[str, str], str] = lambda text, severity: text,
) -> str:
    w = _Writer(markdown, style)
    _header(w, doc)
    for section in SECTIONS[command]:
        section(w, doc)
    if command in ("check", "report", "preflight"):
        _errors(w, doc)
    return w.text()


def render(
    snap: Snapshot,
    command: str,
    fmt: str = "text",
    *,
    redact: bool = False,
    session: str | None = None,
    style: Callable[[str, str], str] = lambda text, severity: text,
) -> str:
    """
    One command's output for a snapshot: the part of the document that
    ``command`` shows, redacted if asked, in ``fmt`` (text, json or markdown).

    :param session: with ``files`` and ``sessions``, only this session
    :param style: colours a severity in text output (a terminal)
    """
    return "".join(render_chunks(snap, command, fmt, redact=redact, session=session, style=style))


def render_chunks(
    snap: Snapshot,
    command: str,
    fmt: str = "text",
    *,
    redact: bool = False,
    session: str | None = None,
    style: Callable[[str, str], str] = lambda text, severity: text,
) -> Iterator[str]:
    """:func:`render`'s output in pieces, to be written as they come: a
    host's JSON report is tens of megabytes, made session by session."""
    with paused_gc():
        # JSON written once is made session by session; what is read twice
        # (the redactor, the text writers) gets lists.
        lazy = fmt == "json" and not redact
        doc = document(snap, sessions="sessions" in PARTS[command], lazy=lazy)
        if command == "preflight":
            doc["preflight"] = _preflight(snap)
            deciding = {id(f) for f in preflight_findings(snap)}
            doc["findings"] = [
                d for f, d in zip(snap.findings, doc["findings"]) if id(f) in deciding
            ]
        if redact:
            doc = Redactor().redact(doc)
        part = select(doc, command, session)
        if fmt == "json":
            yield from _json_chunks({k: v for k, v in part.items() if k != TEXT_ONLY})
            yield "\n"
            return
        yield render_text(
            part,
            command,
            markdown=fmt == "markdown",
            style=style if fmt == "text" else (lambda text, severity: text),
        )


# -- the diff across a kexec ---------------------------------------------------------

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
    w = _Writer(fmt == "markdown", lambda text, severity: text)
    b, a = doc["before"], doc["after"]
    if w.md:
        w.line(f"# luo-inspect diff: {b['kernel_release']} -> {a['kernel_release']}")
        w.line()
    tool = doc["tool"]
    w.fields(
        [
            ["tool", f"{tool['name']} {tool['version']} (drgn {tool['drgn']})"],
            ["before", f"{b['kind']}: {b['path'] or 'the program of this drgn session'}"],
            ["after", f"{a['kind']}: {a['path'] or 'the program of this drgn session'}"],
        ]
    )
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
    if doc["verdict"]:
        w.line(f"why: {doc['verdict']}")
    return w.text()
