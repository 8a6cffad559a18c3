# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks of LUO's state as a whole: present and enabled, the restore at
boot (``liveupdate_early_init()``), the deserialization at the first open
of ``/dev/liveupdate``, the freeze, and the walks that stopped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..findings import (
    errno_name,
    finding,
)
from ..model import Finding, Snapshot, WalkErrorRecord
from ._common import Notes

# luo_core.c, liveupdate_early_init(): luo_restore_fail(), a panic.
RESTORE_FAILED = "The incoming tree failed to initialize properly"


# What the kernel's messages mean, from the code that prints them.
_RESTORE_CAUSES = (
    (
        "Block contains invalid entry count: 0",
        "kho_block_set_restore() met a session block with no entry; in 7.2.13 a refused "
        "LIVEUPDATE_IOCTL_CREATE_SESSION (EEXIST) leaves one linked once the sessions fill "
        "whole blocks (luo_session_insert() grows the set before its duplicate check)",
    ),
    (
        "Block contains invalid entry count",
        "kho_block_set_restore() met a session block with more entries than a block holds",
    ),
    ("Block set is corrupted", "the session block chain loops or is too long"),
    ("LUO state is incompatible", "the previous kernel wrote another LUO ABI version"),
    ("LUO state is too small", "the previous kernel's luo_ser is too small"),
)


def _restore_failure(snap: Snapshot) -> Finding | None:
    log = snap.luo.kernel_log
    panic = next((m for m in log if RESTORE_FAILED in m), None)
    if panic is None:
        return None
    said = [m for m in log if m.startswith("luo: ") and "Retrieved live update" not in m]
    cause = next((why for text, why in _RESTORE_CAUSES if any(text in m for m in said)), None)
    return finding(
        "restore-failed",
        "the LUO restore failed at boot in this kernel and it panicked: "
        "liveupdate_early_init() -> luo_early_startup() rejected the handover of live update "
        f"{snap.luo.liveupdate_num}"
        + (f": {cause}" if cause else "")
        + ". The kernel said: "
        + "; ".join(f'"{m}"' for m in [*said, panic.split("not syncing: ")[-1]])
        + ". The rejected data (luo_ser and the session blocks) was freed before the panic, "
        "so memory cannot show it: inspect the previous kernel (luo-inspect preflight) for "
        "the chain itself. Every preserved file of that handover is lost.",
    )


def check_luo_state(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    if (failed := _restore_failure(snap)) is not None:
        yield failed
    if snap.luo.state == "absent":
        yield finding("luo-absent", f"LUO is not in this kernel: {snap.luo.reason}")
    elif snap.luo.state == "disabled":
        yield finding("luo-disabled", f"LUO is disabled: {snap.luo.reason}")


def check_deserialize_failed(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    """luo_session_deserialize() runs once, at the first open of
    /dev/liveupdate, and keeps its error in a static (saved_err): luo_open()
    then returns EIO on every open for the rest of the boot."""
    err = snap.luo.deserialize_error
    if err is None:
        return
    said = [m for m in snap.luo.kernel_log if m.startswith("luo: ") and "Retrieved" not in m]
    stopped = next((m.split("[", 1)[1].split("]", 1)[0] for m in said if "session [" in m), None)
    listed = [s.name for s in snap.sessions if s.direction == "incoming"]
    where = ""
    if stopped is not None:
        emptied = stopped in listed
        where = (
            f" It stopped at session {stopped!r}"
            + (", which stays listed with its files freed" if emptied else ", never created")
            + "; the sessions after it were freed with the rest of the handover."
        )
    yield finding(
        "deserialize-failed",
        f"deserialization of the incoming sessions failed with {errno_name(err)} "
        "(luo_session_deserialize() keeps it in saved_err): every open of /dev/liveupdate "
        "returns EIO for the rest of this boot, so nothing handed over can be retrieved. "
        f"Sessions it created: {', '.join(map(repr, listed)) or 'none'}.{where}"
        + (" The kernel said: " + "; ".join(f'"{m}"' for m in said) + "." if said else ""),
        session=stopped,
    )


def check_freeze(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    """A dump inside luo_session_serialize(), or after its err_undo."""
    luo = snap.luo
    outgoing = [s.name for s in snap.sessions if s.direction == "outgoing"]
    if luo.freeze == "freezing":
        # The entry being frozen is reserved (counted) but not named yet.
        done = outgoing[: luo.freeze_written]
        current = outgoing[luo.freeze_written] if luo.freeze_written < len(outgoing) else None
        yield finding(
            "freeze-in-progress",
            "the dump was taken inside the freeze (luo_session_serialize() holds "
            f"luo_session_serialize_rwsem for write): {luo.freeze_written} of "
            f"{len(outgoing)} sessions written"
            + (f" ({', '.join(map(repr, done))})" if done else "")
            + (f", {current!r} being frozen" if current else "")
            + "; the serialized data is not compared with memory until the freeze ends",
            session=current,
        )
    elif luo.freeze == "rolled-back":
        said = [m for m in luo.kernel_log if "Freeze failed" in m]
        yield finding(
            "freeze-failed",
            "a freeze failed and was rolled back (luo_session_serialize()'s err_undo: "
            f"{luo.freeze_reserved} entries reserved, their names cleared, the lock "
            "released): the kexec was refused and the sessions stay outgoing."
            + (" The kernel said: " + "; ".join(f'"{m}"' for m in said) + "." if said else ""),
        )


def _walk_error_side(snap: Snapshot, e: WalkErrorRecord) -> str | None:
    """The side a walk error is on: "incoming" where it names it or its
    session is only an incoming one (preflight leaves those out: the
    freeze and the next kernel never read this kernel's incoming side)."""
    if re.search(r"\bincoming\b", e.where):
        return "incoming"
    sides = {s.direction for s in snap.sessions if e.session is not None and s.name == e.session}
    return "incoming" if sides == {"incoming"} else None


def check_walk_errors(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    for e in snap.errors:
        yield finding(
            "corrupt-structure",
            f"{e.where}: {e.message}",
            session=e.session,
            token=e.token,
            address=e.address,
            direction=_walk_error_side(snap, e),
        )
