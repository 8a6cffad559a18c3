"""
LUO
---

The ``luo_drgn.helpers`` module provides helpers for the Linux kernel's Live
Update Orchestrator (``kernel/liveupdate/``): file handlers, sessions and
their preserved files, what was serialized for the next kernel, the incoming
data still waiting in KHO memory, the ``luo_preserved_files`` index, FLBs,
and the struct file reference count.

Every layout from the v6 patch series to 7.2 is supported; see
:mod:`luo_drgn.layout`.  List walks are bounded (:mod:`luo_drgn.walk`): a
corrupted list raises :class:`~luo_drgn.walk.WalkError` instead of looping.
"""

from __future__ import annotations

from typing import Iterator, Optional

from drgn import FaultError, Object, Program, Type, TypeKind, cast
from drgn.helpers.common.prog import takes_program_or_default
from drgn.helpers.linux.xarray import xa_for_each

from .layout import luo_layout
from .walk import WalkError, list_entries

__all__ = (
    "DIRECTIONS",
    "file_refcount",
    "for_each_file_handler",
    "for_each_flb",
    "handler_compatible",
    "for_each_pending_incoming_session",
    "for_each_preserved_file",
    "for_each_serialized_file",
    "for_each_serialized_session",
    "for_each_session",
    "for_each_session_file",
    "flb_counts",
    "handler_flbs",
    "luo_enabled",
    "luo_file_retrieve_status",
    "luo_liveupdate_num",
    "luo_outgoing_frozen",
    "memfd_serialized_state",
    "read_phys_object",
    "serialized_session_files",
    "session_file_count",
    "session_header_count",
    "session_name",
)

DIRECTIONS = ("outgoing", "incoming")

# Serialized arrays and block chains: far above any real count, low enough
# that garbage cannot keep a reader busy.
MAX_SERIALIZED_ENTRIES = 1 << 20
MAX_BLOCKS = 1 << 16
KHO_BLOCK_HEADER_SIZE = 16  # struct kho_block_header_ser {u64 next; u64 count;}
MAX_BLOCK_SIZE = 1 << 24


# --- handlers ---------------------------------------------------------------


@takes_program_or_default
def for_each_file_handler(prog: Program) -> Iterator[Object]:
    """
    Iterate over the registered LUO file handlers.

    :return: Iterator of ``struct liveupdate_file_handler *`` objects.
    """
    # Marked __private since 6.19; that is a sparse annotation, and the
    # member is still called "list" in the debug info.
    return list_entries(prog["luo_file_handler_list"].address_of_(),
                        "struct liveupdate_file_handler", "list",
                        "luo_file_handler_list")


# --- sessions and files -----------------------------------------------------


def _session_header(prog: Program, direction: str) -> Object:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    return prog["luo_session_global"].member_(direction)


@takes_program_or_default
def for_each_session(prog: Program, direction: str = "outgoing") -> Iterator[Object]:
    """
    Iterate over the outgoing sessions (created in this kernel, to be handed
    over) or the incoming ones (handed over by the previous kernel and
    deserialized).

    :param direction: ``"outgoing"`` or ``"incoming"``
    :return: Iterator of ``struct luo_session *`` objects.
    """
    head = _session_header(prog, direction).list.address_of_()
    return list_entries(head, "struct luo_session", "list",
                        f"luo_session_global.{direction}.list")


@takes_program_or_default
def session_header_count(prog: Program, direction: str = "outgoing") -> int:
    """Return the session count a ``struct luo_session_header`` claims."""
    return _session_header(prog, direction).count.value_()


def session_name(session: Object) -> str:
    """
    :param session: ``struct luo_session *``
    """
    return session.name.string_().decode(errors="replace")


def _files_head(session: Object) -> Object:
    # v6 series: session->files_list.  6.19 and later: session->file_set.
    if luo_layout(session.prog_).file_set:
        return session.file_set.files_list.address_of_()
    return session.files_list.address_of_()


def for_each_session_file(session: Object) -> Iterator[Object]:
    """
    Iterate over the preserved (outgoing) or deserialized (incoming) files
    of a session.

    :param session: ``struct luo_session *``
    :return: Iterator of ``struct luo_file *`` objects.
    """
    return list_entries(_files_head(session), "struct luo_file", "list",
                        f"files of session {session_name(session)!r}")


