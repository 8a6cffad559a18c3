# SPDX-License-Identifier: LGPL-2.1-or-later
"""The checks on the real fixtures: each fault fixture yields exactly its
expected findings, and healthy ones yield no error and no warning."""

from __future__ import annotations

import json
import lzma
import re
import struct
from typing import Any

import pytest

from luo_drgn import examples
from luo_drgn.analysis import inspect
from luo_drgn.collector import collect
from luo_drgn.derive import retrieving
from luo_drgn.model import Snapshot
from luo_drgn.preflight import preflight, preflight_findings
from tests.support.fixtures import only
from tests.support.plain import files as plain_files
from tests.support.plain import is_fault, is_healthy, next_kernel_cmdline, session_named
from vmcores.scenarios import NEXT_CMDLINES


def serious(snapshot: Snapshot) -> set[tuple[str, str, Any, Any]]:
    return {
        (f.code, f.severity, f.session, f.token)
        for f in snapshot.findings
        if f.severity in ("error", "warning")
    }


@only(is_fault)
def test_fault_yields_exactly_its_findings(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    """Would catch: a planted fault that goes unreported, or that drags in findings about sessions
    and tokens it did not touch (the faults' own list of what they break is the oracle)."""
    want = {
        (f["code"], f["severity"], f["session"], f["token"])
        for f in expected["fault"]["expected_findings"]
    }
    assert serious(snapshot) == want


@only(lambda name: name == "fault-leaked-reference")
def test_leak_message_counts_unexplained(snapshot: Snapshot) -> None:
    """Would catch: a leak finding that names the wrong session or token, or miscounts the
    references no holder explains."""
    (leak,) = [f for f in snapshot.findings if f.code == "leaked-file-reference"]
    assert "1 unexplained" in leak.message and "vm-beta" in leak.message
    assert "0x200" in leak.message


@only(lambda name: name == "fault-negative-retrieve")
def test_failed_retrieve_names_errno(snapshot: Snapshot) -> None:
    """Would catch: a failed retrieve reported as a bare number instead of the errno the kernel
    stored."""
    (failed,) = [f for f in snapshot.findings if f.code == "retrieve-failed"]
    assert "EIO" in failed.message


@only(lambda name: name == "fault-cyclic-list")
def test_cycle_is_reported_not_followed(snapshot: Snapshot) -> None:
    """Would catch: a cyclic file list walked forever, or its files up to the cycle lost, or counts
    compared on a walk known to be incomplete."""
    alpha = snapshot.session("vm-alpha")
    assert not alpha.files_complete
    assert [f.token for f in alpha.files] == [0x100, 0x101, 0x102]
    assert any("file count" in n and "vm-alpha" in n for n in snapshot.notes)


@only(is_healthy)
def test_healthy_fixture_is_clean(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    """Would catch: a false alarm, a warning or error on a state the real kernel handled without
    complaint.  The one warning such a state may carry is the truth about a retrieved session
    whose guest left files unretrieved (from its log): finishing it now would discard them
    (finish-discards, the finish-early fixture's guest saw it happen)."""
    discarding = {
        ("finish-discards", "warning", s["name"], None)
        for s in expected["sessions"]
        if s["direction"] == "incoming"
        and s["retrieved"]
        and not s["finished"]
        and any(f["retrieve_status"] == 0 for f in s["files"])
    }
    assert serious(snapshot) == discarding
    assert snapshot.errors == []


@only(lambda name: name == "incoming")
def test_restore_progress_is_visible(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    """Would catch: sessions or files the guest left unretrieved missing from the info findings, or
    retrieved ones listed as waiting."""
    info = {(f.code, f.session, f.token) for f in snapshot.findings if f.severity == "info"}
    # Derived from the ground truth: what the guest left unretrieved.
    want = set()
    for s in expected["sessions"]:
        if not s["retrieved"]:
            want.add(("not-retrieved", s["name"], None))
        else:
            want |= {
                ("not-retrieved", s["name"], f["token"])
                for f in s["files"]
                if f["retrieve_status"] == 0
            }
    assert info == want
    # The failed retrieve of an unknown token left nothing in the kernel.
    assert not any(f.token == 0x999 for f in snapshot.findings)


@only(lambda name: name == "incoming-pending")
def test_pending_is_info(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    """Would catch: sessions still waiting for deserialization reported as anything but not-
    retrieved, or some of them missing."""
    info = {(f.code, f.session) for f in snapshot.findings}
    assert info == {("not-retrieved", s["name"]) for s in expected["sessions"]}


@only(lambda name: name in ("disabled", "no-luo"))
def test_disabled_or_absent_is_info(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    """Would catch: a kernel without LUO, or with LUO off, reported with errors instead of the one
    info finding that says so."""
    codes = [(f.code, f.severity) for f in snapshot.findings]
    want = "luo-disabled" if expected["luo_state"] == "disabled" else "luo-absent"
    assert codes == [(want, "info")]


# -- the next kernel's reaction: what preflight predicts, what happened -------


def handed_over(name: str) -> bool:
    """Fixtures whose run went on into the next kernel and recorded it."""
    return (
        name in ("doomed", "doomed-frozen", "crowded", "journey-drop-before")
        or name.startswith("fault-ser-")
        or name in NEXT_CMDLINES
        or name in LOADED
        or name in ("second-first", "second-before", "sealed", "byte-names")
    )


# Dumped with the next kernel loaded by kexec_file_load(), before kexec -e.
LOADED = ("loaded", "loaded-kho-off")


def observed_reaction(expected: dict[str, Any]) -> set[tuple[str, str | None]]:
    """The real next kernel's reaction as findings (code, session), read from
    its console and its driver's log, never from luo-inspect."""
    nk = expected["next_kernel"]
    if nk["panicked"]:
        return {("next-kernel-panic", None)}
    if nk["open_luo"] and set(nk["open_luo"]) == {"ENOENT"}:
        # No /dev/liveupdate at all: LUO is off in the next kernel.
        return {("next-kernel-no-luo", None)}
    if "EIO" in nk["open_luo"]:
        said = " ".join(nk["luo_messages"])
        m = re.search(r"Failed to deserialize files for session \[(.*?)\]", said)
        return {("next-kernel-eio", m.group(1) if m else None)}
    sent = [s["name"] for s in expected["sessions"] if s["direction"] == "outgoing"]
    lost = {("next-kernel-drops", n) for n in sent if nk["retrieve_session"].get(n) == "ENOENT"}
    # A file's own retrieve refused (not an unknown token: that is no file).
    failed = {
        ("retrieve-will-fail", session)
        for session, _, result in nk["retrieve"]
        if result not in ("OK", "ENOENT", "EBADF")
    }
    return lost | failed


# The verdicts of the next kernel's restore path (luo_drgn.restore).
RESTORE_MODEL_CODES = (
    "next-kernel-panic",
    "next-kernel-abi",
    "next-kernel-eio",
    "next-kernel-drops",
    "next-kernel-no-luo",
    "kexec-will-fail",
    "deserialize-will-fail",
    "deserialize-drops",
    "retrieve-will-fail",
)


@only(handed_over)
def test_verdict_follows_the_next_kernel(
    snapshot: Snapshot, manifest: dict[str, Any], prog: Any
) -> None:
    """Preflight, told the command line the next kernel really booted with
    (its console's "Command line:"), against what that kernel did."""
    expected = manifest["expected"]
    reaction = observed_reaction(expected)
    snapshot = collect(prog, snapshot.target)
    snapshot.next_cmdline = next_kernel_cmdline(manifest)
    inspect(snapshot)
    decisive = {
        (f.code, f.session) for f in preflight_findings(snapshot) if f.code in RESTORE_MODEL_CODES
    }
    # The log shows a panic or EIO, and the sessions the driver asked for.
    nk = expected["next_kernel"]
    asked = set(nk["retrieve_session"]) | {session for session, _, _ in nk["retrieve"]}
    seen = {
        (code, session)
        for code, session in decisive
        if code in ("next-kernel-panic", "next-kernel-eio", "next-kernel-no-luo")
        or session in asked
    }
    assert seen == reaction
    # What the log cannot show is only sessions it never asked for.
    assert all(session not in asked for _, session in decisive - seen)
    assert preflight(snapshot).accepted == (not reaction)


@only(lambda name: name in ("doomed", "doomed-frozen"))
def test_doomed_handover_is_the_known_7_2_13_bug(
    snapshot: Snapshot, expected: dict[str, Any]
) -> None:
    """Would catch: the 51-session handover that panics the next kernel reported clean, or its
    finding not quoting what that kernel printed (its console is the oracle)."""
    (f,) = [f for f in snapshot.findings if f.code == "next-kernel-panic"]
    # The kernel's own words, as the next kernel printed them.
    for said in expected["next_kernel"]["luo_messages"][1:]:
        assert f'"{said}"' in f.message
    assert f'("{expected["next_kernel"]["panicked"]}")' in f.message
    assert "All 51 sessions are lost." in f.message
    # %pe as this kernel's config prints it (the panic quoted above).
    config = lzma.decompress((examples.DATA / "kernel" / "luo" / "config.xz").read_bytes())
    assert b"# CONFIG_SYMBOLIC_ERRNAME is not set" in config
    assert snapshot.symbolic_errname is False
    assert "refused LIVEUPDATE_IOCTL_CREATE_SESSION (EEXIST)" in f.message
    refusals = [r for r in expected["refusals"] if r["op"] == "create_session"]
    assert refusals == [{"op": "create_session", "session": "crowd-00", "errno": "EEXIST"}]


@only(lambda name: name == "doomed-panic")
def test_panicked_next_kernel_is_explained(
    snapshot: Snapshot, expected: dict[str, Any], manifest: dict[str, Any]
) -> None:
    """A dump of the kernel that panicked in LUO's restore: one finding says
    so in the kernel's own words, from the dump's log buffer."""
    assert snapshot.luo.state == "disabled" and snapshot.luo.liveupdate_num == 1
    (f,) = [f for f in snapshot.findings if f.severity == "error"]
    assert f.code == "restore-failed"
    log = manifest["kernel_log"]
    boot = log[max(i for i, line in enumerate(log) if line.startswith("Command line:")) :]
    rejected = [m for m in boot if m.startswith("luo: Block")]
    assert rejected == ["luo: Block contains invalid entry count: 0"]
    assert f'"{rejected[0]}"' in f.message
    assert f'"{expected["restore_failed"]}"' in f.message
    assert "was freed before the panic" in f.message


@only(lambda name: name == "deserialize-failed")
def test_failed_deserialization_is_an_error(
    snapshot: Snapshot, expected: dict[str, Any], manifest: dict[str, Any]
) -> None:
    """The next kernel of fault-ser-file-count: its driver's opens returned
    EIO, and the kernel said why; the report says so, with the real errno."""
    failed = expected["deserialize_failed"]
    opens = [
        json.loads(e[len("@@LUO ") :])["result"]
        for e in manifest["guest_log"]
        if '"op":"open_luo"' in e
    ]
    # Phase 1's open, then the next kernel's two: the failure is kept.
    assert opens == ["OK", "EIO", "EIO"]
    (f,) = [f for f in snapshot.findings if f.severity == "error"]
    assert (f.code, f.session) == ("deserialize-failed", failed["session"])
    assert f"failed with {failed['errno']}" in f.message
    boot = manifest["kernel_log"][
        max(i for i, line in enumerate(manifest["kernel_log"]) if line.startswith("Command line")) :
    ]
    for said in boot:
        if said.startswith("luo: ") and "Retrieved" not in said:
            assert f'"{said}"' in f.message
    assert snapshot.luo.deserialize_error == -22 and failed["errno"] == "EINVAL"


def test_finished_still_held_on_real_memory() -> None:
    """vm-alpha (retrieved, three luo_files) with its block set destroyed as
    luo_file_finish() leaves it, the files still listed: finished, and
    still holding them.  Untouched, it is not finished."""
    import struct

    from luo_drgn import examples
    from luo_drgn.analysis import inspect
    from luo_drgn.collector import collect
    from luo_drgn.model import Target

    prog = examples.load("incoming").program()
    alpha = session_named(prog, "vm-alpha", "incoming")
    snap = inspect(collect(prog, Target("vmcore", None, None, [])))
    assert snap.session("vm-alpha", "incoming").finished is False
    bs = alpha.file_set.block_set
    for field in (bs.nblocks, bs.head_pa):
        zero = struct.pack("<Q", 0)
        prog.add_memory_segment(field.address_, 8, lambda a, n, o, p, z=zero: z[o : o + n])
    snap = inspect(collect(prog, Target("vmcore", None, None, [])))
    assert snap.session("vm-alpha", "incoming").finished is True
    (f,) = [f for f in snap.findings if f.code == "finished-still-held"]
    assert (f.severity, f.session) == ("warning", "vm-alpha")
    assert "holds 3 luo_file(s)" in f.message


# -- invariants the kernel keeps, broken by one write on a real core -----------


def _plant(prog: Any, address: int, data: bytes) -> None:
    prog.add_memory_segment(address, len(data), lambda a, n, o, p: data[o : o + n])


def _errors_after(fixture: str, plant: Any) -> set[tuple[str, Any, Any]]:
    from luo_drgn import examples
    from luo_drgn.analysis import inspect
    from luo_drgn.collector import collect
    from luo_drgn.model import Target

    prog = examples.load(fixture).program()
    plant(prog)
    snap = inspect(collect(prog, Target("vmcore", None, None, [])))
    return {(f.code, f.session, f.message) for f in snap.findings if f.severity == "error"}


@pytest.mark.parametrize(
    "fixture,plant,session,text",
    [
        # An outgoing file with a retrieve state (only incoming ones are).
        (
            "outgoing",
            lambda p: _plant(
                p,
                plain_files(session_named(p, "vm-alpha", "outgoing"))[0].retrieve_status.address_,
                struct.pack("<i", 1),
            ),
            "vm-alpha",
            "an outgoing file with retrieve state 1",
        ),
        # An outgoing session marked retrieved.
        (
            "outgoing",
            lambda p: _plant(
                p, session_named(p, "vm-beta", "outgoing").retrieved.address_, b"\x01"
            ),
            "vm-beta",
            "an outgoing session marked retrieved",
        ),
        # A retrieve state in an incoming session never retrieved.
        (
            "incoming",
            lambda p: _plant(
                p,
                plain_files(session_named(p, "vm-beta", "incoming"))[0].retrieve_status.address_,
                struct.pack("<i", -5),
            ),
            "vm-beta",
            "in a session never retrieved",
        ),
        # A name with no NUL in its 64 bytes.
        (
            "outgoing",
            lambda p: _plant(p, session_named(p, "empty", "outgoing").name.address_, b"x" * 64),
            "x" * 64,
            "fills all 64 bytes with no NUL",
        ),
        # An incoming file waiting to be retrieved whose serialized_data
        # points at the kernel's own text (1 MiB physical), not at what KHO
        # preserved (its next pages are preserved too: the memfd's folios).
        (
            "incoming",
            lambda p: _plant(
                p,
                plain_files(session_named(p, "vm-beta", "incoming"))[0].serialized_data.address_,
                struct.pack("<Q", 0x100000),
            ),
            "vm-beta",
            "is not memory the previous kernel preserved",
        ),
        # A retrieved incoming session whose flag is cleared while its
        # session fd is still open.
        (
            "incoming",
            lambda p: _plant(
                p, session_named(p, "vm-alpha", "incoming").retrieved.address_, b"\x00"
            ),
            "vm-alpha",
            "not marked retrieved, yet its session file is open (1/init fd",
        ),
        # A file set's nblocks against its list and its count.
        (
            "outgoing",
            lambda p: _plant(
                p,
                session_named(p, "vm-alpha", "outgoing").file_set.block_set.nblocks.address_,
                struct.pack("<q", 2),
            ),
            "vm-alpha",
            "counts 2 blocks, its list has 1",
        ),
        (
            "outgoing",
            lambda p: _plant(
                p,
                session_named(p, "vm-alpha", "outgoing").file_set.block_set.nblocks.address_,
                struct.pack("<q", 2),
            ),
            "vm-alpha",
            "has 2 blocks for 3 files (63 per block)",
        ),
    ],
)
def test_broken_invariant_is_an_error(fixture: str, plant: Any, session: str, text: str) -> None:
    """Would catch: a structure broken in real memory (a planted write) that the collector reads
    past without a corrupt-structure error naming the session."""
    errors = _errors_after(fixture, plant)
    assert any(
        code == "corrupt-structure" and s == session and text in m for code, s, m in errors
    ), errors


def test_files_list_head_prev() -> None:
    """The files list head's prev pointing anywhere but the last node, which
    only a check of the head itself (drgn's last hop) sees."""

    def plant(prog: Any) -> None:
        alpha = session_named(prog, "vm-alpha", "outgoing")
        head = alpha.file_set.files_list
        _plant(prog, head.prev.address_, struct.pack("<Q", head.next.value_()))

    errors = _errors_after("outgoing", plant)
    assert any("the head's prev" in m and "is not the last node" in m for _, _, m in errors)


# -- inside the freeze, and after a failed one ------------------------------------


@only(lambda name: name == "freezing")
def test_freeze_in_progress(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    """Dumped at the 4th call of memfd_luo_freeze(): vm-alpha's three files
    are frozen and its entry named, vm-beta's entry reserved, not named."""
    freeze = expected["freeze"]
    assert (snapshot.luo.freeze, snapshot.luo.freeze_written) == ("freezing", freeze["written"])
    assert snapshot.luo.frozen is False
    (f,) = [f for f in snapshot.findings if f.code == "freeze-in-progress"]
    assert (f.severity, f.session) == ("info", freeze["freezing"])
    assert f"{freeze['written']} of 4 sessions written" in f.message
    # Entries not written yet are not a serialization mismatch.
    assert [f for f in snapshot.findings if f.severity != "info"] == []


@only(lambda name: name == "freeze-failed")
def test_freeze_failed_and_rolled_back(
    snapshot: Snapshot, expected: dict[str, Any], manifest: dict[str, Any]
) -> None:
    """The driver's reboot() returned EINVAL, the kernel said why; the dump
    after it shows err_undo's signature, and preflight says the next kexec
    will be refused the same way."""
    assert expected["freeze"] == {"state": "rolled-back", "errno": "EINVAL"}
    assert snapshot.luo.freeze == "rolled-back" and snapshot.luo.freeze_written == 0
    said = [line for line in manifest["kernel_log"] if "Freeze failed" in line]
    assert said == ["luo: Freeze failed for token[0x200] handler[memfd-v2] err[-22]"]
    (warned,) = [f for f in snapshot.findings if f.code == "freeze-failed"]
    assert warned.severity == "warning" and f'"{said[0]}"' in warned.message
    (refused,) = [f for f in preflight_findings(snapshot) if f.code == "kexec-will-fail"]
    assert (refused.session, refused.token) == ("vm-beta", 0x200)
    assert f'"{said[0]}"' in refused.message and "EINVAL" in refused.message
    assert not preflight(snapshot).accepted


@only(lambda name: name == "retrieving")
def test_retrieve_in_progress_is_not_corruption(
    snapshot: Snapshot, expected: dict[str, Any]
) -> None:
    """Dumped inside luo_retrieve_file(), at its xa_insert(): the file is set,
    retrieve_status not yet, the mutex held; the retrieve the driver logged
    once it returned is the one in flight."""
    flight = expected["retrieving"]
    assert flight["result"] == "OK"
    s = snapshot.session(flight["session"], "incoming")
    (f,) = [f for f in s.files if f.token == flight["token"]]
    assert retrieving(s, f) and f.mutex_owner is not None and f.mutex_owner[0] == 1
    # Its reference count: LUO's, and the retrieve's own (the fd to be).
    assert f.refcount == f.explained_refs == 2
    (info,) = [x for x in snapshot.findings if x.code == "retrieve-in-progress"]
    assert (info.severity, info.session, info.token) == ("info", flight["session"], flight["token"])
    # Besides: each retrieved session whose guest had not retrieved some
    # files (the one in flight aside) would discard them if finished now.
    discarding = {
        s["name"]
        for s in expected["sessions"]
        if s["retrieved"]
        and not s["finished"]
        and any(
            f["retrieve_status"] == 0
            and (s["name"], f["token"]) != (flight["session"], flight["token"])
            for f in s["files"]
        )
    }
    serious = [x for x in snapshot.findings if x.severity != "info"]
    assert {(x.code, x.session) for x in serious} == {("finish-discards", n) for n in discarding}


# -- the loaded image and a host's second update -----------------------------------


@only(lambda name: name in LOADED)
def test_loaded_image_is_the_next_kernel(
    snapshot: Snapshot, manifest: dict[str, Any], prog: Any
) -> None:
    """Without --next-cmdline, preflight reads the command line the loaded
    image boots with: the one the next kernel then printed ("Command line:"
    on its console), and its verdict is that kernel's reaction (kho=off:
    LUO disabled, /dev/liveupdate ENOENT).  Would catch: the image's boot
    params misread, a verdict from an assumed command line (issue #19's
    "accepted, exit 0" for kho=off)."""
    from luo_drgn.preflight import preflight

    expected = manifest["expected"]
    assert snapshot.kexec_image is not None
    assert snapshot.kexec_image.file_mode and not snapshot.kexec_image.preserve_context
    assert snapshot.kexec_image.kho_fdt  # kho_fill_kimage() ran
    assert snapshot.next_cmdline == next_kernel_cmdline(manifest)
    assert snapshot.next_cmdline_source == "the loaded kexec image"
    reaction = observed_reaction(expected)
    decisive = {(f.code, f.session) for f in preflight_findings(snapshot)}
    assert decisive == reaction
    verdict = preflight(snapshot)
    assert verdict.accepted == (not reaction)
    assert verdict.status == (1 if reaction else 0)


@only(lambda name: name in ("outgoing", "second-before", "incoming"))
def test_nothing_loaded_is_said(snapshot: Snapshot) -> None:
    """Dumped before the driver's kexec_file_load(): no image, so no
    command line is assumed from one."""
    assert snapshot.kexec_read and snapshot.kexec_image is None
    assert snapshot.next_cmdline is None and snapshot.next_cmdline_source is None


@only(lambda name: name == "second-before")
def test_second_update_loses_what_was_never_retrieved(
    snapshot: Snapshot, manifest: dict[str, Any]
) -> None:
    """Boot 2 of a second update: every incoming file it never retrieved is
    named lost at this kexec, with its size, and nothing else is.  The
    oracle is the guest's log: what boot 1 preserved and boot 2 did not
    retrieve, and boot 3 asking for it (ENOENT).  Would catch: preflight
    silent on the incoming side (issue #19), or an outgoing session of the
    same name taken for the incoming one."""
    from luo_drgn.preflight import preflight

    expected = manifest["expected"]
    never = {
        (s["name"], f["token"]): f["size"]
        for s in expected["sessions"]
        if s["direction"] == "incoming" and not s["finished"]
        for f in s["files"]
        if f["retrieve_status"] == 0
    }
    assert set(never) == {("vm-alpha", 0x102), ("vm-beta", 0x100), ("vm-beta", 0x200)}
    verdict = preflight(snapshot)
    lost = {(f.session, f.token): f.message for f in verdict.losses if f.code == "lost-at-kexec"}
    assert set(lost) == set(never)
    for key, size in never.items():
        assert f"({size} bytes)" in lost[key]
    assert all(
        f.severity == "warning" and f.direction == "incoming"
        for f in verdict.losses
        if f.code == "lost-at-kexec"
    )
    # Boot 3's driver: those sessions and tokens did not arrive.
    nk = expected["next_kernel"]
    assert nk["retrieve_session"]["vm-beta"] == "ENOENT"
    assert ["vm-alpha", 0x102, "ENOENT"] in nk["retrieve"]
    # The handover itself (vm-gamma, vm-alpha re-created) arrives whole.
    assert verdict.accepted and verdict.status == 1
    handed = {(x, t, r) for x, t, r in nk["retrieve"] if r == "OK"}
    assert handed == {
        ("vm-alpha", 0x110, "OK"),
        ("vm-gamma", 0x300, "OK"),
        ("vm-gamma", 0x301, "OK"),
        ("vm-gamma", 0x302, "OK"),
    }
    # Retrieved and not preserved again (EBUSY in the log): a loss, a
    # warning (luo_preserve_file() refuses it until the session is
    # finished); the empty session loses nothing: info.
    refused = [r for r in expected["refusals"] if r["op"] == "preserve" and r["errno"] == "EBUSY"]
    assert {"op": "preserve", "session": "vm-alpha", "token": 0x100, "errno": "EBUSY"} in refused
    again = {(f.session, f.token) for f in verdict.losses if f.code == "not-preserved-again"}
    assert again == {("vm-alpha", 0x100), ("vm-alpha", 0x101)}
    assert all(f.severity == "warning" for f in verdict.losses if f.code == "not-preserved-again")
    handed_on = {(f.session, f.token) for f in verdict.losses if f.code == "not-handed-on"}
    assert handed_on == {("empty", None)}
    # check shows the waiting files as not-retrieved (info), not as losses.
    assert not [
        f
        for f in snapshot.findings
        if f.code in ("lost-at-kexec", "not-handed-on", "not-preserved-again")
    ]
    waiting = {(f.session, f.token) for f in snapshot.findings if f.code == "not-retrieved"}
    assert ("vm-alpha", 0x102) in waiting and ("vm-beta", None) in waiting


@only(lambda name: name == "second-before")
def test_second_update_holds_both_directions(snapshot: Snapshot) -> None:
    """vm-gamma is both a finished incoming session and a new outgoing one
    (luo_session_insert() checks names within one list); its re-preserved
    memfds are held by the driver's fd and the outgoing LUO file only."""
    names = [(s.direction, s.name) for s in snapshot.sessions]
    assert ("incoming", "vm-gamma") in names and ("outgoing", "vm-gamma") in names
    out = snapshot.session("vm-gamma", "outgoing")
    assert [f.token for f in out.files] == [0x300, 0x301, 0x302]
    for f in out.files:
        assert f.refcount == f.explained_refs == 2
        assert sorted(x.kind for x in f.holders) == ["fd", "luo"]
    assert not [f for f in snapshot.findings if f.severity == "error"]


@only(lambda name: name == "sealed")
def test_seal_added_after_preserve_is_not_handed_over(
    snapshot: Snapshot, manifest: dict[str, Any], prog: Any
) -> None:
    """vm-alpha 0x100's memfd was sealed (F_ADD_SEALS, accepted) after it
    was preserved; the next kernel's retrieve of it gave the seals
    memfd_luo_preserve() had recorded, without the added ones (the guest's
    F_GET_SEALS on both sides).  Preflight warns and counts it as a loss;
    the handover itself is accepted.  Would catch: the seals read from the
    serialized state only, or the loss not deciding the exit status."""
    from drgn import Object, container_of

    from luo_drgn.preflight import preflight
    from vmcores.manifest import guest_events

    events = guest_events(manifest["guest_log"])
    (sealed,) = [e for e in events if e["op"] == "add_seals"]
    assert sealed["result"] == "OK" and sealed["now"] == sealed["seals"]
    (preserved,) = [
        e
        for e in events
        if e["op"] == "preserve" and e["fd"] == sealed["fd"] and e["result"] == "OK"
    ]
    key = (preserved["session"], preserved["token"])
    (arrived,) = [
        e
        for e in guest_events(manifest["after_log"])
        if e["op"] == "retrieve" and (e["session"], e["token"]) == key
    ]
    lost = sealed["now"] & ~arrived["seals"]
    assert lost  # the real next kernel did not have them
    found = [f for f in snapshot.findings if f.code == "seals-not-handed-over"]
    assert [(f.session, f.token) for f in found] == [key]
    assert f"the seals {lost:#x}" in found[0].message
    # The seals now, as plain drgn reads them off the inode.
    (f,) = [
        f
        for s in snapshot.sessions
        if s.name == key[0] and s.direction == "outgoing"
        for f in s.files
        if f.token == key[1]
    ]
    file = Object(prog, "struct file *", f.file)
    info = container_of(file.f_inode, "struct shmem_inode_info", "vfs_inode")
    assert f.seals == info.seals.value_() == sealed["now"]
    verdict = preflight(snapshot)
    assert verdict.accepted and verdict.status == 1 and found[0] in verdict.losses


@only(lambda name: name == "loaded-legacy")
def test_legacy_loaded_image_hands_nothing_over(
    snapshot: Snapshot, manifest: dict[str, Any]
) -> None:
    """The next kernel loaded by kexec-tools' kexec -l -c (kexec_load()):
    it booted without LUO data (no "Retrieved live update data" on its
    console) and its driver got ENOENT for every session it asked for.
    Preflight, without --next-cmdline, reads the image kexec-tools built
    (its boot_params) and refuses it.  Would catch: a legacy image taken
    for a healthy next kernel."""
    from luo_drgn.preflight import preflight

    nk = manifest["expected"]["next_kernel"]
    assert not any("Retrieved live update data" in m for m in nk["luo_messages"])
    assert nk["open_luo"] == ["OK"] and set(nk["retrieve_session"].values()) == {"ENOENT"}
    image = snapshot.kexec_image
    assert image is not None and not image.file_mode and not image.kho_fdt
    assert snapshot.next_cmdline == next_kernel_cmdline(manifest)
    verdict = preflight(snapshot)
    assert [f.code for f in verdict.findings] == ["kexec-image-no-handover"]
    assert not verdict.accepted and verdict.status == 1


@only(lambda name: name == "flb-finishing")
def test_dump_inside_flb_finish_is_not_a_count_mismatch(
    snapshot: Snapshot, manifest: dict[str, Any]
) -> None:
    """Dumped at the first test FLB's .finish(): liveupdate_flb_put_incoming()
    holds its lock, its count is 0 and the last memfd is still being
    finished.  The FLB in flight is the one the kernel's console names
    first after the dump ("finish was triggered"), and the driver (its
    start event's pid) holds the lock.  Would catch: a legitimate state
    read as flb-count-mismatch (an error)."""
    from vmcores.manifest import guest_events

    said = [line for line in manifest["after_log"] if "finish was triggered" in line]
    in_flight = said[0].split("liveupdate test: ", 1)[1].split(":", 1)[0]
    driver = next(e["pid"] for e in guest_events(manifest["guest_log"]) if e["op"] == "start")
    (flb,) = [f for f in snapshot.flbs if f.compatible == in_flight]
    assert flb.incoming_lock_owner is not None and flb.incoming_lock_owner[0] == driver
    assert flb.incoming_count == 0 and not flb.finished
    assert [(f.code, f.address) for f in snapshot.findings if f.code.startswith("flb-")] == [
        ("flb-in-progress", flb.address)
    ]
    assert not [f for f in snapshot.findings if f.severity == "error"]
    # The other FLBs are not in flight: counted, and their counts agree.
    assert all(f.incoming_lock_owner is None for f in snapshot.flbs if f is not flb)


@only(lambda name: name == "byte-names")
def test_names_differing_in_bytes_are_two_sessions(
    snapshot: Snapshot, manifest: dict[str, Any]
) -> None:
    """Sessions named b"vm-\\xff" and b"vm-\\xfe": luo_session_insert()
    compares names with strncmp(), so the kernel created both and the next
    kernel retrieved both (the guest's log).  Read as text with U+FFFD they
    were one name: a false duplicate-session-name and a false "will NOT
    accept" (next-kernel-eio).  The guest logs each name as the inspector
    shows bytes that are not UTF-8 (\\xNN)."""
    from luo_drgn.preflight import preflight

    expected = manifest["expected"]
    odd = [s["name"] for s in expected["sessions"] if "\\x" in s["name"]]
    assert odd == ["vm-\\xff", "vm-\\xfe"]
    assert [s.name for s in snapshot.sessions if s.name in odd] == odd
    nk = expected["next_kernel"]
    assert [nk["retrieve_session"][n] for n in odd] == ["OK", "OK"]
    assert not [f for f in snapshot.findings if f.severity == "error"]
    assert preflight(snapshot).accepted
