# SPDX-License-Identifier: LGPL-2.1-or-later
"""A scan's summary: the targets per verdict and per finding code, with the
hosts in each class, the classes that hit the most hosts first; the scan's
exit status is the worst of its targets'."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tabulate import tabulate

from .record import SUMMARY_SCHEMA

__all__ = ("render_summary", "summarize")


def _who(rec: dict[str, Any]) -> str:
    """A host by its name; a target that told none (an error record, a dump
    of a host nobody named) by its own name."""
    host = rec.get("host")
    return str(host) if host and host != "(none)" else str(rec["target"])


def _classes(members: dict[Any, list[dict[str, Any]]]) -> list[tuple[Any, list[str], int]]:
    """(key, hosts, targets) of each class, most hosts first."""
    rows = []
    for key, recs in members.items():
        hosts = sorted({_who(r) for r in recs})
        rows.append((key, hosts, len(recs)))
    rows.sort(key=lambda row: (-len(row[1]), -row[2], str(row[0])))
    return rows


def summarize(records: Iterable[dict[str, Any]], command: str) -> dict[str, Any]:
    """The summary of a scan's records (schema ``luo-inspect-scan-summary/1``)."""
    recs = list(records)
    by_verdict: dict[str, list[dict[str, Any]]] = {}
    by_finding: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in recs:
        by_verdict.setdefault(rec["verdict"], []).append(rec)
        for f in rec["findings"]:
            by_finding.setdefault((f["code"], f["severity"]), []).append(rec)
    return {
        "schema": SUMMARY_SCHEMA,
        "command": command,
        "targets": len(recs),
        "exit_status": max((r["exit_status"] for r in recs), default=0),
        "verdicts": [
            {"verdict": key, "targets": n, "hosts": hosts} for key, hosts, n in _classes(by_verdict)
        ],
        "findings": [
            {"code": key[0], "severity": key[1], "targets": n, "hosts": hosts}
            for key, hosts, n in _classes(by_finding)
        ],
        "cannot_inspect": [
            {"target": r["target"], "error": r["error"]} for r in recs if r["exit_status"] == 2
        ],
    }


def render_summary(summary: dict[str, Any], fmt: str) -> str:
    """The summary as text, Markdown or JSON."""
    if fmt == "json":
        return json.dumps(summary, indent=2) + "\n"
    table = "github" if fmt == "markdown" else "simple"
    heading = "## " if fmt == "markdown" else ""
    out = [
        f"{heading}luo-inspect scan: {summary['targets']} targets, command "
        f"{summary['command']}, exit status {summary['exit_status']}",
        "",
    ]
    verdicts = [[v["verdict"], v["targets"], ", ".join(v["hosts"])] for v in summary["verdicts"]]
    out += [tabulate(verdicts, ["verdict", "targets", "hosts"], tablefmt=table), ""]
    if summary["findings"]:
        findings = [
            [f["code"], f["severity"], f["targets"], ", ".join(f["hosts"])]
            for f in summary["findings"]
        ]
        out += [
            tabulate(findings, ["finding", "severity", "targets", "hosts"], tablefmt=table),
            "",
        ]
    else:
        out += ["no findings", ""]
    if summary["cannot_inspect"]:
        errors = [[e["target"], e["error"]] for e in summary["cannot_inspect"]]
        out += [tabulate(errors, ["cannot inspect", "why"], tablefmt=table), ""]
    return "\n".join(out)
