# SPDX-License-Identifier: LGPL-2.1-or-later
"""Text and Markdown: a document's sections as field lists and tables."""

from __future__ import annotations

from typing import Any, Callable

from ..findings import errno_name
from .blocks import Cell, Page, Styled, render_page
from .document import LIVE_WARNING, TEXT_ONLY


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
    if kind == "io_uring" and x.get("fd") is None and x.get("pid") is not None:
        # A ring whose fd was closed, kept by IORING_REGISTER_RING_FDS.
        via = f" ({x['pid']}/{x['comm']} registered ring)"
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


def _header(w: Page, doc: dict[str, Any]) -> None:
    t, tool = doc["target"], doc["tool"]
    w.title(f"luo-inspect report: {t.get('kernel_release') or 'unknown kernel'}")
    rows = [
        ["tool", f"luo-inspect {tool['version']} (drgn {tool['drgn']})"],
        ["target", f"{t['kind']}: {_v(t['path'])}"],
        ["host", _v(t.get("hostname"))],
        [
            "kernel",
            _v(t["kernel_release"]) + (f" (build ID {t['build_id']})" if t.get("build_id") else ""),
        ],
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
        w.quote("warning: " + LIVE_WARNING)
        w.line()


def _frozen_text(o: dict[str, Any]) -> str:
    freeze = o.get("freeze") or {}
    if freeze.get("state") == "freezing":
        return f"no, freezing (in progress: {freeze['written']} written)"
    if freeze.get("state") == "rolled-back":
        return "no, a freeze failed and was rolled back"
    return _v(o["frozen"])


def _luo(w: Page, doc: dict[str, Any]) -> None:
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


def _handlers(w: Page, doc: dict[str, Any]) -> None:
    w.heading("File handlers")
    w.table(
        ["compatible", "address", "ops"],
        [[h["compatible"], h["address"], _v(h["ops"])] for h in doc["handlers"]],
    )


def _sessions(w: Page, doc: dict[str, Any]) -> None:
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


def _files(w: Page, doc: dict[str, Any]) -> None:
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


def _pending(w: Page, doc: dict[str, Any]) -> None:
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


def _flbs(w: Page, doc: dict[str, Any]) -> None:
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


def _findings(w: Page, doc: dict[str, Any]) -> None:
    w.heading("Findings")
    w.table(
        ["severity", "code", "message"],
        [[w.style(f["severity"], f["severity"]), f["code"], f["message"]] for f in doc["findings"]],
    )


def _other_errors(w: Page, doc: dict[str, Any]) -> None:
    others = doc["preflight"].get("other_errors") or []
    if not others:
        return
    w.heading("Other errors (they do not decide the handover)")
    w.table(
        ["severity", "code", "message"],
        [[w.style(f["severity"], f["severity"]), f["code"], f["message"]] for f in others],
    )


def _errors(w: Page, doc: dict[str, Any]) -> None:
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


def _kexec_image_text(image: dict[str, Any] | None) -> str:
    if image is None:
        return "this kernel has no kexec"
    if not image["loaded"]:
        return "none loaded yet: run preflight after kexec -s -l to check the image itself"
    how = "kexec_file_load()" if image["file_mode"] else "kexec_load()"
    kho = f"KHO FDT {image['kho_fdt']}" if image["kho_fdt"] not in (None, "0x0") else "no KHO FDT"
    preserve = ", KEXEC_PRESERVE_CONTEXT" if image["preserve_context"] else ""
    return f"loaded by {how}{preserve}, {kho} ({image['address']})"


def _next_kernel_text(p: dict[str, Any]) -> str:
    nk = p.get("next_kernel_identity")
    if nk is None:
        image = p.get("kexec_image")
        why = image.get("kernel_note") if image and image.get("loaded") else None
        if why:
            return f"not identified ({why}): this kernel's LUO ABI and file handlers assumed"
        return p["next_kernel"] or "not given: this kernel's LUO ABI and file handlers assumed"
    name = f"Linux {nk['release']}" if nk["release"] else (nk["path"] or "unknown release")
    where = nk["path"] if nk["source"] == "--next-kernel" else nk["source"]
    parts = [f"{name} ({where}, build ID {nk['build_id'] or 'unknown'})"]
    if nk["same_build"]:
        parts.append("this kernel's own build")
    if nk["unknown"]:
        parts.append("unknown: " + "; ".join(nk["unknown"]))
    return ", ".join(parts)


def _cmdline_text(p: dict[str, Any]) -> str:
    cmdline = p["next_cmdline"]
    if cmdline is not None:
        return f"{cmdline} (from {p.get('next_cmdline_source') or 'the request'})"
    image = p.get("kexec_image")
    if image and image["loaded"] and image.get("cmdline_note"):
        return f"not readable from the loaded image ({image['cmdline_note']}): give --next-cmdline"
    return "not given: the next kernel opens the handover only with liveupdate=on"


def _preflight_text(w: Page, doc: dict[str, Any]) -> None:
    p = doc["preflight"]
    w.heading("Preflight")
    verdict: Cell
    lost = p["losses"]
    if p["accepted"] and not lost:
        verdict = "the next kernel will accept the handover"
    elif p["accepted"]:
        verdict = (
            "the next kernel will accept the handover, ",
            w.style(f"but this kexec loses data ({lost} warning(s) below)", "warning"),
        )
    elif {f["code"] for f in doc["findings"] if f["severity"] == "error"} == {
        "next-kernel-unknown"
    }:
        verdict = (
            w.style("cannot verify that the next kernel will accept the handover", "error"),
            " (the findings below say what is unknown)",
        )
    else:
        verdict = (
            w.style("the next kernel will NOT accept the handover", "error"),
            " (the findings below say why)",
        )
    source = {
        "frozen": "as the freeze wrote it",
        "predicted": "as the freeze will write it (not frozen yet)",
        "none": "nothing to hand over",
    }[p["handover"]]
    w.fields(
        [
            ["verdict", verdict],
            ["handover", f"{p['sessions']} sessions, {p['files']} files, {source}"],
            ["next kernel image", _kexec_image_text(p.get("kexec_image"))],
            ["next kernel", _next_kernel_text(p)],
            ["next command line", _cmdline_text(p)],
        ]
    )


def _summary(w: Page, doc: dict[str, Any]) -> None:
    _luo(w, doc)
    counts: dict[str, int] = {}
    for f in doc["findings"]:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    spans: list[str | Styled] = ["findings: "]
    for i, (severity, n) in enumerate(counts.items()):
        spans += [", " if i else "", f"{n} ", w.style(severity, severity)]
    w.line(tuple(spans) if counts else "findings: none")
    serious = [f for f in doc["findings"] if f["severity"] != "info"]
    for f in serious:
        w.line(("  ", w.style(f["severity"], f["severity"]), f": {f['code']}: {f['message']}"))
    w.line()


SECTIONS: dict[str, list[Callable[[Page, dict[str, Any]], None]]] = {
    "summary": [_summary],
    "handlers": [_handlers],
    "sessions": [_sessions],
    "files": [_files],
    "check": [_findings],
    "report": [_luo, _handlers, _sessions, _files, _pending, _flbs, _findings],
    "preflight": [_preflight_text, _findings, _other_errors],
}


def render_text(
    doc: dict[str, Any],
    command: str,
    markdown: bool = False,
    style: Callable[[str, str], str] = lambda text, severity: text,
) -> str:
    """A command's part of a document as text or Markdown: its sections
    build a page, which is then written in the format asked for."""
    w = Page()
    _header(w, doc)
    for section in SECTIONS[command]:
        section(w, doc)
    if command in ("check", "report", "preflight"):
        _errors(w, doc)
    return render_page(w, markdown, style)
