# SPDX-License-Identifier: LGPL-2.1-or-later
"""What follows from the collected facts, before any check runs: which
outgoing files the freeze wrote, whether a file is in
``luo_retrieve_file()``'s window, and how many of a file's references its
holders explain.  The checks and :mod:`luo_drgn.analysis` read these.
"""

from __future__ import annotations

from .model import PreservedFile, Session, Snapshot


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


def explained_refs(s: Session, f: PreservedFile) -> int:
    """References to a struct file that its known holders account for: one
    per fd slot and mapping, and LUO's own; in luo_retrieve_file()'s window,
    also the retrieve's own (it becomes the new fd at fd_install())."""
    return len(f.holders) + (1 if retrieving(s, f) else 0)
