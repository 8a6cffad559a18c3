# SPDX-License-Identifier: LGPL-2.1-or-later
"""Handlers, sessions and preserved files (:mod:`luo_drgn.helpers.liveupdate`)
on the real fixtures: each helper's result against the guest's log or plain
drgn, and the one-read rows against the member-by-member helpers."""

from __future__ import annotations

from typing import Any

import drgn
import pytest

from luo_drgn import examples
from luo_drgn import helpers as h
from luo_drgn.helpers.liveupdate import LUO_DIRECTIONS
from tests.support.fixtures import once_per_kernel, only
from tests.support.plain import (
    all_luo_files,
    expected_files,
    expected_sessions,
    has_sessions,
    name_bytes,
    session_named,
)
from tests.support.plain import files as plain_files
from tests.support.plain import sessions as plain_sessions


@once_per_kernel(has_sessions)
def test_luo_for_each_file_handler(prog: drgn.Program) -> None:
    """Would catch: the handler list walked wrong, or returned as another type than drgn's object
    pointers."""
    handlers = list(h.luo_for_each_file_handler(prog))
    assert handlers == [prog["memfd_luo_handler"].address_of_()]
    assert handlers[0].type_.type_name() == "struct liveupdate_file_handler *"
    # What the collector reads of each: 7.2.13's memfd handler, its ops.
    assert bytes(handlers[0].compatible.string_()) == b"memfd-v2"
    assert handlers[0].ops == prog["memfd_luo_file_ops"].address_of_()


@once_per_kernel(has_sessions)
def test_luo_file_handler_for_each_flb(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a handler's FLB list walked wrong (none on 7.2.13, the test module's three on
    the full kernel)."""
    # 7.2.13's memfd handler registers no FLB of its own; the `full` kernel's
    # test module (CONFIG_LIVEUPDATE_TEST) registers three, as its console says.
    handler = prog["memfd_luo_handler"].address_of_()
    got = [bytes(f.compatible.string_()).decode() for f in h.luo_file_handler_for_each_flb(handler)]
    assert got == [x["compatible"] for x in expected.get("flbs", [])]


@only(has_sessions)
def test_luo_for_each_session(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a session walk that skips, repeats or reorders a
    session, or reads one direction's list for the other; and a header
    count that disagrees with the sessions the guest created."""
    for direction in LUO_DIRECTIONS:
        got = list(h.luo_for_each_session(prog, direction))
        want = [name_bytes(s["name"]) for s in expected_sessions(expected, direction)]
        assert got == plain_sessions(prog, direction)
        assert [s.name.string_() for s in got] == want
        assert h.luo_session_header_count(prog, direction) == len(want)


def test_direction_is_checked() -> None:
    """Would catch: a misspelt direction silently read as one of the two."""
    with pytest.raises(ValueError, match="direction must be one of"):
        list(h.luo_for_each_session(drgn.Program(), "sideways"))


