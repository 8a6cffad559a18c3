# SPDX-License-Identifier: LGPL-2.1-or-later
"""Finishing a session discards the files never retrieved (issue #28, item
9): luo_file_finish() calls each handler's .finish() with the luo_file's
retrieve_status, and memfd_luo_finish() frees the folios of one never
retrieved; luo_session_release() does the same when a retrieved session's fd
is closed, by an agent that dies too.  The oracle is the guest's own log
after the dump: what its FINISH returned, and what it could retrieve after."""

from __future__ import annotations

from pathlib import Path

from luo_drgn import engine, examples
from luo_drgn.diff import diff
from luo_drgn.engine import Source
from luo_drgn.request import Request
from tests.support.debugdirs import kernel_debug
from vmcores.manifest import guest_events


def test_check_warns_before_finish_discards(fresh_root: Path) -> None:
    """Would catch: a retrieved session with files never retrieved reported only as "waiting"
    (info), when finishing it, or closing its fd, throws those files away: after the dump the
    guest's FINISH succeeded and its retrieve of 0x101 then failed with ENOENT, and vm-beta's
    session, retrieved by an agent killed with its fd open, was gone (ENOENT)."""
    ex = examples.load("finish-early", fresh_root)
    after = guest_events(ex.manifest["after_log"])
    ops = [(e["op"], e.get("session"), e.get("token"), e["result"]) for e in after if "result" in e]
    assert ("finish", "vm-alpha", None, "OK") in ops
    assert ops[ops.index(("finish", "vm-alpha", None, "OK")) + 1] == (
        "retrieve",
        "vm-alpha",
        0x101,
        "ENOENT",
    )
    assert ops[-1] == ("retrieve_session", "vm-beta", None, "ENOENT")
    assert any(e["op"] == "killed" for e in after)
    # Never retrieved in vm-alpha at the dump, from the guest log before it.
    alpha = next(s for s in ex.manifest["expected"]["sessions"] if s["name"] == "vm-alpha")
    never = [f["token"] for f in alpha["files"] if f["retrieve_status"] == 0]
    assert never == [0x101, 0x102]
    source = Source(core=str(ex.core), symbols=[str(kernel_debug(ex.manifest["made"]["kernel"]))])
    snap = engine.inspect_target(*source.open(), Request("check"))
    (warn,) = [f for f in snap.findings if f.code == "finish-discards"]
    assert (warn.severity, warn.session, warn.direction) == ("warning", "vm-alpha", "incoming")
    assert "0x101, 0x102" in warn.message and "closing its fd" in warn.message


def test_diff_does_not_say_finish_took_what_it_discarded(fresh_root: Path) -> None:
    """Would catch: a finished session's files shown as taken by the application: memory after
    the FINISH cannot tell a retrieved file from one discarded never retrieved, and the row must
    say so (the journey's vm-gamma, finished in the next kernel)."""
    before = examples.load("journey-before", fresh_root)
    after = examples.load("journey-after", fresh_root)
    sides = []
    for ex in (before, after):
        source = Source(core=str(ex.core), symbols=[str(ex.debug[0])])
        prog, target = source.open()
        examples.apply_writes(prog, ex.writes)
        sides.append(engine.inspect_target(prog, target, Request("report")))
    rows = [r for r in diff(*sides).rows if r.state == "finished"]
    assert rows and all("retrieved or discarded" in r.detail for r in rows)
    assert all("memory cannot tell" in r.detail for r in rows)
