# SPDX-License-Identifier: LGPL-2.1-or-later
"""luo_drgn's helpers and collector on the real 7.2 fixtures, against the
ground truth the guest logged (the manifests)."""

from __future__ import annotations

from typing import Any

import drgn
import pytest

from luo_drgn import helpers as h
from luo_drgn.collector import collect
from luo_drgn.helpers.liveupdate_layout import luo_layout
from luo_drgn.model import Snapshot, Target
from tests.support.fixtures import once_per_kernel, only
from tests.support.plain import (
    expected_holder_keys,
    has_sessions,
    holder_keys,
    sessions_handed_over,
)
from vmcores import manifest as guest


def listed(expected: dict[str, Any]) -> list[dict[str, Any]]:
    """Sessions the kernel keeps on its lists (not those still in KHO memory)."""
    return [
        s for s in expected["sessions"] if s["direction"] == "outgoing" or expected["deserialized"]
    ]


@once_per_kernel(lambda name: name != "no-luo")
def test_layout_is_7_2(prog: drgn.Program) -> None:
    """Would catch: the 7.2 kernels' layout misdetected, or detected with differences they do not
    have."""
    layout = luo_layout(prog)
    assert layout.present and layout.generation == "7.2" and not layout.differences
    assert layout.name == "7.2"
    assert layout.retrieve_field == "retrieve_status" and layout.block_sets
    assert layout.preserved_xarray and layout.flb and layout.serialize_rwsem


@only(lambda name: name == "no-luo")
def test_layout_absent(prog: drgn.Program, snapshot: Snapshot) -> None:
    """Would catch: a kernel without CONFIG_LIVEUPDATE read as having LUO, or giving errors instead
    of the reason."""
    layout = luo_layout(prog)
    assert not layout.present and layout.name == "none"
    # Nothing claimed of a LUO that is not there, should a reader not check
    # present first.
    assert layout.retrieve_field is None and layout.generation is None
    assert not (layout.file_set or layout.block_sets or layout.preserved_xarray or layout.flb)
    assert snapshot.luo.state == "absent"
    assert "CONFIG_LIVEUPDATE" in snapshot.luo.reason
    assert not snapshot.sessions and not snapshot.errors


