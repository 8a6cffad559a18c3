# SPDX-License-Identifier: LGPL-2.1-or-later
"""One command's output (:mod:`luo_drgn.report.render`): the part of the
document a command shows, in each format, made piece by piece, on real
fixtures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from luo_drgn import engine
from luo_drgn.model import Snapshot
from luo_drgn.report.document import PARTS, TEXT_ONLY, document, select
from luo_drgn.report.render import render, render_chunks
from luo_drgn.request import Request

FIXTURES = ("outgoing", "incoming", "doomed")


def _snapshot(name: str) -> Snapshot:
    return engine.open_side(f"example:{name}")


@pytest.fixture(scope="module", params=FIXTURES)
def snap(request: pytest.FixtureRequest) -> Snapshot:
    return _snapshot(request.param)


@pytest.mark.parametrize("command", sorted(c for c in PARTS if c != "preflight"))
def test_json_is_the_commands_part_of_the_document(snap: Snapshot, command: str) -> None:
    """Would catch: the JSON written session by session (its sessions made as
    they are read) saying otherwise than the document made whole, a
    command's JSON carrying a part it does not show or missing one, or the
    text-only part leaking into JSON."""
    written = json.loads(render(snap, command, "json"))
    whole = select(document(snap), command)
    del whole[TEXT_ONLY]
    assert written == json.loads(json.dumps(whole))
    assert list(written) == ["schema", "tool", "target", *PARTS[command]]


def test_json_says_the_command_and_its_status_first(snap: Snapshot) -> None:
    """Would catch: a saved document that does not say what command made it
    and what it answered (``luo-inspect scan`` relays both), or says so
    after its bulk."""
    written = json.loads(render(snap, "check", "json", status=1))
    assert list(written)[:3] == ["schema", "command", "exit_status"]
    assert (written["command"], written["exit_status"]) == ("check", 1)


def test_the_pieces_are_the_output(snap: Snapshot) -> None:
    """Would catch: the streamed output (what the doors write) differing
    from the whole (what %luo returns), in any format, or a redacted report
    keeping a session name."""
    for fmt in ("text", "json", "markdown"):
        for redact in (False, True):
            whole = render(snap, "report", fmt, redact=redact)
            assert "".join(render_chunks(snap, "report", fmt, redact=redact)) == whole
            names = [s.name for s in snap.sessions]
            assert all(name in whole for name in names) != redact or not names


def test_one_session(snap: Snapshot) -> None:
    """Would catch: ``--session`` showing other sessions, or none."""
    for s in snap.sessions:
        shown = json.loads(render(snap, "files", "json", session=s.name))["sessions"]
        assert [x["name"] for x in shown] == [s.name] * sum(
            1 for x in snap.sessions if x.name == s.name
        )


def test_style_colours_text_only() -> None:
    """Would catch: a terminal's colours written into Markdown or JSON, or
    not given each finding's severity in text."""

    def style(text: str, severity: str) -> str:
        return f"<{severity}>{text}</>"

    snap = _snapshot("doomed")
    severities = {f.severity for f in snap.findings}
    assert "error" in severities
    text = render(snap, "check", "text", style=style)
    assert all(f"<{s}>" in text for s in severities)
    for fmt in ("markdown", "json"):
        assert "</>" not in render(snap, "check", fmt, style=style)


def test_preflight_renders_a_verdict_it_is_given() -> None:
    """Would catch: rendering deciding a verdict itself (two places that
    decide preflight's answer) instead of refusing to render without one."""
    snap = _snapshot("outgoing")
    with pytest.raises(ValueError, match="preflight="):
        render(snap, "preflight", "json")
    status, verdict = engine.decide(Request("preflight"), snap)
    assert verdict is not None
    written: dict[str, Any] = json.loads(render(snap, "preflight", "json", preflight=verdict))
    assert written["preflight"]["accepted"] == verdict.accepted
    assert written["preflight"]["exit_status"] == status
