# SPDX-License-Identifier: LGPL-2.1-or-later
"""
LUO State
---------

The ``luo_drgn.helpers.liveupdate_state`` module provides helpers for the
state the Live Update Orchestrator keeps as a whole (``luo_core.c``, and
the session headers of ``luo_session.c``): whether ``/dev/liveupdate`` is
open, whether LUO was asked for on the command line and KHO is enabled,
whether the outgoing sessions are frozen for a kexec (7.2's
``luo_session_serialize_rwsem``, or the serialized header before it),
whether incoming sessions were handed over and deserialized, and what
``luo_session_deserialize()`` returned.
"""

from __future__ import annotations

import drgn
from drgn import Object, Program
from drgn.helpers.common.prog import takes_program_or_default
from drgn.helpers.linux.list import list_empty
from drgn.helpers.linux.locking import RwsemLocked, rwsem_locked
from drgn.helpers.linux.printk import get_printk_records

from .bounded import WalkError
from .cmdline import cmdline_bool
from .kho import (
    kho_block_entries,
    kho_block_pa,
    validate_kho_block_set_for_each_block,
)
from .liveupdate import (
    _session_header,
    luo_session_block_set,
    luo_session_header_count,
)
from .liveupdate_layout import (
    _has_block_sets,
    _has_serialize_rwsem,
)

__all__ = (
    "luo_deserialize_status",
    "luo_device_in_use",
    "luo_incoming_deserialized",
    "luo_incoming_present",
    "luo_is_enabled",
    "luo_liveupdate_count",
    "luo_liveupdate_requested",
    "luo_log_messages",
    "luo_outgoing_freeze_state",
    "luo_outgoing_frozen",
)


@takes_program_or_default
def luo_device_in_use(prog: Program) -> bool | None:
    """
    Return whether ``/dev/liveupdate`` is open (``luo_dev.in_use``: only one
    process may hold it, ``luo_open()`` refuses others with EBUSY), or None
    on a kernel without it.

    :return: True, False, or None without ``luo_dev``
    """
    try:
        return bool(prog["luo_dev"].in_use.counter.value_())
    except LookupError:
        return None


@takes_program_or_default
def luo_log_messages(prog: Program) -> list[bytes]:
    """
    Get LUO's messages from the kernel log buffer (``luo: ...``, and the
    panic message of a failed restore), oldest first.

    A restore that fails at boot frees the data it rejected before
    ``liveupdate_early_init()`` panics: these messages are then the only
    account of what went wrong.

    :return: the messages' texts, as bytes
    """
    return [
        r.text
        for r in get_printk_records(prog)
        if r.text.startswith((b"luo: ", b"KHO: ")) or b"The incoming tree failed" in r.text
    ]


@takes_program_or_default
def luo_liveupdate_requested(prog: Program) -> bool | None:
    """
    Return what the kernel command line asked of LUO, as
    ``early_liveupdate_param()`` parses it (:func:`cmdline_bool`): True
    for ``liveupdate=on``, False for ``liveupdate=off``, None when no
    ``liveupdate=`` value is a boolean (LUO is off by default).

    :return: True, False, or None
    """
    return cmdline_bool(prog["saved_command_line"].string_(), "liveupdate")[0]


@takes_program_or_default
def luo_outgoing_frozen(prog: Program) -> bool | None:
    """
    Return whether the outgoing sessions were serialized for a kexec (the
    "frozen" state), or None where memory cannot tell.

    :return: True, False, or None
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
        rt: bool = prog.cache["rwsem_rt"]
    except KeyError:
        rt = prog.cache["rwsem_rt"] = prog.type("struct rw_semaphore").has_member("rwbase")
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
    for block in validate_kho_block_set_for_each_block(bs):
        count = int(block.ser.count.value_())
        if not 0 <= count <= cpb:
            raise WalkError(
                "outgoing session blocks",
                kho_block_pa(block),
                f"impossible entry count {count}",
            )
        reserved += count
        entries = kho_block_entries(prog, "struct luo_session_ser", kho_block_pa(block), count)
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

    :return: True or False
    """
    return bool(_session_header(prog, "incoming").active.value_())


def _local_statics(prog: Program) -> dict[str, Object] | None:
    """luo_session_deserialize()'s function-local statics, found by symbol:
    the compiler names them is_deserialized.N and saved_err.N (prog[...]
    does not find locals).  Read only when the symbol table has exactly one
    of each: were another function to have a saved_err of its own, nothing
    in the symbol table would say which is luo_session_deserialize()'s, and
    a guess could report a failed deserialization as a success."""
    try:
        cached: dict[str, Object] | None = prog.cache["luo_session_deserialize_statics"]
        return cached
    except KeyError:
        pass
    found: dict[str, list[drgn.Symbol]] = {"is_deserialized": [], "saved_err": []}
    for sym in prog.symbols():
        base, _, suffix = sym.name.partition(".")
        if base in found and suffix.isdigit() and sym.kind == drgn.SymbolKind.OBJECT:
            found[base].append(sym)
    out: dict[str, Object] | None = None
    if len(found["is_deserialized"]) == 1 and len(found["saved_err"]) == 1:
        (flag,), (err,) = found["is_deserialized"], found["saved_err"]
        out = {
            "is_deserialized": Object(prog, "bool", address=flag.address),
            "saved_err": Object(prog, "int", address=err.address),
        }
    prog.cache["luo_session_deserialize_statics"] = out
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

    :return: True, False, or None
    """
    inc = _session_header(prog, "incoming")
    if not inc.active:
        return None
    if _has_block_sets(prog):
        # 7.2: luo_session_deserialize() destroys the incoming block set
        # (kho_block_set_destroy() zeroes head_pa).
        return not inc.block_set.head_pa.value_()
    return not list_empty(inc.list.address_of_())


@takes_program_or_default
def luo_is_enabled(prog: Program) -> bool:
    """
    Return whether LUO is enabled (``luo_global.enabled``, which
    ``luo_early_startup()`` sets when KHO is on and ``liveupdate=on`` was
    given, and ``luo_late_startup()`` clears again when its set-up fails).

    :return: True or False
    """
    return bool(prog["luo_global"].enabled.value_())


@takes_program_or_default
def luo_liveupdate_count(prog: Program) -> int:
    """
    Get how many live updates led to this kernel (``luo_global.liveupdate_num``:
    the previous kernel's count plus one, read back from the handover).

    :return: the count, 0 on a cold boot
    """
    return int(prog["luo_global"].liveupdate_num.value_())