@only(lambda name: name == "disabled")
def test_disabled_explained(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    """Would catch: a LUO disabled by kho=off reported without its reason, or with sessions or
    errors."""
    assert expected["luo_state"] == "disabled"
    assert snapshot.luo.state == "disabled"
    assert "KHO is disabled" in snapshot.luo.reason
    assert not snapshot.sessions and not snapshot.errors


@only(has_sessions)
def test_luo_state(snapshot: Snapshot, expected: dict[str, Any], manifest: dict[str, Any]) -> None:
    """Would catch: the collector misreading the live-update number, the freeze, or the incoming
    data's state."""
    luo = snapshot.luo
    assert luo.state == "enabled"
    assert luo.liveupdate_num == expected["liveupdate_num"]
    assert luo.frozen == expected["frozen"]
    assert luo.incoming_present == sessions_handed_over(manifest)
    if sessions_handed_over(manifest):
        assert luo.incoming_deserialized == expected["deserialized"]
    assert not snapshot.errors


def handed_over_empty(manifest: dict[str, Any]) -> set[str]:
    """Sessions the previous kernel handed over with no files, from the
    guest log of the kernel before the live update."""
    files: dict[str, int] = {}
    events = guest.guest_events(manifest["guest_log"])
    last = max(ev["phase"] for ev in events if ev["op"] == "start")
    phase = 1
    for ev in events:
        if ev["op"] == "start":
            phase = ev["phase"]
        if phase != last - 1:
            continue
        if ev["op"] == "create_session" and ev["result"] == "OK":
            files.setdefault(ev["session"], 0)
        elif ev["op"] == "preserve" and ev["result"] == "OK":
            files[ev["session"]] += 1
    return {name for name, n in files.items() if n == 0}


@only(has_sessions)
def test_sessions(snapshot: Snapshot, expected: dict[str, Any], manifest: dict[str, Any]) -> None:
    """Would catch: sessions missing, misordered or put in the wrong direction, and retrieved or
    finished misread."""
    want = listed(expected)
    empty = handed_over_empty(manifest)
    assert [(s.direction, s.name) for s in snapshot.sessions] == [
        (s["direction"], s["name"]) for s in want
    ]
    for got, w in zip(snapshot.sessions, want):
        assert got.retrieved == w["retrieved"]
        assert got.file_count == w["file_count"] == len(got.files)
        if got.direction == "incoming":
            # An incoming session handed over with no files cannot be told
            # finished from memory once retrieved; all others can.
            assert got.finished == (
                None if w["retrieved"] and w["name"] in empty else w["finished"]
            )
        assert holder_keys(got.holders) == expected_holder_keys(w["holders"])


@only(has_sessions)
def test_files(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    """Would catch: a file's token, handler, status, inode, refcount, holders or memfd size read
    wrong by the collector."""
    for got_s, w_s in zip(snapshot.sessions, listed(expected)):
        assert [f.token for f in got_s.files] == [f["token"] for f in w_s["files"]]
        for got, w in zip(got_s.files, w_s["files"]):
            assert got.handler == w["handler"] and got.handler_registered
            assert got.retrieve_status == w["retrieve_status"]
            assert (got.file is not None) == w["has_file"]
            if w["has_file"]:
                assert got.inode == w["ino"]
                assert got.refcount == w["refcount"]
                assert got.explained_refs == w["refcount"]
                assert holder_keys(got.holders) == expected_holder_keys(w["holders"])
                assert got.path is not None and got.path.endswith("(deleted)")
            if w["retrieve_status"] == 0:
                assert got.memfd is not None and got.memfd["size"] == w["size"]
            if got_s.direction == "outgoing":
                assert got.frozen == expected["frozen"]


@only(has_sessions)
def test_luo_device_holders(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    """Would catch: the holders of /dev/liveupdate missed or misattributed."""
    assert holder_keys(snapshot.luo_device_holders) == expected_holder_keys(
        expected["luo_device_holders"]
    )


@only(lambda name: name == "frozen")
def test_serialized_outgoing(
    prog: drgn.Program, snapshot: Snapshot, expected: dict[str, Any]
) -> None:
    """Would catch: the serialized outgoing sessions misread, or a file's handle not pointing at its
    memfd state."""
    ser = snapshot.serialized_outgoing
    want = [s for s in expected["sessions"] if s["direction"] == "outgoing"]
    assert [s.name for s in ser] == [s["name"] for s in want]
    for got, w in zip(ser, want):
        assert got.file_count == len(got.files) == w["file_count"]
        assert [f.token for f in got.files] == [f["token"] for f in w["files"]]
        assert {f.handler for f in got.files} <= {"memfd-v2"}
    # The serialized handle is the physical address of the memfd state.
    first = next(iter(h.validate_luo_for_each_serialized_session(prog, "outgoing")))
    entry = next(iter(h.validate_luo_session_ser_for_each_file(first)))
    luo_file = _luo_file_of(prog, entry.token.value_())
    assert entry.data == luo_file.serialized_data
    state = h.memfd_luo_serialized_state(luo_file)
    assert state is not None and state.size == want[0]["files"][0]["size"]


def _luo_file_of(prog: drgn.Program, token: int) -> drgn.Object:
    session = next(iter(h.luo_for_each_session(prog, "outgoing")))
    return next(f for f in h.luo_session_for_each_file(session) if f.token == token)


@only(lambda name: name == "incoming-pending")
def test_pending_incoming(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    """Would catch: sessions still serialized (not yet deserialized) missed, or listed as
    deserialized sessions."""
    want = expected["sessions"]
    assert [p.name for p in snapshot.pending_incoming] == [s["name"] for s in want]
    for got, w in zip(snapshot.pending_incoming, want):
        assert [f.token for f in got.files] == [f["token"] for f in w["files"]]
        assert all(f.handler == "memfd-v2" and f.data for f in got.files)
    assert snapshot.sessions == []


@only(has_sessions)
def test_preserved_index(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    """Would catch: the luo_preserved_files index read with entries missing or extra."""
    # One entry per preserved (outgoing) or retrieved (incoming) file.
    with_file = [f for s in listed(expected) for f in s["files"] if f["has_file"]]
    assert snapshot.preserved_index is not None
    assert len(snapshot.preserved_index) == len(with_file)
    assert set(snapshot.preserved_index.values()) == {
        f.file for s in snapshot.sessions for f in s.files if f.file is not None
    }


@only(has_sessions)
def test_handlers(snapshot: Snapshot, prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a registered handler or FLB missed, or an FLB's counts and state misread."""
    assert [x.compatible for x in snapshot.handlers] == ["memfd-v2"]
    assert snapshot.handlers[0].address == prog["memfd_luo_handler"].address_
    # The `full` kernel's test module registers three FLBs on the memfd
    # handler (its console says so); 7.2.13 itself registers none.
    want = expected.get("flbs", [])
    assert [
        (
            x.compatible,
            x.handlers,
            x.outgoing_count,
            x.incoming_count,
            x.retrieve_status,
            x.finished,
        )
        for x in snapshot.flbs
    ] == [
        (
            x["compatible"],
            x["handlers"],
            x["outgoing_count"],
            x["incoming_count"],
            x["retrieve_status"],
            x["finished"],
        )
        for x in want
    ]
    # What luo_flb_serialize() wrote at the freeze, and what arrived.
    if any("serialized_count" in x for x in want):
        assert [(e.name, e.count) for e in snapshot.serialized_flbs["outgoing"] or []] == [
            (x["compatible"], x["serialized_count"]) for x in want
        ]
    if any("handed_over_count" in x for x in want):
        assert [(e.name, e.count) for e in snapshot.serialized_flbs["incoming"] or []] == [
            (x["compatible"], x["handed_over_count"]) for x in want
        ]


@only(lambda name: name in ("outgoing", "disabled"))
def test_helpers_take_default_program(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a helper that needs its program passed, against drgn's default-program
    convention."""
    drgn.set_default_prog(prog)
    try:
        handlers = [bytes(x.compatible.string_()).decode() for x in h.luo_for_each_file_handler()]
        # A disabled LUO refuses handler registration (-EOPNOTSUPP).
        assert handlers == (["memfd-v2"] if expected["luo_state"] == "enabled" else [])
        assert bool(prog["luo_global"].enabled) == (expected["luo_state"] == "enabled")
    finally:
        drgn.set_default_prog(None)


@pytest.mark.parametrize(
    "param,reason",
    [
        (b"liveupdate=on", "was asked for (liveupdate=on) but failed to start"),
        (b"liveupdate=0 ", "liveupdate=0 on the kernel command line turned LUO off"),
        (b"liveupdate=of", "liveupdate=of on the kernel command line turned LUO off"),
        (b"Liveupdate=on", "LUO is off by default: the kernel command line has no liveupdate=on"),
        (b"liveupdate=xy", "liveupdate=xy on the kernel command line is not a boolean"),
    ],
)
def test_why_luo_is_disabled(param: bytes, reason: str) -> None:
    """early_liveupdate_param() is kstrtobool(): the disabled reason says
    which of off by default, switched off, or failed.  Planted on the real
    outgoing core: LUO's enabled flag cleared, the command line rewritten in
    place (same length)."""
    from luo_drgn import examples

    prog = examples.load("outgoing").program()
    cmdline = prog["saved_command_line"]
    at = cmdline.string_().index(b"liveupdate=on")
    prog.add_memory_segment(cmdline.value_() + at, len(param), lambda a, n, o, p: param[o : o + n])
    enabled = prog["luo_global"].enabled.address_
    prog.add_memory_segment(enabled, 1, lambda a, n, o, p: b"\0"[o : o + n])
    snap = collect(prog, Target("vmcore", None, None, []))
    assert snap.luo.state == "disabled" and reason in (snap.luo.reason or "")


def test_blocks_are_kept_for_a_dump_not_a_live_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Would catch: a collection of a vmcore reading each slab object alone
    (a host's report took 1.48 times the plain drgn walk), or one of a live
    kernel reading 4 KiB blocks through /proc/kcore (its bounce buffer
    makes that slower than the objects' own reads); and the same snapshot
    either way."""
    from luo_drgn import collector
    from luo_drgn.examples import load

    entered: list[str] = []

    class Recorded(collector.KeptBlocks):
        def __enter__(self) -> collector.KeptBlocks:
            entered.append("blocks")
            return super().__enter__()

    monkeypatch.setattr(collector, "KeptBlocks", Recorded)
    prog = load("outgoing").program()
    kept = collect(prog, Target("vmcore", "outgoing", None, []))
    assert entered == ["blocks"]
    alone = collect(prog, Target("live", None, None, []))
    assert entered == ["blocks"]
    alone.target = kept.target
    assert alone == kept
