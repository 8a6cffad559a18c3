# SPDX-License-Identifier: LGPL-2.1-or-later
"""luo-inspect diff: what was handed over across a real kexec and what the
next kernel made of it.  The rows each pair must give come from the guest's
logs on both sides (the manifests), never from the diff itself."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from luo_drgn import examples
from luo_drgn.analysis import inspect
from luo_drgn.collector import collect
from luo_drgn.diff import diff
from luo_drgn.model import (
    Finding,
    LuoState,
    PreservedFile,
    SerializedFile,
    SerializedSession,
    Session,
    Snapshot,
    Target,
)
from luo_drgn.report.saved import SavedReportError, load_report
from tests.support.doors import luo, program, run
from tests.support.journey import story
from vmcores.manifest import guest_events

DIFF_SCHEMA = json.loads(
    resources.files("luo_drgn").joinpath("luo-inspect-diff-1.schema.json").read_text()
)
SAVED_BEFORE = examples.DATA / "fixtures" / "journey-after" / "before.json"


def resized(manifest: dict[str, Any]) -> dict[tuple[str, int], int]:
    """Retrieved files the guest resized after the retrieve, from its log."""
    fds: dict[int, tuple[str, int]] = {}
    out = {}
    for ev in guest_events(manifest["guest_log"]):
        if ev["op"] == "retrieve" and ev["result"] == "OK":
            fds[ev["fd"]] = (ev["session"], ev["token"])
        elif ev["op"] == "resize" and ev["result"] == "OK" and ev["fd"] in fds:
            out[fds[ev["fd"]]] = ev["size"]
    return out


def snapshot_of(example: examples.Example) -> Snapshot:
    prog = example.program()
    return inspect(collect(prog, Target("vmcore", example.name, None, [])))


PAIRS = {
    # before, after: one QEMU run each, the kexec between them.
    "journey": ("journey-before", "journey-after"),
    "journey-drop": ("journey-drop-before", "journey-drop-after"),
    "doomed": ("doomed", "doomed-panic"),
    # A host's second update: boot 1 -> boot 2 (a retrieved memfd resized
    # by the guest), boot 2 (incoming never retrieved) -> boot 3.
    "second-first": ("second-first", "second-before"),
    "second": ("second-before", "second-after"),
}


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_rows_tell_the_guest_logs_story(pair: str, fresh_root: Path) -> None:
    """Would catch: a diff row whose state (arrived, retrieved, failed, lost, not handed on) or size
    differs from what the two guests logged."""
    before_name, after_name = PAIRS[pair]
    before, after = examples.load(before_name, fresh_root), examples.load(after_name, fresh_root)
    d = diff(snapshot_of(before), snapshot_of(after))
    want = story(before.manifest["expected"], after.manifest["expected"])
    assert {(r.session, r.token): r.state for r in d.rows} == want
    assert d.lost == any(state in ("lost", "retrieve-failed") for state in want.values())
    # Sizes: each memfd's as its creator logged it, on both sides where shown.
    sizes = {
        (s["name"], f["token"]): f["size"]
        for s in before.manifest["expected"]["sessions"]
        for f in s["files"]
    }
    grown = resized(after.manifest)
    # Retrieved and resized on the before side (a second update's boot 2).
    grown_before = resized(before.manifest)
    for r in d.rows:
        if r.token is not None:
            key = (r.session, r.token)
            assert r.before_size in (sizes[key], grown_before.get(key))
            assert r.after_size in (None, r.before_size, grown.get((r.session, r.token)))


def test_journey_details(fresh_root: Path) -> None:
    """Would catch: a failed retrieve's row without the errno the guest saw, or a row without who
    holds the file."""
    before, after = (examples.load(n, fresh_root) for n in PAIRS["journey"])
    rows = {(r.session, r.token): r for r in diff(snapshot_of(before), snapshot_of(after)).rows}
    # The guest's retrieve of 0x101 failed with EOPNOTSUPP, and who holds 0x100.
    (failed,) = [e for e in after.manifest["expected"]["failed_retrieves"] if e["token"] == 0x101]
    assert failed["errno"] in rows[("vm-alpha", 0x101)].detail
    assert rows[("vm-alpha", 0x100)].detail == "held by 1/init fd 6"


def test_journey_drop_says_why(fresh_root: Path) -> None:
    """Would catch: sessions the next kernel skips silently reported lost without the kernel
    function that skips them."""
    before, after = (examples.load(n, fresh_root) for n in PAIRS["journey-drop"])
    d = diff(snapshot_of(before), snapshot_of(after))
    lost = [r for r in d.rows if r.state == "lost"]
    assert {r.session for r in lost} == {"vm-gamma", "empty"}
    assert all(
        "silently skip" in r.detail and "kho_block_set_it_read_entry()" in r.detail for r in lost
    )


def sent_by_the_guest(console: list[str]) -> dict[str, Any]:
    """What the first kernel's agent preserved before ``kexec -e``, from its
    log: the sessions it created and the tokens it preserved, each
    accepted by the kernel (result OK) in phase 1."""
    sessions: dict[str, list[dict[str, int]]] = {}
    phase = 0
    for ev in guest_events(console):
        if ev["op"] == "start":
            phase = ev["phase"]
        elif phase == 1 and ev.get("result") == "OK":
            if ev["op"] == "create_session":
                sessions[ev["session"]] = []
            elif ev["op"] == "preserve":
                sessions[ev["session"]].append({"token": ev["token"]})
    return {
        "sessions": [
            {"name": name, "direction": "outgoing", "files": files}
            for name, files in sessions.items()
        ]
    }


def test_saved_report_against_the_committed_after() -> None:
    """The report saved before kexec -e, against the next kernel's dump.
    Would catch: the saved report read back with a session or token
    missing, or the diff pairing a saved row with the wrong incoming one.
    The oracle is the journey guest's own log (its phase 1 preserves and
    phase 2 retrieves, one console across the kexec), not the report."""
    after = examples.load("journey-after")
    before = load_report(str(SAVED_BEFORE))
    sent = sent_by_the_guest(after.manifest["guest_log"])
    assert [(s.name, [f.token for f in s.files]) for s in before.sessions] == [
        (s["name"], [f["token"] for f in s["files"]]) for s in sent["sessions"]
    ]
    d = diff(before, snapshot_of(after))
    assert {(r.session, r.token): r.state for r in d.rows} == story(
        sent, after.manifest["expected"]
    )
    assert d.lost


def test_doomed_rows_quote_the_kernel() -> None:
    """Would catch: a handover that panicked the next kernel not shown as every session lost, with
    the kernel's words."""
    d = diff(snapshot_of(examples.load("doomed")), snapshot_of(examples.load("doomed-panic")))
    assert len(d.rows) == 51 and {r.state for r in d.rows} == {"lost"}
    assert d.verdict is not None and '"luo: Block contains invalid entry count: 0"' in d.verdict