def session_file_count(session: Object) -> int:
    """
    Return the file count a session claims (its list may disagree).

    :param session: ``struct luo_session *``
    """
    if luo_layout(session.prog_).file_set:
        return session.file_set.count.value_()
    return session.count.value_()


def luo_file_retrieve_status(luo_file: Object) -> int:
    """
    Return the retrieve state of an incoming file, normalised across layouts:
    0 never attempted, 1 retrieved, a negative errno for a failed retrieve.

    :param luo_file: ``struct luo_file *``
    """
    # 6.19.y/7.0 replaced "bool retrieved" with "int retrieve_status", which
    # keeps the errno of a failed retrieve; any positive value means success.
    if luo_layout(luo_file.prog_).retrieve_field == "retrieve_status":
        status = luo_file.retrieve_status.value_()
        return 1 if status > 0 else status
    return 1 if luo_file.retrieved.value_() else 0


# --- LUO-wide state ---------------------------------------------------------


@takes_program_or_default
def luo_enabled(prog: Program) -> bool:
    """Return whether LUO is enabled (``liveupdate=on`` and KHO up)."""
    return bool(prog["luo_global"].enabled.value_())


@takes_program_or_default
def luo_liveupdate_num(prog: Program) -> int:
    """Return how many live updates led to this kernel (0 on a cold boot)."""
    return prog["luo_global"].liveupdate_num.value_()


@takes_program_or_default
def luo_outgoing_frozen(prog: Program) -> Optional[bool]:
    """
    Return whether the outgoing sessions were serialized for a kexec (the
    "frozen" state), or None where memory cannot tell.
    """
    layout = luo_layout(prog)
    out = prog["luo_session_global"].outgoing
    if layout.serialize_rwsem:
        # 7.2: luo_session_serialize() takes luo_session_serialize_rwsem for
        # write and never releases it on success (RWSEM_WRITER_LOCKED, bit 0).
        return bool(prog["luo_session_serialize_rwsem"].count.counter.value_() & 1)
    # Before 7.2 nothing lasting is left but the serialized entries: the
    # header count matches and names were written.
    if not out.header_ser:
        return None
    count = out.header_ser.count.value_()
    if count == 0:
        return None if session_header_count(prog, "outgoing") == 0 else False
    return count == session_header_count(prog, "outgoing") and bool(out.ser[0].name[0])


# --- serialized data (what crosses the kexec) -------------------------------


def read_phys_object(prog: Program, type_name: str, pa: int) -> Object:
    """
    Read a value of ``type_name`` at a physical address.

    Serialized LUO data is addressed physically (it must survive the kexec);
    reading it through physical memory needs no direct-map translation and
    works on any core drgn can open.

    :return: a value object (it has no address)
    """
    t = prog.type(type_name)
    return Object.from_bytes_(prog, t, prog.read(pa, t.size, True))


def _phys_array(prog: Program, t: Type, pa: int, count: int, what: str) -> list[Object]:
    """``count`` consecutive values of type ``t`` at physical ``pa``, read at once."""
    try:
        raw = prog.read(pa, count * t.size, True)
    except FaultError as e:
        raise WalkError(what, e.address, "cannot read serialized entries") from None
    return [Object.from_bytes_(prog, t, raw, bit_offset=i * t.size * 8) for i in range(count)]


def _block_chain(prog: Program, head_pa: int, entry_type: str,
                 what: str) -> Iterator[Object]:
    """Entries of a 7.2 KHO block chain starting at physical ``head_pa``."""
    t = prog.type(entry_type)
    seen: set[int] = set()
    pa = head_pa
    while pa:
        if pa in seen:
            raise WalkError(what, pa, "cycle in the block chain")
        if len(seen) >= MAX_BLOCKS:
            raise WalkError(what, pa, f"more than {MAX_BLOCKS} blocks")
        seen.add(pa)
        try:
            header = read_phys_object(prog, "struct kho_block_header_ser", pa)
        except FaultError as e:
            raise WalkError(what, e.address, "cannot read a block header") from None
        count, nxt = header.count.value_(), header.next.value_()
        if count * t.size + KHO_BLOCK_HEADER_SIZE > MAX_BLOCK_SIZE:
            raise WalkError(what, pa, f"impossible entry count {count}")
        yield from _phys_array(prog, t, pa + KHO_BLOCK_HEADER_SIZE, count, what)
        pa = nxt


