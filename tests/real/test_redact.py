# SPDX-License-Identifier: LGPL-2.1-or-later
"""--redact: a report safe to attach to a public tracker.

For every fixture, the names the guest chose (session names, memfd names,
process names: taken from its own log, not from the report) appear nowhere
in the redacted report, in any format; what a triager needs stays.
"""

from __future__ import annotations

import json
import re
from typing import Any

from luo_drgn.model import Snapshot
from luo_drgn.report import render
from tests.support.fixtures import only
from vmcores import manifest as guest


def guest_names(m: dict[str, Any]) -> set[str]:
    """What the guest named: sessions (refused ones too), the memfds it
    preserved (one it never handed to LUO, named "refused", cannot reach a
    report, and is an English word), and its processes (the driver runs as
    /init)."""
    names = {"init"}
    memfds: dict[tuple[int, int], str] = {}
    for ev in guest.guest_events(m["guest_log"] + m.get("after_log", [])):
        if ev["op"] in ("create_session", "retrieve_session", "preserve", "retrieve"):
            names.add(ev["session"])
        if ev["op"] == "memfd":
            memfds[(ev["pid"], ev["fd"])] = ev["name"]
        elif ev["op"] == "preserve" and ev["result"] == "OK":
            names.add(memfds[(ev["pid"], ev["fd"])])
    return names


def has_names(name: str) -> bool:
    return name not in ("disabled", "no-luo")


@only(has_names)
def test_redacted_report_has_no_user_names(snapshot: Snapshot, manifest: dict[str, Any]) -> None:
    """Would catch: a session, memfd or process name the guest chose left in a redacted report, or
    kept facts dropped."""
    names = guest_names(manifest)
    word = re.compile(
        "|".join(rf"(?<![\w.-]){re.escape(n)}(?![\w-])" for n in sorted(names, key=len)[::-1])
    )
    for fmt in ("text", "json", "markdown"):
        out = render(snapshot, "report", fmt, redact=True)
        assert not word.search(out), (fmt, word.search(out))
    doc = json.loads(render(snapshot, "report", "json", redact=True))
    plain = json.loads(render(snapshot, "report", "json"))
    # Kept: tokens, counts, states, the release, the handlers' compatibles.
    assert doc["target"]["kernel_release"] == plain["target"]["kernel_release"]
    assert doc["target"]["layout"] == plain["target"]["layout"] == "7.2"
    assert [h["compatible"] for h in doc["handlers"]] == [
        h["compatible"] for h in plain["handlers"]
    ]
    assert doc["luo"]["state"] == plain["luo"]["state"]
    assert [
        (s["direction"], s["file_count"], [f["token"] for f in s["files"]]) for s in doc["sessions"]
    ] == [
        (s["direction"], s["file_count"], [f["token"] for f in s["files"]])
        for s in plain["sessions"]
    ]
    # The same name gets the same placeholder throughout.
    by_name = {}
    for red, s in zip(doc["sessions"], plain["sessions"]):
        assert by_name.setdefault(s["name"], red["name"]) == red["name"]
    for f in doc["findings"]:
        if f["session"] is not None:
            assert f["session"].startswith("<session-")
