# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Live Update Orchestrator
------------------------

The ``luo_drgn.helpers`` module provides helpers for the Linux kernel's Live
Update Orchestrator (LUO, ``kernel/liveupdate/``): the registered file
handlers, the sessions (``struct luo_session``) and their preserved files
(``struct luo_file``), what was serialized for the next kernel through Kexec
HandOver (KHO), the incoming data still waiting in KHO memory, the
``luo_preserved_files`` index, File-Lifecycle-Bound objects (FLBs), and the
state of the ``struct file`` objects LUO holds.

LUO changed shape several times.  The v6 patch series (November 2025) hung a
session's files directly on ``session->files_list`` and serialized into a
flattened device tree.  Linux 6.19 grouped them in ``struct luo_file_set``.
The 6.19.y stable backport and Linux 7.0 replaced ``bool retrieved`` in
``struct luo_file`` with ``int retrieve_status``, which keeps a failed
retrieve's errno, and added FLBs.  Linux 7.1 added the ``luo_preserved_files``
xarray.  Since Linux 7.2 the FDT is gone: ``struct luo_ser`` points to linked
chains of KHO blocks (``struct kho_block_set``) holding the serialized
sessions and files, and ``luo_session_serialize_rwsem`` freezes the sessions
for the kexec.  The layout is detected once per program from the debug info
(:func:`luo_drgn.layout.luo_layout`), never from the version string.

Sessions have a direction: ``"outgoing"`` sessions are created in this kernel
to be handed over; ``"incoming"`` ones were handed over by the previous
kernel and deserialized here, lazily, at the first open of
``/dev/liveupdate``.

List walks are bounded validators (:mod:`luo_drgn.walk`): a corrupted list
raises :class:`~luo_drgn.walk.WalkError` (a
:class:`drgn.helpers.ValidationError`) instead of looping.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

import drgn
from drgn import FaultError, IntegerLike, Object, Program, Type, TypeKind, sizeof
from drgn.helpers.common.prog import takes_program_or_default
from drgn.helpers.linux.fs import d_path
from drgn.helpers.linux.list import list_empty
from drgn.helpers.linux.locking import RwsemLocked, mutex_owner, rwsem_locked
from drgn.helpers.linux.mm import pfn_to_page, virt_to_phys
from drgn.helpers.linux.printk import get_printk_records

from .layout import luo_layout
from .walk import (
    WalkError,
    list_for_each_entry_block,
    validate_list_for_each_entry_bounded,
    xa_for_each_block,
)

__all__ = (
    "LUO_DIRECTIONS",
    "LUO_KHO_MAX_BLOCKS",
    "luo_block_chain_for_each_header",
    "luo_block_entries",
    "luo_block_ser_pa",
    "luo_block_set_count_per_block",
    "luo_block_set_for_each_block",
    "luo_block_set_head_pa",
    "luo_block_set_nblocks",
    "luo_cmdline_param",
    "luo_count_per_block",
    "luo_crashed_task",
    "luo_deserialize_status",
    "luo_device_in_use",
    "luo_enabled",
    "luo_file_handler",
    "luo_file_handler_compatible",
    "luo_file_handler_for_each_flb",
    "luo_file_handler_ops",
    "luo_file_mutex_owner",
    "luo_file_retrieve_status",
    "luo_file_ser_compatible",
    "luo_file_ser_data",
    "luo_file_ser_token",
    "luo_file_serialized_data",
    "luo_file_struct_file",
    "luo_file_token",
    "luo_flb_compatible",
    "luo_flb_counts",
    "luo_flb_data",
    "luo_flb_incoming_status",
    "luo_flb_obj",
    "luo_flb_ser_count",
    "luo_flb_ser_data",
    "luo_flb_ser_name",
    "luo_for_each_file_handler",
    "luo_for_each_flb",
    "luo_for_each_pending_incoming_session",
    "luo_for_each_preserved_file",
    "luo_for_each_serialized_flb",
    "luo_for_each_serialized_session",
    "luo_for_each_session",
    "luo_incoming_deserialized",
    "luo_incoming_present",
    "luo_kho_enabled",
    "luo_kho_preserved",
    "luo_liveupdate_num",
    "luo_liveupdate_requested",
    "luo_log_messages",
    "luo_outgoing_freeze_state",
    "luo_outgoing_frozen",
    "luo_panic_messages",
    "luo_preserved_file_ino",
    "luo_preserved_file_path",
    "luo_preserved_file_refcount",
    "luo_preserved_file_size",
    "luo_read_ser",
    "luo_ser_compatible",
    "luo_ser_out",
    "luo_ser_sessions_pa",
    "luo_session_block_set",
    "luo_session_file_block_set",
    "luo_session_file_count",
    "luo_session_finished",
    "luo_session_for_each_file",
    "luo_session_header_count",
    "luo_session_mutex_owner",
    "luo_session_name",
    "luo_session_name_terminated",
    "luo_session_retrieved",
    "luo_session_ser_file_set",
    "luo_session_ser_for_each_file",
    "luo_session_ser_name",
    "memfd_luo_serialized_state",
)

LUO_DIRECTIONS = ("outgoing", "incoming")

# Serialized arrays and block chains: far above any real count, low enough
# that garbage cannot keep a reader busy.
_MAX_SERIALIZED_ENTRIES = 1 << 20
# include/linux/file_ref.h (64-bit)
_FILE_REF_SATURATION_ZONE = 0x8000000000000000
_FILE_REF_RELEASED = 0xC000000000000000

# kho_block.c's KHO_MAX_BLOCKS: the next kernel rejects a longer chain.
LUO_KHO_MAX_BLOCKS = 10000
_MAX_BLOCK_SIZE = 1 << 24


def _bytes(char_array: Object) -> bytes:
    """A NUL-terminated ``char[]`` member, bounded by its array size."""
    return bytes(char_array.string_())


# --- LUO-wide state ---------------------------------------------------------


@takes_program_or_default
def luo_enabled(prog: Program) -> bool:
    """
    Return whether LUO is enabled: ``liveupdate=on`` was given and KHO came
    up (``liveupdate_enabled()``).
    """
    return bool(prog["luo_global"].enabled.value_())


@takes_program_or_default
def luo_liveupdate_num(prog: Program) -> int:
    """Return how many live updates led to this kernel (0 on a cold boot)."""
    return int(prog["luo_global"].liveupdate_num.value_())


