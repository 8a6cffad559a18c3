"""Bounded walks over kernel lists.

drgn's ``list_for_each_entry`` trusts the list: a corrupted vmcore with a
cycle makes it loop forever.  The walks here stop on a cycle, on a broken
back pointer, on a fault and after a bound, and say which by raising
:class:`WalkError` after yielding everything that was read safely.
"""

from __future__ import annotations

from typing import Iterator, Union

from drgn import FaultError, Object, Type, container_of

# Generous enough for tens of thousands of preserved files per session, small
# enough that a walk over garbage ends in well under a second.
DEFAULT_LIMIT = 1 << 20


class WalkError(Exception):
    """A walk stopped before the end of its list.

    :ivar address: the address at which it stopped
    :ivar what: a short description of the list that was walked
    """

    def __init__(self, what: str, address: int, reason: str) -> None:
        super().__init__(f"{what}: {reason} at {address:#x}")
        self.what = what
        self.address = address
        self.reason = reason


def list_nodes(head: Object, what: str, limit: int = DEFAULT_LIMIT,
               check_prev: bool = True) -> Iterator[Object]:
    """
    Iterate over the nodes of a ``struct list_head`` list, safely.

    :param head: ``struct list_head *``
    :param what: what the list is, for the error message
    :raises WalkError: on a cycle that does not pass through the head, a
        node whose ``prev`` does not point back, a fault, or after ``limit``
        nodes
    :return: Iterator of ``struct list_head *`` objects.
    """
    head = head.read_()
    head_addr = head.value_()
    seen: set[int] = set()
    prev_addr = head_addr
    try:
        node = head.next.read_()
    except FaultError as e:
        raise WalkError(what, e.address, "cannot read list head") from None
    while True:
        addr = node.value_()
        if addr == head_addr:
            return
        if addr == 0:
            raise WalkError(what, prev_addr, "NULL next pointer")
        if addr in seen:
            raise WalkError(what, addr, "cycle (a node is reached twice)")
        if len(seen) >= limit:
            raise WalkError(what, addr, f"more than {limit} entries")
        seen.add(addr)
        try:
            nxt = node.next.read_()
            back = node.prev.value_()
        except FaultError as e:
            raise WalkError(what, e.address, "fault reading a list node") from None
        if check_prev and back != prev_addr:
            raise WalkError(what, addr, f"prev pointer {back:#x} does not point back to "
                                        f"{prev_addr:#x}")
        yield node
        prev_addr = addr
        node = nxt


def list_entries(head: Object, type: Union[str, Type], member: str,
                 what: str, limit: int = DEFAULT_LIMIT) -> Iterator[Object]:
    """
    Like drgn's ``list_for_each_entry``, bounded (see :func:`list_nodes`).

    :param head: ``struct list_head *``
    :return: Iterator of ``type *`` objects.
    """
    for node in list_nodes(head, what, limit):
        yield container_of(node, type, member)
