# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Live Update Orchestrator
------------------------

The ``luo_drgn.helpers.liveupdate`` module provides helpers for the Linux
kernel's Live Update Orchestrator (LUO, ``kernel/liveupdate/``): the
registered file handlers, the sessions (``struct luo_session``) and their
preserved files (``struct luo_file``), what was serialized for the next
kernel through Kexec HandOver (KHO), the incoming data still waiting in KHO
memory, the ``luo_preserved_files`` index, File-Lifecycle-Bound objects
(FLBs), and the state of the ``struct file`` objects LUO holds.

LUO changed shape several times.  The v6 patch series (November 2025) hung a
session's files directly on ``session->files_list`` and serialized into a
flattened device tree.  Linux 6.19 grouped them in ``struct luo_file_set``.
The 6.19.y stable backport and Linux 7.0 replaced ``bool retrieved`` in
``struct luo_file`` with ``int retrieve_status``, which keeps a failed
retrieve's errno, and added FLBs.  Linux 7.1 added the ``luo_preserved_files``
xarray.  Since Linux 7.2 the FDT is gone: ``struct luo_ser`` points to linked
chains of KHO blocks (``struct kho_block_set``, :mod:`luo_drgn.helpers.kho`)
holding the serialized sessions and files, and
``luo_session_serialize_rwsem`` freezes the sessions for the kexec.  Each
difference is probed once per program from the debug info and cached in
``prog.cache``, never read from the version string.

Sessions have a direction: ``"outgoing"`` sessions are created in this kernel
to be handed over; ``"incoming"`` ones were handed over by the previous
kernel and deserialized here, lazily, at the first open of
``/dev/liveupdate``.

As drgn's list helpers do, each ``luo_*for_each*`` list iterator is plain and
fast, and has a ``validate_*`` twin for memory that may be corrupted: a
bounded walk (:mod:`luo_drgn.helpers.bounded`) that raises
:class:`~luo_drgn.helpers.bounded.WalkError` (a
:class:`drgn.helpers.ValidationError`) instead of looping.  Members a
structure has on every layout are read directly (``session.name``,
``luo_file.token``, ``luo_file.file``); helpers exist where the kernel's
layouts differ or a value has to be worked out.

This module is longer than most (about a thousand lines): it is one kernel
subsystem, ``kernel/liveupdate/``, and drgn keeps one helper module per
subsystem.  Its sections follow the kernel's files: ``luo_core.c`` (LUO-wide
state), ``luo_file.c`` (handlers, preserved files), ``luo_session.c``
(sessions, their serialization and the freeze), ``luo_flb.c`` (FLBs), and
``mm/memfd_luo.c``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Callable

import drgn
from drgn import Object, Program, TypeKind, container_of, sizeof
from drgn.helpers.common.prog import takes_program_or_default
from drgn.helpers.linux.fs import d_path
from drgn.helpers.linux.list import list_empty, list_for_each_entry
from drgn.helpers.linux.locking import RwsemLocked, mutex_owner, rwsem_locked
from drgn.helpers.linux.printk import get_printk_records
from drgn.helpers.linux.xarray import xa_for_each

from .bounded import WalkError, validate_list_for_each_entry_bounded
from .kho import (
    luo_block_chain_for_each_entry,
    luo_block_entries,
    luo_block_ser_pa,
    luo_read_ser,
    luo_read_ser_array,
    validate_luo_block_set_for_each_block,
)

__all__ = (
    "LUO_DIRECTIONS",
    "luo_cmdline_args",
    "luo_cmdline_bool",
    "luo_cmdline_param",
    "luo_deserialize_status",
    "luo_device_in_use",
    "luo_file_handler_for_each_flb",
    "luo_file_mutex_owner",
    "luo_file_retrieve_status",
    "luo_flb_counts",
    "luo_flb_incoming_status",
    "luo_flb_lock_owner",
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
    "luo_liveupdate_requested",
    "luo_log_messages",
    "luo_outgoing_freeze_state",
    "luo_outgoing_frozen",
    "luo_preserved_file_path",
    "luo_preserved_file_refcount",
    "luo_session_block_set",
    "luo_session_file_count",
    "luo_session_files_head",
    "luo_session_finished",
    "luo_session_for_each_file",
    "luo_session_header_count",
    "luo_session_mutex_owner",
    "luo_session_name_terminated",
    "luo_session_ser_file_set",
    "luo_session_ser_for_each_file",
    "memfd_luo_file_seals",
    "memfd_luo_serialized_state",
    "validate_luo_file_handler_for_each_flb",
    "validate_luo_for_each_file_handler",
    "validate_luo_for_each_flb",
    "validate_luo_for_each_session",
    "validate_luo_session_for_each_file",
)

