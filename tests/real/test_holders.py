# SPDX-License-Identifier: LGPL-2.1-or-later
"""Kernel holders of a preserved file (issue: no false leaks).

The ``holders`` run (kernel ``full``) preserves five memfds and then hands
four of them to the kernel before closing their fds: an SCM_RIGHTS message
never received, an io_uring fixed file, a loop device's backing file, an
IOAS mapping.  The guest log says which holder each file has and the
reference count it adds up to (``expected``); nothing here comes from
luo-inspect's own output.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from drgn import Object, cast, container_of
from drgn.helpers.linux.fs import fget
from drgn.helpers.linux.idr import idr_find
from drgn.helpers.linux.pid import find_task
from drgn.helpers.linux.xarray import xa_load

from luo_drgn import examples
from luo_drgn.analysis import inspect
from luo_drgn.collector import collect
from luo_drgn.holders import NEVER_SCANNED, scan_holders
from luo_drgn.model import Holder, PreservedFile, Session, Snapshot, Target
from luo_drgn.report import render
from tests.support.fixtures import only
from tests.support.plain import expected_holder_keys, holder_keys
from vmcores.manifest import guest_events

SCHEMA = json.loads((Path(examples.__file__).parent / "luo-inspect-1.schema.json").read_text())
KERNEL_KINDS = {"scm", "io_uring", "loop", "iommufd"}


def is_holders(name: str) -> bool:
    return name in ("holders", "holders-kdump")


@only(is_holders)
def test_every_reference_is_explained(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    """Each file's holders are the kinds the guest gave it, their count is
    the refcount, and nothing is reported as a leak."""
    (session,) = [s for s in snapshot.sessions if s.name == "vm-delta"]
    (want,) = [s for s in expected["sessions"] if s["name"] == "vm-delta"]
    kinds = set()
    for f, w in zip(session.files, want["files"]):
        assert f.token == w["token"]
        assert holder_keys(f.holders) == expected_holder_keys(w["holders"])
        assert f.refcount == f.explained_refs == w["refcount"]
        kinds |= {x.kind for x in f.holders}
    assert kinds >= KERNEL_KINDS
    assert [f for f in snapshot.findings if f.severity in ("error", "warning")] == []
    assert snapshot.holders_unscanned == []


def closed_fds(manifest: dict[str, Any]) -> set[int]:
    """PID 1's fds the guest closed (its log's close events)."""
    return {
        e["fd"] for e in guest_events(manifest["guest_log"]) if e["op"] == "close" and e["pid"] == 1
    }


@only(is_holders)
def test_kernel_holders_name_their_objects(
    snapshot: Snapshot, prog: Any, manifest: dict[str, Any]
) -> None:
    """Each kernel holder names the object that holds the file, checked
    with plain drgn from what the guest logged: the socket fd (11), the ring
    registered with IORING_REGISTER_RING_FDS (its fd closed: only
    tctx->registered_rings keeps it), the iommufd fd, all PID 1's, and loop
    device 0.  Would catch: a registered ring missed (the fixed file's
    reference then reads as a leak), or another object named."""
    events = {e["op"]: e for e in guest_events(manifest["guest_log"])}
    ring, iommufd = events["io_uring_register_ring"], events["ioas_map_file"]
    assert ring["result"] == "OK" and ring["ring_fd"] in closed_fds(manifest)
    holders = {x.kind: x for s in snapshot.sessions for f in s.files for x in f.holders}
    init = find_task(prog, 1)
    sock = Object(prog, "struct sock *", holders["scm"].obj)
    assert sock.sk_socket.file == fget(init, 11)
    registered = init.io_uring.registered_rings[ring["offset"]]
    assert holders["io_uring"].obj == registered.private_data.value_()
    assert (holders["io_uring"].pid, holders["io_uring"].fd) == (1, None)
    assert holders["loop"].obj == idr_find(prog["loop_index_idr"].address_of_(), 0).value_()
    ictx = cast("struct iommufd_ctx *", fget(init, iommufd["iommufd"]).private_data)
    ioas_obj = xa_load(ictx.objects.address_of_(), 1)
    assert (
        holders["iommufd"].obj
        == container_of(
            cast("struct iommufd_object *", ioas_obj), "struct iommufd_ioas", "obj"
        ).value_()
    )
    assert holders["loop"].device == "loop0"
    assert holders["iommufd"].ioas == 1


@only(is_holders)
def test_planted_extra_reference_is_still_a_leak(
    example: examples.Example, expected: dict[str, Any]
) -> None:
    """One reference more on the file the SCM_RIGHTS message holds: the scan
    explains the message's, not the planted one."""
    prog = example.program()
    target = Target("vmcore", str(example.core), None, [])
    snap = collect(prog, target)
    f = next(f for s in snap.sessions for f in s.files if f.token == 0x400)
    assert f.file is not None
    refcnt = Object(prog, "struct file *", f.file).f_ref.refcnt
    old = prog.read(refcnt.address_, 8)
    new = struct.pack("<q", struct.unpack("<q", old)[0] + 1)
    examples.apply_writes(prog, [{"address": refcnt.address_, "phys": 0, "new": new.hex()}])
    snap = inspect(collect(prog, target))
    (leak,) = [x for x in snap.findings if x.code == "leaked-file-reference"]
    assert (leak.severity, leak.token) == ("error", 0x400)
    assert "3 references, 2 explained by SCM_RIGHTS messages in flight, LUO" in leak.message
    # What was not looked at is said, so a leak can be told from a blind spot.
    assert all(kind in leak.message for kind in NEVER_SCANNED)