@takes_program_or_default
def luo_device_in_use(prog: Program) -> bool | None:
    """
    Return whether ``/dev/liveupdate`` is open (``luo_dev.in_use``: only one
    process may hold it, ``luo_open()`` refuses others with EBUSY), or None
    on a kernel without it.
    """
    try:
        return bool(prog["luo_dev"].in_use.counter.value_())
    except LookupError:
        return None


@takes_program_or_default
def luo_kho_enabled(prog: Program) -> bool | None:
    """
    Return whether Kexec HandOver is enabled (``kho_is_enabled()``), which
    LUO needs, or None on a kernel without KHO.

    KHO turns itself off when it cannot reserve its scratch area; LUO then
    disables itself too (``liveupdate_early_init()``).
    """
    try:
        return bool(prog["kho_enable"].value_())
    except LookupError:
        return None


@takes_program_or_default
def luo_cmdline_param(prog: Program, name: str = "liveupdate") -> bytes | None:
    """
    Return the value of a ``name=value`` parameter on the kernel command line
    (``saved_command_line``), the last one if repeated, or None if absent.

    :param name: the parameter's name, ``liveupdate`` by default
    """
    cmdline = prog["saved_command_line"].string_()
    value = None
    key = name.encode() + b"="
    for word in cmdline.split():
        if word.startswith(key):
            value = word[len(key) :]
    return value


@takes_program_or_default
def luo_log_messages(prog: Program) -> list[bytes]:
    """
    Get LUO's messages from the kernel log buffer (``luo: ...``, and the
    panic message of a failed restore), oldest first.

    A restore that fails at boot frees the data it rejected before
    ``liveupdate_early_init()`` panics: these messages are then the only
    account of what went wrong.
    """
    return [
        r.text
        for r in get_printk_records(prog)
        if r.text.startswith((b"luo: ", b"KHO: ")) or b"The incoming tree failed" in r.text
    ]


@takes_program_or_default
def luo_crashed_task(prog: Program) -> Object | None:
    """
    Get the task that crashed the kernel of a dump: the task on the CPU that
    panicked, as the dump records it (a kdump's ``panic_cpu``).  None for a
    live kernel and for a dump taken without a panic (a QEMU memory dump).

    :return: ``struct task_struct *``, or None
    """
    if prog.flags & drgn.ProgramFlags.IS_LIVE:
        return None
    try:
        return prog.crashed_thread().object
    except (LookupError, ValueError, FaultError):
        return None


# What the kernel logs before a panic, naming its cause (lib/bug.c's
# "WARNING:", an oops, a BUG()).
_PANIC_CAUSES = (b"WARNING: ", b"BUG: ", b"Oops: ", b"kernel BUG at ")


@takes_program_or_default
def luo_panic_messages(prog: Program) -> tuple[bytes, bytes | None] | None:
    """
    Get why the kernel panicked, from its log buffer: its
    ``Kernel panic - not syncing:`` message, and the warning, oops or BUG
    logged before it (None when there is none).

    :return: (panic message, cause), or None if the log has no panic
    """
    panic = None
    cause = None
    for r in get_printk_records(prog):
        if r.text.startswith(b"Kernel panic - not syncing: "):
            panic = r.text[len(b"Kernel panic - not syncing: ") :].strip()
            break
        if r.text.startswith(_PANIC_CAUSES):
            cause = r.text.strip()
    return None if panic is None else (panic, cause)


def _kstrtobool(value: bytes) -> bool | None:
    """lib/kstrtox.c's kstrtobool(): y/t/1/on true, n/f/0/off false."""
    if not value:
        return None
    first, second = value[:1].lower(), value[1:2].lower()
    if first in (b"y", b"t", b"1"):
        return True
    if first in (b"n", b"f", b"0"):
        return False
    if first == b"o":
        return {b"n": True, b"f": False}.get(second)
    return None


@takes_program_or_default
def luo_liveupdate_requested(prog: Program) -> bool | None:
    """
    Return what the kernel command line asked of LUO, as
    ``early_liveupdate_param()`` parses it (``kstrtobool()``): True for
    ``liveupdate=on``, False for ``liveupdate=off``, None when there is no
    ``liveupdate=`` (LUO is off by default) or its value is not a boolean.
    """
    value = luo_cmdline_param(prog, "liveupdate")
    return None if value is None else _kstrtobool(value)


def _session_header(prog: Program, direction: str) -> Object:
    if direction not in LUO_DIRECTIONS:
        raise ValueError(f"direction must be one of {LUO_DIRECTIONS}, not {direction!r}")
    return prog["luo_session_global"].member_(direction)


@takes_program_or_default
def luo_outgoing_frozen(prog: Program) -> bool | None:
    """
    Return whether the outgoing sessions were serialized for a kexec (the
    "frozen" state), or None where memory cannot tell.
    """
    layout = luo_layout(prog)
    out = _session_header(prog, "outgoing")
    if layout.serialize_rwsem:
        state = luo_outgoing_freeze_state(prog)
        return None if state is None else state[0] == "frozen"
    # Before 7.2 nothing lasting is left but the serialized entries: the
    # header count matches and names were written.
    if not out.header_ser:
        return None
    count = out.header_ser.count.value_()
    if count == 0:
        return None if luo_session_header_count(prog, "outgoing") == 0 else False
    return count == luo_session_header_count(prog, "outgoing") and bool(out.ser[0].name[0])


# include/linux/rwbase_rt.h: with PREEMPT_RT, a write-locked rw_semaphore's
# readers count is exactly WRITER_BIAS (__rwbase_write_trylock()).
_RWBASE_WRITER_BIAS = 1 << 30


def _rwsem_write_locked(sem: Object) -> bool:
    """
    Whether a ``struct rw_semaphore *`` is write-locked, on every build.

    PREEMPT_RT kernels build rw_semaphore on rwbase_rt, with no ``count``
    (which drgn's rwsem_locked() reads): probe the layout once.
    """
    prog = sem.prog_
    try:
        rt: bool = prog.cache["luo_drgn_rwsem_rt"]
    except KeyError:
        rt = prog.cache["luo_drgn_rwsem_rt"] = prog.type("struct rw_semaphore").has_member("rwbase")
    if rt:
        readers = int(sem.rwbase.readers.counter.value_()) & 0xFFFFFFFF
        return readers == _RWBASE_WRITER_BIAS
    return rwsem_locked(sem) == RwsemLocked.WRITE_LOCKED


