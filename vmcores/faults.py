# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fault injection: which bytes to change in a real guest, and what an
inspector must then report.

Each fault opens the base dump with plain drgn (not luo_drgn: the generator
must not depend on the inspector it tests) to find the object to corrupt,
and returns the writes (virtual address, old bytes, new bytes, physical
address) and the findings it expects.  The writes are then made in the live
guest over the gdbstub.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import drgn
from drgn.helpers.linux.list import list_for_each_entry
from drgn.helpers.linux.mm import virt_to_phys

Write = dict[str, Any]
Finding = dict[str, Any]


def _open(vmcore: Path, debug: Path) -> drgn.Program:
    prog = drgn.Program()
    prog.set_core_dump(str(vmcore))
    prog.load_debug_info([str(debug)])
    return prog


def _session(prog: drgn.Program, name: str, direction: str = "outgoing") -> drgn.Object:
    head = prog["luo_session_global"].member_(direction).list
    for s in list_for_each_entry("struct luo_session", head.address_of_(), "list"):
        if s.name.string_().decode() == name:
            return s
    raise LookupError(f"no {direction} session {name}")


def _file(session: drgn.Object, token: int) -> drgn.Object:
    for f in list_for_each_entry(
        "struct luo_file", session.file_set.files_list.address_of_(), "list"
    ):
        if f.token.value_() == token:
            return f
    raise LookupError(f"no token {token:#x} in {session.name.string_().decode()}")


def _write(prog: drgn.Program, obj: drgn.Object, new: bytes, what: str) -> Write:
    address = obj.address_
    old = prog.read(address, len(new))
    return {
        "what": what,
        "address": address,
        "phys": virt_to_phys(prog, address).value_(),
        "old": old.hex(),
        "new": new.hex(),
    }


def _u64(v: int) -> bytes:
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


Make = Callable[[Path, Path], tuple[list[Write], list[Finding]]]


@dataclass(frozen=True)
class Fault:
    """A fault, registered once with :func:`fault`: what makes it, what the
    fixture is, and where it is written.

    ``when`` is ``"ready"`` (written into the guest of run ``base`` once its
    scenario is ready, each fault dumped in turn), ``"machine_kexec"``
    (written into the frozen state at machine_kexec; the kexec goes on and
    the real next kernel reacts: a handover run of its own) or
    ``"pre-freeze"`` (written before the freeze; not a fixture of its own).
    ``whole``: the fixture's dump is committed whole, not as its base plus
    the recorded writes (the CLI is then tested on a plain file).
    """

    name: str
    make: Make
    description: str
    base: str
    when: str = "ready"
    whole: bool = False


FAULTS: dict[str, Fault] = {}


def fault(
    name: str, description: str, *, base: str, when: str = "ready", whole: bool = False
) -> Callable[[Make], Make]:
    """Register the decorated function as fault ``name``: the runs, the
    fixture's manifest and the tests all take it from here."""

    def register(make: Make) -> Make:
        assert name not in FAULTS, name
        FAULTS[name] = Fault(name, make, description, base, when, whole)
        return make

    return register


def state_faults(base: str) -> tuple[str, ...]:
    """The faults written into run ``base``'s guest once it is ready."""
    return tuple(f.name for f in FAULTS.values() if f.base == base and f.when == "ready")


def kexec_faults() -> tuple[Fault, ...]:
    """The faults written at machine_kexec, each a handover run of its own."""
    return tuple(f for f in FAULTS.values() if f.when == "machine_kexec")


