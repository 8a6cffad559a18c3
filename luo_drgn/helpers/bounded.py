"""
Bounded List Validation
-----------------------

The ``luo_drgn.helpers.bounded`` module provides list validators for memory
that may be corrupted, in the form of drgn's
:func:`drgn.helpers.linux.list.validate_list_for_each`.

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

It also reads lists and XArrays whole: :func:`validate_list_for_each_entry_block`
reads each entry in one read and :func:`validate_xa_for_each_block` each node, with
the same checks, for callers that walk tens of thousands of entries and
unpack a few members of each (drgn reads member by member).

These helpers are not LUO's: they are meant for drgn itself
(``drgn.helpers.linux.list`` and ``drgn.helpers.linux.xarray``), and kept
here until drgn has them.
# SPDX-License-Identifier: LGPL-2.1-or-later
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

from drgn import FaultError, Object, Program, Type, TypeKind, container_of, offsetof, sizeof
from drgn.helpers import ValidationError

from ._words import Words

__all__ = (
    "validate_list_addresses",
    "validate_list_for_each_bounded",
    "validate_list_for_each_entry_block",
    "validate_list_for_each_entry_bounded",
    "validate_xa_for_each_block",
)


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


def _fault_error(what: str, reason: str, e: FaultError) -> WalkError:
    """A :class:`WalkError` for a fault, the fault chained as its cause."""
    err = WalkError(what, e.address, reason)
    err.__cause__ = e
    return err


def validate_list_addresses(
    head_addr: int,
    read_head: Callable[[], tuple[int, int]],
    read_node: Callable[[int], tuple[int, int]],
    what: str,
    limit: int = DEFAULT_LIMIT,
) -> Iterator[int]:
    """
    Iterate over the node addresses of a list with the checks of
    :func:`validate_list_for_each_bounded`, over any reader: a caller that
    reads each entry whole in one read hands its own readers.

    :param head_addr: address of the ``struct list_head``
    :param read_head: gives the head's (next, prev)
    :param read_node: gives the (next, prev) of the node at an address
    :param what: what the list is, for the error message
    :raises WalkError: see :func:`validate_list_for_each_bounded`
    :return: Iterator of ``struct list_head`` addresses.
    :param limit: the most nodes a sane list has
    """
    seen: set[int] = set()
    prev_addr = head_addr
    try:
        addr = read_head()[0]
    except FaultError as e:
        raise _fault_error(what, "cannot read list head", e) from e
    while True:
        if addr == head_addr:
            # Back at the head: its prev must be the last node, as drgn's
            # validator checks on its last hop.
            try:
                last = read_head()[1]
            except FaultError as e:
                raise _fault_error(what, "cannot read list head", e) from e
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
            raise _fault_error(what, "fault reading a list node", e) from e
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

    for addr in validate_list_addresses(
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
    :param limit: the most entries a sane list has
    """
    entry_type = head.prog_.type(type) if isinstance(type, str) else type
    for node in validate_list_for_each_bounded(head, what or str(member), limit):
        yield container_of(node, entry_type, member)


def validate_list_for_each_entry_block(
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
    :param type: the entry type
    :param member: the name of the ``struct list_head`` member in the entry type
    :param what: what the list is, for the error message
    :param limit: the most entries a sane list has
    """
    entry_type = prog.type(type) if isinstance(type, str) else type
    size, offset = sizeof(entry_type), offsetof(entry_type, member)
    # struct list_head: next, then prev.
    words = Words.cached(prog)
    fmt = words.fmt  # byte order, then one pointer
    pair = struct.Struct(fmt[0] + 2 * fmt[1])
    blocks: dict[int, bytes] = {}

    def read_head() -> tuple[int, int]:
        nxt, prev = pair.unpack(words.read_bytes(prog, head, pair.size))
        return nxt, prev

    def read_node(addr: int) -> tuple[int, int]:
        raw = blocks[addr] = words.read_bytes(prog, addr - offset, size)
        nxt, prev = pair.unpack_from(raw, offset)
        return nxt, prev

    for addr in validate_list_addresses(head, read_head, read_node, what, limit):
        yield addr - offset, blocks.pop(addr)


# include/linux/xarray.h: an internal entry has its low two bits 10; node
# pointers are internal entries above 4096, sibling entries below 256.
_XA_ZERO_ENTRY = (257 << 2) | 2

_XA_CHUNK_SHIFT_MAX = 64


def _xa_is_node(entry: int) -> bool:
    return (entry & 3) == 2 and entry > 4096


def validate_xa_for_each_block(
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
    :param what: what the XArray is, for the error message
    :param limit: the most entries a sane XArray has
    """
    words = Words.cached(prog)
    node_type = prog.type("struct xa_node")
    shift_at, slots_at = offsetof(node_type, "shift"), offsetof(node_type, "slots")
    slots = struct.Struct(f"{words.fmt[0]}{node_type.member('slots').type.length}{words.fmt[1]}")
    try:
        head = words.read(prog, xa + offsetof(prog.type("struct xarray"), "xa_head"))
    except FaultError as e:
        raise _fault_error(what, "cannot read the xarray head", e) from e
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
            raw = words.read_bytes(prog, node, slots_at + slots.size)
        except FaultError as e:
            raise _fault_error(what, "fault reading an xarray node", e) from e
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
            if (entry & 3) == 2:
                # xa_is_internal() and not a node: a sibling (its entry was
                # yielded at its first slot), or a retry entry a concurrent
                # deletion left for RCU readers, which xas_retry() skips.
                continue
            count += 1
            if count > limit:
                raise WalkError(what, xa, f"more than {limit} entries")
            yield index, entry
        else:
            stack.pop()


_FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}