def _serialized_sessions_pre72(prog: Program, header: Object,
                               what: str) -> Iterator[Object]:
    if not header.header_ser or not header.ser:
        return
    count = header.header_ser.count.value_()
    if not 0 <= count <= MAX_SERIALIZED_ENTRIES:
        raise WalkError(what, header.header_ser.value_(), f"impossible session count {count}")
    for i in range(count):
        yield header.ser[i].read_()


@takes_program_or_default
def for_each_serialized_session(prog: Program, direction: str = "outgoing") -> Iterator[Object]:
    """
    Iterate over the session entries serialized for (outgoing) or by
    (incoming, before deserialization) a kexec.

    Outgoing entries are meaningful once LUO froze (:func:`luo_outgoing_frozen`).
    Incoming entries are readable until deserialization destroys them.

    :return: Iterator of ``struct luo_session_ser`` value objects.
    """
    layout = luo_layout(prog)
    header = _session_header(prog, direction)
    what = f"serialized {direction} sessions"
    if not layout.block_sets:
        yield from _serialized_sessions_pre72(prog, header, what)
        return
    bs = header.block_set
    head_pa = bs.head_pa.value_()
    if direction == "outgoing" and header.sessions_pa:
        # Written at freeze: zero until then, the first block after.
        head_pa = header.sessions_pa[0].value_() or head_pa
    yield from _block_chain(prog, head_pa, "struct luo_session_ser", what)


def serialized_session_files(session_ser: Object) -> tuple[int, int]:
    """
    Return where a serialized session's file entries are and how many it
    claims.

    :param session_ser: ``struct luo_session_ser``
    :return: (physical address, count)
    """
    # v6: luo_session_ser {name, files, pgcnt, count}; 6.19 and later nest
    # them in struct luo_file_set_ser.
    if session_ser.type_.has_member("file_set_ser"):
        fss = session_ser.file_set_ser
        return fss.files.value_(), fss.count.value_()
    return session_ser.files.value_(), session_ser.count.value_()


def for_each_serialized_file(session_ser: Object) -> Iterator[Object]:
    """
    Iterate over the file entries of a serialized session.

    :param session_ser: ``struct luo_session_ser``
    :return: Iterator of ``struct luo_file_ser`` value objects.
    """
    prog = session_ser.prog_
    files_pa, count = serialized_session_files(session_ser)
    name = session_ser.name.string_().decode(errors="replace")
    what = f"serialized files of session {name!r}"
    if not files_pa:
        return
    if luo_layout(prog).block_sets:
        yield from _block_chain(prog, files_pa, "struct luo_file_ser", what)
        return
    # Before 7.2: one physically contiguous array of count entries.
    if not 0 <= count <= MAX_SERIALIZED_ENTRIES:
        raise WalkError(what, files_pa, f"impossible file count {count}")
    yield from _phys_array(prog, prog.type("struct luo_file_ser"), files_pa, count, what)


@takes_program_or_default
def for_each_pending_incoming_session(prog: Program) -> Iterator[Object]:
    """
    Iterate over sessions handed over by the previous kernel that are not
    deserialized yet (deserialization happens at the first open of
    /dev/liveupdate).  Empty once they are.

    :return: Iterator of ``struct luo_session_ser`` value objects.
    """
    header = _session_header(prog, "incoming")
    if not header.active or not _list_empty(header.list):
        return iter(())
    layout = luo_layout(prog)
    # 7.2: deserialization destroys the incoming block set; a non-empty one
    # means the entries still wait.
    if layout.block_sets and not header.block_set.head_pa:
        return iter(())
    return for_each_serialized_session(prog, "incoming")


def _list_empty(head: Object) -> bool:
    return head.next.value_() == head.address_


# --- the luo_preserved_files index (7.1+) -----------------------------------