@fault(
    "fault-duplicate-token",
    "outgoing, with two luo_files of vm-alpha sharing token 0x100",
    base="outgoing",
    whole=True,
)
def duplicate_token(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    f = _file(_session(prog, "vm-alpha"), 0x101)
    w = _write(prog, f.token, _u64(0x100), "vm-alpha token 0x101 -> 0x100")
    return [w], [
        {"code": "duplicate-token", "severity": "error", "session": "vm-alpha", "token": 0x100}
    ]


@fault(
    "fault-leaked-reference",
    "outgoing, with one reference too many on vm-beta 0x200's file",
    base="outgoing",
    whole=True,
)
def leaked_reference(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    f = _file(_session(prog, "vm-beta"), 0x200)
    ref = f.file.f_ref.refcnt.counter
    w = _write(prog, ref, _u64(ref.value_() + 1), "vm-beta 0x200 file->f_ref + 1")
    return [w], [
        {
            "code": "leaked-file-reference",
            "severity": "error",
            "session": "vm-beta",
            "token": 0x200,
            "unexplained": 1,
        }
    ]


@fault(
    "fault-file-count",
    "outgoing, with vm-alpha's file_set.count one above its list",
    base="outgoing",
)
def file_count(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    count = _session(prog, "vm-alpha").file_set.count
    w = _write(prog, count, _u64(count.value_() + 1), "vm-alpha file_set.count + 1")
    return [w], [
        {"code": "file-count-mismatch", "severity": "error", "session": "vm-alpha", "token": None},
        # luo_file_freeze() serializes that count with the 3 entries of the
        # list; the next kernel's luo_file_deserialize() then reports "File
        # count mismatch" and every open returns EIO, as the real kernel did
        # in fault-ser-file-count.
        {"code": "next-kernel-eio", "severity": "error", "session": "vm-alpha", "token": None},
    ]


@fault(
    "fault-cyclic-list",
    "outgoing, with vm-alpha's files list looping back past its head",
    base="outgoing",
)
def cyclic_list(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    s = _session(prog, "vm-alpha")
    first, last = _file(s, 0x100), _file(s, 0x102)
    # The last entry points back at the first instead of at the head: a
    # walk that does not detect cycles never ends.
    w = _write(
        prog,
        last.list.next,
        _u64(first.list.address_),
        "vm-alpha last luo_file list.next -> first luo_file",
    )
    return [w], [
        {"code": "corrupt-structure", "severity": "error", "session": "vm-alpha", "token": None}
    ]


@fault(
    "fault-bad-file-pointer",
    "outgoing, with vm-beta 0x100's file pointer unmapped",
    base="outgoing",
)
def bad_file_pointer(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    f = _file(_session(prog, "vm-beta"), 0x100)
    # A direct-map address far beyond the guest's RAM: reading it faults.
    garbage = prog["page_offset_base"].value_() + (64 << 30) + 0x1C0
    w = _write(prog, f.file, _u64(garbage), "vm-beta 0x100 luo_file.file -> unmapped")
    return [w], [
        {"code": "corrupt-structure", "severity": "error", "session": "vm-beta", "token": 0x100},
        # The memfd is still in luo_preserved_files, now pointed at by no
        # luo_file: the index and the lists disagree.
        {"code": "preserved-index-mismatch", "severity": "error", "session": None, "token": None},
    ]


@fault(
    "fault-unknown-handler",
    "outgoing, with vm-alpha 0x102's handler not a registered one",
    base="outgoing",
)
def unknown_handler(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    f = _file(_session(prog, "vm-alpha"), 0x102)
    # A real kernel object that is not a registered handler.
    bogus = prog["luo_session_global"].address_
    w = _write(prog, f.fh, _u64(bogus), "vm-alpha 0x102 luo_file.fh -> &luo_session_global")
    return [w], [
        {"code": "unknown-handler", "severity": "error", "session": "vm-alpha", "token": 0x102}
    ]


@fault(
    "fault-negative-retrieve",
    "incoming, with vm-alpha 0x102's retrieve_status -EIO",
    base="incoming",
)
def negative_retrieve(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    f = _file(_session(prog, "vm-alpha", "incoming"), 0x102)
    w = _write(
        prog,
        f.retrieve_status,
        struct.pack("<i", -5),
        "incoming vm-alpha 0x102 retrieve_status 0 -> -EIO",
    )
    return [w], [
        {
            "code": "retrieve-failed",
            "severity": "warning",
            "session": "vm-alpha",
            "token": 0x102,
            "errno": "EIO",
        }
    ]


# -- faults in the serialized data, at machine_kexec --------------------------
#
# Written into the frozen state (the freeze is done, the kexec about to
# jump), then the kexec goes on and the real next kernel reacts.  The
# findings each must cause are the kernel's reaction, as its code states it
# (kernel/liveupdate/ in 7.2.13) and as the run shows it: a panic at boot, or
# EIO at every open of /dev/liveupdate, or sessions that silently never come.
# The memory comparison of the frozen state (check_serialization) sees each
# write too.


def _ser_session_block(prog: drgn.Program) -> int:
    """Physical address of the first serialized session block."""
    return int(prog["luo_global"].luo_ser_out.sessions_pa.value_())


def _ser_sessions(prog: drgn.Program) -> dict[str, drgn.Object]:
    """Serialized session entries of the first block, by name (objects in
    the direct map, so their addresses are writable over the gdbstub)."""
    pa = _ser_session_block(prog)
    base = prog["page_offset_base"].value_()
    header = drgn.Object(prog, "struct kho_block_header_ser", address=base + pa)
    first = base + pa + header.type_.size
    size = prog.type("struct luo_session_ser").size
    out = {}
    for i in range(header.count.value_()):
        ser = drgn.Object(prog, "struct luo_session_ser", address=first + i * size)
        out[ser.name.string_().decode()] = ser
    return out


def _ser_file_block(prog: drgn.Program, session: str) -> drgn.Object:
    """The header of a serialized session's first file block."""
    pa = _ser_sessions(prog)[session].file_set_ser.files.value_()
    base = prog["page_offset_base"].value_()
    return drgn.Object(prog, "struct kho_block_header_ser", address=base + pa)


def _ser_file(prog: drgn.Program, session: str, index: int) -> drgn.Object:
    header = _ser_file_block(prog, session)
    size = prog.type("struct luo_file_ser").size
    return drgn.Object(
        prog, "struct luo_file_ser", address=header.address_ + header.type_.size + index * size
    )


def _mismatch(session: str | None, token: int | None = None) -> Finding:
    return {
        "code": "serialization-mismatch",
        "severity": "error",
        "session": session,
        "token": token,
    }


def _reaction(code: str, session: str | None) -> Finding:
    return {"code": code, "severity": "error", "session": session, "token": None}


@fault(
    "fault-ser-file-block-count",
    "frozen, vm-alpha's serialized file block count set to 0",
    base="frozen",
    when="machine_kexec",
)
def ser_file_block_count(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    count = _ser_file_block(prog, "vm-alpha").count
    w = _write(prog, count, _u64(0), "vm-alpha's serialized file block: count 3 -> 0")
    # kho_block_set_restore() rejects a block with count 0 (-EINVAL):
    # luo_file_deserialize() fails, luo_session_deserialize() keeps the
    # error, every open of /dev/liveupdate returns EIO.
    return [w], [
        _reaction("next-kernel-eio", "vm-alpha"),
        _mismatch("vm-alpha"),
        *(_mismatch("vm-alpha", t) for t in (0x100, 0x101, 0x102)),
    ]


@fault(
    "fault-ser-file-count",
    "frozen, vm-beta's serialized file count one above its entries",
    base="frozen",
    when="machine_kexec",
)
def ser_file_count(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    count = _ser_sessions(prog)["vm-beta"].file_set_ser.count
    w = _write(prog, count, _u64(3), "vm-beta's file_set_ser.count 2 -> 3")
    # luo_file_deserialize(): "File count mismatch" (-EINVAL), then EIO.
    return [w], [_reaction("next-kernel-eio", "vm-beta"), _mismatch("vm-beta")]


@fault(
    "fault-ser-unknown-handler",
    "frozen, vm-gamma 0x300 serialized under compatible memfd-v9",
    base="frozen",
    when="machine_kexec",
)
def ser_unknown_handler(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    compatible = _ser_file(prog, "vm-gamma", 0).compatible
    new = b"memfd-v9".ljust(compatible.type_.length, b"\0")
    w = _write(prog, compatible, new, "vm-gamma 0x300's serialized compatible -> memfd-v9")
    # luo_file_deserialize_one(): no such handler (-ENOENT), then EIO.  The
    # file lost is the one whose compatible the kernel names: 0x300.
    return [w], [
        {**_reaction("next-kernel-eio", "vm-gamma"), "token": 0x300},
        _mismatch("vm-gamma", 0x300),
    ]


@fault(
    "fault-ser-session-drop",
    "frozen, the session block's count lowered from 4 to 2",
    base="frozen",
    when="machine_kexec",
)
def ser_session_drop(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    base = prog["page_offset_base"].value_()
    header = drgn.Object(
        prog, "struct kho_block_header_ser", address=base + _ser_session_block(prog)
    )
    w = _write(prog, header.count, _u64(2), "serialized session block: count 4 -> 2")
    # kho_block_set_it_read_entry() reads 2 entries: vm-gamma and empty are
    # never deserialized, and no count of sessions is checked anywhere.
    return [w], [
        _reaction("next-kernel-drops", "vm-gamma"),
        _reaction("next-kernel-drops", "empty"),
        _mismatch("vm-gamma"),
        _mismatch("empty"),
    ]


@fault(
    "fault-ser-session-cycle",
    "frozen, the session block's next pointing at itself",
    base="frozen",
    when="machine_kexec",
)
def ser_session_cycle(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    pa = _ser_session_block(prog)
    header = drgn.Object(
        prog, "struct kho_block_header_ser", address=prog["page_offset_base"].value_() + pa
    )
    w = _write(prog, header.next, _u64(pa), "serialized session block: next -> itself")
    # kho_block_set_is_cyclic() refuses it: luo_session_setup_incoming()
    # fails, liveupdate_early_init() panics.  The inspector's own walk of the
    # chain stops at the cycle too.
    return [w], [
        _reaction("next-kernel-panic", None),
        {"code": "corrupt-structure", "severity": "error", "session": None, "token": None},
    ]


@fault(
    "fault-ser-memfd-seals",
    "frozen, vm-alpha 0x101's serialized memfd state with seal 0x40",
    base="frozen",
    when="machine_kexec",
)
def ser_memfd_seals(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    f = _file(_session(prog, "vm-alpha"), 0x101)
    base = prog["page_offset_base"].value_()
    state = drgn.Object(prog, "struct memfd_luo_ser", address=base + f.serialized_data.value_())
    seals = state.seals
    w = _write(
        prog,
        seals,
        struct.pack("<I", seals.value_() | 0x40),
        "vm-alpha 0x101's memfd state: an unknown seal (0x40)",
    )
    # memfd_luo_retrieve() refuses seals outside MEMFD_LUO_ALL_SEALS
    # (-EOPNOTSUPP): that one retrieve fails, the luo_file keeps the errno.
    return [w], [
        {"code": "retrieve-will-fail", "severity": "error", "session": "vm-alpha", "token": 0x101},
    ]


@fault(
    "pre-freeze-serialized-data",
    "before the freeze, vm-beta 0x200's serialized_data zeroed: the freeze fails",
    base="frozen",
    when="pre-freeze",
)
def pre_freeze_serialized_data(vmcore: Path, debug: Path) -> tuple[list[Write], list[Finding]]:
    prog = _open(vmcore, debug)
    f = _file(_session(prog, "vm-beta"), 0x200)
    w = _write(prog, f.serialized_data, _u64(0), "vm-beta 0x200 luo_file.serialized_data -> 0")
    # memfd_luo_freeze(): WARN_ON_ONCE(!args->serialized_data), -EINVAL;
    # luo_session_serialize() rolls back and the kexec is refused.
    return [w], []