# -- the command ------------------------------------------------------------------


def test_cli_diff_json_and_exit_status() -> None:
    """Would catch: diff's JSON breaking its schema, or its exit status not following whether
    anything was lost."""
    code, out = run("diff", str(SAVED_BEFORE), "example:journey-after", "--format", "json")
    doc = json.loads(out)
    jsonschema.validate(doc, DIFF_SCHEMA)
    assert code == 1 and doc["lost"] is True
    assert [r["state"] for r in doc["rows"] if r["session"] == "vm-alpha"] == [
        "retrieved",
        "retrieve-failed",
        "arrived",
    ]
    code, out = run("diff", "example:frozen", "example:incoming")
    assert code == 0 and "nothing was lost" in out
    code, out = run("diff", "example:doomed", "example:doomed-panic", "--format", "markdown")
    assert code == 1 and out.startswith("# luo-inspect diff: 7.2.13 -> 7.2.13")


def test_cli_diff_missing_saved_report() -> None:
    """Would catch: a saved report that cannot be read shown with Python's
    exception text instead of the system's one reason, or not as exit 2."""
    code, out = run("diff", "/nonexistent/before.json", "example:incoming")
    assert code == 2
    assert out.strip().endswith("/nonexistent/before.json: cannot read: No such file or directory")


