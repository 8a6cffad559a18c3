# SPDX-License-Identifier: LGPL-2.1-or-later
"""States a real kernel handles without complaint, where preflight once
raised an alarm (issue #28, items 4 to 6): each guest went on into the next
kernel, whose console and driver's errnos are the oracle."""

from __future__ import annotations

from pathlib import Path

from luo_drgn import engine, examples
from luo_drgn.engine import Source
from luo_drgn.freeze import predict_freeze
from luo_drgn.model import (
    BlockSetState,
    KexecImage,
    LuoState,
    PreservedFile,
    Session,
    Snapshot,
    Target,
)
from luo_drgn.preflight import preflight
from luo_drgn.request import Request
from tests.support.debugdirs import kernel_debug


def _inspect(fresh_root: Path, name: str, command: str) -> tuple[int, list[tuple[str, str]]]:
    ex = examples.load(name, fresh_root)
    source = Source(core=str(ex.core), symbols=[str(kernel_debug(ex.manifest["made"]["kernel"]))])
    outcome = engine.run(Request(command, fmt="json"), source)
    "".join(outcome.chunks)
    findings = [(f.code, f.severity) for f in outcome.value.findings]  # type: ignore[union-attr]
    return outcome.status, findings


def test_preserve_in_progress_is_not_an_alarm(fresh_root: Path) -> None:
    """Would catch: item 6: a dump inside memfd_luo_preserve() (luo_preserve_file() has grown
    the block set and indexed the file, not listed it) reported as corrupt-structure and
    preserved-index-mismatch, or preflight refusing it: the real next kernel of that run
    retrieved every session its driver asked for."""
    manifest = examples.load("preserving", fresh_root).manifest
    assert manifest["made"]["capture"] == "preserving"
    reaction = manifest["expected"]["next_kernel"]
    assert reaction["panicked"] is None and reaction["open_luo"] == ["OK"]
    assert set(reaction["retrieve_session"].values()) == {"OK"}
    for command in ("check", "preflight"):
        status, findings = _inspect(fresh_root, "preserving", command)
        assert status == 0, (command, findings)
        assert not [f for f in findings if f[1] == "error"], command
    _, findings = _inspect(fresh_root, "preserving", "check")
    assert ("preserve-in-progress", "info") in findings
    # The preserve the dump interrupted, as the guest logged it on return.
    flight = manifest["expected"]["preserving"]
    assert (flight["session"], flight["token"], flight["result"]) == ("vm-alpha", 0x100, "OK")


def test_no_session_loses_nothing(fresh_root: Path) -> None:
    """Would catch: item 5: no session at all, and a next kernel loaded with liveupdate=off,
    reported as "will NOT accept, every preserved file is lost": the guest preserved nothing
    (its log has no session), so the next kernel's refusal to open /dev/liveupdate (ENOENT)
    loses nothing."""
    manifest = examples.load("no-session", fresh_root).manifest
    assert manifest["expected"]["sessions"] == []
    assert set(manifest["expected"]["next_kernel"]["open_luo"]) == {"ENOENT"}
    status, findings = _inspect(fresh_root, "no-session", "preflight")
    assert status == 0 and findings == []


def _pre_7_2(image: KexecImage | None, cmdline: str | None) -> Snapshot:
    """A kernel of the v6 to 7.1 layouts (no block sets, so no handover
    model), one outgoing session with a file: no guest here runs such a
    kernel."""
    snap = Snapshot(Target("vmcore", "x", "7.1.0", [], layout="7.1"))
    snap.luo = LuoState("enabled", liveupdate_num=0, frozen=False)
    snap.kho_default = True
    f = PreservedFile(0x8000, 0x100, "memfd-v2", 0xFFFF1000, True, 0x9000)
    snap.sessions = [Session(0x7000, "a", "outgoing", False, None, 1, files=[f])]
    snap.kexec_read, snap.kexec_image = True, image
    snap.next_cmdline = cmdline
    from luo_drgn.analysis import inspect

    return inspect(snap)