@only(is_holders)
def test_reports_show_the_holder_kinds(snapshot: Snapshot, manifest: dict[str, Any]) -> None:
    """Would catch: a kernel holder kind (SCM_RIGHTS, io_uring, loop, iommufd) missing from the
    text, Markdown or JSON report."""
    iommufd = next(
        e["iommufd"] for e in guest_events(manifest["guest_log"]) if e["op"] == "ioas_map_file"
    )
    text = render(snapshot, "files", "text")
    assert "SCM_RIGHTS in flight on unix socket" in text
    assert "io_uring fixed file 0 (1/init registered ring)" in text
    assert "loop0 backing file" in text
    assert f"iommufd IOAS 1 (1/init fd {iommufd})" in text
    md = render(snapshot, "report", "markdown")
    assert "loop0 backing file" in md
    doc = json.loads(render(snapshot, "report", "json"))
    jsonschema.validate(doc, SCHEMA)
    kinds = {
        x["kind"]
        for s in doc["sessions"]
        for f in s["files"]
        for x in f["holders"]
        if x.get("kind") not in (None, "luo")
    }
    assert kinds == KERNEL_KINDS
    assert doc["holder_scan"] == {
        "scanned": True,
        "not_scanned": [],
        "never_scanned": list(NEVER_SCANNED),
    }


@only(lambda name: name == "outgoing")
def test_kinds_the_kernel_lacks_are_named(snapshot: Snapshot) -> None:
    """The `luo` kernel has neither io_uring, loop nor iommufd built in:
    the report says those were not scanned, and why."""
    assert snapshot.holders_unscanned == [
        ("io_uring fixed files", "io_uring is not built into this kernel"),
        ("loop devices", "the loop driver is not built into this kernel"),
        ("iommufd IOAS mappings", "iommufd is not built into this kernel"),
    ]
    assert (
        "file holders not scanned:      io_uring fixed files: io_uring is not built into this "
        "kernel; loop devices: the loop driver" in render(snapshot, "report", "text")
    )


@only(lambda name: name == "fault-leaked-reference")
def test_leak_lists_what_was_not_scanned(snapshot: Snapshot) -> None:
    """Would catch: a leak finding that does not say which holder kinds this kernel could not be
    scanned for."""
    (leak,) = [f for f in snapshot.findings if f.code == "leaked-file-reference"]
    assert "not scanned: io_uring fixed files (io_uring is not built into this kernel)" in (
        leak.message
    )


