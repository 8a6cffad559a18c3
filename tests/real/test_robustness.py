# SPDX-License-Identifier: LGPL-2.1-or-later
"""Bad memory never makes a traceback or a hang: faults planted in a real
core (drgn memory segments whose reads fail, or garbage) become errors in
the snapshot, and the rest is still read."""

from __future__ import annotations

import json
import random
import time

import drgn
import pytest
from drgn.helpers.linux.pid import find_task

from luo_drgn import examples
from luo_drgn import helpers as h
from luo_drgn.analysis import inspect
from luo_drgn.collector import collect
from luo_drgn.model import Snapshot, Target


def fresh_program() -> drgn.Program:
    return examples.load("outgoing").program()


def plant_fault(prog: drgn.Program, address: int, size: int) -> None:
    def fail(addr: int, count: int, offset: int, physical: bool) -> bytes:
        raise drgn.FaultError("planted fault", addr)

    prog.add_memory_segment(address, size, fail, False)


def plant_bytes(prog: drgn.Program, address: int, data: bytes) -> None:
    prog.add_memory_segment(address, len(data), lambda a, n, off, phys: data[off : off + n], False)


def snapshot(prog: drgn.Program) -> Snapshot:
    return inspect(collect(prog, Target("vmcore", None, None, [])))


def alpha(prog: drgn.Program) -> drgn.Object:
    return next(s for s in h.luo_for_each_session(prog) if bytes(s.name.string_()) == b"vm-alpha")


def test_unreadable_luo_global() -> None:
    """Would catch: an unreadable luo_global aborting the report instead of being recorded while the
    rest is read."""
    prog = fresh_program()
    plant_fault(prog, prog["luo_global"].address_, prog["luo_global"].type_.size)
    snap = snapshot(prog)
    assert snap.luo.state == "enabled" and "could not be read" in snap.luo.reason
    assert any(e.where == "luo_global" for e in snap.errors)
    assert len(snap.sessions) == 4  # the rest was still read


def test_unreadable_session_header() -> None:
    """Would catch: an unreadable session list header aborting the report, not recorded."""
    prog = fresh_program()
    out = prog["luo_session_global"].outgoing
    plant_fault(prog, out.list.address_, 16)
    snap = snapshot(prog)
    assert [s.direction for s in snap.sessions] == []
    assert any("outgoing sessions" in e.where for e in snap.errors)
    assert snap.handlers and snap.handlers[0].compatible == "memfd-v2"


def test_unreadable_struct_file() -> None:
    """Would catch: an unreadable struct file aborting the report, or not becoming a corrupt-
    structure finding on its file."""
    prog = fresh_program()
    f = next(iter(h.luo_session_for_each_file(alpha(prog))))
    plant_fault(prog, f.file.value_(), 256)
    snap = snapshot(prog)
    bad = snap.session("vm-alpha").files[0]
    assert bad.refcount is None and bad.token == 0x100
    codes = {(x.code, x.session, x.token) for x in snap.findings if x.severity == "error"}
    assert ("corrupt-structure", "vm-alpha", 0x100) in codes
    # The other files are still accounted for.
    assert snap.session("vm-alpha").files[1].refcount == 5


def test_unreadable_fd_table() -> None:
    """Would catch: an unreadable fd table aborting the holder scan instead of being recorded, the
    other tasks still scanned."""
    prog = fresh_program()
    fdt = find_task(prog, 1).files.fdt
    plant_fault(prog, fdt.fd.value_(), 8)
    snap = snapshot(prog)
    assert any("fd table of pid 1" in e.where for e in snap.errors)
    # PID 1's fds are gone; the forked child's copies are still found.
    manifest = examples.load("outgoing").manifest
    child = next(
        e["child"]
        for e in map(
            json.loads,
            (line[len("@@LUO ") :] for line in manifest["guest_log"] if line.startswith("@@LUO {")),
        )
        if e["op"] == "fork"
    )
    holders = snap.session("vm-beta").files[1].holders
    assert {x.pid for x in holders if x.kind == "fd"} == {child}


@pytest.mark.parametrize("seed", range(8))
def test_garbage_over_a_session(seed: int) -> None:
    """Random bytes over vm-alpha's struct luo_session: any outcome but a
    traceback or a hang."""
    prog = fresh_program()
    s = alpha(prog)
    rng = random.Random(seed)
    plant_bytes(prog, s.value_(), bytes(rng.getrandbits(8) for _ in range(s.type_.type.size)))
    start = time.monotonic()
    snap = snapshot(prog)
    assert time.monotonic() - start < 60
    # Its list pointers are garbage: the walk stops there and says so.
    assert snap.luo.state == "enabled" and snap.errors
    assert any(f.code == "corrupt-structure" for f in snap.findings)


@pytest.mark.parametrize("pointer", [0, (1 << 64) - 1])
def test_struct_file_pointer_at_the_ends_of_the_address_space(pointer: int) -> None:
    """Would catch: a luo_file whose file pointer is zeroed or all-ones (the corruption
    benchmark's first internal error: the block reader added a member's offset past 2**64, or
    container_of() subtracted one below 0, and drgn raised OverflowError) ending the report
    instead of becoming a walk error on that file, as the kernel's wrapping pointer arithmetic
    would fault on it."""
    prog = fresh_program()
    luo_file = next(iter(h.luo_session_for_each_file(alpha(prog))))
    plant_bytes(prog, luo_file.file.address_, pointer.to_bytes(8, "little"))
    snap = snapshot(prog)
    token = luo_file.token.value_()
    (first, *_) = snap.session("vm-alpha").files
    assert (first.token, first.file or 0) == (token, pointer)
    # Named as what it is: a corrupt structure at that token (NULL: an
    # outgoing luo_file with no struct file; all-ones: its inode faults).
    assert ("corrupt-structure", "vm-alpha", token) in {
        (f.code, f.session, f.token) for f in snap.findings if f.severity == "error"
    }