LUO_DIRECTIONS = ("outgoing", "incoming")

# Serialized arrays and block chains: far above any real count, low enough
# that garbage cannot keep a reader busy.
_MAX_SERIALIZED_ENTRIES = 1 << 20
# include/linux/file_ref.h (64-bit)
_FILE_REF_SATURATION_ZONE = 0x8000000000000000
_FILE_REF_RELEASED = 0xC000000000000000


# --- what this kernel's LUO has: probed once per program -------------------


def _probe(prog: Program, feature: str, probe: Callable[[], bool]) -> bool:
    key = "luo_drgn_has_" + feature
    try:
        found: bool = prog.cache[key]
    except KeyError:
        found = prog.cache[key] = probe()
    return found


def _has_member(prog: Program, type: str, member: str) -> bool:
    try:
        return bool(prog.type(type).has_member(member))
    except LookupError:
        return False


def _has_symbol(prog: Program, name: str) -> bool:
    try:
        prog[name]
    except LookupError:
        return False
    return True


def _has_file_set(prog: Program) -> bool:
    # Linux 6.19 grouped a session's files in struct luo_file_set; the v6
    # series (November 2025) hung them on session->files_list.
    return _probe(prog, "file_set", lambda: _has_member(prog, "struct luo_session", "file_set"))


def _retrieve_field(prog: Program) -> str | None:
    # The 6.19.y stable backport and Linux 7.0 turned "bool retrieved" into
    # "int retrieve_status", which keeps a failed retrieve's errno too.
    if _probe(
        prog,
        "retrieve_status",
        lambda: _has_member(prog, "struct luo_file", "retrieve_status"),
    ):
        return "retrieve_status"
    if _probe(prog, "retrieved", lambda: _has_member(prog, "struct luo_file", "retrieved")):
        return "retrieved"
    return None


def _has_block_sets(prog: Program) -> bool:
    # Linux 7.2 replaced the contiguous serialization arrays (and the FDT)
    # with linked KHO block sets.
    return _probe(prog, "block_sets", lambda: _has_member(prog, "struct luo_file_set", "block_set"))


def _has_preserved_xarray(prog: Program) -> bool:
    # Linux 7.1 indexes preserved files in the luo_preserved_files xarray.
    return _probe(prog, "preserved_xarray", lambda: _has_symbol(prog, "luo_preserved_files"))


def _has_flbs(prog: Program) -> bool:
    # File-Lifecycle-Bound objects: the 6.19.y stable backport and Linux 7.0.
    return _probe(prog, "flbs", lambda: _has_symbol(prog, "luo_flb_global"))


def _has_serialize_rwsem(prog: Program) -> bool:
    # Linux 7.2 freezes the sessions under luo_session_serialize_rwsem.
    return _probe(prog, "serialize_rwsem", lambda: _has_symbol(prog, "luo_session_serialize_rwsem"))


def _has_file_ref(prog: Program) -> bool:
    # Linux 6.13 ("fs: add file_ref") made struct file's count a file_ref_t.
    return _probe(prog, "file_ref", lambda: _has_member(prog, "struct file", "f_ref"))


# --- LUO-wide state ---------------------------------------------------------


def _bytes(char_array: Object) -> bytes:
    """A NUL-terminated ``char[]`` member, bounded by its array size."""
    return bytes(char_array.string_())


# --- LUO-wide state ---------------------------------------------------------


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


