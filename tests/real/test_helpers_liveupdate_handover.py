# SPDX-License-Identifier: LGPL-2.1-or-later
"""What crosses the kexec (:mod:`luo_drgn.helpers.liveupdate_handover`) on the
real fixtures: serialized sessions and files, pending incoming ones, the
luo_preserved_files index, FLBs, the memfd handler's state."""

from __future__ import annotations

from typing import Any

import drgn
import pytest
from drgn.helpers.linux.list import list_for_each_entry

from luo_drgn import helpers as h
from tests.support.fixtures import once_per_kernel, only
from tests.support.plain import (
    all_luo_files,
    expected_files,
    has_sessions,
)
from tests.support.plain import files as plain_files
from tests.support.plain import sessions as plain_sessions


@only(lambda name: name in ("frozen", "outgoing"))
def test_luo_for_each_serialized_session(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: serialized sessions read before the freeze wrote any, or misread after it."""
    got = list(h.validate_luo_for_each_serialized_session(prog, "outgoing"))
    if not expected["frozen"]:
        # Before the freeze nothing was written: no block has a count.
        assert got == []
        return
    assert [bytes(s.name.string_()).decode() for s in got] == [
        s["name"] for s in expected["sessions"] if s["direction"] == "outgoing"
    ]
    assert all(s.type_.type_name() == "struct luo_session_ser" for s in got)


@only(lambda name: name == "frozen")
def test_luo_session_ser_name(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a serialized session's name misread."""
    names = [bytes(s.name.string_()) for s in h.validate_luo_for_each_serialized_session(prog)]
    assert names == [s["name"].encode() for s in expected["sessions"]]


@only(lambda name: name in ("frozen", "incoming-pending"))
def test_luo_session_ser_file_set(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a serialized session's file block address or count misread."""
    direction = "outgoing" if expected["frozen"] else "incoming"
    for ser, want in zip(
        h.validate_luo_for_each_serialized_session(prog, direction), expected["sessions"]
    ):
        pa, count = h.luo_session_ser_file_set(ser)
        assert count == len(want["files"])
        # The first block's header sits at pa: its count is this session's.
        assert (pa == 0) == (count == 0)
        if pa:
            assert int.from_bytes(prog.read(pa + 8, 8, True), "little") == count


@only(lambda name: name in ("frozen", "incoming-pending"))
def test_luo_session_ser_for_each_file(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a serialized session's file entries walked wrong."""
    direction = "outgoing" if expected["frozen"] else "incoming"
    for ser, want in zip(
        h.validate_luo_for_each_serialized_session(prog, direction), expected["sessions"]
    ):
        entries = list(h.validate_luo_session_ser_for_each_file(ser))
        assert [e.token.value_() for e in entries] == [f["token"] for f in want["files"]]


@only(lambda name: name in ("frozen", "incoming-pending"))
def test_luo_file_ser_token_compatible_data(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a serialized file entry's token, compatible or data handle misread."""
    direction = "outgoing" if expected["frozen"] else "incoming"
    live = {}
    if expected["frozen"]:
        live = {
            (s.name.string_(), f.token.value_()): f.serialized_data.value_()
            for s in plain_sessions(prog, "outgoing")
            for f in plain_files(s)
        }
    for ser, want in zip(
        h.validate_luo_for_each_serialized_session(prog, direction), expected["sessions"]
    ):
        for e, wf in zip(h.validate_luo_session_ser_for_each_file(ser), want["files"]):
            assert e.token.value_() == wf["token"]
            assert bytes(e.compatible.string_()) == wf["handler"].encode()
            data = e.data.value_()
            # The memfd state it points to has the memfd's size.
            assert int.from_bytes(prog.read(data + 8, 8, True), "little") == wf["size"]
            if live:
                assert data == live[(bytes(ser.name.string_()), wf["token"])]


@only(has_sessions)
def test_luo_for_each_pending_incoming_session(
    prog: drgn.Program, expected: dict[str, Any]
) -> None:
    """Would catch: pending incoming sessions listed after deserialization, or missed before it."""
    pending = list(h.luo_for_each_pending_incoming_session(prog))
    if expected["phase"] > 1 and not expected["deserialized"]:
        assert [bytes(s.name.string_()).decode() for s in pending] == [
            s["name"] for s in expected["sessions"]
        ]
    else:
        assert pending == []


@only(has_sessions)
def test_luo_for_each_preserved_file(prog: drgn.Program) -> None:
    """Would catch: the preserved-file index walked wrong, or keyed by something other than the
    inode."""
    got = list(h.luo_for_each_preserved_file(prog))
    files = [f.file for f in all_luo_files(prog) if f.file]
    assert sorted(f.value_() for _, f in got) == sorted(f.value_() for f in files)
    for index, file in got:
        # memfd's get_id() is the inode: the index is the file's inode address.
        assert file.type_.type_name() == "struct file *"
        assert index == file.f_inode.value_()


@once_per_kernel(has_sessions)
def test_luo_for_each_flb(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: the global FLB list walked wrong, or disagreeing with its count."""
    # 7.2.13 without CONFIG_LIVEUPDATE_TEST registers no FLB; with it, the
    # test module's three (compared with plain drgn's list walk too).
    want = [x["compatible"] for x in expected.get("flbs", [])]
    got = list(h.luo_for_each_flb(prog))
    assert [bytes(f.compatible.string_()).decode() for f in got] == want
    assert prog["luo_flb_global"].count.value_() == len(want)
    plain = list(
        list_for_each_entry(
            "struct liveupdate_flb", prog["luo_flb_global"].list.address_of_(), "private.list"
        )
    )
    assert got == plain


# lib/tests/liveupdate.c: each test FLB's .preserve() returns this base plus
# its index as the data handle, its .retrieve() makes that handle the object.
TEST_FLB_MAGIC_BASE = 0xFEEDF00DCAFEBEE0


@only(lambda name: name.startswith("flb"))
def test_luo_flb_state_helpers(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Handles, objects and the incoming lifecycle of the test FLBs, against
    what the test module's code sets and its console says."""
    for i, (flb, want) in enumerate(zip(h.luo_for_each_flb(prog), expected["flbs"])):
        magic = TEST_FLB_MAGIC_BASE + i
        # luo_flb_file_preserve_one() keeps .preserve()'s handle while the
        # FLB has users; liveupdate_flb_put_outgoing() clears it at 0.
        assert flb.member_("private").member_("outgoing").data.value_() == (
            magic if want["outgoing_count"] else 0
        )
        assert flb.member_("private").member_("outgoing").obj.value_() == 0  # the test sets none
        assert h.luo_flb_incoming_status(flb) == (want["retrieve_status"], want["finished"])
        # luo_flb_retrieve_one() takes the handed-over handle; .finish() ends
        # with data and obj cleared (liveupdate_flb_put_incoming()).
        live = want["retrieve_status"] == 1 and not want["finished"]
        assert flb.member_("private").member_("incoming").data.value_() == (magic if live else 0)
        assert flb.member_("private").member_("incoming").obj.value_() == (magic if live else 0)


@only(lambda name: name.startswith("flb"))
@pytest.mark.parametrize("direction", ["outgoing", "incoming"])
def test_luo_for_each_serialized_flb(
    prog: drgn.Program, expected: dict[str, Any], direction: str
) -> None:
    """The FLB array, against plain drgn reads of luo_flb_global's header."""
    header = prog["luo_flb_global"].member_(direction)
    got = list(h.validate_luo_for_each_serialized_flb(prog, direction))
    if not header.active:
        assert got == []
        return
    count = header.header_ser.count.value_()
    assert [x.value_() for x in got] == [(header.ser + i).value_() for i in range(count)]
    key = "serialized_count" if direction == "outgoing" else "handed_over_count"
    if any(key in x for x in expected["flbs"]):
        assert [
            (bytes(x.name.string_()).decode(), x.count.value_(), x.data.value_()) for x in got
        ] == [
            (w["compatible"], w[key], TEST_FLB_MAGIC_BASE + i)
            for i, w in enumerate(expected["flbs"])
        ]


def test_luo_flb_compatible_and_counts() -> None:
    """No real fixture kernel registers an FLB yet: the helpers are checked
    on the synthetic 7.0 and 7.1 layouts, which differ in the count's type."""
    from tests.support.synthetic import FLB_NAME, OUTGOING, populate

    users = sum(len(files) for files in OUTGOING.values())
    for layout in ("7.0", "7.1"):
        k = populate(layout)
        (flb,) = h.luo_for_each_flb(k.prog)
        assert bytes(flb.compatible.string_()) == FLB_NAME.encode()
        assert h.luo_flb_counts(flb) == (users, 0)


@only(lambda name: name in ("outgoing", "incoming"))
def test_memfd_luo_serialized_state(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a memfd's serialized state (size, folio count) misread."""
    for f, want in zip(all_luo_files(prog), expected_files(expected)):
        state = h.memfd_luo_serialized_state(f)
        if want["retrieve_status"] != 0:
            continue  # freed by the retrieve
        assert state is not None and state.type_.type_name() == "struct memfd_luo_ser"
        assert state.size.value_() == want["size"]
        # nr_folios counts folios: at least one for a non-empty memfd, at
        # most one per page.
        assert 1 <= state.nr_folios.value_() <= -(-want["size"] // 4096)
