# SPDX-License-Identifier: LGPL-2.1-or-later
"""Plain drgn (not luo_drgn) walks of a fixture, and the manifests'
facts: the tests' ground truth."""

from __future__ import annotations

from typing import Any

import drgn
from drgn.helpers.linux.list import list_for_each_entry

from luo_drgn.model import Holder


def is_fault(name: str) -> bool:
    return name.startswith("fault-")


def has_sessions(name: str) -> bool:
    """Fixtures of an enabled LUO, not corrupted by a planted fault (the
    fault-* ones, and journey-drop-before, dumped after its fault)."""
    return not is_fault(name) and name not in (
        "disabled",
        "no-luo",
        "doomed-panic",
        "journey-drop-before",
        "freeze-failed",
        # Caught inside a retrieve, a preserve or a finish: the log shows it
        # only once it returned.
        "retrieving",
        "preserving",
        "flb-finishing",
    )


def is_healthy(name: str) -> bool:
    """Fixtures whose state is sound: no fault, no doomed handover."""
    return has_sessions(name) and not name.startswith(
        # loaded-kho-off: the loaded image's command line turns KHO off;
        # loaded-legacy: an image from kexec_load() carries no handover;
        # sealed: a seal added after preserve is not handed over;
        # loaded-kho-v5, loaded-kho-default-off: the next kernel refuses the
        # handover (another KHO ABI) or has KHO off.
        (
            "doomed",
            "deserialize-failed",
            "journey-drop",
            "journey-after",
            "loaded-kho-off",
            "loaded-legacy",
            "sealed",
            "loaded-kho-v5",
            "loaded-kho-default-off",
        )
    )


def sessions(prog: drgn.Program, direction: str) -> list[drgn.Object]:
    head = prog["luo_session_global"].member_(direction).list.address_of_()
    return list(list_for_each_entry("struct luo_session", head, "list"))


def files(session: drgn.Object) -> list[drgn.Object]:
    head = session.file_set.files_list.address_of_()
    return list(list_for_each_entry("struct luo_file", head, "list"))


def expected_sessions(expected: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    if direction == "incoming" and not expected["deserialized"]:
        return []  # still in KHO memory: nothing on the list yet
    return [s for s in expected["sessions"] if s["direction"] == direction]


def session_named(prog: drgn.Program, name: str, direction: str) -> drgn.Object:
    return next(s for s in sessions(prog, direction) if s.name.string_() == name.encode())


def holder_keys(holders: list[Holder]) -> list[tuple[Any, ...]]:
    keys: list[tuple[Any, ...]] = []
    for x in holders:
        if x.kind == "luo":
            keys.append(("luo",))
        elif x.kind == "fd":
            keys.append(("fd", x.pid, x.fd))
        elif x.kind == "vma":
            keys.append(("vma", x.pid, x.vma))
        elif x.kind == "loop":
            keys.append(("loop", x.device))
        elif x.kind == "io_uring":
            keys.append(("io_uring", x.pid, x.fd, x.slot))
        elif x.kind == "iommufd":
            keys.append(("iommufd", x.pid, x.fd, x.ioas))
        else:  # scm: the receiving socket's fd
            keys.append((x.kind, x.pid, x.fd))
    return sorted(keys, key=repr)


def expected_holder_keys(holders: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The manifest's holders (replayed from the guest log) as holder_keys()."""
    keys: list[tuple[Any, ...]] = []
    for x in holders:
        kind = x.get("kind")
        if kind == "luo":
            keys.append(("luo",))
        elif kind == "loop":
            keys.append(("loop", f"loop{x['loop']}"))
        elif kind == "io_uring":
            keys.append(("io_uring", x["pid"], x["fd"], x["slot"]))
        elif kind == "iommufd":
            keys.append(("iommufd", x["pid"], x["fd"], x["ioas"]))
        elif kind is not None:
            keys.append((kind, x["pid"], x["fd"]))
        elif "fd" in x:
            keys.append(("fd", x["pid"], x["fd"]))
        else:
            keys.append(("vma", x["pid"], x["vma"]))
    return sorted(keys, key=repr)


def next_kernel_cmdline(manifest: dict[str, Any]) -> str | None:
    """The command line the next kernel of a handover run booted with, as
    it printed it (x86's "Command line:", in the manifest's after_log; the
    first: a second update boots a third kernel after it)."""
    said = [
        line[len("Command line: ") :]
        for line in manifest.get("after_log") or []
        if line.startswith("Command line: ")
    ]
    return said[0] if said else None


def name_bytes(logged: str) -> bytes:
    """A session name as the kernel holds it, from the guest log's form
    (luo-scenario.c's label(): a byte that is not ASCII as ``\\xNN``, a
    backslash doubled)."""
    out = bytearray()
    i = 0
    while i < len(logged):
        if logged.startswith("\\\\", i):
            out += b"\\"
            i += 2
        elif logged.startswith("\\x", i):
            out.append(int(logged[i + 2 : i + 4], 16))
            i += 4
        else:
            out += logged[i].encode()
            i += 1
    return bytes(out)


def sessions_handed_over(manifest: dict[str, Any]) -> bool:
    """Whether the kernel before this one handed sessions over, from the
    guest log: its boot created one (luo_session_serialize() writes
    sessions_pa 0 for none, and luo_session_setup_incoming() then leaves the
    incoming header inactive).  False in a first boot."""
    from vmcores.manifest import guest_events

    events = guest_events(manifest["guest_log"])
    starts = [i for i, e in enumerate(events) if e["op"] == "start"]
    if len(starts) < 2:
        return False
    before = events[starts[-2] : starts[-1]]
    return any(e["op"] == "create_session" and e.get("result") == "OK" for e in before)


def all_luo_files(prog: drgn.Program) -> list[drgn.Object]:
    """Every luo_file, outgoing sessions first, by plain drgn."""
    return [f for d in ("outgoing", "incoming") for s in sessions(prog, d) for f in files(s)]


def expected_files(expected: dict[str, Any]) -> list[dict[str, Any]]:
    """Every file the guest logged, in :func:`all_luo_files`' order."""
    return [
        f
        for d in ("outgoing", "incoming")
        for s in expected_sessions(expected, d)
        for f in s["files"]
    ]