def luo_cmdline_args(cmdline: bytes) -> list[tuple[bytes, bytes | None]]:
    """
    Split a kernel command line as the kernel does: ``parse_args()`` with
    ``next_arg()`` (kernel/params.c), which keeps a quoted value's spaces and
    drops its quotes, and stops at ``--`` (what follows is for init).

    :param cmdline: the command line
    :return: (parameter, value) pairs in order; the value is None for a
        parameter without ``=``
    """
    out: list[tuple[bytes, bytes | None]] = []
    args = cmdline.lstrip()
    while args:
        quoted = args[:1] == b'"'
        if quoted:
            args = args[1:]
        # next_arg() (lib/cmdline.c): equals is 0 until an '=' is found, so
        # an '=' in the first place does not count ("=a=b" is "=a", "b").
        in_quote, equals, i = quoted, 0, 0
        while i < len(args):
            c = args[i : i + 1]
            if c.isspace() and not in_quote:
                break
            if not equals and c == b"=":
                equals = i
            if c == b'"':
                in_quote = not in_quote
            i += 1
        word, args = args[:i], args[i + 1 :].lstrip()
        if quoted and word.endswith(b'"'):
            word = word[:-1]
        if not equals or equals >= len(word):
            param, value = word, None
        else:
            param, value = word[:equals], word[equals + 1 :]
            # Don't include quotes in value.
            if value.startswith(b'"'):
                value = value[1:]
                if value.endswith(b'"'):
                    value = value[:-1]
        if value is None and param == b"--":
            break
        out.append((param, value))
    return out


def luo_cmdline_bool(cmdline: bytes, name: str) -> tuple[bool | None, bytes | None]:
    """
    Get what a boolean ``early_param()`` leaves from a kernel command line,
    as ``liveupdate=`` (``early_liveupdate_param()``) and ``kho=``
    (``kho_parse_enable()``) are parsed: ``do_early_param()`` calls the
    handler for each occurrence, in order, and ``kstrtobool()`` sets the
    variable only for a value it accepts (y/t/1/e/on, n/f/0/d/off, any case;
    another is "Malformed early option" and changes nothing), so the last
    accepted value wins.

    :param name: the parameter, e.g. ``"liveupdate"``
    :return: (value, the ``name=value`` word that set it), or (None, None)
        when no occurrence sets it: the variable keeps its default
    """
    result: tuple[bool | None, bytes | None] = (None, None)
    key = name.encode()
    for param, value in luo_cmdline_args(cmdline):
        if param == key and value is not None:
            parsed = _kstrtobool(value)
            if parsed is not None:
                result = (parsed, param + b"=" + value)
    return result


@takes_program_or_default
def luo_cmdline_param(prog: Program, name: str = "liveupdate") -> bytes | None:
    """
    Return the value of a ``name=value`` parameter on the kernel command line
    (``saved_command_line``), the last one if repeated, or None if absent.

    :param name: the parameter's name, ``liveupdate`` by default
    """
    value = None
    for param, v in luo_cmdline_args(prog["saved_command_line"].string_()):
        if param == name.encode() and v is not None:
            value = v
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


def _kstrtobool(value: bytes) -> bool | None:
    """lib/kstrtox.c's kstrtobool(): e/y/t/1/on true, d/n/f/0/off false,
    by the first letters only, any case; None where it returns -EINVAL."""
    if not value:
        return None
    first, second = value[:1].lower(), value[1:2].lower()
    if first in (b"e", b"y", b"t", b"1"):
        return True
    if first in (b"d", b"n", b"f", b"0"):
        return False
    if first == b"o":
        return {b"n": True, b"f": False}.get(second)
    return None