@takes_program_or_default
def for_each_preserved_file(prog: Program) -> Iterator[tuple[int, Object]]:
    """
    Iterate over ``luo_preserved_files`` (7.1 and later): the index of every
    preserved or retrieved file, keyed by the handler's ``get_id()`` (the
    inode for memfds) or the struct file pointer.

    :raises WalkError: after :data:`MAX_SERIALIZED_ENTRIES` entries (a
        corrupted tree can lead the walk back into itself)
    :return: Iterator of (index, ``struct file *``) tuples.
    """
    xa = prog["luo_preserved_files"].address_of_()
    for n, (index, entry) in enumerate(xa_for_each(xa)):
        if n >= MAX_SERIALIZED_ENTRIES:
            raise WalkError("luo_preserved_files", xa.value_(),
                            f"more than {MAX_SERIALIZED_ENTRIES} entries")
        yield index, cast("struct file *", entry)


# --- FLBs (6.19.y/7.0 and later) --------------------------------------------


@takes_program_or_default
def for_each_flb(prog: Program) -> Iterator[Object]:
    """
    Iterate over the registered File-Lifecycle-Bound objects.

    :return: Iterator of ``struct liveupdate_flb *`` objects.
    """
    # The per-FLB state (list, counts) lives in flb->private, a member marked
    # __private, which the debug info names "private".
    return list_entries(prog["luo_flb_global"].list.address_of_(),
                        "struct liveupdate_flb", "private.list", "luo_flb_global.list")


def flb_counts(flb: Object) -> tuple[int, int]:
    """
    Return the (outgoing, incoming) user counts of an FLB.

    :param flb: ``struct liveupdate_flb *``
    """
    private = flb.member_("private")

    def count(state: Object) -> int:
        # 7.0 kept a plain long; 7.1 made it a refcount_t.
        c = state.count
        if c.type_.unaliased_kind() == TypeKind.STRUCT:
            return c.refs.counter.value_()
        return c.value_()

    return count(private.outgoing), count(private.incoming)


def handler_flbs(handler: Object) -> Iterator[Object]:
    """
    Iterate over the FLBs a file handler depends on.

    :param handler: ``struct liveupdate_file_handler *``
    :return: Iterator of ``struct liveupdate_flb *`` objects.
    """
    for link in list_entries(handler.flb_list.address_of_(), "struct luo_flb_link", "list",
                             "handler flb_list"):
        yield link.flb


# --- struct file ------------------------------------------------------------


def file_refcount(file: Object) -> int:
    """
    Return the number of references held on a struct file.

    :param file: ``struct file *``
    :return: the count; a value at or above 2**63 means the file is dead.
    """
    # Since 6.13 ("fs: add file_ref"), f_ref is a file_ref_t whose atomic
    # stores count - 1, and FILE_REF_RELEASED and above mean released.
    if luo_layout(file.prog_).file_ref:
        raw = file.f_ref.refcnt.counter.value_() & 0xFFFFFFFFFFFFFFFF
        return raw + 1 if raw < (1 << 63) else -1
    return file.f_count.counter.value_()


# --- the memfd handler ------------------------------------------------------


def memfd_serialized_state(luo_file: Object) -> Optional[dict[str, int]]:
    """
    Return the memfd handler's serialized state for a luo_file, or None when
    the file is not a memfd or nothing was serialized yet.

    :param luo_file: ``struct luo_file *`` whose handler is the memfd one
    :return: dict with ``size``, ``pos``, ``nr_folios`` and (memfd-v2)
        ``seals`` and ``flags``
    """
    prog = luo_file.prog_
    pa = luo_file.serialized_data.value_()
    if not pa:
        return None
    try:
        ser = read_phys_object(prog, "struct memfd_luo_ser", pa)
    except LookupError:
        return None
    state = {"size": ser.size.value_(), "pos": ser.pos.value_(),
             "nr_folios": ser.nr_folios.value_()}
    for member in ("seals", "flags"):  # memfd-v2
        if ser.type_.has_member(member):
            state[member] = ser.member_(member).value_()
    return state


def handler_compatible(handler: Object) -> str:
    """
    :param handler: ``struct liveupdate_file_handler *``
    """
    return handler.compatible.string_().decode(errors="replace")