def test_cli_diff_bad_saved_report(tmp_path: Path) -> None:
    """Would catch: a JSON file that is not a report accepted as the before side."""
    bogus = tmp_path / "x.json"
    bogus.write_text('{"schema": "other/1"}')
    code, out = run("diff", str(bogus), "example:incoming")
    assert code == 2 and "not a luo-inspect/1 report" in out


def test_plugin_diff(capsys: pytest.CaptureFixture[str]) -> None:
    """Would catch: %luo diff not taking the program it runs in as the after side."""
    prog = program("journey-after")
    d = luo(prog, f"luo diff --before {SAVED_BEFORE} --format json")
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, DIFF_SCHEMA)
    assert d.lost and doc["after"]["path"] is None


# -- edge cases on hand-made snapshots ----------------------------------------------


def side(*sessions: Session, **luo: Any) -> Snapshot:
    s = Snapshot(Target("vmcore", "x", "7.2.13", []))
    s.luo = LuoState("enabled", **luo)
    s.sessions = list(sessions)
    return s


def memfd(token: int, size: int, **kw: Any) -> PreservedFile:
    return PreservedFile(
        0x5000 + token, token, "memfd-v2", 0, True, None, memfd={"size": size, "nr_folios": 1}, **kw
    )


def test_truncation_shows() -> None:
    """Would catch: a memfd that arrived smaller than it was sent shown as arrived without saying
    so."""
    before = side(Session(1, "a", "outgoing", False, None, 1, [memfd(1, 8192)]))
    after = side(
        Session(2, "a", "incoming", False, False, 1, [memfd(1, 4096)]),
        incoming_present=True,
        incoming_deserialized=True,
    )
    d = diff(before, after)
    (r,) = d.rows
    assert r.state == "arrived" and r.truncated and d.lost
    assert "size 8192 before, 4096 after" in r.detail


def test_pending_not_sent_and_absent() -> None:
    """Would catch: sessions still waiting for deserialization shown as lost, or sessions the before
    side never sent shown as arrived."""
    before = side(
        Session(1, "a", "outgoing", False, None, 1, [memfd(1, 10)]),
        Session(2, "b", "outgoing", False, None, 0, []),
    )
    after = side(incoming_present=True, incoming_deserialized=False)
    after.pending_incoming = [
        SerializedSession("a", 1, [SerializedFile(1, "memfd-v2", 0)]),
        SerializedSession("b", 0, []),
    ]
    assert [(r.session, r.state) for r in diff(before, after).rows] == [
        ("a", "pending"),
        ("b", "pending"),
    ]
    # Deserialized, b absent, a foreign session present.
    after = side(
        Session(3, "a", "incoming", False, False, 1, [memfd(1, 10)]),
        Session(4, "z", "incoming", False, False, 0, []),
        incoming_present=True,
        incoming_deserialized=True,
    )
    rows = {r.session: r for r in diff(before, after).rows}
    assert rows["b"].state == "finished" and "memory cannot tell" in rows["b"].detail
    assert rows["z"].state == "not-sent" and "stale or foreign" in rows["z"].detail


