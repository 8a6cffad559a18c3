# SPDX-License-Identifier: LGPL-2.1-or-later
"""Live mode: luo-inspect inside a LUO guest, against its own /proc/kcore.

The guest runs the project's kernel with the host's root shared read-only
over 9p, so the installed luo-inspect runs there as it would on a host.  The
JSON it prints is compared with the ground truth the scenario driver logged,
before the kexec and after the live update; a second guest keeps preserving
and closing files while luo-inspect walks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.fixtures import require_qemu
from tests.support.plain import expected_holder_keys
from vmcores import live, manifest

INSPECT_TIMEOUT = 300  # seconds, per luo-inspect run inside the guest (TCG)


def guest_run(scenario: str, tags: list[str], **kw: Any) -> live.LiveRun:
    require_qemu("the live-mode tests")
    run = live.run(scenario, inspect_timeout=INSPECT_TIMEOUT, **kw)
    assert sorted(run.inspections) == tags, "\n".join(run.console[-40:])
    return run


@pytest.fixture(scope="module")
def live_run() -> live.LiveRun:
    return guest_run("live", ["diff", "phase1", "phase2"])


@pytest.fixture(scope="module")
def churn_run() -> live.LiveRun:
    return guest_run("churn", ["churn-1", "churn-2"], churn_runs=2)


def console_before(run: live.LiveRun, tag: str) -> list[str]:
    return run.console[
        : run.console.index(
            next(line for line in run.console if line.startswith(f"@@LIVE-BEGIN {tag} "))
        )
    ]


def holder_keys(holders: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Holders of the JSON report, keyed like the manifest's."""
    return expected_holder_keys(
        [{**x, "vma": int(x["vma"], 16)} if "vma" in x else x for x in holders]
    )


def assert_matches_ground_truth(doc: dict[str, Any], expected: dict[str, Any]) -> None:
    assert doc["target"]["kind"] == "live" and doc["target"]["path"] == "/proc/kcore"
    assert doc["target"]["kernel_release"] == "7.2.13" and doc["target"]["layout"] == "7.2"
    assert doc["luo"]["state"] == "enabled"
    assert doc["luo"]["liveupdate_num"] == expected["liveupdate_num"]
    assert doc["errors"] == []
    assert [(s["direction"], s["name"]) for s in doc["sessions"]] == [
        (s["direction"], s["name"]) for s in expected["sessions"]
    ]
    for got, want in zip(doc["sessions"], expected["sessions"]):
        assert got["retrieved"] == want["retrieved"]
        assert got["file_count"] == want["file_count"]
        assert holder_keys(got["holders"]) == expected_holder_keys(want["holders"])
        assert [f["token"] for f in got["files"]] == [f["token"] for f in want["files"]]
        for f, w in zip(got["files"], want["files"]):
            assert f["retrieve_status"] == w["retrieve_status"]
            assert f["refcount"] == w["refcount"]
            assert holder_keys(f["holders"]) == expected_holder_keys(w["holders"])
    # The only warnings: each retrieved, unfinished session with files its
    # guest never retrieved, which finishing it now would discard.
    discarding = {
        s["name"]
        for s in expected["sessions"]
        if s["direction"] == "incoming"
        and s["retrieved"]
        and not s["finished"]
        and any(f["retrieve_status"] == 0 for f in s["files"])
    }
    serious = [f for f in doc["findings"] if f["severity"] != "info"]
    assert {(f["code"], f["session"]) for f in serious} == {
        ("finish-discards", name) for name in discarding
    }


def test_before_the_live_update(live_run: live.LiveRun) -> None:
    """Would catch: live mode disagreeing with the guest's own log before the kexec."""
    rc, out, err = live_run.inspections["phase1"]
    assert rc == 0, err
    expected = manifest.expected_state(console_before(live_run, "phase1"), frozen=False)
    assert expected["phase"] == 1 and len(expected["sessions"]) == 4
    doc = json.loads(out)
    assert_matches_ground_truth(doc, expected)
    assert doc["luo"]["outgoing"]["frozen"] is False


def test_after_the_live_update(live_run: live.LiveRun) -> None:
    """Would catch: live mode disagreeing with the guest's log after the kexec, or misstating the
    incoming data."""
    rc, out, err = live_run.inspections["phase2"]
    assert rc == 0, err
    expected = manifest.expected_state(console_before(live_run, "phase2"), frozen=False)
    assert expected["phase"] == 2 and expected["liveupdate_num"] == 1
    doc = json.loads(out)
    assert_matches_ground_truth(doc, expected)
    assert doc["luo"]["incoming"] == {
        "present": True,
        "deserialized": True,
        "deserialize_error": None,  # deserialization succeeded
        "session_count": 4,
    }
    codes = {(f["code"], f["session"], f["token"]) for f in doc["findings"]}
    assert ("not-retrieved", "vm-alpha", 0x102) in codes