@takes_program_or_default
def luo_outgoing_freeze_state(prog: Program) -> tuple[str, int, int] | None:
    """
    Get where the freeze of the outgoing sessions stands (7.2), as
    ``luo_session_serialize()`` leaves memory:

    - ``"frozen"``: it holds ``luo_session_serialize_rwsem`` for write and
      never releases it on success; ``*sessions_pa`` is set at the end (it
      stays 0 when there is no session).
    - ``"freezing"``: the lock is held and ``*sessions_pa`` (zeroed at the
      start) is not set yet, with sessions to freeze: a dump inside it.
    - ``"rolled-back"``: the lock is free but entries were reserved and their
      names cleared: ``err_undo`` after a failed freeze (the kexec was
      refused).
    - ``"idle"``: no freeze happened.

    Each entry is reserved (``kho_block_set_it_reserve_entry()`` counts it in
    its block) before its session is frozen, and named after.

    :return: (state, entries reserved, names written), or None before 7.2
    """
    if not luo_layout(prog).serialize_rwsem:
        return None
    locked = _rwsem_write_locked(prog["luo_session_serialize_rwsem"].address_of_())
    luo_ser = luo_ser_out(prog)
    sessions_pa = luo_ser_sessions_pa(luo_ser) if luo_ser else 0
    bs = luo_session_block_set(prog, "outgoing")
    cpb = luo_block_set_count_per_block(bs)
    reserved = written = 0
    for block in luo_block_set_for_each_block(bs):
        count = int(block.ser.count.value_())
        if not 0 <= count <= cpb:
            raise WalkError(
                "outgoing session blocks",
                luo_block_ser_pa(block),
                f"impossible entry count {count}",
            )
        reserved += count
        entries = luo_block_entries(prog, "struct luo_session_ser", luo_block_ser_pa(block), count)
        written += sum(1 for e in entries if luo_session_ser_name(e))
    if locked:
        state = "frozen" if sessions_pa or not luo_session_header_count(prog) else "freezing"
    elif reserved and not written:
        state = "rolled-back"
    else:
        state = "idle"
    return state, reserved, written


@takes_program_or_default
def luo_incoming_present(prog: Program) -> bool:
    """
    Return whether the previous kernel handed sessions over (the incoming
    session header is ``active``: ``luo_session_setup_incoming()`` ran).
    """
    return bool(_session_header(prog, "incoming").active.value_())


def _local_statics(prog: Program) -> dict[str, Object] | None:
    """luo_session_deserialize()'s function-local statics, found by symbol:
    the compiler names them is_deserialized.N and saved_err.N (prog[...]
    does not find locals).  Another function may have a saved_err of its
    own: the one taken is the nearest to is_deserialized, as the statics of
    one function are laid out together."""
    try:
        cached: dict[str, Object] | None = prog.cache["luo_drgn_deserialize_statics"]
        return cached
    except KeyError:
        pass
    found: dict[str, list[drgn.Symbol]] = {"is_deserialized": [], "saved_err": []}
    for sym in prog.symbols():
        base, _, suffix = sym.name.partition(".")
        if base in found and suffix.isdigit() and sym.kind == drgn.SymbolKind.OBJECT:
            found[base].append(sym)
    out: dict[str, Object] | None = None
    if len(found["is_deserialized"]) == 1 and found["saved_err"]:
        flag = found["is_deserialized"][0]
        err = min(found["saved_err"], key=lambda s: abs(s.address - flag.address))
        out = {
            "is_deserialized": Object(prog, "bool", address=flag.address),
            "saved_err": Object(prog, "int", address=err.address),
        }
    prog.cache["luo_drgn_deserialize_statics"] = out
    return out


@takes_program_or_default
def luo_deserialize_status(prog: Program) -> tuple[bool, int] | None:
    """
    Get what ``luo_session_deserialize()`` kept: whether it ran (it runs once,
    at the first open of ``/dev/liveupdate``) and the error it returned, 0 or
    a negative errno.  After a failure every open returns EIO while the real
    cause stays here.  None where the kernel's symbols do not show them.

    :return: (ran, error)
    """
    statics = _local_statics(prog)
    if statics is None:
        return None
    return bool(statics["is_deserialized"].value_()), int(statics["saved_err"].value_())


@takes_program_or_default
def luo_incoming_deserialized(prog: Program) -> bool | None:
    """
    Return whether the incoming sessions were deserialized (which happens at
    the first open of ``/dev/liveupdate``), or None when nothing was handed
    over.
    """
    inc = _session_header(prog, "incoming")
    if not inc.active:
        return None
    if luo_layout(prog).block_sets:
        # 7.2: luo_session_deserialize() destroys the incoming block set
        # (kho_block_set_destroy() zeroes head_pa).
        return not inc.block_set.head_pa.value_()
    return not list_empty(inc.list.address_of_())


# --- file handlers ----------------------------------------------------------


@takes_program_or_default
def luo_for_each_file_handler(prog: Program) -> Iterator[Object]:
    """
    Iterate over the registered LUO file handlers.

    :return: Iterator of ``struct liveupdate_file_handler *`` objects.
    """
    # Marked __private since 6.19; that is a sparse annotation, and the
    # member is still called "list" in the debug info.
    return validate_list_for_each_entry_bounded(
        "struct liveupdate_file_handler",
        prog["luo_file_handler_list"].address_of_(),
        "list",
        "luo_file_handler_list",
    )


def luo_file_handler_compatible(handler: Object) -> bytes:
    """
    Get the compatible string of a file handler (e.g., ``memfd-v2``), which
    the next kernel matches to pick the handler of each serialized file.

    :param handler: ``struct liveupdate_file_handler *``
    """
    return bytes(handler.compatible.string_())


def luo_file_handler_ops(handler: Object) -> Object:
    """
    Get the operations of a file handler.

    :param handler: ``struct liveupdate_file_handler *``
    :return: ``const struct liveupdate_file_ops *``
    """
    return handler.ops.read_()


def luo_file_handler_for_each_flb(handler: Object) -> Iterator[Object]:
    """
    Iterate over the FLBs a file handler depends on (6.19.y/7.0 and later).

    :param handler: ``struct liveupdate_file_handler *``
    :return: Iterator of ``struct liveupdate_flb *`` objects.
    """
    links = validate_list_for_each_entry_bounded(
        "struct luo_flb_link", handler.flb_list.address_of_(), "list", "handler flb_list"
    )
    for link in links:
        yield link.flb.read_()


