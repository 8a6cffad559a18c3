# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks of each preserved file's life: its references against its holders,
its retrieve (``luo_retrieve_file()``), its session's finish
(``luo_file_finish()``), a preserve caught in progress, and what a filtered
dump could not show.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..derive import _explained_by, retrieving
from ..findings import (
    errno_name,
    file_finding,
    finding,
    session_finding,
)
from ..freeze import preserving
from ..holders import NEVER_SCANNED
from ..model import Finding, Session, Snapshot
from ._common import Notes, _where


def check_references(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    for s in snap.sessions:
        for f in s.files:
            if f.file is None or f.refcount is None or f.explained_refs is None:
                continue
            if f.refcount == -2:
                yield file_finding(
                    "corrupt-structure",
                    f"{_where(s, f)}: struct file {f.file:#x}'s reference count is in "
                    "file_ref's saturation zone: it is pinned and never freed, and its "
                    "references cannot be accounted",
                    s,
                    f,
                    address=f.file,
                )
            elif f.refcount < 0:
                yield file_finding(
                    "corrupt-structure",
                    f"{_where(s, f)}: struct file {f.file:#x} is released (dead) but "
                    "LUO still points to it",
                    s,
                    f,
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
                yield file_finding(
                    "transient-file-reference",
                    f"{_where(s, f)}: struct file {f.file:#x} had {f.refcount} "
                    f"references and {f.explained_refs} holders, then "
                    f"{f.refcount_reread} when read again: a temporary reference "
                    "(a system call using the file), not a leak",
                    s,
                    f,
                    address=f.file,
                )
            elif f.refcount > f.explained_refs and snap.holders_not_in_dump:
                # The holders the dump lacks may account for it: no verdict.
                yield file_finding(
                    "not-in-dump",
                    f"cannot verify {_where(s, f)}: struct file {f.file:#x} has "
                    f"{f.refcount} references, {f.explained_refs} explained by "
                    f"{_explained_by(f)}; the others may be held by what the dump lacks: "
                    + ", ".join(snap.holders_not_in_dump),
                    s,
                    f,
                    address=f.file,
                )
            elif f.refcount > f.explained_refs:
                extra = f.refcount - f.explained_refs
                yield file_finding(
                    "leaked-file-reference",
                    f"{_where(s, f)}: struct file {f.file:#x} has {f.refcount} "
                    f"references, {f.explained_refs} explained by "
                    f"{_explained_by(f)}: {extra} unexplained; "
                    f"not scanned: {_unscanned(snap)}",
                    s,
                    f,
                    address=f.file,
                )
            elif f.refcount < f.explained_refs:
                yield file_finding(
                    "missing-file-reference",
                    f"{_where(s, f)}: struct file {f.file:#x} has {f.refcount} "
                    f"references but {f.explained_refs} holders: "
                    "an underflow, use-after-free risk",
                    s,
                    f,
                    address=f.file,
                )


def check_retrieve(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    for s in snap.sessions:
        if s.direction == "outgoing":
            for f in s.files:
                if f.file is None:
                    yield file_finding(
                        "corrupt-structure",
                        f"{_where(s, f)}: an outgoing luo_file with no struct file",
                        s,
                        f,
                    )
            continue
        if not s.retrieved:
            yield session_finding(
                "not-retrieved",
                f"{_where(s)} ({len(s.files)} files) has not been retrieved",
                s,
            )
        for f in s.files:
            if f.retrieve_status > 0 and f.file is None:
                yield file_finding(
                    "retrieve-inconsistent",
                    f"{_where(s, f)}: retrieved but has no struct file",
                    s,
                    f,
                )
            elif retrieving(s, f):
                owner = f.mutex_owner or (0, "?")
                yield file_finding(
                    "retrieve-in-progress",
                    f"{_where(s, f)}: a retrieve is in progress (luo_retrieve_file() holds "
                    f"the luo_file's mutex, {owner[0]}/{owner[1]}, between setting file and "
                    "retrieve_status): not an inconsistency; on a live target, read again",
                    s,
                    f,
                )
            elif f.retrieve_status <= 0 and f.file is not None:
                yield file_finding(
                    "retrieve-inconsistent",
                    f"{_where(s, f)}: never retrieved but points to struct file {f.file:#x}",
                    s,
                    f,
                )
            if f.retrieve_status < 0:
                yield file_finding(
                    "retrieve-failed",
                    f"{_where(s, f)}: retrieve failed with "
                    f"{errno_name(f.retrieve_status)} (kept: later retrieves fail too)",
                    s,
                    f,
                )
            elif f.retrieve_status == 0 and s.retrieved and f.file is None:
                yield file_finding(
                    "not-retrieved",
                    f"{_where(s, f)} has not been retrieved",
                    s,
                    f,
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
            yield session_finding(
                "finished-still-held",
                f"{_where(s)} is finished (luo_file_finish() destroyed its block set) but still "
                f"holds {n} luo_file(s): they were never finished nor freed",
                s,
            )


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
