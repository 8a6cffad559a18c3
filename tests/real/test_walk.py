# SPDX-License-Identifier: LGPL-2.1-or-later
"""The bounded list validator on a real core, with list pointers rewritten
by memory overlays: each way a list can be broken stops the walk with its
own reason, after yielding every node read safely, and never a node twice."""

from __future__ import annotations

import struct

import drgn
import pytest

from luo_drgn import examples
from luo_drgn.helpers.bounded import (
    WalkError,
    validate_list_for_each_bounded,
    validate_list_for_each_entry_bounded,
)
from luo_drgn.helpers.kho import KHO_MAX_BLOCKS, validate_kho_block_set_for_each_block


def outgoing() -> tuple[drgn.Program, drgn.Object, list[drgn.Object]]:
    """A fresh program on the outgoing fixture, vm-alpha's files list head,
    and its three nodes A, B, C (tokens 0x100, 0x101, 0x102)."""
    prog = examples.load("outgoing").program()
    head = prog["luo_session_global"].outgoing.list.address_of_()
    alpha = next(
        drgn.container_of(n, "struct luo_session", "list")
        for n in validate_list_for_each_bounded(head)
    )
    files = alpha.file_set.files_list.address_of_()
    return prog, files, list(validate_list_for_each_bounded(files))


def point(prog: drgn.Program, field: drgn.Object, target: int) -> None:
    data = struct.pack("<Q", target)
    prog.add_memory_segment(field.address_, 8, lambda a, n, off, phys: data[off : off + n])


def walk(head: drgn.Object, limit: int = 1 << 20) -> tuple[list[int], WalkError]:
    seen: list[int] = []
    with pytest.raises(WalkError) as info:
        for node in validate_list_for_each_bounded(head, "vm-alpha files", limit):
            seen.append(node.value_())
    return seen, info.value


def test_healthy_list() -> None:
    """Would catch: the bounded walk missing or repeating an entry of a healthy list."""
    _, files, nodes = outgoing()
    assert len(nodes) == 3
    tokens = [
        f.token.value_()
        for f in validate_list_for_each_entry_bounded("struct luo_file", files, "list")
    ]
    assert tokens == [0x100, 0x101, 0x102]


def test_ring_that_never_returns_to_the_head() -> None:
    """head -> A -> B -> C -> A: a ring that does not pass through the head,
    every prev consistent with the way in (A's with the head's next, B's and
    C's inside the ring).  Only the node reached twice tells; the walk says
    it is a cycle, stops there, and has yielded each node once."""
    prog, files, (a, b, c) = outgoing()
    point(prog, c.next, a.value_())
    assert (a.prev, b.prev, c.prev) == (files, a, b)
    seen, err = walk(files)
    assert seen == [a.value_(), b.value_(), c.value_()]
    assert err.reason == "cycle (a node is reached twice)"
    assert err.address == a.value_() and err.what == "vm-alpha files"


def test_ring_with_prev_pointers_consistent_around_it() -> None:
    """The same ring with A's prev pointing at C, as a ring of its own would
    have it.  drgn's validate_list_for_each does not check the first node's
    prev and would yield A, B, C and A again before Brent's algorithm
    noticed; here the first node is checked, and nothing is yielded."""
    prog, files, (a, b, c) = outgoing()
    point(prog, c.next, a.value_())
    point(prog, a.prev, c.value_())
    seen, err = walk(files)
    assert seen == []
    assert err.reason == f"prev pointer {c.value_():#x} does not point back to {files.value_():#x}"


def test_null_next() -> None:
    """Would catch: a NULL next pointer followed, or reported at the wrong node."""
    prog, files, (a, b, c) = outgoing()
    point(prog, b.next, 0)
    seen, err = walk(files)
    assert seen == [a.value_(), b.value_()]
    assert err.reason == "NULL next pointer" and err.address == b.value_()


def test_entry_limit_on_garbage_that_never_cycles() -> None:
    """Would catch: a walk of garbage that never cycles running past its limit."""
    _, files, (a, b, c) = outgoing()
    seen, err = walk(files, limit=2)
    assert seen == [a.value_(), b.value_()]
    assert err.reason == "more than 2 entries" and err.address == c.value_()


def test_unreadable_head_keeps_the_fault() -> None:
    """Would catch: an unreadable list head reported without the fault behind it."""
    prog, files, _ = outgoing()

    def fail(addr: int, count: int, offset: int, physical: bool) -> bytes:
        raise drgn.FaultError("planted fault", addr)

    prog.add_memory_segment(files.value_(), 16, fail, False)
    seen, err = walk(files)
    assert seen == [] and err.reason == "cannot read list head"
    assert isinstance(err.__cause__, drgn.FaultError)


def fake_block_set(prog: drgn.Program, nblocks: int) -> drgn.Object:
    """A struct kho_block_set at an unused address whose list links
    ``nblocks`` struct kho_blocks (list first, as in 7.2.13)."""
    head, first = 0xFFFFC90300000000, 0xFFFFC90400000000
    size = prog.type("struct kho_block").size
    nodes = [first + i * size for i in range(nblocks)]
    ring = [head, *nodes]
    data = bytearray(nblocks * size)
    for i in range(nblocks):
        # Node i is ring[i + 1]: next is the one after it, prev the one before.
        struct.pack_into("<QQ", data, i * size, ring[(i + 2) % len(ring)], ring[i])
    links = struct.pack("<QQ", ring[1 % len(ring)], ring[-1])
    prog.add_memory_segment(head, 16, lambda a, n, off, phys: links[off : off + n])
    prog.add_memory_segment(first, len(data), lambda a, n, off, phys: bytes(data[off : off + n]))
    return drgn.Object(prog, "struct kho_block_set *", head)


def test_block_set_walk_stops_past_kho_max_blocks() -> None:
    """Would catch: a block list longer than kho_block_set_grow() ever
    makes (KHO_MAX_BLOCKS, 10000 in 7.2.13's kernel/liveupdate/kho_block.c)
    walked as healthy, or the longest healthy one refused."""
    prog = examples.load("outgoing").program()
    whole = list(validate_kho_block_set_for_each_block(fake_block_set(prog, KHO_MAX_BLOCKS)))
    assert len(whole) == KHO_MAX_BLOCKS == 10000
    seen = []
    with pytest.raises(WalkError, match="more than 10000 entries"):
        seen.extend(validate_kho_block_set_for_each_block(fake_block_set(prog, 10001)))
    assert len(seen) == 10000