# --- sessions ---------------------------------------------------------------


@takes_program_or_default
def luo_for_each_session(prog: Program, direction: str = "outgoing") -> Iterator[Object]:
    """
    Iterate over the outgoing sessions (created in this kernel, to be handed
    over) or the incoming ones (handed over by the previous kernel and
    deserialized).

    :param direction: ``"outgoing"`` or ``"incoming"``
    :return: Iterator of ``struct luo_session *`` objects.
    """
    head = _session_header(prog, direction).list.address_of_()
    return validate_list_for_each_entry_bounded(
        "struct luo_session", head, "list", f"luo_session_global.{direction}.list"
    )


@takes_program_or_default
def luo_session_header_count(prog: Program, direction: str = "outgoing") -> int:
    """
    Get the number of sessions a ``struct luo_session_header`` claims (its
    list may disagree).

    :param direction: ``"outgoing"`` or ``"incoming"``
    """
    return int(_session_header(prog, direction).count.value_())


def luo_session_name(session: Object) -> bytes:
    """
    Get the name of a session.

    :param session: ``struct luo_session *``
    """
    return _bytes(session.name)


def luo_session_name_terminated(session: Object) -> bool:
    """
    Return whether a session's name ends within its array, as
    ``luo_session_create()`` requires (a name is at most 63 bytes).

    :param session: ``struct luo_session *``
    """
    return b"\0" in session.name.to_bytes_()


def luo_session_retrieved(session: Object) -> bool:
    """
    Return whether an incoming session was retrieved
    (``LIVEUPDATE_IOCTL_RETRIEVE_SESSION``); never set on outgoing sessions.

    :param session: ``struct luo_session *``
    """
    return bool(session.retrieved.value_())


def _mutex_owner(lock: Object) -> tuple[int, bytes] | None:
    task = mutex_owner(lock)
    if not task:
        return None
    return int(task.pid.value_()), bytes(task.comm.string_())


def luo_session_mutex_owner(session: Object) -> tuple[int, bytes] | None:
    """
    Get who holds a session's mutex (taken to preserve, retrieve, freeze or
    finish its files), or None when it is free.

    :param session: ``struct luo_session *``
    :return: (pid, comm) of the owning task
    """
    return _mutex_owner(session.mutex.address_of_())


def luo_file_mutex_owner(luo_file: Object) -> tuple[int, bytes] | None:
    """
    Get who holds a preserved file's mutex (``luo_retrieve_file()`` holds it
    while it sets ``file``, takes its reference, indexes it and only then
    sets ``retrieve_status``), or None when it is free.

    :param luo_file: ``struct luo_file *``
    :return: (pid, comm) of the owning task
    """
    return _mutex_owner(luo_file.mutex.address_of_())


def _files_head(session: Object) -> Object:
    # v6 series: session->files_list.  6.19 and later: session->file_set.
    if luo_layout(session.prog_).file_set:
        return session.file_set.files_list.address_of_()
    return session.files_list.address_of_()


def luo_session_for_each_file(session: Object) -> Iterator[Object]:
    """
    Iterate over the preserved (outgoing) or deserialized (incoming) files
    of a session.

    :param session: ``struct luo_session *``
    :return: Iterator of ``struct luo_file *`` objects.
    """
    return validate_list_for_each_entry_bounded(
        "struct luo_file",
        _files_head(session),
        "list",
        f"files of session {luo_session_name(session)!r}",
    )


def luo_session_file_count(session: Object) -> int:
    """
    Get the number of files a session claims (its list may disagree).

    :param session: ``struct luo_session *``
    """
    if luo_layout(session.prog_).file_set:
        return int(session.file_set.count.value_())
    return int(session.count.value_())


def luo_session_finished(session: Object) -> bool | None:
    """
    Return whether an incoming session was finished
    (``LIVEUPDATE_SESSION_FINISH``, or closing a retrieved session), or None
    where memory cannot tell.

    Only a retrieved session can be finished.  On 7.2, ``luo_file_finish()``
    ends with ``kho_block_set_destroy()``: a file set restored from the
    previous kernel (``block_set.incoming``, which the destruction leaves
    set) with no block left was finished, whatever its list still holds.  A
    session handed over with no files never restored a block set, so
    whether it was finished cannot be told.  Before 7.2 a retrieved session
    with files left was not finished, and an empty one cannot be told.

    :param session: ``struct luo_session *`` (incoming)
    """
    if not luo_session_retrieved(session):
        return False
    if luo_layout(session.prog_).block_sets:
        bs = session.file_set.block_set
        if not bs.incoming.value_():
            # Handed over with no files: nothing was restored to destroy.
            return None
        return not bs.nblocks.value_() and not bs.head_pa.value_()
    if luo_session_file_count(session) or not list_empty(_files_head(session)):
        return False
    return None


# --- preserved files (struct luo_file) --------------------------------------


def luo_file_token(luo_file: Object) -> int:
    """
    Get the token userspace preserved a file under (unique within a session).

    :param luo_file: ``struct luo_file *``
    """
    return int(luo_file.token.value_())


def luo_file_handler(luo_file: Object) -> Object:
    """
    Get the handler of a preserved file.

    :param luo_file: ``struct luo_file *``
    :return: ``struct liveupdate_file_handler *``
    """
    return luo_file.fh.read_()


def luo_file_struct_file(luo_file: Object) -> Object:
    """
    Get the ``struct file`` of a preserved file: set from preserve on, in the
    outgoing direction; NULL in the incoming direction until a retrieve
    succeeds.

    :param luo_file: ``struct luo_file *``
    :return: ``struct file *``
    """
    return luo_file.file.read_()


def luo_file_serialized_data(luo_file: Object) -> int:
    """
    Get a preserved file's handler-private serialized data: for memfds, the
    physical address of its ``struct memfd_luo_ser``.

    :param luo_file: ``struct luo_file *``
    """
    return int(luo_file.serialized_data.value_())


# kernel/liveupdate/kexec_handover.c: 'KHOP', in page->private of the first
# page of each range the previous kernel preserved (union kho_page_info:
# unsigned int order, then unsigned int magic).
_KHO_PAGE_MAGIC = 0x4B484F50


