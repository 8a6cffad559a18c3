# SPDX-License-Identifier: LGPL-2.1-or-later
"""FLBs in full, on real memory: LUO's test FLBs (kernel ``full``).

The ``flb`` and ``flb-finished`` runs take the test module's three FLBs
through a live update: counted by seven preserved memfds
(``flb-outgoing``), serialized at the freeze (``flb-frozen``), retrieved by
the next kernel with two files finished (``flb-incoming``), and finished
with the last file (``flb-finished``).  Their expected values come from the
guest log and the test module's console lines (test_collector checks them on
every fixture); here one planted write on those cores breaks what
``kernel/liveupdate/luo_flb.c`` keeps, and the check must say so.  A pending
test FLB is never observable on a real kernel (the test module retrieves its
FLBs as soon as the memfd handler registers), so that state is made by
writes on the retrieved core.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from drgn import Object

from luo_drgn import examples
from luo_drgn.analysis import inspect
from luo_drgn.collector import collect
from luo_drgn.model import Snapshot, Target
from luo_drgn.report import render


def _inspect(root: Path, name: str, writes: dict[str, tuple[str, int]]) -> Snapshot:
    """The fixture with writes to the first test FLB's private state: member
    path -> (struct format, value)."""
    ex = examples.load(name, root)
    prog = ex.program()
    flb = prog["luo_flb_global"].list.next  # the first registered FLB
    first = Object(prog, "struct liveupdate_flb *", flb.value_() - _list_offset(prog))
    recorded = []
    for path, (fmt, value) in writes.items():
        member = first.member_("private")
        for part in path.split("."):
            member = member.member_(part)
        recorded.append(
            {"address": member.address_, "phys": 0, "new": struct.pack(fmt, value).hex()}
        )
    examples.apply_writes(prog, recorded)
    return inspect(collect(prog, Target("vmcore", str(ex.core), None, [])))


def _list_offset(prog: Any) -> int:
    t = prog.type("struct liveupdate_flb")
    return t.member("private").offset + prog.type("struct luo_flb_private").member("list").offset


def _serious(snap: Snapshot) -> list[tuple[str, str]]:
    """Errors and warnings about the FLBs and their files: a retrieved
    session's files never retrieved (finish-discards, the fixture's own
    state: its guest retrieved vm-alpha only in part) are not the FLB's."""
    return [
        (f.code, f.severity)
        for f in snap.findings
        if f.severity in ("error", "warning") and f.code != "finish-discards"
    ]


REFCOUNT = "<i"  # refcount_t: one atomic int


@pytest.mark.parametrize(
    ("fixture", "writes", "code", "severity", "words"),
    [
        # luo_flb_file_unpreserve() would run .unpreserve() with files left.
        (
            "flb-outgoing",
            {"outgoing.count": (REFCOUNT, 6)},
            "flb-count-mismatch",
            "error",
            "counts 6 outgoing users, 7 preserved files use it",
        ),
        # The next kernel restores what luo_flb_serialize() wrote.
        (
            "flb-frozen",
            {"outgoing.data": ("<Q", 0xBAD)},
            "serialization-mismatch",
            "error",
            "memory has 0xbad",
        ),
        # luo_flb_retrieve_one() keeps a .retrieve() failure for good.
        (
            "flb-incoming",
            {"incoming.retrieve_status": ("<i", -22)},
            "retrieve-failed",
            "warning",
            "failed with EINVAL",
        ),
        # liveupdate_flb_put_incoming() finishes only at 0.
        (
            "flb-incoming",
            {"incoming.finished": ("<B", 1)},
            "corrupt-structure",
            "error",
            "is finished yet counts 5 incoming users",
        ),
        # One put more than files finished: it would finish too early.
        (
            "flb-incoming",
            {"incoming.count": (REFCOUNT, 4)},
            "flb-count-mismatch",
            "error",
            "counts 4 incoming users, 5 unfinished incoming files use it",
        ),
    ],
)
def test_planted_flb_write_is_found(
    full_root: Path,
    fixture: str,
    writes: dict[str, tuple[str, int]],
    code: str,
    severity: str,
    words: str,
) -> None:
    """Would catch: a corrupted FLB state (planted in a real core) not reported, or reported with
    another code or severity."""
    snap = _inspect(full_root, fixture, writes)
    assert _serious(snap) == [(code, severity)]
    (finding,) = [f for f in snap.findings if f.code == code]
    assert words in finding.message and "liveupdate-test-flb-v0" in finding.message


@pytest.mark.parametrize(
    ("fixture", "writes", "note"),
    [
        # liveupdate_flb_get_outgoing() holds a reference: not by itself wrong.
        ("flb-outgoing", {"outgoing.count": (REFCOUNT, 8)}, "1 outgoing reference(s) beyond"),
        ("flb-incoming", {"incoming.count": (REFCOUNT, 6)}, "1 incoming reference(s) beyond"),
    ],
)
def test_count_above_files_is_not_an_error(
    full_root: Path, fixture: str, writes: dict[str, tuple[str, int]], note: str
) -> None:
    """Would catch: a false alarm on FLB references beyond its files, which the kernel allows."""
    snap = _inspect(full_root, fixture, writes)
    assert _serious(snap) == []
    assert any(note in n for n in snap.notes)


def test_pending_flb_is_listed(full_root: Path) -> None:
    """Handed over, not yet retrieved (status 0, count 0, what the test
    module's early retrieve leaves no real kernel in): listed with what
    arrived, and no error."""
    snap = _inspect(
        full_root,
        "flb-incoming",
        {"incoming.retrieve_status": ("<i", 0), "incoming.count": (REFCOUNT, 0)},
    )
    assert _serious(snap) == []
    first = snap.flbs[0]
    assert (first.retrieve_status, first.incoming_count) == (0, 0)
    text = render(snap, "report", "text")
    assert (
        "liveupdate-test-flb-v0  0           -             0           7              not yet"
        in (text)
    )