def test_luo_command_and_helpers_in_live_drgn(live_run: live.LiveRun) -> None:
    """drgn attached to the live kernel: %luo (loaded through the plugin entry
    point) and the helpers read the same sessions."""
    expected = manifest.expected_state(console_before(live_run, "phase1"), frozen=False)
    luo = live_run.marked("@@DRGN-LUO")
    assert luo["kind"] == "live"
    assert luo["sessions"] == [
        [s["direction"], s["name"], [f["token"] for f in s["files"]]] for s in expected["sessions"]
    ]
    assert live_run.marked("@@DRGN-HELPERS") == [s["name"] for s in expected["sessions"]]


def test_walks_survive_concurrent_change(churn_run: live.LiveRun) -> None:
    """Would catch: a traceback, hang or foreign session when the kernel changes mid-walk."""
    for tag, (rc, out, err) in churn_run.inspections.items():
        assert rc in (0, 1), f"{tag}: exit {rc} (124 is a timeout): {err}"
        assert "Traceback" not in err
        doc = json.loads(out)
        assert doc["target"]["kind"] == "live"
        # Whatever it met, each run produced a report of the churn sessions.
        assert all(s["name"].startswith("churn-") or s["name"] == "" for s in doc["sessions"])


# -- preflight in the guest, and what the guest's own kexec then does ---------------


@pytest.fixture(scope="module")
def crowded_run() -> live.LiveRun:
    return guest_run("live-crowded", ["phase1", "phase2"], command="preflight")


@pytest.fixture(scope="module")
def doomed_run() -> live.LiveRun:
    # The next kernel panics: there is no phase 2 to inspect.
    return guest_run("live-doomed", ["phase1"], command="preflight")


def after_inspection(run: live.LiveRun, tag: str) -> list[str]:
    """The console once luo-inspect's run ``tag`` ended: the live update."""
    return run.console[run.console.index(f"@@LIVE-END {tag}") :]


def test_preflight_passes_and_the_live_update_works(crowded_run: live.LiveRun) -> None:
    """Would catch: preflight refusing a live state whose kexec the next kernel then accepted."""
    rc, out, err = crowded_run.inspections["phase1"]
    doc = json.loads(out)
    assert rc == 0, err
    assert doc["target"]["kind"] == "live" and doc["preflight"]["accepted"] is True
    assert doc["preflight"]["sessions"] == 50 and doc["findings"] == []
    # What the guest's kexec then did: the next kernel took the handover.
    after = manifest.next_kernel(after_inspection(crowded_run, "phase1"))
    assert after["panicked"] is None and after["open_luo"] == ["OK"]
    assert after["retrieve_session"] == {"crowd-00": "OK", "crowd-01": "OK"}


def test_preflight_fails_and_the_next_kernel_panics(doomed_run: live.LiveRun) -> None:
    """Would catch: preflight accepting a live state whose next kernel then panicked at boot."""
    rc, out, err = doomed_run.inspections["phase1"]
    doc = json.loads(out)
    assert rc == 1, err
    assert doc["preflight"]["accepted"] is False and doc["preflight"]["sessions"] == 51
    assert [f["code"] for f in doc["findings"]] == ["next-kernel-panic"]
    # What the guest's kexec then did: the next kernel panicked at boot, as
    # the finding said it would.
    after = manifest.next_kernel(after_inspection(doomed_run, "phase1"))
    assert after["panicked"] == (
        "The incoming tree failed to initialize properly [-22], disabling live update"
    )
    assert "luo: Block contains invalid entry count: 0" in after["luo_messages"]
    assert f'"{after["panicked"]}"' in doc["findings"][0]["message"]


def test_diff_saved_report_against_the_live_kernel(live_run: live.LiveRun) -> None:
    """luo-inspect diff BEFORE live in the kernel the update booted: BEFORE
    is phase 1's saved report (kept on a share across the kexec).  Every
    sent file's row tells the guest logs' story (tests/real/test_diff.py's
    story(), from the driver's log on both sides), nothing was lost, exit
    0.  Would catch: the live side read as a vmcore, a saved side misread."""
    from importlib import resources

    import jsonschema

    from tests.support.journey import story

    rc, out, err = live_run.inspections["diff"]
    assert rc == 0, err
    doc = json.loads(out)
    schema = json.loads(
        resources.files("luo_drgn").joinpath("luo-inspect-diff-1.schema.json").read_text()
    )
    jsonschema.validate(doc, schema)
    assert doc["after"]["kind"] == "live" and doc["before"]["kind"] == "saved live"
    before = manifest.expected_state(console_before(live_run, "phase1"), frozen=False)
    after = manifest.expected_state(console_before(live_run, "phase2"), frozen=False)
    want = story(before, after)
    assert {(r["session"], r["token"]): r["state"] for r in doc["rows"]} == want
    assert doc["lost"] is False and "lost" not in want.values()