@takes_program_or_default
def luo_kho_preserved(prog: Program, phys: IntegerLike) -> bool | None:
    """
    Return whether ``phys`` starts memory the previous kernel preserved
    through KHO and nothing has restored yet: ``deserialize_bitmap()`` marks
    the first page of each preserved range with ``KHO_PAGE_MAGIC`` in
    ``page->private``, which ``kho_restore_page()`` checks and clears.

    :param phys: a physical address
    :return: None when the program has no memory map to look in
    """
    try:
        max_pfn = prog["max_pfn"].value_()
        page_shift = prog["PAGE_SHIFT"].value_()
    except LookupError:
        return None
    pfn = int(phys) >> page_shift
    if not 0 <= pfn < max_pfn:
        return False
    private = pfn_to_page(prog, pfn).private.value_()
    little = prog.platform is not None and bool(
        prog.platform.flags & drgn.PlatformFlags.IS_LITTLE_ENDIAN
    )
    magic = (private >> 32) if little else (private & 0xFFFFFFFF)
    return bool(magic == _KHO_PAGE_MAGIC)


def luo_file_retrieve_status(luo_file: Object) -> int:
    """
    Get the retrieve state of an incoming file, the same on every layout: 0
    never attempted, 1 retrieved, a negative errno for a failed retrieve.

    :param luo_file: ``struct luo_file *``
    """
    # 6.19.y/7.0 replaced "bool retrieved" with "int retrieve_status", which
    # keeps the errno of a failed retrieve; any positive value means success.
    if luo_layout(luo_file.prog_).retrieve_field == "retrieve_status":
        status = luo_file.retrieve_status.value_()
        return 1 if status > 0 else status
    return 1 if luo_file.retrieved.value_() else 0


# --- serialized data (what crosses the kexec) -------------------------------


def luo_read_ser(prog: Program, type: str | Type, pa: int) -> Object:
    """
    Read a serialized LUO structure at a physical address.

    Serialized data is addressed physically (it must survive the kexec);
    reading it through physical memory needs no direct-map translation and
    works on any core drgn can open.

    :param type: the structure's type, e.g. ``"struct luo_session_ser"``
    :param pa: its physical address
    :return: a value object (it has no address)
    """
    t = prog.type(type) if isinstance(type, str) else type
    return Object.from_bytes_(prog, t, prog.read(pa, t.size, True))


def _read_ser_array(prog: Program, t: Type, pa: int, count: int, what: str) -> list[Object]:
    """``count`` consecutive values of type ``t`` at physical ``pa``, read at once."""
    try:
        raw = prog.read(pa, count * t.size, True)
    except FaultError as e:
        err = WalkError(what, e.address, "cannot read serialized entries")
        raise err from e
    return [Object.from_bytes_(prog, t, raw, bit_offset=i * t.size * 8) for i in range(count)]


@takes_program_or_default
def luo_ser_out(prog: Program) -> Object:
    """
    Get the LUO ABI header this kernel hands over (7.2): allocated and
    preserved by ``luo_state_setup()`` at boot, filled by the freeze.

    :return: ``struct luo_ser *`` (NULL while LUO is disabled)
    """
    return prog["luo_global"].luo_ser_out.read_()


def luo_ser_compatible(luo_ser: Object) -> bytes:
    """
    Get the ABI compatible string of a LUO ABI header (e.g., ``luo-v5``),
    which the next kernel's ``luo_early_startup()`` compares with its own.

    :param luo_ser: ``struct luo_ser *``
    """
    return _bytes(luo_ser.compatible)


def luo_ser_sessions_pa(luo_ser: Object) -> int:
    """
    Get the physical address of the first serialized session block: zeroed
    at the start of the freeze, set at its end when there is a session.

    :param luo_ser: ``struct luo_ser *``
    """
    return int(luo_ser.sessions_pa.value_())


@takes_program_or_default
def luo_count_per_block(prog: Program, type: str | Type) -> int:
    """
    Get how many entries of a type fit in one KHO block, as
    ``KHO_BLOCK_SET_INIT()`` computes it: a page less the block header.

    :param type: the entry type, e.g. ``"struct luo_file_ser"``
    """
    t = prog.type(type) if isinstance(type, str) else type
    header_size: int = prog.type("struct kho_block_header_ser").size
    entry_size: int = t.size
    return (int(prog["PAGE_SIZE"].value_()) - header_size) // entry_size


def luo_block_set_nblocks(block_set: Object) -> int:
    """
    Get the number of blocks a block set counts (its list may disagree).

    :param block_set: ``struct kho_block_set *``
    """
    return int(block_set.nblocks.value_())


def luo_block_set_head_pa(block_set: Object) -> int:
    """
    Get the physical address of a block set's first block header (0 when it
    has none, e.g. once destroyed).

    :param block_set: ``struct kho_block_set *``
    """
    return int(block_set.head_pa.value_())


def luo_block_set_count_per_block(block_set: Object) -> int:
    """
    Get how many entries one block of a block set holds.

    :param block_set: ``struct kho_block_set *``
    """
    return int(block_set.count_per_block.value_())


@takes_program_or_default
def luo_session_block_set(prog: Program, direction: str = "outgoing") -> Object:
    """
    Get the KHO block set holding a direction's serialized sessions (7.2).

    Outgoing, it is grown by ``luo_session_insert()`` before each session is
    added and filled by the freeze; incoming, it is what
    ``luo_session_setup_incoming()`` restored at boot, until deserialization
    destroys it.

    :param direction: ``"outgoing"`` or ``"incoming"``
    :return: ``struct kho_block_set *``
    """
    return _session_header(prog, direction).block_set.address_of_()


def luo_session_file_block_set(session: Object) -> Object:
    """
    Get the KHO block set holding a session's serialized files (7.2).

    :param session: ``struct luo_session *``
    :return: ``struct kho_block_set *``
    """
    return session.file_set.block_set.address_of_()


def luo_block_set_for_each_block(block_set: Object) -> Iterator[Object]:
    """
    Iterate over the blocks of a KHO block set, in chain order.

    :param block_set: ``struct kho_block_set *``
    :return: Iterator of ``struct kho_block *`` objects.
    """
    return validate_list_for_each_entry_bounded(
        "struct kho_block",
        block_set.blocks.address_of_(),
        "list",
        "kho_block_set blocks",
        limit=LUO_KHO_MAX_BLOCKS + 1,
    )


def luo_block_ser_pa(block: Object) -> int:
    """
    Get the physical address of a block's serialized header (what the
    previous block's ``next`` and a chain's head point to).

    :param block: ``struct kho_block *``
    """
    return int(virt_to_phys(block.ser).value_())


