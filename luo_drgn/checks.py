# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks: pure functions from a snapshot to findings.

Each check looks at one kind of trouble and returns findings with a stable
``code``.  Where a check cannot run (a walk stopped early, a layout without
the structure), it says so in the returned notes instead of guessing.
Checks never change the snapshot (:mod:`luo_drgn.analysis` derives what
they read); codes and severities come from :mod:`luo_drgn.findings`.

Longer than most modules (some 850 lines): each check sits beside the kernel
code it mirrors, cited, with the reasoning for its verdict, and they share
the helpers that tell which references and files are expected; split up,
those would be imported back and forth.  The restore path's verdicts are
:mod:`luo_drgn.restore`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Callable

from . import restore
from .findings import (
    DECIDING_CODES,
    ERROR,
    INFO,
    LOSING_CODES,
    SEVERITIES,
    errno_name,
    finding,
)
from .holders import NEVER_SCANNED
from .model import Finding, Flb, PreservedFile, Session, Snapshot, WalkErrorRecord
from .restore import left_behind, preserving

Notes = list[str]
Check = Callable[[Snapshot, Notes], Iterable[Finding]]


def _where(s: Session, f: PreservedFile | None = None) -> str:
    text = f"{s.direction} session {s.name!r}"
    if f is not None:
        text += f" token {f.token:#x} (luo_file {f.address:#x})"
    return text


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