@takes_program_or_default
def luo_liveupdate_requested(prog: Program) -> bool | None:
    """
    Return what the kernel command line asked of LUO, as
    ``early_liveupdate_param()`` parses it (:func:`luo_cmdline_bool`): True
    for ``liveupdate=on``, False for ``liveupdate=off``, None when no
    ``liveupdate=`` value is a boolean (LUO is off by default).
    """
    return luo_cmdline_bool(prog["saved_command_line"].string_(), "liveupdate")[0]


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
    out = _session_header(prog, "outgoing")
    if _has_serialize_rwsem(prog):
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
    if not _has_serialize_rwsem(prog):
        return None
    locked = _rwsem_write_locked(prog["luo_session_serialize_rwsem"].address_of_())
    luo_ser = prog["luo_global"].luo_ser_out
    sessions_pa = luo_ser.sessions_pa.value_() if luo_ser else 0
    bs = luo_session_block_set(prog, "outgoing")
    cpb = bs.count_per_block.value_()
    reserved = written = 0
    for block in validate_luo_block_set_for_each_block(bs):
        count = int(block.ser.count.value_())
        if not 0 <= count <= cpb:
            raise WalkError(
                "outgoing session blocks",
                luo_block_ser_pa(block),
                f"impossible entry count {count}",
            )
        reserved += count
        entries = luo_block_entries(prog, "struct luo_session_ser", luo_block_ser_pa(block), count)
        written += sum(1 for e in entries if e.name[0])
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
    if _has_block_sets(prog):
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
    return list_for_each_entry(
        "struct liveupdate_file_handler", prog["luo_file_handler_list"].address_of_(), "list"
    )


@takes_program_or_default
def validate_luo_for_each_file_handler(prog: Program) -> Iterator[Object]:
    """
    Like :func:`luo_for_each_file_handler`, validating the list as it goes.

    :raises WalkError: on a corrupted list
    :return: Iterator of ``struct liveupdate_file_handler *`` objects.
    """
    return validate_list_for_each_entry_bounded(
        "struct liveupdate_file_handler",
        prog["luo_file_handler_list"].address_of_(),
        "list",
        "luo_file_handler_list",
    )


def luo_file_handler_for_each_flb(handler: Object) -> Iterator[Object]:
    """
    Iterate over the FLBs a file handler depends on (6.19.y/7.0 and later).

    :param handler: ``struct liveupdate_file_handler *``
    :return: Iterator of ``struct liveupdate_flb *`` objects.
    """
    for link in list_for_each_entry("struct luo_flb_link", handler.flb_list.address_of_(), "list"):
        yield link.flb.read_()


def validate_luo_file_handler_for_each_flb(handler: Object) -> Iterator[Object]:
    """
    Like :func:`luo_file_handler_for_each_flb`, validating the list as it
    goes.

    :param handler: ``struct liveupdate_file_handler *``
    :raises WalkError: on a corrupted list
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
    return list_for_each_entry("struct luo_session", head, "list")


@takes_program_or_default
def validate_luo_for_each_session(prog: Program, direction: str = "outgoing") -> Iterator[Object]:
    """
    Like :func:`luo_for_each_session`, validating the list as it goes.

    :param direction: ``"outgoing"`` or ``"incoming"``
    :raises WalkError: on a corrupted list
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


def luo_session_name_terminated(session: Object) -> bool:
    """
    Return whether a session's name ends within its array, as
    ``luo_session_create()`` requires (a name is at most 63 bytes).

    :param session: ``struct luo_session *``
    """
    return b"\0" in session.name.to_bytes_()


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


def luo_session_files_head(session: Object) -> Object:
    """
    Get the head of a session's list of ``struct luo_file``.

    :param session: ``struct luo_session *``
    :return: ``struct list_head *``
    """
    # v6 series: session->files_list.  6.19 and later: session->file_set.
    if _has_file_set(session.prog_):
        return session.file_set.files_list.address_of_()
    return session.files_list.address_of_()


def luo_session_for_each_file(session: Object) -> Iterator[Object]:
    """
    Iterate over the preserved (outgoing) or deserialized (incoming) files
    of a session.

    :param session: ``struct luo_session *``
    :return: Iterator of ``struct luo_file *`` objects.
    """
    return list_for_each_entry("struct luo_file", luo_session_files_head(session), "list")


def validate_luo_session_for_each_file(session: Object) -> Iterator[Object]:
    """
    Like :func:`luo_session_for_each_file`, validating the list as it goes.

    :param session: ``struct luo_session *``
    :raises WalkError: on a corrupted list
    :return: Iterator of ``struct luo_file *`` objects.
    """
    return validate_list_for_each_entry_bounded(
        "struct luo_file",
        luo_session_files_head(session),
        "list",
        f"files of session {_bytes(session.name)!r}",
    )


