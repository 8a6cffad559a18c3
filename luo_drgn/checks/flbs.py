# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks of File-Lifecycle-Bound objects (``kernel/liveupdate/luo_flb.c``):
their user counts against the files that use them, the incoming ones'
retrieve, and the serialized FLB arrays.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import (
    errno_name,
    finding,
)
from ..model import Finding, Flb, Snapshot
from ._common import Notes


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
