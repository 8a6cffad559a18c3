# SPDX-License-Identifier: LGPL-2.1-or-later
"""
LUO Handover
------------

The ``luo_drgn.helpers.liveupdate_handover`` module provides helpers for
what the Live Update Orchestrator hands to the next kernel and what it got
from the previous one: the serialized sessions and files (in KHO block
chains since Linux 7.2, in contiguous arrays before), the incoming sessions
still waiting to be deserialized, the ``luo_preserved_files`` index (7.1),
File-Lifecycle-Bound objects (FLBs: the 6.19.y stable backport and 7.0,
``luo_flb.c``), and the memfd handler's serialized state
(``mm/memfd_luo.c``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from drgn import Object, Program, TypeKind, container_of, sizeof
from drgn.helpers.common.prog import takes_program_or_default
from drgn.helpers.linux.list import list_empty, list_for_each_entry
from drgn.helpers.linux.xarray import xa_for_each

from .bounded import (
    WalkError,
    _fields,
    validate_list_for_each_entry_bounded,
    validate_xa_for_each_block,
)
from .kho import (
    kho_read_phys,
    kho_read_phys_array,
    validate_kho_block_chain_for_each_entry,
)
from .liveupdate import (
    LUO_DIRECTIONS,
    _bytes,
    _mutex_owner,
    _session_header,
)
from .liveupdate_layout import (
    _has_block_sets,
)
from .vfs import _shmem_fops

__all__ = (
    "luo_flb_counts",
    "luo_flb_data",
    "luo_flb_incoming_status",
    "luo_flb_lock_owner",
    "luo_for_each_flb",
    "luo_for_each_pending_incoming_session",
    "luo_for_each_preserved_file",
    "luo_outgoing_ser",
    "luo_session_ser_file_set",
    "memfd_luo_file_seals",
    "memfd_luo_ser_scalars",
    "memfd_luo_serialized_state",
    "validate_luo_for_each_flb",
    "validate_luo_for_each_preserved_file_entry",
    "validate_luo_for_each_serialized_flb",
    "validate_luo_for_each_serialized_session",
    "validate_luo_session_ser_for_each_file",
)


# Serialized arrays and block chains: far above any real count, low enough
# that garbage cannot keep a reader busy.
_MAX_SERIALIZED_ENTRIES = 1 << 20


def _serialized_sessions_pre72(prog: Program, header: Object, what: str) -> Iterator[Object]:
    if not header.header_ser or not header.ser:
        return
    count = header.header_ser.count.value_()
    if not 0 <= count <= _MAX_SERIALIZED_ENTRIES:
        raise WalkError(what, header.header_ser.value_(), f"impossible session count {count}")
    for i in range(count):
        yield header.ser[i].read_()


@takes_program_or_default
def validate_luo_for_each_serialized_session(
    prog: Program, direction: str = "outgoing"
) -> Iterator[Object]:
    """
    Iterate over the session entries serialized for (outgoing) or by
    (incoming, before deserialization) a kexec.

    Outgoing entries are meaningful once LUO froze (:func:`luo_outgoing_frozen`).
    Incoming entries are readable until deserialization destroys them.

    :param direction: ``"outgoing"`` or ``"incoming"``
    :raises WalkError: on a cycle, a fault or an impossible count
    :return: Iterator of ``struct luo_session_ser`` value objects.
    """
    header = _session_header(prog, direction)
    what = f"serialized {direction} sessions"
    if not _has_block_sets(prog):
        yield from _serialized_sessions_pre72(prog, header, what)
        return
    head_pa = header.block_set.head_pa.value_()
    if direction == "outgoing" and header.sessions_pa:
        # Written at freeze: zero until then, the first block after.
        head_pa = header.sessions_pa[0].value_() or head_pa
    yield from validate_kho_block_chain_for_each_entry(
        prog, head_pa, "struct luo_session_ser", what
    )


def luo_session_ser_file_set(session_ser: Object) -> tuple[int, int]:
    """
    Get where a serialized session's file entries are and how many it
    claims.

    :param session_ser: ``struct luo_session_ser``
    :return: (physical address, count)
    """
    # v6: luo_session_ser {name, files, pgcnt, count}; 6.19 and later nest
    # them in struct luo_file_set_ser.
    if session_ser.type_.has_member("file_set_ser"):
        fss = session_ser.file_set_ser
        return int(fss.files.value_()), int(fss.count.value_())
    return int(session_ser.files.value_()), int(session_ser.count.value_())


def validate_luo_session_ser_for_each_file(session_ser: Object) -> Iterator[Object]:
    """
    Iterate over the file entries of a serialized session.

    :param session_ser: ``struct luo_session_ser``
    :raises WalkError: on a cycle, a fault or an impossible count
    :return: Iterator of ``struct luo_file_ser`` value objects.
    """
    prog = session_ser.prog_
    files_pa, count = luo_session_ser_file_set(session_ser)
    name = _bytes(session_ser.name).decode(errors="replace")
    what = f"serialized files of session {name!r}"
    if not files_pa:
        return
    if _has_block_sets(prog):
        yield from validate_kho_block_chain_for_each_entry(
            prog, files_pa, "struct luo_file_ser", what
        )
        return
    # Before 7.2: one physically contiguous array of count entries.
    if not 0 <= count <= _MAX_SERIALIZED_ENTRIES:
        raise WalkError(what, files_pa, f"impossible file count {count}")
    yield from kho_read_phys_array(prog, prog.type("struct luo_file_ser"), files_pa, count, what)


@takes_program_or_default
def luo_for_each_pending_incoming_session(prog: Program) -> Iterator[Object]:
    """
    Iterate over sessions handed over by the previous kernel that are not
    deserialized yet (deserialization happens at the first open of
    ``/dev/liveupdate``).  Empty once they are.

    :return: Iterator of ``struct luo_session_ser`` value objects.
    """
    header = _session_header(prog, "incoming")
    if not header.active or not list_empty(header.list.address_of_()):
        return iter(())
    # 7.2: deserialization destroys the incoming block set; a non-empty one
    # means the entries still wait.
    if _has_block_sets(prog) and not header.block_set.head_pa:
        return iter(())
    return validate_luo_for_each_serialized_session(prog, "incoming")


@takes_program_or_default
def luo_for_each_preserved_file(prog: Program) -> Iterator[tuple[int, Object]]:
    """
    Iterate over ``luo_preserved_files`` (7.1 and later): the index of every
    preserved or retrieved file, keyed by the handler's ``get_id()`` (the
    inode for memfds) or the struct file pointer.

    :return: Iterator of (index, ``struct file *``) tuples.
    """
    file_type = prog.type("struct file *")
    for index, entry in xa_for_each(prog["luo_preserved_files"].address_of_()):
        yield index, Object(prog, file_type, entry.value_())


@takes_program_or_default
def luo_for_each_flb(prog: Program) -> Iterator[Object]:
    """
    Iterate over the registered File-Lifecycle-Bound objects.

    :return: Iterator of ``struct liveupdate_flb *`` objects.
    """
    # The per-FLB state (list, counts) lives in flb->private, a member marked
    # __private, which the debug info names "private".
    return list_for_each_entry(
        "struct liveupdate_flb", prog["luo_flb_global"].list.address_of_(), "private.list"
    )


@takes_program_or_default
def validate_luo_for_each_flb(prog: Program) -> Iterator[Object]:
    """
    Like :func:`luo_for_each_flb`, validating the list as it goes.

    :raises WalkError: on a corrupted list
    :return: Iterator of ``struct liveupdate_flb *`` objects.
    """
    return validate_list_for_each_entry_bounded(
        "struct liveupdate_flb",
        prog["luo_flb_global"].list.address_of_(),
        "private.list",
        "luo_flb_global.list",
    )


def luo_flb_counts(flb: Object) -> tuple[int, int]:
    """
    Get the (outgoing, incoming) user counts of an FLB.

    :param flb: ``struct liveupdate_flb *``
    :return: (outgoing users, incoming users)
    """
    private = flb.member_("private")

    def count(state: Object) -> int:
        # 7.0 kept a plain long; 7.1 made it a refcount_t.
        c = state.count
        if c.type_.unaliased_kind() == TypeKind.STRUCT:
            return int(c.refs.counter.value_())
        return int(c.value_())

    return count(private.outgoing), count(private.incoming)


def _flb_state(flb: Object, direction: str) -> Object:
    """``struct luo_flb_private_state`` of one direction of an FLB."""
    if direction not in LUO_DIRECTIONS:
        raise ValueError(f"direction must be one of {LUO_DIRECTIONS}, not {direction!r}")
    return flb.member_("private").member_(direction)


def luo_flb_lock_owner(flb: Object, direction: str) -> tuple[int, bytes] | None:
    """
    Get who holds the lock of one direction of an FLB, or None when it is
    free.  ``liveupdate_flb_put_outgoing()`` and ``_put_incoming()`` hold it
    from the count's decrement through ``.unpreserve()``/``.finish()``, and
    ``luo_flb_file_preserve_one()`` through ``.preserve()``: while it is
    held, the count is in flight.

    :param flb: ``struct liveupdate_flb *``
    :param direction: ``"outgoing"`` or ``"incoming"``
    :return: (pid, comm) of the owning task; None also on a layout whose
        state has no lock
    """
    try:
        lock = _flb_state(flb, direction).lock
    except AttributeError:
        return None
    return _mutex_owner(lock.address_of_())


def luo_flb_incoming_status(flb: Object) -> tuple[int, bool] | None:
    """
    Get where an FLB stands in this kernel's incoming lifecycle, as
    ``luo_flb_retrieve_one()`` and ``liveupdate_flb_put_incoming()`` keep
    it (7.2): the retrieve status (0 not attempted, 1 retrieved, a negative
    errno for a failed ``.retrieve()``, returned again on every later call)
    and whether ``.finish()`` ran.

    :param flb: ``struct liveupdate_flb *``
    :return: (retrieve_status, finished), or None on a layout without them
    """
    state = _flb_state(flb, "incoming")
    try:
        return int(state.retrieve_status.value_()), bool(state.finished.value_())
    except AttributeError:
        return None


def validate_luo_for_each_serialized_flb(prog: Program, direction: str) -> Iterator[Object]:
    """
    Iterate over the serialized FLB array of one direction (7.2): the page
    at ``flbs_pa``, a ``struct luo_flb_header_ser`` then ``count`` entries.
    Outgoing, ``luo_flb_serialize()`` writes one entry per FLB with users at
    reboot (empty before); incoming, it is what the previous kernel handed
    over, read by ``luo_flb_retrieve_one()``.

    :param direction: ``"outgoing"`` or ``"incoming"``
    :return: Iterator of ``struct luo_flb_ser *`` objects (none when the
        direction is not active: no handover, or no FLB page).
    :raises WalkError: if the header's count cannot fit its page
    """
    if direction not in LUO_DIRECTIONS:
        raise ValueError(f"direction must be one of {LUO_DIRECTIONS}, not {direction!r}")
    header = prog["luo_flb_global"].member_(direction)
    if not header.active or not header.header_ser:
        return
    header_ser = header.header_ser
    count = int(header_ser.count.value_())
    entry_t = prog.type("struct luo_flb_ser")
    # LUO_FLB_MAX: the entries that fit in the LUO_FLB_PGCNT (1) page.
    limit = (prog["PAGE_SIZE"].value_() - sizeof(header_ser.type_.type)) // sizeof(entry_t)
    if not 0 <= count <= limit:
        raise WalkError(f"luo_flb_global.{direction}", header_ser.value_(), f"{count} FLB entries")
    ser = header.ser
    for i in range(count):
        yield ser + i


def memfd_luo_file_seals(file: Object) -> int | None:
    """
    Get the seals of a memfd now, as ``F_GET_SEALS`` returns them
    (``memfd_luo_file_seals_ptr()``: ``SHMEM_I(inode)->seals``).

    ``memfd_luo_preserve()`` records the seals in the serialized state once,
    and ``memfd_luo_freeze()`` updates only the position, so a seal added
    after preserve is not handed over.

    :param file: ``struct file *``
    :return: the seals, or None for a file that is not a shmem memfd
    """
    if file.f_op.value_() != _shmem_fops(file.prog_):
        return None
    info = container_of(file.f_inode, "struct shmem_inode_info", "vfs_inode")
    return int(info.seals.value_())


def memfd_luo_serialized_state(luo_file: Object) -> Object | None:
    """
    Get the memfd handler's serialized state of a preserved memfd, or None
    when nothing was serialized (or the kernel has no memfd handler).

    The memfd handler frees this state when the file is retrieved, so it is
    meaningful only before a retrieve.

    :param luo_file: ``struct luo_file *`` whose handler is the memfd one
    :return: ``struct memfd_luo_ser`` value object
    """
    prog = luo_file.prog_
    pa = int(luo_file.serialized_data.value_())
    if not pa:
        return None
    try:
        t = prog.type("struct memfd_luo_ser")
    except LookupError:
        return None
    return kho_read_phys(prog, t, pa)


def memfd_luo_ser_scalars(prog: Program, serialized_data: int) -> dict[str, Any] | None:
    """The integer members of memfd_luo_serialized_state(), by name, read
    in one physical read.

    :param serialized_data: the luo_file's (the physical address of its
        ``struct memfd_luo_ser``)
    :return: member name -> value, or None when nothing was serialized or the kernel has no
        ``struct memfd_luo_ser``
    """
    if not serialized_data:
        return None
    try:
        names = prog.cache["memfd_luo_ser_members"]
    except KeyError:
        try:
            t = prog.type("struct memfd_luo_ser")
        except LookupError:
            names = None
        else:
            names = tuple(
                m.name
                for m in t.members or ()
                if m.name is not None
                and m.type.unaliased_kind() in (TypeKind.INT, TypeKind.BOOL, TypeKind.ENUM)
            )
        prog.cache["memfd_luo_ser_members"] = names
    if names is None:
        return None
    values = _fields(prog, "struct memfd_luo_ser", *names).read(
        prog, serialized_data, physical=True
    )
    # One value per name: _Fields.read() unpacks the members it was given.
    return dict(zip(names, values))


@takes_program_or_default
def validate_luo_for_each_preserved_file_entry(
    prog: Program, limit: int = _MAX_SERIALIZED_ENTRIES
) -> Iterator[tuple[int, int]]:
    """
    Iterate over ``luo_preserved_files`` as :func:`luo_for_each_preserved_file`
    does, each XArray node read whole (keyed by inode numbers, the tree is
    sparse and deep: drgn's ``xa_for_each()`` reads about 80 times an
    entry), bounded (:func:`~luo_drgn.helpers.bounded.validate_xa_for_each_block`).

    :param limit: the most entries a sane index has
    :return: Iterator of (index, ``struct file`` address) tuples.
    :raises WalkError: on a corrupted tree
    """
    yield from validate_xa_for_each_block(
        prog, prog["luo_preserved_files"].address_of_().value_(), "luo_preserved_files", limit
    )


@takes_program_or_default
def luo_outgoing_ser(prog: Program) -> Object:
    """
    Get the header of what this kernel hands over (``luo_global.luo_ser_out``,
    7.2): its ABI string (``compatible``) and, once frozen, the physical
    address of the serialized sessions (``sessions_pa``).

    :return: ``struct luo_ser *`` (NULL before LUO set it up)
    """
    return prog["luo_global"].luo_ser_out


def luo_flb_data(flb: Object, direction: str) -> int:
    """
    Get the data an FLB's ``.preserve()`` returned (outgoing) or the
    previous kernel handed over (incoming).

    :param flb: ``struct liveupdate_flb *``
    :param direction: ``"outgoing"`` or ``"incoming"``
    :return: the ``data`` of that direction's private state
    """
    return int(_flb_state(flb, direction).data.value_())
