# SPDX-License-Identifier: LGPL-2.1-or-later
"""The scan's records and summary, on records written by hand: classes,
their order, the hosts in each, and the worst exit status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from luo_drgn.fleet.record import error_record, finding_counts, record, verdict_name
from luo_drgn.fleet.summary import render_summary, summarize

SCHEMAS = Path(__file__).resolve().parents[2] / "luo_drgn"
RECORD = json.loads((SCHEMAS / "luo-inspect-scan-1.schema.json").read_text())
SUMMARY = json.loads((SCHEMAS / "luo-inspect-scan-summary-1.schema.json").read_text())


def _rec(
    target: str, host: str | None, status: int, codes: list[tuple[str, str]]
) -> dict[str, Any]:
    return record(
        target,
        "vmcore",
        "check",
        status=status,
        verdict=verdict_name("check", status),
        host=host,
        findings=finding_counts(codes),
    )


FLEET = [
    _rec("a", "hv-a", 0, []),
    _rec("b", "hv-b", 0, [("not-retrieved", "info")] * 3),
    _rec("c", "hv-c", 1, [("duplicate-token", "error"), ("not-retrieved", "info")]),
    _rec("d", "hv-b", 0, [("not-retrieved", "info")]),  # a second dump of hv-b
    _rec("e", "(none)", 0, []),
    error_record("f", None, "check", "f: not a kernel vmcore"),
]


def test_verdict_names() -> None:
    """Would catch: preflight's accept with losses (exit 1) classed as a reject or as an accept,
    or exit 2 given a verdict of its command."""
    assert verdict_name("preflight", 0, True) == "accept"
    assert verdict_name("preflight", 1, True) == "accept-losing-data"
    assert verdict_name("preflight", 1, False) == "reject"
    assert verdict_name("check", 0) == "no-errors"
    assert verdict_name("report", 1) == "errors"
    assert verdict_name("preflight", 2, None) == "cannot-inspect"


def test_finding_counts_most_severe_first() -> None:
    """Would catch: findings counted per occurrence instead of per (code, severity), or listed
    in an order that changes between runs."""
    counts = finding_counts(
        [("not-retrieved", "info"), ("lost-at-kexec", "warning"), ("not-retrieved", "info")]
        + [("duplicate-token", "error")]
    )
    assert counts == [
        {"code": "duplicate-token", "severity": "error", "count": 1},
        {"code": "lost-at-kexec", "severity": "warning", "count": 1},
        {"code": "not-retrieved", "severity": "info", "count": 2},
    ]


def test_records_follow_the_schema() -> None:
    """Would catch: a record field the published schema does not allow, or an error record
    missing one."""
    for rec in FLEET:
        jsonschema.validate(rec, RECORD)
    assert list(FLEET[0]) == RECORD["required"]


def test_summary_classes_hosts_and_order() -> None:
    """Would catch: a class counted by dumps where it should name hosts, classes not ordered by
    the hosts they hit, a host without a name shown as '(none)' (every unnamed host would merge),
    or a scan's exit status other than its worst target's."""
    summary = summarize(FLEET, "check")
    jsonschema.validate(summary, SUMMARY)
    assert summary["targets"] == 6 and summary["exit_status"] == 2
    assert summary["verdicts"] == [
        {"verdict": "no-errors", "targets": 4, "hosts": ["e", "hv-a", "hv-b"]},
        {"verdict": "cannot-inspect", "targets": 1, "hosts": ["f"]},
        {"verdict": "errors", "targets": 1, "hosts": ["hv-c"]},
    ]
    assert summary["findings"] == [
        {"code": "not-retrieved", "severity": "info", "targets": 3, "hosts": ["hv-b", "hv-c"]},
        {"code": "duplicate-token", "severity": "error", "targets": 1, "hosts": ["hv-c"]},
    ]
    assert summary["cannot_inspect"] == [{"target": "f", "error": "f: not a kernel vmcore"}]
    assert summarize([], "check")["exit_status"] == 0


def test_summary_text_and_markdown() -> None:
    """Would catch: a summary format that drops a class or its hosts."""
    summary = summarize(FLEET, "check")
    text = render_summary(summary, "text")
    assert text.splitlines()[0] == "luo-inspect scan: 6 targets, command check, exit status 2"
    assert "not-retrieved" in text and "hv-b, hv-c" in text and "f: not a kernel vmcore" in text
    markdown = render_summary(summary, "markdown")
    assert markdown.startswith("## luo-inspect scan: 6 targets")
    assert "| no-errors" in markdown
    assert json.loads(render_summary(summary, "json")) == summary
