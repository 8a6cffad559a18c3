# SPDX-License-Identifier: LGPL-2.1-or-later
"""LUO-wide state (:mod:`luo_drgn.helpers.liveupdate_state`) on the real
fixtures: each helper's result against the guest's log or plain drgn."""

from __future__ import annotations

import errno
from typing import Any

import drgn
import pytest

from luo_drgn import examples
from luo_drgn import helpers as h
from luo_drgn.helpers import liveupdate_state
from tests.support.fixtures import only
from tests.support.plain import (
    has_sessions,
    sessions_handed_over,
)


@only(lambda name: name in ("outgoing", "incoming", "disabled"))
def test_luo_cmdline_param(prog: drgn.Program, manifest: dict[str, Any]) -> None:
    """Would catch: the boot command line misparsed (a parameter missed, or a missing one found)."""
    (cmdline,) = [
        line.split("Command line: ", 1)[1]
        for line in manifest["kernel_log"]
        if line.startswith("Command line:")
    ][-1:]
    words = dict(w.split("=", 1) for w in cmdline.split() if "=" in w)
    assert h.cmdline_param(prog) == words["liveupdate"].encode() == b"on"
    assert h.cmdline_param(prog, "luo_scenario") == words["luo_scenario"].encode()
    assert h.cmdline_param(prog, "no_such_parameter") is None


@only(has_sessions)
def test_luo_outgoing_frozen(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: the freeze misread (a dump at machine_kexec not frozen, or the reverse)."""
    assert h.luo_outgoing_frozen(prog) is expected["frozen"]


@only(has_sessions)
def test_luo_incoming_present(prog: drgn.Program, manifest: dict[str, Any]) -> None:
    """Would catch: incoming LUO data reported in a first-boot kernel or after a kernel that
    handed no session over (second-pending's middle kernel), or missed after a kexec."""
    assert h.luo_incoming_present(prog) is sessions_handed_over(manifest)


@only(has_sessions)
def test_luo_incoming_deserialized(
    prog: drgn.Program, expected: dict[str, Any], manifest: dict[str, Any]
) -> None:
    """Would catch: the incoming data's deserialization state misread."""
    want = expected["deserialized"] if sessions_handed_over(manifest) else None
    assert h.luo_incoming_deserialized(prog) is want


@only(lambda name: name in ("incoming", "incoming-pending", "deserialize-failed"))
def test_luo_deserialize_status(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """luo_session_deserialize()'s statics: whether the first open ran it,
    and the error it kept (the errno the kernel logged)."""
    ran, err = h.luo_deserialize_status(prog) or (None, None)
    failed = expected.get("deserialize_failed")
    assert ran is expected["deserialized"]
    assert err == (-errno.EINVAL if failed and failed["errno"] == "EINVAL" else 0)


def test_luo_deserialize_status_refuses_an_ambiguous_static() -> None:
    """Would catch: luo_session_deserialize()'s statics taken from a guess
    when the symbols are ambiguous (a second is_deserialized.N, as another
    function's static would be named): the status is then unknown (None),
    not read from whichever came first.  deserialize-failed's kernel logged
    the real status (-22)."""
    prog = examples.load("deserialize-failed").program()
    assert h.luo_deserialize_status(prog) == (True, -22)
    prog = examples.load("deserialize-failed").program()
    other = drgn.Symbol(
        "is_deserialized.7", 0xFFFFFFFF81000000, 1, drgn.SymbolBinding.LOCAL, drgn.SymbolKind.OBJECT
    )

    def finder(prog: drgn.Program, name: str | None, address: int | None, one: bool) -> list:  # type: ignore[type-arg]
        return [other] if name in (None, other.name) and address is None else []

    prog.register_symbol_finder("another static", finder, enable_index=0)
    assert h.luo_deserialize_status(prog) is None


def test_luo_deserialize_status_reads_only_an_unambiguous_static() -> None:
    """Would catch: luo_session_deserialize()'s saved_err taken by a guess
    when the symbol table has two candidates: nearest by address, another
    function's saved_err.7 planted beside it read 0 (success) where the
    kernel kept -EINVAL.  With two, the status is unknown (None)."""
    prog = examples.load("deserialize-failed").program()
    assert h.luo_deserialize_status(prog) == (True, -errno.EINVAL)
    (real,) = [s for s in prog.symbols() if s.name.startswith("saved_err.")]
    prog = examples.load("deserialize-failed").program()

    def another(p: drgn.Program, name: Any, address: Any, one: bool) -> list[drgn.Symbol]:
        if name in (None, "saved_err.7") and address is None:
            kind, binding = drgn.SymbolKind.OBJECT, drgn.SymbolBinding.LOCAL
            return [drgn.Symbol("saved_err.7", real.address + 8, 4, binding, kind)]
        return []

    prog.register_symbol_finder("another", another, enable_index=0)
    assert h.luo_deserialize_status(prog) is None


@pytest.mark.parametrize(
    "rt,value,locked",
    [
        # PREEMPT_RT (include/linux/rwbase_rt.h): READER_BIAS free, WRITER_BIAS
        # write-locked, READER_BIAS + n read-locked.
        (True, 1 << 31, False),
        (True, 1 << 30, True),
        (True, (1 << 31) + 2, False),
        # Otherwise: count bit 0, RWSEM_WRITER_LOCKED.
        (False, 0, False),
        (False, 1, True),
        (False, 0x100, False),
    ],
)
def test_rwsem_write_locked_on_preempt_rt_too(rt: bool, value: int, locked: bool) -> None:
    """The freeze lock read on both rw_semaphore layouts (a synthetic program:
    no fixture kernel is PREEMPT_RT)."""
    from drgn import Architecture, Platform, PlatformFlags, TypeMember

    prog = drgn.Program(
        Platform(Architecture.UNKNOWN, PlatformFlags.IS_64_BIT | PlatformFlags.IS_LITTLE_ENDIAN)
    )
    prog.set_linux_kernel_custom(
        b"OSRELEASE=rt\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82000000\n", False
    )
    i32, i64 = prog.int_type("int", 4, True), prog.int_type("long", 8, True)
    atomic = prog.struct_type("atomic_t", 4, [TypeMember(i32, "counter", 0)])
    atomic64 = prog.struct_type("atomic_long_t", 8, [TypeMember(i64, "counter", 0)])
    if rt:
        rwbase = prog.struct_type("rwbase_rt", 8, [TypeMember(atomic, "readers", 0)])
        sem_t = prog.struct_type("rw_semaphore", 8, [TypeMember(rwbase, "rwbase", 0)])
    else:
        owner = prog.struct_type("atomic_long_t", 8, [TypeMember(i64, "counter", 0)])
        sem_t = prog.struct_type(
            "rw_semaphore", 16, [TypeMember(atomic64, "count", 0), TypeMember(owner, "owner", 64)]
        )

    def types(prog: drgn.Program, kinds: Any, name: str, filename: str | None) -> Any:
        return sem_t if name == "rw_semaphore" else None

    prog.register_type_finder("rt", types, enable_index=0)
    data = value.to_bytes(8, "little")
    prog.add_memory_segment(0xFFFF888000001000, 16, lambda a, n, o, p: (data + bytes(8))[o : o + n])
    sem = drgn.Object(prog, prog.pointer_type(sem_t), 0xFFFF888000001000)
    assert liveupdate_state._rwsem_write_locked(sem) is locked


@only(has_sessions)
def test_luo_device_in_use(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: /dev/liveupdate's in_use flag misread."""
    # luo_open() sets luo_dev.in_use for the one process that holds it.
    assert h.luo_device_in_use(prog) is bool(expected["luo_device_holders"])