@takes_program_or_default
def luo_block_chain_for_each_header(prog: Program, head_pa: int) -> Iterator[tuple[int, Object]]:
    """
    Iterate over a serialized KHO block chain as the next kernel reads it:
    from ``head_pa`` along each header's physical ``next``.

    Like ``kho_block_set_is_cyclic()``, the walk refuses a chain that comes
    back on itself or is longer than :data:`LUO_KHO_MAX_BLOCKS`; it yields
    every block before the one that shows it.

    :param head_pa: physical address of the first block header
    :raises WalkError: on a cycle, a chain too long, or an unreadable header
    :return: Iterator of (physical address, ``struct kho_block_header_ser``
        value) tuples.
    """
    header_t = prog.type("struct kho_block_header_ser")
    what = f"KHO block chain at {head_pa:#x}"
    seen: set[int] = set()
    pa = head_pa
    while pa:
        if pa in seen:
            raise WalkError(what, pa, "cycle in the block chain")
        if len(seen) >= LUO_KHO_MAX_BLOCKS:
            raise WalkError(what, pa, f"more than {LUO_KHO_MAX_BLOCKS} blocks")
        seen.add(pa)
        try:
            header = luo_read_ser(prog, header_t, pa)
        except FaultError as e:
            raise WalkError(what, e.address, "cannot read a block header") from e
        yield pa, header
        pa = int(header.next.value_())


@takes_program_or_default
def luo_block_entries(prog: Program, type: str | Type, pa: int, count: int) -> list[Object]:
    """
    Read the first ``count`` entries of the serialized block whose header is
    at physical ``pa`` (entries follow the header).

    :param type: the entry type, e.g. ``"struct luo_session_ser"``
    :raises WalkError: if they cannot be read, or do not fit in a block
    :return: list of ``type`` value objects
    """
    t = prog.type(type) if isinstance(type, str) else type
    header_size = prog.type("struct kho_block_header_ser").size
    what = f"KHO block at {pa:#x}"
    if count < 0 or count * t.size + header_size > _MAX_BLOCK_SIZE:
        raise WalkError(what, pa, f"impossible entry count {count}")
    return _read_ser_array(prog, t, pa + header_size, count, what)


def _block_chain(prog: Program, head_pa: int, entry_type: str, what: str) -> Iterator[Object]:
    """Entries of a 7.2 KHO block chain starting at physical ``head_pa``,
    each block's header count of them."""
    for pa, header in luo_block_chain_for_each_header(prog, head_pa):
        try:
            yield from luo_block_entries(prog, entry_type, pa, int(header.count.value_()))
        except WalkError as e:
            raise WalkError(what, e.address, e.reason) from e


def _serialized_sessions_pre72(prog: Program, header: Object, what: str) -> Iterator[Object]:
    if not header.header_ser or not header.ser:
        return
    count = header.header_ser.count.value_()
    if not 0 <= count <= _MAX_SERIALIZED_ENTRIES:
        raise WalkError(what, header.header_ser.value_(), f"impossible session count {count}")
    for i in range(count):
        yield header.ser[i].read_()


@takes_program_or_default
def luo_for_each_serialized_session(prog: Program, direction: str = "outgoing") -> Iterator[Object]:
    """
    Iterate over the session entries serialized for (outgoing) or by
    (incoming, before deserialization) a kexec.

    Outgoing entries are meaningful once LUO froze (:func:`luo_outgoing_frozen`).
    Incoming entries are readable until deserialization destroys them.

    :param direction: ``"outgoing"`` or ``"incoming"``
    :raises WalkError: on a cycle, a fault or an impossible count
    :return: Iterator of ``struct luo_session_ser`` value objects.
    """
    layout = luo_layout(prog)
    header = _session_header(prog, direction)
    what = f"serialized {direction} sessions"
    if not layout.block_sets:
        yield from _serialized_sessions_pre72(prog, header, what)
        return
    head_pa = header.block_set.head_pa.value_()
    if direction == "outgoing" and header.sessions_pa:
        # Written at freeze: zero until then, the first block after.
        head_pa = header.sessions_pa[0].value_() or head_pa
    yield from _block_chain(prog, head_pa, "struct luo_session_ser", what)


def luo_session_ser_name(session_ser: Object) -> bytes:
    """
    Get the name of a serialized session.

    :param session_ser: ``struct luo_session_ser``
    """
    return _bytes(session_ser.name)


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


def luo_session_ser_for_each_file(session_ser: Object) -> Iterator[Object]:
    """
    Iterate over the file entries of a serialized session.

    :param session_ser: ``struct luo_session_ser``
    :raises WalkError: on a cycle, a fault or an impossible count
    :return: Iterator of ``struct luo_file_ser`` value objects.
    """
    prog = session_ser.prog_
    files_pa, count = luo_session_ser_file_set(session_ser)
    name = luo_session_ser_name(session_ser).decode(errors="replace")
    what = f"serialized files of session {name!r}"
    if not files_pa:
        return
    if luo_layout(prog).block_sets:
        yield from _block_chain(prog, files_pa, "struct luo_file_ser", what)
        return
    # Before 7.2: one physically contiguous array of count entries.
    if not 0 <= count <= _MAX_SERIALIZED_ENTRIES:
        raise WalkError(what, files_pa, f"impossible file count {count}")
    yield from _read_ser_array(prog, prog.type("struct luo_file_ser"), files_pa, count, what)


def luo_file_ser_token(file_ser: Object) -> int:
    """
    Get the token of a serialized file.

    :param file_ser: ``struct luo_file_ser``
    """
    return int(file_ser.token.value_())


def luo_file_ser_compatible(file_ser: Object) -> bytes:
    """
    Get the handler compatible string of a serialized file, which the next
    kernel's ``luo_file_deserialize()`` looks up among its handlers.

    :param file_ser: ``struct luo_file_ser``
    """
    return _bytes(file_ser.compatible)


def luo_file_ser_data(file_ser: Object) -> int:
    """
    Get the handler-private data of a serialized file.

    :param file_ser: ``struct luo_file_ser``
    """
    return int(file_ser.data.value_())


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
    if luo_layout(prog).block_sets and not header.block_set.head_pa:
        return iter(())
    return luo_for_each_serialized_session(prog, "incoming")


# --- the luo_preserved_files index (7.1+) -----------------------------------