def luo_session_file_count(session: Object) -> int:
    """
    Get the number of files a session claims (its list may disagree).

    :param session: ``struct luo_session *``
    """
    if _has_file_set(session.prog_):
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
    if not session.retrieved:
        return False
    if _has_block_sets(session.prog_):
        bs = session.file_set.block_set
        if not bs.incoming.value_():
            # Handed over with no files: nothing was restored to destroy.
            return None
        # kho_block_set_destroy() frees every block, then zeroes nblocks
        # (and head_pa, the line after): no block left means it ran.
        return not bs.nblocks.value_()
    if luo_session_file_count(session) or not list_empty(luo_session_files_head(session)):
        return False
    return None


# --- preserved files (struct luo_file) --------------------------------------


def luo_file_retrieve_status(luo_file: Object) -> int:
    """
    Get the retrieve state of an incoming file, the same on every layout: 0
    never attempted, 1 retrieved, a negative errno for a failed retrieve.

    :param luo_file: ``struct luo_file *``
    """
    field = _retrieve_field(luo_file.prog_) or "retrieve_status"
    return _retrieve_state(field, int(luo_file.member_(field).value_()))


def _retrieve_state(field: str, raw: int) -> int:
    """0 / 1 / -errno from the raw value of ``luo_file->field``."""
    # 6.19.y/7.0 replaced "bool retrieved" with "int retrieve_status", which
    # keeps the errno of a failed retrieve; any positive value means success.
    if field == "retrieve_status":
        return 1 if raw > 0 else raw
    return 1 if raw else 0


# --- serialized data (what crosses the kexec) -------------------------------


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
    header = _session_header(prog, direction)
    what = f"serialized {direction} sessions"
    if not _has_block_sets(prog):
        yield from _serialized_sessions_pre72(prog, header, what)
        return
    head_pa = header.block_set.head_pa.value_()
    if direction == "outgoing" and header.sessions_pa:
        # Written at freeze: zero until then, the first block after.
        head_pa = header.sessions_pa[0].value_() or head_pa
    yield from luo_block_chain_for_each_entry(prog, head_pa, "struct luo_session_ser", what)


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
    name = _bytes(session_ser.name).decode(errors="replace")
    what = f"serialized files of session {name!r}"
    if not files_pa:
        return
    if _has_block_sets(prog):
        yield from luo_block_chain_for_each_entry(prog, files_pa, "struct luo_file_ser", what)
        return
    # Before 7.2: one physically contiguous array of count entries.
    if not 0 <= count <= _MAX_SERIALIZED_ENTRIES:
        raise WalkError(what, files_pa, f"impossible file count {count}")
    yield from luo_read_ser_array(prog, prog.type("struct luo_file_ser"), files_pa, count, what)


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
    return luo_for_each_serialized_session(prog, "incoming")


# --- the luo_preserved_files index (7.1+) -----------------------------------


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


# --- FLBs (6.19.y/7.0 and later) --------------------------------------------


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
    if _has_file_ref(file.prog_):
        return _file_ref_count(int(file.f_ref.refcnt.counter.value_()))
    return int(file.f_count.counter.value_())


def _file_ref_count(raw: int) -> int:
    raw &= 0xFFFFFFFFFFFFFFFF
    if raw < _FILE_REF_SATURATION_ZONE:
        return raw + 1
    return -2 if raw < _FILE_REF_RELEASED else -1


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


def _shmem_fops(prog: Program) -> int | None:
    """The address of ``shmem_file_operations`` (memfds outside hugetlbfs
    use it), cached; None without shmem."""
    try:
        return prog.cache["luo_drgn_shmem_fops"]  # type: ignore[no-any-return]
    except KeyError:
        try:
            fops: int | None = prog["shmem_file_operations"].address_
        except LookupError:
            fops = None
        prog.cache["luo_drgn_shmem_fops"] = fops
        return fops


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
    return luo_read_ser(prog, t, pa)