@only(has_sessions)
def test_luo_session_for_each_file(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a session's file walk that skips, repeats or reorders files."""
    for d in LUO_DIRECTIONS:
        for s, want in zip(plain_sessions(prog, d), expected_sessions(expected, d)):
            got = list(h.luo_session_for_each_file(s))
            assert got == plain_files(s)
            assert [f.token.value_() for f in got] == [f["token"] for f in want["files"]]


@only(has_sessions)
def test_luo_session_file_count(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a session's file count read from the wrong field."""
    for d in LUO_DIRECTIONS:
        for s, want in zip(plain_sessions(prog, d), expected_sessions(expected, d)):
            assert h.luo_session_file_count(s) == want["file_count"]


@only(lambda name: name == "incoming")
def test_luo_session_finished(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a finished incoming session told from an unfinished one wrongly."""
    # The guest finished vm-gamma; it retrieved vm-alpha without finishing
    # it, and left vm-beta and empty alone.
    got = {
        s.name.string_().decode(): h.luo_session_finished(s)
        for s in plain_sessions(prog, "incoming")
    }
    assert got == {s["name"]: s["finished"] for s in expected["sessions"]}
    assert got == {"vm-alpha": False, "vm-beta": False, "vm-gamma": True, "empty": False}


def test_luo_session_finished_cannot_tell_an_empty_handover() -> None:
    """A session handed over with no files never restored a block set, so
    once retrieved, memory cannot tell whether it was finished: the kernel
    state after LIVEUPDATE_IOCTL_RETRIEVE_SESSION on the incoming fixture's
    'empty' session (luo_session_retrieve() sets only ->retrieved)."""

    prog = examples.load("incoming").program()
    empty = session_named(prog, "empty", "incoming")
    assert h.luo_session_finished(empty) is False  # not retrieved: not finished
    flag = empty.retrieved
    prog.add_memory_segment(flag.address_, 1, lambda a, n, off, phys: b"\x01"[off : off + n])
    assert bool(empty.retrieved) is True
    assert h.luo_session_finished(empty) is None


@only(has_sessions)
def test_validate_luo_session_for_each_file_row(
    prog: drgn.Program, expected: dict[str, Any]
) -> None:
    """Would catch: the one-read rows the collector takes its files from
    misreading what the guest preserved: a token, the handler, whether the
    file is still there and its inode, or the memfd state the serialized
    handle points to (its size, as the guest wrote the memfd)."""
    handler = prog["memfd_luo_handler"].address_of_().value_()
    rows = [
        row
        for d in LUO_DIRECTIONS
        for s in h.luo_for_each_session(prog, d)
        for row in h.validate_luo_session_for_each_file_row(s)
    ]
    want = expected_files(expected)
    assert [r.token for r in rows] == [f["token"] for f in want]
    assert all(r.fh == handler for r in rows)
    assert [bool(r.file) for r in rows] == [f["has_file"] for f in want]
    assert [r.retrieve_status for r in rows] == [f["retrieve_status"] for f in want]
    for row, f in zip(rows, want):
        if f["has_file"]:
            assert h.file_row(prog, row.file).ino == f["ino"]
        if f["retrieve_status"] == 0:
            state = h.memfd_luo_ser_scalars(prog, row.serialized_data)
            assert state is not None and state["size"] == f["size"]


@only(has_sessions)
def test_luo_file_retrieve_status(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: retrieve statuses misread."""
    statuses = [h.luo_file_retrieve_status(f) for f in all_luo_files(prog)]
    assert statuses == [f["retrieve_status"] for f in expected_files(expected)]


@only(lambda name: name == "fault-negative-retrieve")
def test_luo_file_retrieve_status_keeps_errno(prog: drgn.Program) -> None:
    """Would catch: a negative retrieve status (an errno) flattened to a boolean."""
    f = next(
        f
        for f in plain_files(session_named(prog, "vm-alpha", "incoming"))
        if f.token.value_() == 0x102
    )
    assert h.luo_file_retrieve_status(f) == -5  # -EIO, as written


def test_luo_session_mutex_owner() -> None:
    """Free on every fixture; owned as mutex_lock() leaves it (the owner
    task pointer in mutex.owner), planted on the real outgoing core."""
    from drgn.helpers.linux.pid import find_task

    prog = examples.load("outgoing").program()
    alpha = session_named(prog, "vm-alpha", "outgoing")
    assert h.luo_session_mutex_owner(alpha) is None
    task = find_task(prog, 1).value_()
    owner = alpha.mutex.owner.counter.address_
    data = task.to_bytes(8, "little")
    prog.add_memory_segment(owner, 8, lambda a, n, o, p: data[o : o + n])
    assert h.luo_session_mutex_owner(alpha) == (1, b"init")


@only(has_sessions)
def test_block_readers_read_what_the_helpers_read(prog: drgn.Program) -> None:
    """The collector reads each luo_file, struct file and inode in one read
    (h.validate_luo_session_for_each_file_row() and the rest); what it unpacks must be
    what the public helpers, the reference, read member by member."""
    from drgn import Object, TypeKind

    for direction in LUO_DIRECTIONS:
        for session in h.luo_for_each_session(prog, direction):
            rows = list(h.validate_luo_session_for_each_file_row(session))
            files = list(h.luo_session_for_each_file(session))
            assert [r.address for r in rows] == [f.value_() for f in files]
            for row, f in zip(rows, files):
                assert row == (
                    f.value_(),
                    f.fh.value_(),
                    f.file.value_(),
                    f.token.value_(),
                    h.luo_file_retrieve_status(f),
                    f.serialized_data.value_(),
                    h.luo_file_mutex_owner(f) is not None,
                )
                if row.serialized_data and row.retrieve_status == 0:
                    state = h.memfd_luo_serialized_state(f)
                    assert state is not None
                    assert h.memfd_luo_ser_scalars(prog, row.serialized_data) == {
                        m.name: state.member_(m.name).value_()
                        for m in state.type_.members or ()
                        if m.name is not None
                        and m.type.unaliased_kind() in (TypeKind.INT, TypeKind.BOOL, TypeKind.ENUM)
                    }
                if not row.file:
                    continue
                file = Object(prog, "struct file *", row.file)
                file_row = h.file_row(prog, row.file)
                assert file_row == (
                    h.file_refcount(file),
                    file.f_inode.i_ino.value_(),
                    file.f_inode.i_size.value_(),
                    file.f_op.value_(),
                    file.f_inode.value_(),
                    file.f_path.mnt.value_(),
                    file.f_path.dentry.value_(),
                    file.f_inode.i_nlink.value_(),
                    None,  # seals: not asked for
                )
                # With the seals, read with the inode from shmem_inode_info.
                sealed = h.file_row(prog, row.file, seals=True)
                assert sealed == (*file_row[:-1], h.memfd_luo_file_seals(file))
                assert sealed.seals is not None  # every preserved file is a memfd
                path = h.file_fd_path(file)
                assert h.file_fd_path(file, file_row) == path
                assert h.file_fd_path(file, None) == path
