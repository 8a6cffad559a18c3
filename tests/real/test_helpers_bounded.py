# SPDX-License-Identifier: LGPL-2.1-or-later
"""The bounded walks and block readers (:mod:`luo_drgn.helpers.bounded`)
against drgn's own walks on real memory."""

from __future__ import annotations

import drgn
import pytest

from luo_drgn import examples
from luo_drgn import helpers as h
from luo_drgn.helpers.bounded import WalkError
from tests.support.fixtures import only
from tests.support.plain import files as plain_files
from tests.support.plain import (
    has_sessions,
    session_named,
)


@only(has_sessions)
def test_xa_for_each_block_is_drgns_walk(prog: drgn.Program) -> None:
    """Would catch: the block xarray reader disagreeing with drgn's own xa_for_each."""
    from drgn.helpers.linux.xarray import xa_for_each

    from luo_drgn.helpers.bounded import validate_xa_for_each_block

    xa = prog["luo_preserved_files"].address_of_()
    plain = [(i, e.value_()) for i, e in xa_for_each(xa)]
    assert list(validate_xa_for_each_block(prog, xa.value_(), "index")) == plain


def test_xa_for_each_block_skips_internal_entries() -> None:
    """Would catch: an xarray slot holding an internal entry that is not a
    node (a sibling of a multi-index entry, or the retry entry a concurrent
    deletion leaves for RCU readers) yielded as if it were a struct file.
    Planted in an empty slot of the outgoing fixture's real leaf node."""
    from drgn.helpers.linux.xarray import xa_for_each

    from luo_drgn.helpers.bounded import validate_xa_for_each_block

    prog = examples.load("outgoing").program()
    xa = prog["luo_preserved_files"].address_of_()
    plain = [(i, e.value_()) for i, e in xa_for_each(xa)]
    entry = xa.xa_head.value_()
    while True:  # down the first populated slots to a leaf
        node = drgn.Object(prog, "struct xa_node", address=entry - 2)
        slots = [x.value_() for x in node.slots]
        if node.shift.value_() == 0:
            break
        entry = next(x for x in slots if x)
    used = next(i for i, x in enumerate(slots) if x)
    empty = [i for i, x in enumerate(slots) if not x and i != used]
    retry, sibling = 0x402, (used << 2) | 2  # xa_mk_internal(256), xa_mk_sibling(used)
    for slot, value in ((empty[0], retry), (empty[1], sibling)):
        data = value.to_bytes(8, "little")
        at = node.slots[slot].address_
        prog.add_memory_segment(at, 8, lambda a, n, o, p, d=data: d[o : o + n], False)
    assert [x.value_() for x in node.slots][empty[0]] == retry
    assert list(validate_xa_for_each_block(prog, xa.value_(), "index")) == plain


def test_walk_error_is_a_validation_error_with_the_fault_chained() -> None:
    """Would catch: a walk fault that is not a drgn ValidationError, or loses the FaultError that
    caused it."""
    from drgn.helpers import ValidationError

    from luo_drgn import examples

    prog = examples.load("outgoing").program()
    alpha = session_named(prog, "vm-alpha", "outgoing")
    second = plain_files(alpha)[1].list.address_

    def fail(addr: int, count: int, offset: int, physical: bool) -> bytes:
        raise drgn.FaultError("planted fault", addr)

    prog.add_memory_segment(second, 16, fail, False)
    with pytest.raises(WalkError) as info:
        list(h.validate_luo_session_for_each_file(alpha))
    assert isinstance(info.value, ValidationError)
    assert isinstance(info.value.__cause__, drgn.FaultError)
    assert info.value.address == second


def test_fields_unpack_what_drgn_reads() -> None:
    """Would catch: the one format that unpacks a row's members placing a
    member at the wrong offset (the padding between them miscounted), giving
    them back in memory order rather than in the order asked for, a bool
    given as an int, or members that overlap (asked twice) misread."""
    from luo_drgn.helpers.bounded import _fields

    prog = examples.load("outgoing").program()
    session = session_named(prog, "vm-alpha", "outgoing")
    f = plain_files(session)[1]
    asked = ("token", "fh", "serialized_data", "file", "token")
    row = _fields(prog, "struct luo_file", *asked).read(prog, f.value_())
    assert row == [f.member_(m).value_() for m in asked]
    (retrieved, count) = _fields(prog, "struct luo_session", "retrieved", "file_set.count").read(
        prog, session.value_()
    )
    assert retrieved is False and count == session.file_set.count.value_() == 3
    raw = prog.read(f.value_(), drgn.sizeof(f[0]))
    assert _fields(prog, "struct luo_file", "file", "fh").unpack(raw) == [
        f.file.value_(),
        f.fh.value_(),
    ]