def check_invariants(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    """What the kernel's code guarantees of every session and file."""

    def bad(s: Session, what: str, f: PreservedFile | None = None) -> Finding:
        return finding(
            "corrupt-structure",
            f"{_where(s, f)}: {what}",
            session=s.name,
            direction=s.direction,
            token=f.token if f else None,
            address=f.address if f else s.address,
        )

    for s in snap.sessions:
        if not s.name_terminated:
            yield bad(
                s,
                "its name fills all 64 bytes with no NUL: luo_session_create() "
                "refuses a name of 64 bytes or more",
            )
        if s.direction == "outgoing":
            # luo_session_retrieve() and luo_retrieve_file() only ever run on
            # incoming sessions (LUO_IOCTL_INCOMING).
            if s.retrieved:
                yield bad(
                    s,
                    "an outgoing session marked retrieved: only incoming sessions "
                    "are retrieved (luo_session_retrieve())",
                )
            for f in s.files:
                if f.retrieve_status != 0:
                    yield bad(
                        s,
                        f"an outgoing file with retrieve state {f.retrieve_status}: "
                        "only incoming files are retrieved (luo_retrieve_file())",
                        f,
                    )
        else:
            for f in s.files:
                # A retrieve under way (its mutex held) may have restored it.
                if f.data_preserved is False and f.mutex_owner is None:
                    yield bad(
                        s,
                        f"its serialized_data {f.serialized_data:#x} is not memory the "
                        "previous kernel preserved (no KHO_PAGE_MAGIC on its page, which "
                        "only a retrieve clears): memfd_luo_retrieve() would read the file's "
                        "state from memory nobody handed over",
                        f,
                    )
        if s.direction == "incoming" and not s.retrieved and s.holders:
            # luo_session_retrieve() makes an incoming session's file and
            # marks it retrieved in one step; closing the file finishes and
            # frees the session (luo_session_release()).
            fds = ", ".join(f"{x.pid}/{x.comm} fd {x.fd}" for x in s.holders)
            yield bad(
                s,
                f"not marked retrieved, yet its session file is open ({fds}): only "
                "luo_session_retrieve() opens one, and it marks the session retrieved",
            )
        if s.direction == "incoming" and not s.retrieved:
            for f in s.files:
                if f.retrieve_status != 0:
                    yield bad(
                        s,
                        f"retrieve state {f.retrieve_status} in a session never "
                        "retrieved: LIVEUPDATE_SESSION_RETRIEVE_FD only works on the fd "
                        "of a retrieved session",
                        f,
                    )
        b = s.block_set
        if b is None or not s.files_complete:
            continue
        if b.listed != b.nblocks:
            yield bad(
                s, f"its file set's block_set counts {b.nblocks} blocks, its list has {b.listed}"
            )
        # luo_preserve_file() grows the set for count + 1 only after its
        # duplicate check, every failure shrinks it back, and unpreserve and
        # luo_file_finish() shrink it as count falls: exactly
        # ceil(count / count_per_block) blocks, in both directions.
        want = -(-s.file_count // b.count_per_block) if b.count_per_block else 0
        if b.nblocks != want and preserving(s):
            # luo_preserve_file() grew it for count + 1 before listing the
            # file; the session mutex it runs under is held.
            continue
        if b.nblocks != want:
            yield bad(
                s,
                f"its file set has {b.nblocks} blocks for {s.file_count} files "
                f"({b.count_per_block} per block): kho_block_set_grow() and "
                f"kho_block_set_shrink() keep exactly {want}",
            )


def check_duplicate_tokens(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    # The same token in two sessions is legal; within one it is not.
    for s in snap.sessions:
        by_token: dict[int, list[PreservedFile]] = defaultdict(list)
        for f in s.files:
            by_token[f.token].append(f)
        for token, files in by_token.items():
            if len(files) > 1:
                addrs = ", ".join(f"{f.address:#x}" for f in files)
                yield finding(
                    "duplicate-token",
                    f"{_where(s)}: token {token:#x} is used by {len(files)} luo_files ({addrs})",
                    session=s.name,
                    direction=s.direction,
                    token=token,
                    address=files[1].address,
                )


def check_duplicate_session_names(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    seen: dict[tuple[str, str], Session] = {}
    for s in snap.sessions:
        key = (s.direction, s.name)
        if key in seen:
            yield finding(
                "duplicate-session-name",
                f"two {s.direction} sessions are named {s.name!r} "
                f"({seen[key].address:#x}, {s.address:#x})",
                session=s.name,
                direction=s.direction,
                token=None,
                address=s.address,
            )
        seen[key] = s


def check_counts(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    for direction in ("outgoing", "incoming"):
        d = getattr(snap.luo, direction)
        listed = sum(1 for s in snap.sessions if s.direction == direction)
        if d.session_count is None:
            continue
        if not d.sessions_complete:
            notes.append(f"{direction} session count not checked: the list walk stopped early")
        elif d.session_count != listed:
            yield finding(
                "session-count-mismatch",
                f"the {direction} session header counts {d.session_count} sessions, "
                f"its list has {listed}",
                direction=direction,
            )
    for s in snap.sessions:
        if not s.files_complete:
            notes.append(f"file count of {_where(s)} not checked: the list walk stopped early")
        elif s.file_count != len(s.files):
            yield finding(
                "file-count-mismatch",
                f"{_where(s)}: file set count is {s.file_count}, its list has "
                f"{len(s.files)} luo_files",
                session=s.name,
                direction=s.direction,
                token=None,
                address=s.address,
            )


def check_references(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    for s in snap.sessions:
        for f in s.files:
            if f.file is None or f.refcount is None or f.explained_refs is None:
                continue
            if f.refcount == -2:
                yield finding(
                    "corrupt-structure",
                    f"{_where(s, f)}: struct file {f.file:#x}'s reference count is in "
                    "file_ref's saturation zone: it is pinned and never freed, and its "
                    "references cannot be accounted",
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.file,
                )
            elif f.refcount < 0:
                yield finding(
                    "corrupt-structure",
                    f"{_where(s, f)}: struct file {f.file:#x} is released (dead) but "
                    "LUO still points to it",
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.file,
                )
            elif (
                f.refcount > f.explained_refs
                and f.refcount_reread is not None
                and 1 <= f.refcount_reread <= f.explained_refs
            ):
                # Live: gone when read again, a syscall's temporary fget().
                # (A file still alive has at least LUO's reference; -1 and
                # -2 are released and saturated counts, no verdict.)
                yield finding(
                    "transient-file-reference",
                    f"{_where(s, f)}: struct file {f.file:#x} had {f.refcount} "
                    f"references and {f.explained_refs} holders, then "
                    f"{f.refcount_reread} when read again: a temporary reference "
                    "(a system call using the file), not a leak",
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.file,
                )
            elif f.refcount > f.explained_refs and snap.holders_not_in_dump:
                # The holders the dump lacks may account for it: no verdict.
                yield finding(
                    "not-in-dump",
                    f"cannot verify {_where(s, f)}: struct file {f.file:#x} has "
                    f"{f.refcount} references, {f.explained_refs} explained by "
                    f"{_explained_by(f)}; the others may be held by what the dump lacks: "
                    + ", ".join(snap.holders_not_in_dump),
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.file,
                )
            elif f.refcount > f.explained_refs:
                extra = f.refcount - f.explained_refs
                yield finding(
                    "leaked-file-reference",
                    f"{_where(s, f)}: struct file {f.file:#x} has {f.refcount} "
                    f"references, {f.explained_refs} explained by "
                    f"{_explained_by(f)}: {extra} unexplained; "
                    f"not scanned: {_unscanned(snap)}",
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.file,
                )
            elif f.refcount < f.explained_refs:
                yield finding(
                    "missing-file-reference",
                    f"{_where(s, f)}: struct file {f.file:#x} has {f.refcount} "
                    f"references but {f.explained_refs} holders: "
                    "an underflow, use-after-free risk",
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.file,
                )


def check_retrieve(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    for s in snap.sessions:
        if s.direction == "outgoing":
            for f in s.files:
                if f.file is None:
                    yield finding(
                        "corrupt-structure",
                        f"{_where(s, f)}: an outgoing luo_file with no struct file",
                        session=s.name,
                        direction=s.direction,
                        token=f.token,
                        address=f.address,
                    )
            continue
        if not s.retrieved:
            yield finding(
                "not-retrieved",
                f"{_where(s)} ({len(s.files)} files) has not been retrieved",
                session=s.name,
                direction=s.direction,
                token=None,
                address=s.address,
            )
        for f in s.files:
            if f.retrieve_status > 0 and f.file is None:
                yield finding(
                    "retrieve-inconsistent",
                    f"{_where(s, f)}: retrieved but has no struct file",
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.address,
                )
            elif retrieving(s, f):
                owner = f.mutex_owner or (0, "?")
                yield finding(
                    "retrieve-in-progress",
                    f"{_where(s, f)}: a retrieve is in progress (luo_retrieve_file() holds "
                    f"the luo_file's mutex, {owner[0]}/{owner[1]}, between setting file and "
                    "retrieve_status): not an inconsistency; on a live target, read again",
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.address,
                )
            elif f.retrieve_status <= 0 and f.file is not None:
                yield finding(
                    "retrieve-inconsistent",
                    f"{_where(s, f)}: never retrieved but points to struct file {f.file:#x}",
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.address,
                )
            if f.retrieve_status < 0:
                yield finding(
                    "retrieve-failed",
                    f"{_where(s, f)}: retrieve failed with "
                    f"{errno_name(f.retrieve_status)} (kept: later retrieves fail too)",
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.address,
                )
            elif f.retrieve_status == 0 and s.retrieved and f.file is None:
                yield finding(
                    "not-retrieved",
                    f"{_where(s, f)} has not been retrieved",
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.address,
                )
        yield from _finish_discards(s)
    for p in snap.pending_incoming:
        yield finding(
            "not-retrieved",
            f"incoming session {p.name!r} ({len(p.files)} files) is still in KHO "
            "memory: /dev/liveupdate was not opened since the live update",
            session=p.name,
            direction="incoming",
        )


def _finish_discards(s: Session) -> Iterator[Finding]:
    """luo_session_finish_one() -> luo_file_finish(): each luo_file's
    .finish() runs with its retrieve_status, and memfd_luo_finish() frees the
    folios of one never retrieved (0); luo_session_release() does the same
    when a retrieved session's fd is closed, the agent dying included."""
    if not s.retrieved or s.finished:
        return
    never = [f for f in s.files if f.retrieve_status == 0 and f.file is None]
    if not never:
        return
    tokens = ", ".join(f"{f.token:#x}" for f in never)
    yield finding(
        "finish-discards",
        f"{_where(s)}: finishing it now (LIVEUPDATE_SESSION_FINISH, or closing its fd, as a "
        f"dying agent does) discards {len(never)} file(s) never retrieved ({tokens}): "
        "luo_file_finish() calls .finish() with retrieve_status 0 and memfd_luo_finish() "
        "frees their folios",
        session=s.name,
        direction=s.direction,
    )


def check_finished(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    # luo_file_finish() frees every luo_file before kho_block_set_destroy():
    # a finished session (its blocks destroyed) has none left.
    for s in snap.sessions:
        if s.finished and (s.files or s.file_count):
            n = max(len(s.files), s.file_count)
            yield finding(
                "finished-still-held",
                f"{_where(s)} is finished (luo_file_finish() destroyed its block set) but still "
                f"holds {n} luo_file(s): they were never finished nor freed",
                session=s.name,
                direction=s.direction,
                token=None,
                address=s.address,
            )


def serialized_entries(snap: Snapshot) -> set[tuple[str, int]]:
    """(session name, token) of every file entry the freeze wrote."""
    return {(s.name, f.token) for s in snap.serialized_outgoing for f in s.files}


def frozen_files(snap: Snapshot) -> dict[int, bool | None]:
    """
    Whether each outgoing luo_file (by address) was serialized for the next
    kernel: only after a freeze, and only if its entry was written.  None
    where memory cannot tell whether LUO froze.
    """
    written = serialized_entries(snap) if snap.luo.frozen else set()
    return {
        f.address: None if snap.luo.frozen is None else (s.name, f.token) in written
        for s in snap.sessions
        if s.direction == "outgoing"
        for f in s.files
    }


def check_preserve_in_progress(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    """luo_preserve_file() (kernel/liveupdate/luo_file.c) grows the file set's
    blocks, indexes the file in luo_preserved_files and counts its FLBs,
    calls the handler's .preserve(), and only then lists the luo_file and
    raises the count: a dump in between is consistent, not corrupt."""
    for s in snap.sessions:
        if preserving(s):
            pid, comm = s.mutex_owner or (0, "?")
            yield finding(
                "preserve-in-progress",
                f"{_where(s)}: a file is being preserved (LIVEUPDATE_SESSION_PRESERVE_FD, the "
                f"session mutex held by {pid}/{comm}): its block set is grown for "
                f"{s.file_count + 1} files and the file is indexed, not listed yet; the freeze "
                "waits for that mutex, so what it writes is consistent",
                session=s.name,
                direction=s.direction,
            )


def retrieving(s: Session, f: PreservedFile) -> bool:
    """In luo_retrieve_file()'s window: an incoming file whose file is set
    and retrieve_status not yet, its mutex held.  (The freeze holds an
    outgoing file's mutex too: only incoming files are retrieved.)"""
    return (
        s.direction == "incoming"
        and f.file is not None
        and f.retrieve_status == 0
        and f.mutex_owner is not None
    )


# How the holder kinds read in a finding.
_HOLDER_WORDS = {
    "fd": "fds",
    "vma": "mappings",
    "exe": "executables",
    "scm": "SCM_RIGHTS messages in flight",
    "io_uring": "io_uring fixed files",
    "loop": "loop devices",
    "iommufd": "IOAS mappings",
}


def _explained_by(f: PreservedFile) -> str:
    kinds = [_HOLDER_WORDS[k] for k in _HOLDER_WORDS if any(x.kind == k for x in f.holders)]
    return ", ".join(kinds + ["LUO"])


def _unscanned(snap: Snapshot) -> str:
    """The holders no scan of this target looked at: the kinds it could not
    show, then those never enumerable."""
    kinds = [f"{kind} ({why})" for kind, why in snap.holders_unscanned]
    return "; ".join(kinds + list(NEVER_SCANNED))


def check_not_in_dump(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    """A filtered dump lacks pages: say once what could not be read, so that
    missing memory is not taken for damaged memory."""
    if not snap.not_in_dump:
        return
    tasks = sum(1 for r in snap.not_in_dump if r.where == "a task")
    others = list(dict.fromkeys(r.where for r in snap.not_in_dump if r.where != "a task"))
    what = ([f"{tasks} tasks"] if tasks else []) + others
    yield finding(
        "not-in-dump",
        f"the dump lacks {len(snap.not_in_dump)} objects' memory (pages its filter "
        f"excluded, e.g. makedumpfile -d): {'; '.join(what)}; nothing that depends on "
        "them is verified",
        session=None,
        token=None,
        address=None,
    )


def explained_refs(s: Session, f: PreservedFile) -> int:
    """References to a struct file that its known holders account for: one
    per fd slot and mapping, and LUO's own; in luo_retrieve_file()'s window,
    also the retrieve's own (it becomes the new fd at fd_install())."""
    return len(f.holders) + (1 if retrieving(s, f) else 0)


def check_serialization(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    if not snap.luo.frozen:
        return
    ser = {x.name: x for x in snap.serialized_outgoing}
    live = [s for s in snap.sessions if s.direction == "outgoing"]
    for s in live:
        entry = ser.pop(s.name, None)
        if entry is None:
            yield finding(
                "serialization-mismatch",
                f"{_where(s)} is not in the serialized session entries",
                session=s.name,
                direction=s.direction,
                token=None,
                address=s.address,
            )
            continue
        if entry.file_count != len(entry.files):
            yield finding(
                "serialization-mismatch",
                f"{_where(s)}: its serialized entry claims {entry.file_count} "
                f"files, {len(entry.files)} were written",
                session=s.name,
                direction=s.direction,
            )
        written = {f.token: f for f in entry.files}
        for f in s.files:
            w = written.pop(f.token, None)
            if w is None:
                yield finding(
                    "serialization-mismatch",
                    f"{_where(s, f)} was not serialized",
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.address,
                )
                continue
            diffs = []
            if f.handler is not None and w.handler != f.handler:
                diffs.append(f"handler {w.handler!r} written, {f.handler!r} in memory")
            if w.data != f.serialized_data:
                diffs.append(f"data {w.data:#x} written, {f.serialized_data:#x} in memory")
            if diffs:
                yield finding(
                    "serialization-mismatch",
                    f"{_where(s, f)}: " + "; ".join(diffs),
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.address,
                )
        for token in written:
            yield finding(
                "serialization-mismatch",
                f"{_where(s)}: token {token:#x} was serialized but is not in memory",
                session=s.name,
                direction=s.direction,
                token=token,
            )
    for name in ser:
        yield finding(
            "serialization-mismatch",
            f"session {name!r} was serialized but is not an outgoing session",
            session=name,
        )


def check_preserved_index(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    if snap.preserved_index is None:
        return
    if not all(s.files_complete for s in snap.sessions) or not all(
        getattr(snap.luo, d).sessions_complete for d in ("outgoing", "incoming")
    ):
        notes.append("luo_preserved_files not compared: a session or file walk stopped early")
        return
    # A struct file that could not be read is already a corrupt-structure
    # finding; it is not reported a second time here.
    # A file in luo_retrieve_file()'s window is indexed by its xa_insert(),
    # which has not happened yet.
    in_lists = {
        f.file: (s, f)
        for s in snap.sessions
        for f in s.files
        if f.file is not None and f.refcount is not None and not retrieving(s, f)
    }
    indexed = set(snap.preserved_index.values())
    extra = sorted(indexed - set(in_lists))
    # Each preserve in progress has indexed its file before listing it.
    if len(extra) <= sum(1 for s in snap.sessions if preserving(s)):
        extra = []
    for addr in extra:
        yield finding(
            "preserved-index-mismatch",
            f"luo_preserved_files holds struct file {addr:#x}, which no luo_file points to",
            session=None,
            token=None,
            address=addr,
        )
    for addr in sorted(set(in_lists) - indexed):
        s, f = in_lists[addr]
        yield finding(
            "preserved-index-mismatch",
            f"{_where(s, f)}: struct file {addr:#x} is missing from luo_preserved_files",
            session=s.name,
            direction=s.direction,
            token=f.token,
            address=addr,
        )


def check_handlers(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    for s in snap.sessions:
        for f in s.files:
            if not f.handler_registered:
                yield finding(
                    "unknown-handler",
                    f"{_where(s, f)}: handler {f.handler_address:#x} is not on "
                    "luo_file_handler_list",
                    session=s.name,
                    direction=s.direction,
                    token=f.token,
                    address=f.handler_address,
                )


def _flb_users(snap: Snapshot, flb: Flb, direction: str) -> int:
    """Files of this direction that depend on an FLB: those of a handler it
    is registered with (luo_flb_file_preserve(), luo_flb_file_finish())."""
    return sum(
        1
        for s in snap.sessions
        if s.direction == direction
        for f in s.files
        if f.handler in flb.handlers
    )


def check_flbs(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    """Each FLB's counts and lifecycle, as luo_flb.c keeps them."""
    for flb in snap.flbs:
        # luo_flb_file_preserve_one(): one outgoing count per preserved file,
        # and one per liveupdate_flb_get_outgoing() not yet put back.
        yield from _flb_count(
            flb,
            "outgoing",
            flb.outgoing_count,
            _flb_users(snap, flb, "outgoing"),
            "preserved files use it: unpreserving them would run its .unpreserve() "
            "while files still depend on it",
            notes,
        )
        if flb.retrieve_status is None:
            continue
        yield from _check_flb_incoming(snap, flb, notes)
    yield from _check_flb_serialization(snap)


def _flb_count(
    flb: Flb, direction: str, count: int, users: int, consequence: str, notes: Notes
) -> Iterator[Finding]:
    """Fewer users counted than files depending on the FLB is an error; more
    are references held through liveupdate_flb_get_outgoing()/_incoming().
    While the direction's lock is held the count is in flight: not compared."""
    owner = flb.outgoing_lock_owner if direction == "outgoing" else flb.incoming_lock_owner
    if owner is not None:
        # liveupdate_flb_put_outgoing()/_put_incoming() hold the lock from
        # refcount_dec_and_test() through .unpreserve()/.finish(), and
        # luo_flb_file_preserve_one() through .preserve().
        callback = ".unpreserve()" if direction == "outgoing" else ".finish()"
        yield finding(
            "flb-in-progress",
            f"FLB {flb.compatible!r}: its {direction} lock is held by {owner[0]}/{owner[1]} "
            f"(a dump inside liveupdate_flb_put_{direction}() or its {callback}, or a "
            f"preserve): it counts {count} {direction} users and {users} files use it, not "
            "compared while the count is in flight",
            session=None,
            token=None,
            address=flb.address,
        )
        return
    if count < users:
        # The incoming count is this kernel's, never handed on: it does not
        # decide preflight (luo_flb_serialize() writes the outgoing side).
        yield finding(
            "flb-count-mismatch",
            f"FLB {flb.compatible!r} counts {count} {direction} users, {users} {consequence}",
            session=None,
            token=None,
            address=flb.address,
            direction="incoming" if direction == "incoming" else None,
        )
    elif count > users:
        notes.append(
            f"FLB {flb.compatible!r}: {count - users} {direction} reference(s) beyond its "
            f"files, held through liveupdate_flb_get_{direction}()"
        )


def _check_flb_incoming(snap: Snapshot, flb: Flb, notes: Notes) -> Iterator[Finding]:
    # liveupdate_flb_put_incoming(): finished is set when the count reaches
    # 0, after .finish(); luo_flb_retrieve_one() keeps a failure for good.
    if flb.finished and flb.incoming_count:
        yield finding(
            "corrupt-structure",
            f"FLB {flb.compatible!r} is finished yet counts {flb.incoming_count} incoming "
            "users: liveupdate_flb_put_incoming() finishes it only at 0",
            session=None,
            token=None,
            address=flb.address,
        )
    if flb.retrieve_status is not None and flb.retrieve_status < 0:
        yield finding(
            "retrieve-failed",
            f"FLB {flb.compatible!r}: its .retrieve() failed with "
            f"{errno_name(flb.retrieve_status)}; luo_flb_retrieve_one() returns that to "
            "every liveupdate_flb_get_incoming(), so what its files need is not restored",
            session=None,
            token=None,
            address=flb.address,
        )
    if flb.retrieve_status == 1 and not flb.finished:
        # Restored with the handed-over count, one put per file finished.
        yield from _flb_count(
            flb,
            "incoming",
            flb.incoming_count,
            _flb_users(snap, flb, "incoming"),
            "unfinished incoming files use it: it would be finished while files still depend on it",
            notes,
        )


def _check_flb_serialization(snap: Snapshot) -> Iterator[Finding]:
    """Frozen: luo_flb_serialize() wrote one entry per FLB with users, its
    handle and count, for the next kernel's luo_flb_retrieve_one()."""
    written = snap.serialized_flbs.get("outgoing")
    if not snap.luo.frozen or written is None:
        return
    want = {
        x.compatible: (x.outgoing_data, x.outgoing_count) for x in snap.flbs if x.outgoing_count
    }
    got = {x.name: (x.data, x.count) for x in written}
    for name in sorted(set(want) | set(got)):
        if want.get(name) == got.get(name):
            continue
        if name not in got:
            what = "is not in the serialized FLB array: the next kernel will not restore it"
        elif name not in want:
            what = "is in the serialized FLB array but has no outgoing users here"
        else:
            what = (
                f"is serialized with handle {got[name][0]:#x} and count {got[name][1]}, "
                f"memory has {want[name][0]:#x} and {want[name][1]}"
            )
        yield finding(
            "serialization-mismatch", f"FLB {name!r} {what}", session=None, token=None, address=None
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


CHECKS: tuple[Check, ...] = (
    check_luo_state,
    check_deserialize_failed,
    check_freeze,
    check_invariants,
    check_duplicate_tokens,
    check_duplicate_session_names,
    check_counts,
    check_references,
    check_retrieve,
    check_finished,
    check_serialization,
    check_preserved_index,
    check_preserve_in_progress,
    check_handlers,
    check_flbs,
    restore.check_handover,
    check_walk_errors,
    check_not_in_dump,
)


def run_checks(snap: Snapshot) -> tuple[list[Finding], Notes]:
    """Run every check; return the findings (errors first) and the notes."""
    notes: Notes = []
    findings = [f for check in CHECKS for f in check(snap, notes)]
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    return findings, notes


# What bears on the next kernel's reception of the handover: the restore
# model's verdicts, and errors in the outgoing state it is made from.
# Findings about this kernel's incoming side (the registry's "incoming"
# codes): what was handed to this kernel is not handed on, so they do not
# decide the next handover.
PREFLIGHT_CODES = DECIDING_CODES


def preflight_findings(snap: Snapshot) -> list[Finding]:
    """
    The findings that decide whether the next kernel will accept the
    handover: handover verdicts and errors of the outgoing side that the
    freeze or the restore acts on (:data:`luo_drgn.findings.DECIDING_CODES`).
    A finding about an incoming session is left out: the handover is made
    of outgoing ones.
    """
    return [
        f
        for f in snap.findings
        if f.code in PREFLIGHT_CODES
        and f.direction != "incoming"
        # A disabled or absent LUO hands nothing over: that is the verdict.
        and (f.severity == ERROR or f.code in ("luo-disabled", "luo-absent"))
    ]


@dataclass
class Preflight:
    """Preflight's verdict: whether the next kernel will accept the
    handover, the findings that decide it, what this kexec loses of what
    this kernel received (:func:`luo_drgn.restore.left_behind`), and the
    other errors, which are shown apart and decide nothing."""

    accepted: bool
    findings: list[Finding]
    other_errors: list[Finding]
    losses: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> int:
        """Preflight's exit status: 0 accepted with nothing lost, 1 the
        handover fails or this kexec loses data."""
        return 0 if self.accepted and not any(f.severity != INFO for f in self.losses) else 1

    @property
    def shown(self) -> list[Finding]:
        """The findings preflight's report lists: those that decide, then
        what this kexec loses (the other errors are listed apart)."""
        return self.findings + self.losses


def preflight(snap: Snapshot) -> Preflight:
    """The verdict of ``preflight`` on an inspected snapshot."""
    deciding = preflight_findings(snap)
    taken = {id(f) for f in deciding}
    others = [f for f in snap.findings if f.severity == ERROR and id(f) not in taken]
    losses = (
        [f for f in snap.findings if f.code in LOSING_CODES] + list(left_behind(snap))
        if snap.luo.state == "enabled"
        else []
    )
    # handover_accepted(), from the findings already selected.
    return Preflight(snap.luo.state == "enabled" and not deciding, deciding, others, losses)


def handover_accepted(snap: Snapshot) -> bool:
    """Whether the next kernel will accept the handover (what this kexec
    loses of the incoming side aside: see :func:`preflight`)."""
    return snap.luo.state == "enabled" and not preflight_findings(snap)


def has_errors(snap: Snapshot) -> bool:
    """Whether any finding is an error (luo-inspect's exit status 1)."""
    return any(f.severity == ERROR for f in snap.findings)
