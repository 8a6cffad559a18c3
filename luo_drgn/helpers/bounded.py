# SPDX-License-Identifier: LGPL-2.1-or-later
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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from drgn import FaultError, Object, Type, container_of
from drgn.helpers import ValidationError

__all__ = (
    "DEFAULT_LIMIT",
    "WalkError",
    "fault_error",
    "not_in_dump",
    "validate_list_addresses",
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


def fault_error(what: str, reason: str, e: FaultError) -> WalkError:
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
    """
    seen: set[int] = set()
    prev_addr = head_addr
    try:
        addr = read_head()[0]
    except FaultError as e:
        raise fault_error(what, "cannot read list head", e) from e
    while True:
        if addr == head_addr:
            # Back at the head: its prev must be the last node, as drgn's
            # validator checks on its last hop.
            try:
                last = read_head()[1]
            except FaultError as e:
                raise fault_error(what, "cannot read list head", e) from e
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
            raise fault_error(what, "fault reading a list node", e) from e
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
    """
    entry_type = head.prog_.type(type) if isinstance(type, str) else type
    for node in validate_list_for_each_bounded(head, what or str(member), limit):
        yield container_of(node, entry_type, member)