def test_failed_deserialization_loses_the_rest() -> None:
    """Would catch: sessions after a failed deserialization shown as arrived, though every open of
    /dev/liveupdate then returns EIO."""
    before = side(
        Session(1, "a", "outgoing", False, None, 1, [memfd(1, 10)]),
        Session(2, "b", "outgoing", False, None, 1, [memfd(2, 10)]),
        Session(3, "c", "outgoing", False, None, 0, []),
    )
    after = side(
        Session(4, "a", "incoming", False, False, 1, [memfd(1, 10)]),
        Session(5, "b", "incoming", False, False, 0, []),
        incoming_present=True,
        incoming_deserialized=True,
        deserialize_error=-22,
    )
    after.findings = [Finding("deserialize-failed", "error", "...", "b")]
    rows = {r.session: r for r in diff(before, after).rows}
    # Deserialized before the failure, and still unreachable: the kept
    # error makes every open of /dev/liveupdate return EIO (issue #20; this
    # test once expected "arrived", what the kernel never lets happen).
    assert rows["a"].state == "unreachable" and "EIO" in rows["a"].detail
    assert rows["b"].state == "lost" and "failed to deserialize (EINVAL)" in rows["b"].detail
    assert rows["c"].state == "lost" and "it stopped at 'b'" in rows["c"].detail


def test_saved_report_must_be_one(tmp_path: Path) -> None:
    """Would catch: malformed JSON or a report without its parts read as an empty before side."""
    for text, why in (("not json", "not JSON"), ('{"schema": "luo-inspect/1"}', "without")):
        p = tmp_path / "r.json"
        p.write_text(text)
        with pytest.raises(SavedReportError, match=why):
            load_report(str(p))


# -- what counts as lost, per the kernel (issue #20) --------------------------------


def test_second_update_losses_are_named(fresh_root: Path) -> None:
    """Boot 2 -> boot 3: the incoming files boot 2 never retrieved are lost
    at that kexec (boot 3's driver got ENOENT for them), so the diff exits
    1 and never says "nothing was lost".  Would catch: the diff looking at
    the outgoing sessions only (issue #20's false all-clear)."""
    before, after = (examples.load(n, fresh_root) for n in PAIRS["second"])
    d = diff(snapshot_of(before), snapshot_of(after))
    left = {(r.session, r.token) for r in d.rows if r.detail.startswith("left behind")}
    assert left == {("vm-alpha", 0x102), ("vm-beta", 0x100), ("vm-beta", 0x200)}
    nk = before.manifest["expected"]["next_kernel"]
    assert ["vm-alpha", 0x102, "ENOENT"] in nk["retrieve"]
    assert nk["retrieve_session"]["vm-beta"] == "ENOENT"
    assert d.lost
    code, out = run(
        "diff",
        str(before.core),
        str(after.core),
        "--before-symbols",
        str(before.debug[0]),
        "--after-symbols",
        str(after.debug[0]),
    )
    assert code == 1 and "nothing was lost" not in out


def test_resize_after_retrieve_is_not_a_loss(fresh_root: Path) -> None:
    """Boot 1 -> boot 2: the guest grew vm-alpha 0x101 after retrieving it
    (its log: 12288 bytes preserved, resized to 16384).  A retrieved file is
    the application's: shown, not a truncation, exit 0."""
    before, after = (examples.load(n, fresh_root) for n in PAIRS["second-first"])
    assert resized(after.manifest) == {("vm-alpha", 0x101): 16384}
    d = diff(snapshot_of(before), snapshot_of(after))
    (row,) = [r for r in d.rows if (r.session, r.token) == ("vm-alpha", 0x101)]
    assert (row.state, row.before_size, row.after_size) == ("retrieved", 12288, 16384)
    assert "resized by the application since the retrieve" in row.detail
    assert not row.truncated and not d.lost


def test_failed_deserialization_is_unreachable() -> None:
    """frozen -> deserialize-failed: the next kernel's deserialization
    stopped (its log: "Failed to deserialize files for session", every open
    EIO); sessions deserialized before it can never be retrieved, so none
    reads "arrived, waiting"."""
    after = examples.load("deserialize-failed")
    assert after.manifest["expected"]["deserialize_failed"]["session"]
    d = diff(snapshot_of(examples.load("frozen")), snapshot_of(after))
    states = {r.state for r in d.rows}
    assert "arrived" not in states and "unreachable" in states and d.lost