@takes_program_or_default
def luo_for_each_preserved_file(prog: Program) -> Iterator[tuple[int, Object]]:
    """
    Iterate over ``luo_preserved_files`` (7.1 and later): the index of every
    preserved or retrieved file, keyed by the handler's ``get_id()`` (the
    inode for memfds) or the struct file pointer.

    :raises WalkError: after too many entries (a corrupted tree can lead the
        walk back into itself)
    :return: Iterator of (index, ``struct file *``) tuples.
    """
    # Keyed by inode numbers, the tree is sparse and deep: each node is read
    # whole (xa_for_each() reads it slot by slot, ~80 reads an entry here).
    file_type = prog.type("struct file *")
    for index, entry in xa_for_each_block(
        prog,
        prog["luo_preserved_files"].address_of_().value_(),
        "luo_preserved_files",
        _MAX_SERIALIZED_ENTRIES,
    ):
        yield index, Object(prog, file_type, entry)


# --- FLBs (6.19.y/7.0 and later) --------------------------------------------


@takes_program_or_default
def luo_for_each_flb(prog: Program) -> Iterator[Object]:
    """
    Iterate over the registered File-Lifecycle-Bound objects.

    :return: Iterator of ``struct liveupdate_flb *`` objects.
    """
    # The per-FLB state (list, counts) lives in flb->private, a member marked
    # __private, which the debug info names "private".
    return validate_list_for_each_entry_bounded(
        "struct liveupdate_flb",
        prog["luo_flb_global"].list.address_of_(),
        "private.list",
        "luo_flb_global.list",
    )


def luo_flb_compatible(flb: Object) -> bytes:
    """
    Get the compatible string of an FLB.

    :param flb: ``struct liveupdate_flb *``
    """
    return bytes(flb.compatible.string_())


