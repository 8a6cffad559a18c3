# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Bounded List Validation
-----------------------

The ``luo_drgn.walk`` module provides list validators for memory that may be
corrupted, in the form of drgn's :func:`drgn.helpers.linux.list.validate_list_for_each`.

drgn's validator is the model, but a post-mortem inspector needs three things
it does not give: it may yield a node twice before Brent's algorithm notices a
cycle (an inspector would then report a duplicate that is not there), it has
no bound on a list of garbage that never cycles, and it does not check that
the first node points back to the head.  The walks here remember every node,
so a cycle is reported the moment a node comes round again, check every
``prev`` pointer including the first, stop after a bound, and raise
:class:`WalkError`, a :class:`drgn.helpers.ValidationError`, after yielding
everything that was read safely.  A fault is raised as a :class:`WalkError`
too, with the :class:`drgn.FaultError` chained as its ``__cause__``.

Hot walks over tens of thousands of entries also come in a block form, for
luo-drgn's own collector: :func:`list_for_each_entry_block` reads each entry
whole, in one read, with the same checks, and :func:`xa_for_each_block`
reads each XArray node's slots in one read, where drgn's
:func:`~drgn.helpers.linux.xarray.xa_for_each` reads them one by one.  They
yield addresses and bytes, not objects, and are not part of the helper API.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from drgn import FaultError, Object, Program, Type, container_of, offsetof, sizeof
from drgn.helpers import ValidationError

__all__ = (
    "DEFAULT_LIMIT",
    "WalkError",
    "not_in_dump",
    "validate_list_for_each_bounded",
    "validate_list_for_each_entry_bounded",
)


def not_in_dump(e: BaseException) -> bool:
    """
    Whether a read failed because the dump does not have that page: a
    filtered kdump (``makedumpfile -d``) leaves out zero, cache, user and
    free pages, and libkdumpfile reports those reads as "Excluded page".
    Missing is not corrupt: such a fault says nothing about the kernel.

    :param e: an exception from a read, or a :class:`WalkError` whose
        ``__cause__`` is one
    """
    if isinstance(e, WalkError) and e.__cause__ is not None:
        e = e.__cause__
    return isinstance(e, FaultError) and "Excluded page" in str(e)


# Generous enough for tens of thousands of preserved files per session, small
# enough that a walk over garbage ends in well under a second.
DEFAULT_LIMIT = 1 << 20


class WalkError(ValidationError):
    """
    A walk over kernel memory stopped before the end of its structure.

    :ivar what: a short description of what was walked
    :ivar address: the address at which the walk stopped
    :ivar reason: why it stopped, without the address
    """

    def __init__(self, what: str, address: int, reason: str) -> None:
        super().__init__(f"{what}: {reason} at {address:#x}")
        self.what = what
        self.address = address
        self.reason = reason


def _fault(what: str, reason: str, e: FaultError) -> WalkError:
    err = WalkError(what, e.address, reason)
    err.__cause__ = e
    return err


def _walk_list(
    head_addr: int,
    read_head: Callable[[], tuple[int, int]],
    read_node: Callable[[int], tuple[int, int]],
    what: str,
    limit: int,
) -> Iterator[int]:
    """The checks of :func:`validate_list_for_each_bounded` over any reader:
    ``read_head()`` gives the head's (next, prev), ``read_node(addr)`` a
    node's, each read where the walk needs it."""
    seen: set[int] = set()
    prev_addr = head_addr
    try:
        addr = read_head()[0]
    except FaultError as e:
        raise _fault(what, "cannot read list head", e) from e
    while True:
        if addr == head_addr:
            # Back at the head: its prev must be the last node, as drgn's
            # validator checks on its last hop.
            try:
                last = read_head()[1]
            except FaultError as e:
                raise _fault(what, "cannot read list head", e) from e
            if last != prev_addr:
                raise WalkError(
                    what,
                    head_addr,
                    f"the head's prev {last:#x} is not the last node {prev_addr:#x}",
                )
            return
        if addr == 0:
            raise WalkError(what, prev_addr, "NULL next pointer")
        if addr in seen:
            raise WalkError(what, addr, "cycle (a node is reached twice)")
        if len(seen) >= limit:
            raise WalkError(what, addr, f"more than {limit} entries")
        seen.add(addr)
        try:
            nxt, back = read_node(addr)
        except FaultError as e:
            raise _fault(what, "fault reading a list node", e) from e
        if back != prev_addr:
            raise WalkError(
                what, addr, f"prev pointer {back:#x} does not point back to {prev_addr:#x}"
            )
        yield addr
        prev_addr = addr
        addr = nxt


def validate_list_for_each_bounded(
    head: Object, what: str = "list", limit: int = DEFAULT_LIMIT
) -> Iterator[Object]:
    """
    Iterate over the nodes of a list, validating it as it goes.

    Like :func:`drgn.helpers.linux.list.validate_list_for_each`, but never
    yields a node twice, checks the first node's ``prev`` too, and stops after
    ``limit`` nodes.

    :param head: ``struct list_head *``
    :param what: what the list is, for the error message
    :param limit: how many nodes to accept before giving up
    :raises WalkError: on a NULL ``next``, a node reached twice (a cycle that
        does not pass through the head), a ``prev`` that does not point back
        (the head's included), a fault (chained), or after ``limit`` nodes
    :return: Iterator of ``struct list_head *`` objects.
    """
    head = head.read_()
    node_type = head.type_

    def read(node: Object) -> tuple[int, int]:
        return node.next.value_(), node.prev.value_()

    for addr in _walk_list(
        head.value_(),
        lambda: read(head),
        lambda addr: read(Object(head.prog_, node_type, addr)),
        what,
        limit,
    ):
        yield Object(head.prog_, node_type, addr)


