# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks of the structures LUO keeps: the invariants of sessions and files,
duplicate tokens and names, counts against lists, the serialized handover
against the sessions, the ``luo_preserved_files`` index, and the file
handlers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from ..derive import retrieving
from ..findings import (
    file_finding,
    finding,
    session_finding,
)
from ..freeze import preserving
from ..model import Finding, PreservedFile, Session, Snapshot
from ._common import Notes, _where


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
            yield session_finding(
                "duplicate-session-name",
                f"two {s.direction} sessions are named {s.name!r} "
                f"({seen[key].address:#x}, {s.address:#x})",
                s,
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
            yield session_finding(
                "file-count-mismatch",
                f"{_where(s)}: file set count is {s.file_count}, its list has "
                f"{len(s.files)} luo_files",
                s,
            )


def check_serialization(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    if not snap.luo.frozen:
        return
    ser = {x.name: x for x in snap.serialized_outgoing}
    live = [s for s in snap.sessions if s.direction == "outgoing"]
    for s in live:
        entry = ser.pop(s.name, None)
        if entry is None:
            yield session_finding(
                "serialization-mismatch",
                f"{_where(s)} is not in the serialized session entries",
                s,
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
                yield file_finding(
                    "serialization-mismatch",
                    f"{_where(s, f)} was not serialized",
                    s,
                    f,
                )
                continue
            diffs = []
            if f.handler is not None and w.handler != f.handler:
                diffs.append(f"handler {w.handler!r} written, {f.handler!r} in memory")
            if w.data != f.serialized_data:
                diffs.append(f"data {w.data:#x} written, {f.serialized_data:#x} in memory")
            if diffs:
                yield file_finding(
                    "serialization-mismatch",
                    f"{_where(s, f)}: " + "; ".join(diffs),
                    s,
                    f,
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
        yield file_finding(
            "preserved-index-mismatch",
            f"{_where(s, f)}: struct file {addr:#x} is missing from luo_preserved_files",
            s,
            f,
            address=addr,
        )


def check_handlers(snap: Snapshot, notes: Notes) -> Iterator[Finding]:
    for s in snap.sessions:
        for f in s.files:
            if not f.handler_registered:
                yield file_finding(
                    "unknown-handler",
                    f"{_where(s, f)}: handler {f.handler_address:#x} is not on "
                    "luo_file_handler_list",
                    s,
                    f,
                    address=f.handler_address,
                )