def luo_flb_counts(flb: Object) -> tuple[int, int]:
    """
    Get the (outgoing, incoming) user counts of an FLB.

    :param flb: ``struct liveupdate_flb *``
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


def luo_flb_data(flb: Object, direction: str) -> int:
    """
    Get the opaque handle of an FLB: what its ``.preserve()`` returned
    (outgoing), or what the previous kernel handed over and ``.retrieve()``
    was given (incoming).

    :param flb: ``struct liveupdate_flb *``
    :param direction: ``"outgoing"`` or ``"incoming"``
    """
    return int(_flb_state(flb, direction).data.value_())


def luo_flb_obj(flb: Object, direction: str) -> Object:
    """
    Get the live object of an FLB, which ``liveupdate_flb_get_outgoing()``
    and ``liveupdate_flb_get_incoming()`` hand out.

    :param flb: ``struct liveupdate_flb *``
    :param direction: ``"outgoing"`` or ``"incoming"``
    :return: ``void *``
    """
    return _flb_state(flb, direction).obj.read_()


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


def luo_for_each_serialized_flb(prog: Program, direction: str) -> Iterator[Object]:
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


def luo_flb_ser_name(flb_ser: Object) -> bytes:
    """
    Get the compatible string a serialized FLB entry names.

    :param flb_ser: ``struct luo_flb_ser *``
    """
    return bytes(flb_ser.name.string_())


def luo_flb_ser_data(flb_ser: Object) -> int:
    """
    Get the opaque handle of a serialized FLB entry.

    :param flb_ser: ``struct luo_flb_ser *``
    """
    return int(flb_ser.data.value_())


def luo_flb_ser_count(flb_ser: Object) -> int:
    """
    Get the count a serialized FLB entry hands over: the number of files
    depending on it at serialization (``refcount_read()`` of its outgoing
    count), which the next kernel's ``luo_flb_retrieve_one()`` restores.

    :param flb_ser: ``struct luo_flb_ser *``
    """
    return int(flb_ser.count.value_())


# --- struct file ------------------------------------------------------------


def luo_preserved_file_refcount(file: Object) -> int:
    """
    Get the number of references held on a struct file.

    :param file: ``struct file *``
    :return: the count; -1 when the file is released (file_ref's dead zone,
        or no reference at all); -2 when the count is in file_ref's
        saturation zone (the file is pinned for good: the count no longer
        counts)
    """
    # Since 6.13 ("fs: add file_ref"), f_ref is a file_ref_t whose atomic
    # stores count - 1 (include/linux/file_ref.h): up to FILE_REF_MAXREF a
    # count, then the saturation zone, then from FILE_REF_RELEASED the dead
    # zone, FILE_REF_NOREF (no reference) at the top.
    if luo_layout(file.prog_).file_ref:
        return _file_ref_count(int(file.f_ref.refcnt.counter.value_()))
    return int(file.f_count.counter.value_())


def _file_ref_count(raw: int) -> int:
    raw &= 0xFFFFFFFFFFFFFFFF
    if raw < _FILE_REF_SATURATION_ZONE:
        return raw + 1
    return -2 if raw < _FILE_REF_RELEASED else -1


def luo_preserved_file_ino(file: Object) -> int:
    """
    Get the inode number of a struct file.

    :param file: ``struct file *``
    """
    return int(file.f_inode.i_ino.value_())


def luo_preserved_file_size(file: Object) -> int:
    """
    Get the size of a struct file's inode (``i_size``): for a retrieved
    memfd, what ``memfd_luo_retrieve()`` restored.

    :param file: ``struct file *``
    """
    return int(file.f_inode.i_size.value_())


def luo_preserved_file_path(file: Object) -> bytes:
    """
    Get the path of a struct file as ``/proc/PID/fd`` shows it.

    Memfds live on an internal mount (``shm_mnt``), for which ``d_path()``
    names the filesystem; ``/proc`` shows the dentry's own name, and
    `` (deleted)`` for an unlinked inode, as memfds are.

    :param file: ``struct file *``
    """
    path = d_path(file.f_path.address_of_())
    if path.startswith(b"["):
        path = b"/" + file.f_path.dentry.d_name.name.string_()
    if file.f_inode.i_nlink.value_() == 0:
        path += b" (deleted)"
    return path


# --- the memfd handler (mm/memfd_luo.c) -------------------------------------


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
    pa = luo_file_serialized_data(luo_file)
    if not pa:
        return None
    try:
        t = prog.type("struct memfd_luo_ser")
    except LookupError:
        return None
    return luo_read_ser(prog, t, pa)


# --- block reads for luo-drgn's collector ------------------------------------
#
# Not part of the helper API: the collector reads tens of thousands of
# luo_files and struct files, and drgn's member-by-member reads (one read,
# one Object, per member) would cost it several times a plain walk.  These
# read each structure in one read and unpack the members it uses, with the
# same meaning as the public helpers above, which stay the reference.

_FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}


class _Fields:
    """Chosen members of a structure: where they are, how to unpack them.
    One read covers the span from the first member used to the last."""

    def __init__(self, prog: Program, type: str, members: tuple[str, ...]) -> None:
        ref = Object(prog, type, address=0)  # a reference: nothing is read
        fields: list[tuple[struct.Struct, int, bool]] = []
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
            fields.append((struct.Struct("<" + fmt), member.address_, kind == TypeKind.BOOL))
        self.start = min(at for _, at, _ in fields)
        self.size = max(at + s.size for s, at, _ in fields) - self.start
        self.fields = [(s, at - self.start, is_bool) for s, at, is_bool in fields]

    def read(self, prog: Program, address: int, physical: bool = False) -> list[Any]:
        """Read the members of the structure at ``address``."""
        return self._unpack(prog.read(address + self.start, self.size, physical), 0)

    def unpack(self, raw: bytes) -> list[Any]:
        """Unpack the members from the bytes of a whole structure."""
        return self._unpack(raw, self.start)

    def _unpack(self, raw: bytes, base: int) -> list[Any]:
        return [
            bool(s.unpack_from(raw, base + off)[0])
            if is_bool
            else s.unpack_from(raw, base + off)[0]
            for s, off, is_bool in self.fields
        ]


def _fields(prog: Program, type: str, *members: str) -> _Fields:
    key = ("luo_drgn_fields", type, members)
    try:
        fields: _Fields = prog.cache[key]
    except KeyError:
        fields = prog.cache[key] = _Fields(prog, type, members)
    return fields


class _LuoFileRow(NamedTuple):
    """A ``struct luo_file``, as the helpers above read it."""

    address: int
    fh: int  # luo_file_handler()
    file: int  # luo_file_struct_file()
    token: int  # luo_file_token()
    retrieve_status: int  # luo_file_retrieve_status()
    serialized_data: int  # luo_file_serialized_data()
    mutex_locked: bool  # luo_file_mutex_owner() is not None


# include/linux/mutex.h: the owner word's low bits are flags (MUTEX_FLAGS).
_MUTEX_FLAGS = 0x07


def _luo_session_file_rows(session: Object) -> Iterator[_LuoFileRow]:
    """luo_session_for_each_file(), each luo_file read in one read."""
    prog = session.prog_
    status = luo_layout(prog).retrieve_field or "retrieve_status"
    fields = _fields(
        prog,
        "struct luo_file",
        "fh",
        "file",
        "token",
        status,
        "serialized_data",
        "mutex.owner.counter",
    )
    what = f"files of session {luo_session_name(session)!r}"
    head = _files_head(session).value_()
    for address, raw in list_for_each_entry_block(prog, "struct luo_file", head, "list", what):
        fh, file, token, retrieve, data, owner = fields.unpack(raw)
        if status == "retrieve_status":
            retrieve = 1 if retrieve > 0 else retrieve
        else:
            retrieve = 1 if retrieve else 0
        yield _LuoFileRow(address, fh, file, token, retrieve, data, bool(owner & ~_MUTEX_FLAGS))


class _FileRow(NamedTuple):
    """A ``struct file`` and its inode, as the helpers above read them."""

    refcount: int  # luo_preserved_file_refcount()
    ino: int  # luo_preserved_file_ino()
    size: int  # luo_preserved_file_size()
    f_op: int  # file->f_op, which the holder scan would read again
    # What _preserved_file_path() needs, in the same read.
    inode: int  # file->f_inode
    mnt: int  # file->f_path.mnt
    dentry: int  # file->f_path.dentry


def _preserved_file_row(prog: Program, file: int) -> _FileRow:
    file_ref = luo_layout(prog).file_ref
    count = "f_ref.refcnt.counter" if file_ref else "f_count.counter"
    raw_count, inode, f_op, mnt, dentry = _fields(
        prog, "struct file", count, "f_inode", "f_op", "f_path.mnt", "f_path.dentry"
    ).read(prog, file)
    ino, size = _fields(prog, "struct inode", "i_ino", "i_size").read(prog, inode)
    refcount = _file_ref_count(raw_count) if file_ref else raw_count
    return _FileRow(refcount, ino, size, f_op, inode, mnt, dentry)


def _preserved_file_path(file: Object, row: _FileRow | None) -> bytes:
    """luo_preserved_file_path(), without d_path() for a memfd: a pseudo
    file (``alloc_file_pseudo()``: its dentry is its own parent) on
    ``shm_mnt``, for which d_path() names the filesystem and the helper the
    dentry.

    :param row: the file's row, already read (None: it could not be, and the
        public helper reads what it can)
    """
    prog = file.prog_
    try:
        shm_mnt = prog.cache["luo_drgn_shm_mnt"]
    except KeyError:
        try:
            shm_mnt = prog["shm_mnt"].value_()
        except (KeyError, LookupError, FaultError):
            shm_mnt = None
        prog.cache["luo_drgn_shm_mnt"] = shm_mnt
    if row is None or shm_mnt is None or row.mnt != shm_mnt:
        return luo_preserved_file_path(file)
    parent, length, name = _fields(
        prog, "struct dentry", "d_parent", "d_name.len", "d_name.name"
    ).read(prog, row.dentry)
    if parent != row.dentry:
        return luo_preserved_file_path(file)
    (nlink,) = _fields(prog, "struct inode", "i_nlink").read(prog, row.inode)
    path = b"/" + bytes(prog.read(name, length))
    return path + b" (deleted)" if nlink == 0 else path


def _memfd_luo_ser_scalars(prog: Program, serialized_data: int) -> dict[str, Any] | None:
    """The integer members of memfd_luo_serialized_state(), by name, read
    in one physical read.

    :param serialized_data: the luo_file's (the physical address of its
        ``struct memfd_luo_ser``)
    """
    if not serialized_data:
        return None
    try:
        names = prog.cache["luo_drgn_memfd_ser_members"]
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
        prog.cache["luo_drgn_memfd_ser_members"] = names
    if names is None:
        return None
    values = _fields(prog, "struct memfd_luo_ser", *names).read(
        prog, serialized_data, physical=True
    )
    # One value per name: _Fields.read() unpacks the members it was given.
    return dict(zip(names, values))