def validate_list_for_each_entry_bounded(
    type: str | Type,
    head: Object,
    member: str,
    what: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Iterator[Object]:
    """
    Like :func:`drgn.helpers.linux.list.validate_list_for_each_entry`, with
    the checks of :func:`validate_list_for_each_bounded`.

    :param type: Entry type.
    :param head: ``struct list_head *``
    :param member: Name of list node member in entry type.
    :param what: what the list is, for the error message
    :raises WalkError: see :func:`validate_list_for_each_bounded`
    :return: Iterator of ``type *`` objects.
    """
    entry_type = head.prog_.type(type) if isinstance(type, str) else type
    for node in validate_list_for_each_bounded(head, what or str(member), limit):
        yield container_of(node, entry_type, member)


_U64 = struct.Struct("<Q")


def list_for_each_entry_block(
    prog: Program,
    type: str | Type,
    head: int,
    member: str,
    what: str,
    limit: int = DEFAULT_LIMIT,
) -> Iterator[tuple[int, bytes]]:
    """
    Iterate over the entries of a list as
    :func:`validate_list_for_each_entry_bounded` does, with the same checks,
    reading each entry whole in one read.

    :param head: address of the ``struct list_head``
    :raises WalkError: see :func:`validate_list_for_each_bounded`
    :return: Iterator of (entry address, the entry's bytes) tuples.
    """
    entry_type = prog.type(type) if isinstance(type, str) else type
    size, offset = sizeof(entry_type), offsetof(entry_type, member)
    blocks: dict[int, bytes] = {}

    def read_head() -> tuple[int, int]:
        raw = prog.read(head, 16)
        return _U64.unpack_from(raw, 0)[0], _U64.unpack_from(raw, 8)[0]

    def read_node(addr: int) -> tuple[int, int]:
        raw = blocks[addr] = prog.read(addr - offset, size)
        return _U64.unpack_from(raw, offset)[0], _U64.unpack_from(raw, offset + 8)[0]

    for addr in _walk_list(head, read_head, read_node, what, limit):
        yield addr - offset, blocks.pop(addr)


# include/linux/xarray.h: an internal entry has its low two bits 10; node
# pointers are internal entries above 4096, sibling entries below 256.
_XA_ZERO_ENTRY = (257 << 2) | 2
_XA_CHUNK_SHIFT_MAX = 64


def _xa_is_node(entry: int) -> bool:
    return (entry & 3) == 2 and entry > 4096


def xa_for_each_block(
    prog: Program, xa: int, what: str, limit: int = DEFAULT_LIMIT
) -> Iterator[tuple[int, int]]:
    """
    Iterate over the entries of an XArray as
    :func:`drgn.helpers.linux.xarray.xa_for_each` does (in index order, zero
    entries skipped), reading each node in one read, and bounded: a corrupted
    tree (a node reached twice, a shift that does not descend, more than
    ``limit`` entries) raises :class:`WalkError`.

    :param xa: address of the ``struct xarray``
    :return: Iterator of (index, entry value) tuples.
    """
    node_type = prog.type("struct xa_node")
    shift_at, slots_at = offsetof(node_type, "shift"), offsetof(node_type, "slots")
    slots = struct.Struct(f"<{node_type.member('slots').type.length}Q")
    try:
        head = _U64.unpack(prog.read(xa + offsetof(prog.type("struct xarray"), "xa_head"), 8))[0]
    except FaultError as e:
        raise _fault(what, "cannot read the xarray head", e) from e
    if not _xa_is_node(head):
        if head and head != _XA_ZERO_ENTRY:
            yield 0, head
        return
    seen: set[int] = set()
    count = 0

    def read_node(
        entry: int, base: int, parent_shift: int
    ) -> tuple[int, int, Iterator[tuple[int, int]]]:
        node = entry - 2
        if node in seen:
            raise WalkError(what, node, "cycle (a node is reached twice)")
        seen.add(node)
        try:
            raw = prog.read(node, slots_at + slots.size)
        except FaultError as e:
            raise _fault(what, "fault reading an xarray node", e) from e
        shift = raw[shift_at]
        if shift >= parent_shift:
            raise WalkError(what, node, f"node shift {shift} does not descend")
        return base, shift, iter(enumerate(slots.unpack_from(raw, slots_at)))

    # Depth first, slot by slot: (first index, shift, the slots left).
    stack = [read_node(head, 0, _XA_CHUNK_SHIFT_MAX + 1)]
    while stack:
        base, shift, rest = stack[-1]
        for i, entry in rest:
            if not entry or entry == _XA_ZERO_ENTRY:
                continue
            index = base + (i << shift)
            if _xa_is_node(entry):
                stack.append(read_node(entry, index, shift))
                break
            if (entry & 3) == 2 and entry < 256:
                continue  # a sibling: its entry was yielded at the first slot
            count += 1
            if count > limit:
                raise WalkError(what, xa, f"more than {limit} entries")
            yield index, entry
        else:
            stack.pop()