class _Fields:
    """Chosen members of a structure: where they are, how to unpack them.
    One read covers the span from the first member used to the last, and
    one ``struct`` format unpacks them all, unless they overlap (a host's
    walk unpacks a few hundred thousand rows)."""

    def __init__(self, prog: Program, type: str, members: tuple[str, ...]) -> None:
        ref = Object(prog, type, address=0)  # a reference: nothing is read
        order = Words.cached(prog).fmt[0]  # "<" or ">"
        fields: list[tuple[int, int, str, bool]] = []  # offset, size, format, is bool
        for path in members:
            member = ref
            for part in path.split("."):
                member = member.member_(part)
            kind = member.type_.unaliased_kind()
            size = sizeof(member.type_)
            if member.bit_field_size_ is not None or size not in _FORMATS:
                raise NotImplementedError(f"{type}.{path} cannot be unpacked")
            base = member.type_.unaliased()
            if kind == TypeKind.ENUM and base.type is not None:
                base = base.type
            signed = kind in (TypeKind.INT, TypeKind.ENUM) and bool(base.is_signed)
            fmt = _FORMATS[size] if signed else _FORMATS[size].upper()
            assert member.address_ is not None
            fields.append((member.address_, size, fmt, kind == TypeKind.BOOL))
        self.start = min(at for at, _, _, _ in fields)
        self.size = max(at + size for at, size, _, _ in fields) - self.start
        self.bools = [i for i, (_, _, _, is_bool) in enumerate(fields) if is_bool]
        self.layout: struct.Struct | None
        self.each: list[tuple[struct.Struct, int]] = []  # with no layout: format, offset
        # The members in memory order, the gaps between them padding ("x").
        placed = sorted(range(len(fields)), key=lambda i: fields[i][0])
        layout, at = order, self.start
        for i in placed:
            offset, size, fmt, _ = fields[i]
            if offset < at:  # members that overlap (a union's): one format each
                self.layout = None
                self.each = [
                    (struct.Struct(order + fmt), offset - self.start)
                    for offset, _, fmt, _ in fields
                ]
                return
            layout += "x" * (offset - at) + fmt
            at = offset + size
        self.layout = struct.Struct(layout)
        # Where each member asked for is in the unpacked tuple.
        self.positions = [placed.index(i) for i in range(len(fields))]
        self.in_order = self.positions == list(range(len(fields)))

    def read(self, prog: Program, address: int, physical: bool = False) -> list[Any]:
        """Read the members of the structure at ``address``."""
        raw = Words.cached(prog).read_bytes(prog, address + self.start, self.size, physical)
        return self._unpack(raw, 0)

    def unpack(self, raw: bytes) -> list[Any]:
        """Unpack the members from the bytes of a whole structure."""
        return self._unpack(raw, self.start)

    def _unpack(self, raw: bytes, base: int) -> list[Any]:
        if self.layout is None:
            out = [s.unpack_from(raw, base + at)[0] for s, at in self.each]
        else:
            values = self.layout.unpack_from(raw, base)
            out = list(values) if self.in_order else [values[i] for i in self.positions]
        for i in self.bools:
            out[i] = bool(out[i])
        return out


def _fields(prog: Program, type: str, *members: str) -> _Fields:
    key = ("struct_member_fields", type, members)
    try:
        fields: _Fields = prog.cache[key]
    except KeyError:
        fields = prog.cache[key] = _Fields(prog, type, members)
    return fields