def test_unrelated_sides_are_called_out() -> None:
    """doomed-frozen (crowd-NN sessions) against incoming (vm-* sessions):
    not two sides of one handover; said on top, exit 1."""
    code, out = run("diff", "example:doomed-frozen", "example:incoming")
    assert code == 1
    body = out.split("Across the kexec", 1)[0]
    assert "NOT ONE HANDOVER: these are not two sides of one handover" in body


def test_redacted_side_is_refused(tmp_path: Path) -> None:
    """A report saved with --redact has placeholder names: diffing it gave
    a false "nothing was lost".  Refused in one line, exit 2, marked in
    the report's own metadata and, for reports without the mark, told by
    its placeholders."""
    saved = tmp_path / "before.json"
    code, out = run("--example", "journey-after", "--redact", "--format", "json", "report")
    doc = json.loads(out)
    assert doc["tool"]["redacted"] is True
    saved.write_text(out)
    code, out = run("diff", str(saved), "example:journey-after")
    assert code == 2 and len(out.strip().splitlines()) == 1
    assert "saved with --redact" in out and "diff --redact" in out
    del doc["tool"]["redacted"]
    saved.write_text(json.dumps(doc))
    code, out = run("diff", str(saved), "example:journey-after")
    assert code == 2 and "saved with --redact" in out


def test_optional_field_dropped_reads_as_unknown(tmp_path: Path) -> None:
    """A report from another writer without explained_refs (or refcount,
    holders, memfd) is read, those as unknown: the same rows as the full
    report, never "internal error: KeyError"."""
    doc = json.loads(SAVED_BEFORE.read_text())
    for s in doc["sessions"]:
        for f in s["files"]:
            for key in ("explained_refs", "refcount", "holders", "memfd", "frozen"):
                f.pop(key, None)
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(doc))
    full = diff(load_report(str(SAVED_BEFORE)), snapshot_of(examples.load("journey-after")))
    part = diff(load_report(str(partial)), snapshot_of(examples.load("journey-after")))
    assert [(r.session, r.token, r.state) for r in part.rows] == [
        (r.session, r.token, r.state) for r in full.rows
    ]
    assert all(
        f.explained_refs is None for s in load_report(str(partial)).sessions for f in s.files
    )
    del doc["sessions"][0]["name"]
    partial.write_text(json.dumps(doc))
    code, out = run("diff", str(partial), "example:journey-after")
    assert code == 2 and "without 'name'" in out and len(out.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "pair", [("second-before", "second-after"), ("second-pending-before", "second-pending-after")]
)
def test_diff_and_preflight_agree_on_what_a_second_update_loses(
    pair: tuple[str, str], fresh_root: Path
) -> None:
    """Would catch: item 8 of issue #28: diff and preflight naming different (session, token)
    pairs as lost at a host's second update: the files a middle kernel never retrieved, never
    deserialized (it never opened /dev/liveupdate: second-pending) or retrieved and could not
    preserve again.  Oracle: boot 3, from its guest log: none of them is among what arrived
    there, and every one it asked for failed."""
    from luo_drgn.diff import LOSSES
    from luo_drgn.preflight import preflight

    before_ex, after_ex = (examples.load(n, fresh_root) for n in pair)
    before, after = snapshot_of(before_ex), snapshot_of(after_ex)
    said = {(f.session, f.token) for f in preflight(before).losses if f.severity != "info"}
    shown = {(r.session, r.token) for r in diff(before, after).rows if r.state in LOSSES}
    assert said == shown and said
    arrived = {
        (s["name"], f["token"])
        for s in after_ex.manifest["expected"]["sessions"]
        if s["direction"] == "incoming"
        for f in s["files"]
    }
    assert not said & arrived
    boot3 = before_ex.manifest["expected"]["next_kernel"]
    ok_sessions = {n for n, r in boot3["retrieve_session"].items() if r == "OK"}
    for session, token, result in boot3["retrieve"]:
        if (session, token) in said:
            assert result != "OK" or session not in ok_sessions, (session, token)
