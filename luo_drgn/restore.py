# SPDX-License-Identifier: LGPL-2.1-or-later
"""The next kernel's restore path, replayed on a snapshot: pure functions.

Linux 7.2's ``kernel/liveupdate/`` is the specification.  A handover (the
data one kernel serializes for the next, :class:`~luo_drgn.model.Handover`)
meets two stages in the kernel that receives it:

1. At boot, ``luo_early_startup()`` checks ``luo_ser``'s ABI string and
   ``luo_session_setup_incoming()`` restores the session block chain with
   ``kho_block_set_restore()``.  Any failure there makes
   ``liveupdate_early_init()`` panic: the host does not boot.
2. At the first open of ``/dev/liveupdate``, ``luo_session_deserialize()``
   turns each session entry into a session (``luo_session_insert()``) and
   restores its files (``luo_file_deserialize()``).  The first failure stops
   it; the error is kept, and every open returns EIO for the rest of the
   boot.  Sessions deserialized before the failure stay; the rest are lost.

Some losses make no noise at all; those are reported too.  Each function
below names the kernel function it mirrors.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .findings import errno_name, file_finding, finding
from .helpers.kho import KHO_MAX_BLOCKS
from .model import (
    Finding,
    Handover,
    HandoverChain,
    HandoverSession,
    PreservedFile,
    Session,
    Snapshot,
)
from .nextboot import boot_findings

__all__ = (
    "Arrival",
    "check_handover",
    "deserialize",
    "incoming_not_handed_over",
    "left_behind",
    "restore_chain",
)

# include/linux/kho/abi/memfd.h: F_SEAL_SEAL | SHRINK | GROW | WRITE |
# FUTURE_WRITE | EXEC, the seals memfd_luo_retrieve() accepts.
MEMFD_LUO_ALL_SEALS = 0x3F


def _panic(snap: Snapshot) -> str:
    """liveupdate_early_init()'s panic as the next kernel prints it:
    luo_restore_fail("The incoming tree failed to initialize properly [%pe],
    ...") with -EINVAL, which %pe prints as "-EINVAL" with
    CONFIG_SYMBOLIC_ERRNAME and as "-22" without (the next kernel's config
    when --next-kernel says, else this kernel's)."""
    nk = snap.next_kernel
    symbolic = nk.symbolic_errname if nk is not None else None
    if symbolic is None:
        symbolic = snap.symbolic_errname
    err = "-EINVAL" if symbolic else f"-{errno.EINVAL}"
    return f"The incoming tree failed to initialize properly [{err}], disabling live update"


def restore_chain(chain: HandoverChain, what: str) -> str | None:
    """
    Why ``kho_block_set_restore()`` will reject a chain, or None.

    It first runs ``kho_block_set_is_cyclic()`` (Floyd's algorithm, at most
    ``KHO_MAX_BLOCKS`` blocks: "Block set is corrupted"), then adds each
    block, refusing one whose count is 0 or above ``count_per_block``
    ("Block contains invalid entry count").  Either way it returns -EINVAL.
    """
    n = len(chain.blocks)
    if chain.fault is not None:
        where = f" at {chain.fault_address:#x}" if chain.fault_address is not None else ""
        if "cycle" in chain.fault or "more than" in chain.fault:
            return (
                f"{what} comes back on itself or runs past {KHO_MAX_BLOCKS} blocks "
                f"({chain.fault}{where}): kho_block_set_is_cyclic() refuses it "
                '("luo: Block set is corrupted")'
            )
        return f"{what} cannot be read ({chain.fault}{where})"
    for i, block in enumerate(chain.blocks):
        if block.count == 0 or block.count > chain.count_per_block:
            return (
                f"kho_block_set_restore() rejects {what} block {i + 1} of {n} at {block.pa:#x}: "
                f"its entry count is {block.count}"
                + ("" if block.count == 0 else f", above the {chain.count_per_block} a block holds")
                + f' ("luo: Block contains invalid entry count: {block.count}")'
            )
    return None


def _leaked_block_hint(chain: HandoverChain, sessions: int) -> str:
    """The 7.2.13 bug that leaves an empty session block: say so when the
    chain has its signature (full blocks, then one empty block)."""
    *full, last = chain.blocks
    if (
        last.count == 0
        and full
        and all(b.count == chain.count_per_block for b in full)
        and sessions == len(full) * chain.count_per_block
    ):
        return (
            f" The outgoing block set has {len(chain.blocks)} blocks for {sessions} sessions "
            f"({chain.count_per_block} fit in a block): luo_session_insert() grows it before "
            "its duplicate-name check, and luo_session_create() does not shrink it back after "
            "a refused LIVEUPDATE_IOCTL_CREATE_SESSION (EEXIST), so an empty block stays linked."
        )
    return ""


@dataclass
class Arrival:
    """What ``luo_session_deserialize()`` will make of a handover."""

    arrived: list[str] = field(default_factory=list)  # sessions deserialized
    # The failure that stops it: (session, token or None, errno, why, kernel
    # message).
    failure: tuple[str, int | None, int, str, str] | None = None
    lost: list[str] = field(default_factory=list)  # sessions never deserialized
    # Data dropped without an error: (session, what was dropped).
    dropped: list[tuple[str, str]] = field(default_factory=list)


def _deserialize_files(
    s: HandoverSession, handlers: set[str]
) -> tuple[int | None, int, str, str] | None:
    """Why ``luo_file_deserialize()`` will fail for a session (token, errno,
    why, kernel message), or None."""
    if not s.files_pa:
        return None  # WARN_ON(count) only: reported as a drop
    if s.chain is not None:
        why = restore_chain(s.chain, f"the file chain of session {s.name!r}")
        if why is not None:
            return None, errno.EINVAL, why, "luo: Block contains invalid entry count"
    for f in s.files:
        # luo_file_deserialize_one(): no handler with that compatible.  (None:
        # the file's handler is unknown here, an unknown-handler finding.)
        if f.handler is not None and f.handler not in handlers:
            return (
                f.token,
                errno.ENOENT,
                f"token {f.token:#x} needs file handler {f.handler!r}, which the kernel "
                "receiving it does not register (luo_file_deserialize_one())",
                f"luo: No registered handler for compatible '{f.handler}'",
            )
    if len(s.files) != s.file_count:
        return (
            None,
            errno.EINVAL,
            f"its entry claims {s.file_count} files but its blocks hold {len(s.files)} "
            "(luo_file_deserialize() compares them)",
            f"luo: File count mismatch: expected {s.file_count}, found {len(s.files)}",
        )
    return None


def deserialize(handover: Handover, handlers: Iterable[str]) -> Arrival:
    """
    Replay ``luo_session_deserialize()`` on a handover whose session chain
    was restored: each entry, in chain order, becomes a session unless its
    name is taken (``luo_session_insert()``: -EEXIST) or its files cannot be
    deserialized (``luo_file_deserialize()``); the first failure stops it.

    :param handlers: compatible strings of the file handlers registered in
        the kernel that deserializes
    """
    known = set(handlers)
    out = Arrival()
    names: set[str] = set()
    for i, s in enumerate(handover.sessions):
        if s.name in names:
            out.failure = (
                s.name,
                None,
                errno.EEXIST,
                f"a second session named {s.name!r}: luo_session_insert() refuses it",
                f"luo: Failed to insert session [{s.name}] -{errno.EEXIST}",
            )
        elif (failed := _deserialize_files(s, known)) is not None:
            token, err, why, message = failed
            out.failure = (
                s.name,
                token,
                err,
                f"session {s.name!r}: {why}",
                f"{message}; luo: Failed to deserialize files for session [{s.name}] -{err}",
            )
            # luo_session_insert() succeeded: the session stays listed, empty.
            out.arrived.append(s.name)
        if out.failure is not None:
            out.lost = [x.name for x in handover.sessions[i + 1 :]]
            return out
        names.add(s.name)
        out.arrived.append(s.name)
        if not s.files_pa and s.file_count:
            out.dropped.append(
                (
                    s.name,
                    f"its {s.file_count} files: the entry has no file blocks "
                    "(luo_file_deserialize() only WARNs)",
                )
            )
    return out


def _uncounted(handover: Handover) -> Iterator[tuple[int, list[str]]]:
    if handover.chain is not None:
        for i, block in enumerate(handover.chain.blocks):
            if block.uncounted and 0 < block.count <= handover.chain.count_per_block:
                yield i, block.uncounted


def _next_kernel(snap: Snapshot, handover: Handover) -> Iterator[Finding]:
    """The outgoing handover, as the next kernel will meet it."""
    when = "once frozen, " if handover.source == "predicted" else ""
    n = len(handover.listed)
    # luo_session_serialize(): a block set too small for the list makes the
    # freeze fail with -ENOSPC (WARN_ON_ONCE), and the kexec is refused.
    if handover.source == "predicted" and handover.chain is not None:
        capacity = len(handover.chain.blocks) * handover.chain.count_per_block
        if capacity < n:
            yield finding(
                "kexec-will-fail",
                f"the kexec will be refused: luo_session_serialize() has {capacity} session "
                f"slots for {n} sessions and fails with ENOSPC; nothing is handed over",
            )
            return
    # memfd_luo_freeze(): WARN_ON_ONCE(!args->serialized_data), -EINVAL; the
    # freeze rolls back and reboot() fails: there is no next kernel.
    refused = [
        file_finding(
            "kexec-will-fail",
            f"the kexec will be refused: memfd_luo_freeze() refuses session {s.name!r} "
            f"token {f.token:#x}, which has no serialized state (serialized_data 0), so "
            "luo_session_serialize() rolls back and reboot() returns EINVAL "
            f'("luo: Freeze failed for token[{f.token:#x}] handler[{f.handler}] err[-22]")',
            s,
            f,
        )
        for s in snap.sessions
        if s.direction == "outgoing"
        for f in s.files
        if f.handler and f.handler.startswith("memfd") and not f.serialized_data
    ]
    if refused and handover.source == "predicted":
        yield from refused
        return
    if not handover.listed and not any(s.direction == "outgoing" for s in snap.sessions):
        # No session: whatever the next kernel does, nothing preserved can
        # be lost (luo_session_serialize() leaves sessions_pa at 0).
        return
    gate, read = boot_findings(snap, n)
    yield from gate
    if handover.chain is None:
        return  # no session serialized: nothing for the restore to read
    if not read:
        # Nothing handed over reaches luo_early_startup() (no KHO data, KHO
        # off, or refused): no ABI check, no restore, nothing else to say.
        return
    nk = snap.next_kernel
    if nk is not None and not nk.has_luo:
        yield finding(
            "next-kernel-no-luo",
            f"the next kernel ({nk.path}) is built without CONFIG_LIVEUPDATE: it never reads "
            f"the handover, and all {n} sessions are lost",
        )
        return
    # luo_early_startup(): the ABI string first.
    expected = nk.abi if nk is not None else None
    if expected is not None and handover.compatible != expected:
        yield finding(
            "next-kernel-panic",
            f"the next kernel will panic at boot: luo_early_startup() expects LUO ABI "
            f'{expected!r}, this kernel writes {handover.compatible!r} ("luo: LUO state is '
            f"incompatible with '{expected}'\"); liveupdate_early_init() panics "
            f'("{_panic(snap)}"). All {n} sessions are lost.',
        )
        return
    # The structures the next kernel will read the handover with.
    if nk is not None:
        for name, theirs in nk.layouts.items():
            ours = snap.ser_layouts.get(name)
            if ours is not None and theirs is not None and ours != theirs:
                yield finding(
                    "next-kernel-abi",
                    f"the next kernel ({nk.path}) lays out {name} differently (size "
                    f"{theirs[0]}, here {ours[0]}) under the same LUO ABI string "
                    f"{handover.compatible!r}: it would misread what this kernel writes",
                )
    # luo_session_setup_incoming() -> kho_block_set_restore().
    why = restore_chain(handover.chain, "the session chain")
    if why is not None:
        yield finding(
            "next-kernel-panic",
            f"{when}the next kernel will panic at boot: {why}; luo_early_startup() fails and "
            f'liveupdate_early_init() panics ("{_panic(snap)}"). All {n} sessions are lost.'
            + _leaked_block_hint(handover.chain, n),
            session=None,
            token=None,
            address=handover.chain.head_pa,
        )
        return
    # kho_block_set_it_read_entry() reads `count` entries of each block and
    # moves on: entries past it vanish, and no total is checked for sessions.
    for i, names in _uncounted(handover):
        block = handover.chain.blocks[i]
        for name in names:
            yield finding(
                "next-kernel-drops",
                f"{when}the next kernel will silently skip session {name!r}: block {i + 1} at "
                f"{block.pa:#x} has an entry count of {block.count}, so "
                f"kho_block_set_it_read_entry() never reads the {len(names)} written past it "
                f"({', '.join(map(repr, names))}), and no total of sessions is checked",
                session=name,
                token=None,
                address=block.pa,
            )
    handlers = nk.handlers if nk is not None and nk.handlers is not None else None
    if handlers is None:
        handlers = [x.compatible for x in snap.handlers]
    arrival = deserialize(handover, handlers)
    yield from _arrival_findings(
        arrival,
        "next-kernel-eio",
        "next-kernel-drops",
        f"{when}in the next kernel, the first open of /dev/liveupdate will fail",
    )


def _arrival_findings(
    arrival: Arrival, failed_code: str, drop_code: str, prefix: str
) -> Iterator[Finding]:
    if arrival.failure is not None:
        session, token, err, why, message = arrival.failure
        kept = ", ".join(map(repr, arrival.arrived)) or "none"
        lost = ", ".join(map(repr, arrival.lost)) or "none"
        # A session whose files failed was inserted first: it stays, empty.
        yield finding(
            failed_code,
            f"{prefix}: luo_session_deserialize() stops at {why} (-{errno_name(-err)}, "
            f'"{message}"); it keeps that error and every open of /dev/liveupdate returns '
            f"EIO for the rest of the boot, so no session can be retrieved. "
            f"Sessions it leaves listed: {kept}; never deserialized: {lost}.",
            session=session,
            token=token,
        )
    for session, what in arrival.dropped:
        yield finding(
            drop_code, f"{prefix.split(':')[0]}: session {session!r} loses {what}", session=session
        )


def _size(f: PreservedFile) -> str:
    size = f.memfd.get("size") if f.memfd is not None else f.size
    return f"{size} bytes" if size is not None else "size unknown"


def incoming_not_handed_over(snap: Snapshot) -> Iterator[tuple[Session, PreservedFile | None]]:
    """
    Each file of each incoming session not finished (None for a session
    with no file): what this kernel received and will not hand over at its
    own kexec, since ``luo_session_serialize()`` writes the outgoing
    sessions only.  Finished sessions gave their files to the application.
    """
    for s in snap.sessions:
        if s.direction != "incoming" or s.finished:
            continue
        if not s.files:
            yield s, None
        for f in s.files:
            yield s, f


def left_behind(snap: Snapshot) -> Iterator[Finding]:
    """
    What this kernel received and will not hand over at its own kexec:
    ``luo_session_serialize()`` writes the outgoing sessions only, so an
    incoming file never retrieved (and every session never deserialized) is
    gone after it, and a retrieved file lives on only if it was preserved
    again, which ``luo_preserve_file()`` refuses (EBUSY, it is still in
    ``luo_preserved_files``) until its session is finished.
    """
    why = "luo_session_serialize() hands over outgoing sessions only"
    for s, f in incoming_not_handed_over(snap):
        if f is None:
            yield finding(
                "not-handed-on",
                f"incoming session {s.name!r} (no files) is not handed over: the next kernel "
                f"will not have it ({why})",
                session=s.name,
                direction="incoming",
            )
        elif f.retrieve_status == 1:
            # luo_preserve_file(): xa_insert() into luo_preserved_files fails
            # with -EBUSY while the retrieved file is still listed there, which
            # it is until luo_file_finish() of its session.
            yield finding(
                "not-preserved-again",
                f"incoming session {s.name!r} token {f.token:#x} ({_size(f)}) was retrieved "
                f"and cannot be preserved again until {s.name!r} is finished "
                "(luo_preserve_file() refuses it with EBUSY): a kexec now does not hand its "
                "data over, and only what the application keeps elsewhere remains",
                session=s.name,
                token=f.token,
                address=f.address,
                direction="incoming",
            )
        else:
            state = "never retrieved" if f.retrieve_status == 0 else "not retrieved (it failed)"
            yield finding(
                "lost-at-kexec",
                f"incoming session {s.name!r} token {f.token:#x} ({_size(f)}) was {state}: it "
                f"is lost at this kexec ({why})",
                session=s.name,
                token=f.token,
                address=f.address,
                direction="incoming",
            )
    for p in snap.pending_incoming:
        never = (
            "was never deserialized (nothing opened /dev/liveupdate in this kernel): it is lost "
            f"at this kexec ({why})"
        )
        if not p.files:
            yield finding(
                "not-handed-on",
                f"incoming session {p.name!r} (no files) {never}",
                session=p.name,
                direction="incoming",
            )
        for entry in p.files:
            yield finding(
                "lost-at-kexec",
                f"incoming session {p.name!r} token {entry.token:#x} {never}",
                session=p.name,
                token=entry.token,
                direction="incoming",
            )


def _pending(snap: Snapshot, handover: Handover) -> Iterator[Finding]:
    """Incoming data not yet deserialized, checked against this kernel."""
    arrival = deserialize(handover, [x.compatible for x in snap.handlers])
    yield from _arrival_findings(
        arrival,
        "deserialize-will-fail",
        "deserialize-drops",
        "the first open of /dev/liveupdate in this kernel will fail",
    )


def _memfd_retrieves(snap: Snapshot) -> Iterator[Finding]:
    """memfd_luo_retrieve() (mm/memfd_luo.c) refuses a serialized state with
    seals it does not know: that one retrieve fails with EOPNOTSUPP, and the
    luo_file keeps the errno; the other files are not affected."""
    for s in snap.sessions:
        where = "the next kernel" if s.direction == "outgoing" else "this kernel"
        for f in s.files:
            if f.memfd is None or f.retrieve_status != 0:
                continue
            seals = f.memfd.get("seals", 0)
            if seals & ~MEMFD_LUO_ALL_SEALS:
                yield file_finding(
                    "retrieve-will-fail",
                    f"in {where}, retrieving token {f.token:#x} of session {s.name!r} will "
                    f"fail with EOPNOTSUPP: its serialized memfd state has seals {seals:#x}, "
                    f"and memfd_luo_retrieve() accepts only {MEMFD_LUO_ALL_SEALS:#x}; the "
                    "file's contents are lost, the session's other files are not",
                    s,
                    f,
                    address=f.serialized_data,
                )


def _seals_added(snap: Snapshot) -> Iterator[Finding]:
    """memfd_luo_preserve() records a memfd's seals in its serialized state
    (ser->seals) once; memfd_luo_freeze() updates only the position, and
    memfd_add_seals() does not refuse a preserved (SHMEM_F_MAPPING_FROZEN)
    memfd.  The next kernel's memfd_luo_retrieve() applies ser->seals: the
    seals added since preserve are not there."""
    for s in snap.sessions:
        if s.direction != "outgoing":
            continue
        for f in s.files:
            if f.seals is None or f.memfd is None or "seals" not in f.memfd:
                continue
            handed = f.memfd["seals"]
            added = f.seals & ~handed
            if added:
                yield file_finding(
                    "seals-not-handed-over",
                    f"session {s.name!r} token {f.token:#x}: its memfd has seals {f.seals:#x} "
                    f"now, and its serialized state hands over {handed:#x}: "
                    "memfd_luo_preserve() recorded the seals once and memfd_luo_freeze() "
                    f"updates only the position, so in the next kernel the seals {added:#x} "
                    "(added after preserve, F_ADD_SEALS) are gone",
                    s,
                    f,
                    address=f.serialized_data,
                )


def check_handover(snap: Snapshot, notes: list[str]) -> Iterator[Finding]:
    """The outgoing handover as the next kernel will read it, and pending
    incoming data as this kernel's first open of /dev/liveupdate will."""
    if snap.handover_out is not None:
        yield from _next_kernel(snap, snap.handover_out)
    else:
        # Layouts before 7.2 have no handover model, but the image and the
        # command line the next kernel boots with decide all the same.
        n = sum(1 for s in snap.sessions if s.direction == "outgoing")
        if n and snap.luo.state == "enabled":
            yield from boot_findings(snap, n)[0]
    if snap.handover_in is not None:
        yield from _pending(snap, snap.handover_in)
    yield from _memfd_retrieves(snap)
    yield from _seals_added(snap)