def test_older_layouts_still_check_the_image_and_command_line() -> None:
    """Would catch: item 4: before 7.2 (no handover model) an image from kexec_load(), which
    carries no KHO data, or a next command line without liveupdate=, passing preflight; and an
    image whose command line cannot be read (arm64 keeps it in the DTB's /chosen/bootargs)
    passing as if it were known."""
    assert predict_freeze(_pre_7_2(None, None)) is None
    legacy = KexecImage(0xFFFF0000, False, False, None, cmdline="liveupdate=on")
    verdict = preflight(_pre_7_2(legacy, "liveupdate=on"))
    assert [f.code for f in verdict.findings] == ["kexec-image-no-handover"]
    loaded = KexecImage(0xFFFF0000, True, False, 0x1000, cmdline="console=ttyS0")
    verdict = preflight(_pre_7_2(loaded, "console=ttyS0"))
    assert [f.code for f in verdict.findings] == ["next-kernel-no-luo"] and verdict.status == 1
    unread = KexecImage(0xFFFF0000, True, False, 0x1000, cmdline_note="no boot_params segment")
    verdict = preflight(_pre_7_2(unread, None))
    (f,) = verdict.findings
    assert f.code == "next-kernel-unknown" and "no boot_params segment" in f.message
    assert verdict.status == 1


def test_a_preserve_in_progress_at_a_block_boundary() -> None:
    """Would catch: a preserve in progress whose grown block is still empty predicted as an
    empty block the next kernel rejects (a panic): the freeze waits for the session mutex, and
    luo_preserve_file() either lists the file in that block or shrinks it away.  Synthetic: the
    guest's preserve stop is at its first file, not at a block's 64th."""
    files = [
        PreservedFile(0x8000 + i, 0x100 + i, "memfd-v2", 0xFFFF1000, True, 0xA000 + i)
        for i in range(63)
    ]
    for f in files:
        f.serialized_data = 0x9000
    s = Session(0x7000, "a", "outgoing", False, None, 63, files=files, mutex_owner=(1, "init"))
    # 63 listed fill one block; the preserve of the 64th grew a second.
    s.block_set = BlockSetState(2, 2, 63, [0x21000, 0x22000])
    snap = Snapshot(Target("vmcore", "x", "7.2.13", []))
    snap.sessions = [s]
    snap.luo_ser_compatible = "luo-v5"
    snap.session_block_set = BlockSetState(1, 1, 51, [0x11000])
    handover = predict_freeze(snap)
    assert handover is not None
    (session,) = handover.sessions
    assert session.chain is not None and [b.count for b in session.chain.blocks] == [63]


def test_incoming_side_does_not_decide_preflight() -> None:
    """Would catch: item 7: an incoming FLB count below its files, an incoming session count
    that disagrees with its list, or a broken incoming session list deciding preflight:
    luo_session_serialize() writes outgoing sessions only and luo_flb_serialize() the outgoing
    counts, so the next kernel never reads them.  A broken walk of the global FLB list still
    decides (luo_flb_serialize() walks it).  Synthetic: a guest cannot break its incoming lists
    and then kexec without the write being this test's own."""
    from luo_drgn.analysis import inspect
    from luo_drgn.model import Flb, WalkErrorRecord

    def snap_with(errors: list[WalkErrorRecord], flbs: list[Flb]) -> Snapshot:
        snap = Snapshot(Target("vmcore", "x", "7.2.13", []))
        snap.luo = LuoState("enabled", liveupdate_num=1, frozen=False)
        snap.kho_default = True
        f = PreservedFile(0x8000, 0x100, "memfd-v2", 0xFFFF1000, True, 0x9000, retrieve_status=1)
        snap.sessions = [Session(0x7000, "old", "incoming", True, False, 1, files=[f])]
        snap.luo.incoming.session_count = 2  # its list has 1
        snap.errors, snap.flbs = errors, flbs
        return inspect(snap)

    flb = Flb(0xF000, "test-flb-v0", 0, 0, ["memfd-v2"], retrieve_status=1)
    snap = snap_with([WalkErrorRecord("incoming session at 0x7100", "a cycle")], [flb])
    codes = {f.code for f in snap.findings if f.severity == "error"}
    assert {"corrupt-structure", "session-count-mismatch", "flb-count-mismatch"} <= codes
    verdict = preflight(snap)
    assert verdict.accepted and verdict.findings == []
    snap = snap_with([WalkErrorRecord("luo_flb_global", "a cycle")], [])
    assert [f.code for f in preflight(snap).findings] == ["corrupt-structure"]
