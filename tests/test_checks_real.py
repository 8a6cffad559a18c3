# SPDX-License-Identifier: LGPL-2.1-or-later
"""The checks on the real fixtures: each fault fixture yields exactly its
expected findings, and healthy ones yield no error and no warning."""

from __future__ import annotations

from typing import Any

from conftest import only
from test_vmcores import has_sessions, is_fault

from luo_drgn.model import Snapshot


def serious(snapshot: Snapshot) -> set[tuple[str, str, Any, Any]]:
    return {
        (f.code, f.severity, f.session, f.token)
        for f in snapshot.findings
        if f.severity in ("error", "warning")
    }


@only(is_fault)
def test_fault_yields_exactly_its_findings(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    want = {
        (f["code"], f["severity"], f["session"], f["token"])
        for f in expected["fault"]["expected_findings"]
    }
    assert serious(snapshot) == want


@only(lambda name: name == "fault-leaked-reference")
def test_leak_message_counts_unexplained(snapshot: Snapshot) -> None:
    (leak,) = [f for f in snapshot.findings if f.code == "leaked-file-reference"]
    assert "1 unexplained" in leak.message and "vm-beta" in leak.message
    assert "0x200" in leak.message


@only(lambda name: name == "fault-negative-retrieve")
def test_failed_retrieve_names_errno(snapshot: Snapshot) -> None:
    (failed,) = [f for f in snapshot.findings if f.code == "retrieve-failed"]
    assert "EIO" in failed.message


@only(lambda name: name == "fault-cyclic-list")
def test_cycle_is_reported_not_followed(snapshot: Snapshot) -> None:
    alpha = snapshot.session("vm-alpha")
    assert not alpha.files_complete
    assert [f.token for f in alpha.files] == [0x100, 0x101, 0x102]
    assert any("file count" in n and "vm-alpha" in n for n in snapshot.notes)


@only(has_sessions)
def test_healthy_fixture_is_clean(snapshot: Snapshot) -> None:
    assert serious(snapshot) == set()
    assert snapshot.errors == []


@only(lambda name: name == "incoming")
def test_restore_progress_is_visible(snapshot: Snapshot, expected: dict[str, Any]) -> None:
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
    info = {(f.code, f.session) for f in snapshot.findings}
    assert info == {("not-retrieved", s["name"]) for s in expected["sessions"]}


@only(lambda name: name in ("disabled", "no-luo"))
def test_disabled_or_absent_is_info(snapshot: Snapshot, expected: dict[str, Any]) -> None:
    codes = [(f.code, f.severity) for f in snapshot.findings]
    want = "luo-disabled" if expected["luo_state"] == "disabled" else "luo-absent"
    assert codes == [(want, "info")]