@only(lambda name: name == "holders")
def test_inflight_queue_walk_is_bounded_at_its_limit(
    snapshot: Snapshot, prog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Would catch: the receive-queue walk refusing a queue exactly as long
    as its limit, or accepting one longer.  The queue's length is plain
    drgn's walk of sk_receive_queue on the holders guest's socket."""
    from drgn.helpers.linux.list import list_for_each

    from luo_drgn.helpers import file_holders
    from luo_drgn.helpers.bounded import WalkError

    (scm,) = {
        x.obj for s in snapshot.sessions for f in s.files for x in f.holders if x.kind == "scm"
    }
    sock = Object(prog, "struct sock *", scm)
    queue = sock.sk_receive_queue.address_of_()
    length = sum(1 for _ in list_for_each(cast("struct list_head *", queue)))
    assert length >= 1
    monkeypatch.setattr(file_holders, "MAX_QUEUE", length)
    files = list(file_holders.validate_unix_sock_for_each_inflight_file(sock))
    assert files
    monkeypatch.setattr(file_holders, "MAX_QUEUE", length - 1)
    with pytest.raises(WalkError, match="the queue does not close"):
        list(file_holders.validate_unix_sock_for_each_inflight_file(sock))


@only(lambda name: name == "outgoing")
def test_holder_scan_without_kernel_objects(prog: Any) -> None:
    """The scan of a kernel without the optional holders still finds every
    fd and mapping, and finds no kernel holder."""
    scan = scan_holders(prog, set())
    assert scan.errors == [] and scan.missing == []
    assert not any(x.kind in KERNEL_KINDS for hs in scan.files.values() for x in hs)


def _snapshot(refcount: int, reread: int | None) -> Snapshot:
    f = PreservedFile(0x10, 0x400, "memfd-v2", 0x20, True, 0x30, refcount=refcount)
    f.holders = [Holder("fd", pid=1, comm="agent", fd=3), Holder("luo")]
    f.refcount_reread = reread
    s = Session(0x40, "vm-x", "outgoing", False, False, 1, files=[f])
    snap = Snapshot(Target("live", "/proc/kcore", "7.2.13", []), sessions=[s])
    snap.holders_scanned = True
    return inspect(snap)


@pytest.mark.parametrize(
    ("reread", "code", "severity"),
    [
        (2, "transient-file-reference", "info"),  # gone when read again
        (1, "transient-file-reference", "info"),  # an fd closed too: only LUO's is left
        (3, "leaked-file-reference", "error"),  # still there
        (None, "leaked-file-reference", "error"),  # not read again (a vmcore)
    ],
)
def test_a_reference_gone_on_reread_is_transient(
    reread: int | None, code: str, severity: str
) -> None:
    """Live: a syscall's temporary fget() is gone a moment later; only a
    reference that stays is a leak."""
    snap = _snapshot(3, reread)
    (finding,) = [f for f in snap.findings if f.token == 0x400]
    assert (finding.code, finding.severity) == (code, severity)


@only(lambda name: name == "outgoing")
def test_a_vmcore_is_not_read_twice(snapshot: Snapshot) -> None:
    """Would catch: a vmcore's refcounts reread as if the kernel were live."""
    assert all(f.refcount_reread is None for s in snapshot.sessions for f in s.files)


def test_holder_list_keeps_every_holder_in_order() -> None:
    """HolderList stores fd holders as integers; what it gives back must be
    the holders appended, in order, whatever their kinds."""
    from luo_drgn.model import HolderList

    holders = [
        Holder("fd", pid=1, comm="init", fd=3),
        Holder("vma", pid=1, comm="init", vma=0x7F0000000000),
        Holder("fd", pid=35, comm="agent", fd=104_000),
        # Values 32 bits cannot hold (a corrupted dump): kept as they are.
        Holder("fd", pid=1 << 40, comm="init", fd=7),
        Holder("fd", pid=2, comm="init", fd=-1),
        Holder("io_uring", pid=35, comm="agent", fd=9, obj=0xFFFF888000001000, slot=2),
        Holder("luo"),
    ]
    stored = HolderList()
    for holder in holders:
        stored.append(holder)
    assert len(stored) == len(holders)
    assert list(stored) == holders and stored == holders and holders == list(stored)
    assert stored[2] == holders[2] and stored[-1] == Holder("luo")
    assert stored[1:3] == holders[1:3]
    assert HolderList(holders) == stored and stored != holders[:-1]
    direct = HolderList()
    direct.add_fd(1, "init", 3)
    assert direct == [Holder("fd", pid=1, comm="init", fd=3)]
