# SPDX-License-Identifier: LGPL-2.1-or-later
"""The ``luo-inspect-scan/1`` record: one line of JSON per target.

A record says which target and host it is, the kernel release and build ID,
the command and what it answered (verdict and exit status), the findings
counted per code and severity, the walk errors, and the seconds it took.  A
target that cannot be inspected gets the same record with ``exit_status`` 2,
verdict ``cannot-inspect`` and the one line ``luo-inspect`` would print in
``error``.  The schema is ``luo_drgn/luo-inspect-scan-1.schema.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..findings import SEVERITIES
from ..request import EXIT_CANNOT_INSPECT

__all__ = (
    "RECORD_SCHEMA",
    "SUMMARY_SCHEMA",
    "TIMING_FIELDS",
    "error_record",
    "finding_counts",
    "record",
    "verdict_name",
)

RECORD_SCHEMA = "luo-inspect-scan/1"
SUMMARY_SCHEMA = "luo-inspect-scan-summary/1"
# Fields that differ between two scans of the same targets.
TIMING_FIELDS = ("seconds",)


def verdict_name(command: str, status: int, accepted: bool | None = None) -> str:
    """The class a target falls in: for preflight ``accept``,
    ``accept-losing-data`` (the next kernel accepts, this kexec loses what
    this kernel received) or ``reject``; otherwise ``no-errors`` or
    ``errors``; ``cannot-inspect`` for exit status 2."""
    if status == 2:
        return "cannot-inspect"
    if command == "preflight":
        if not accepted:
            return "reject"
        return "accept" if status == 0 else "accept-losing-data"
    return "no-errors" if status == 0 else "errors"


def finding_counts(findings: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """``(code, severity)`` pairs counted, most severe first, then by code."""
    counts = Counter(findings)
    rank = {severity: i for i, severity in enumerate(SEVERITIES)}
    return [
        {"code": code, "severity": severity, "count": n}
        for (code, severity), n in sorted(
            counts.items(), key=lambda item: (rank.get(item[0][1], len(rank)), item[0][0])
        )
    ]


def record(
    target: str,
    kind: str | None,
    command: str,
    *,
    status: int,
    verdict: str,
    host: str | None = None,
    kernel_release: str | None = None,
    build_id: str | None = None,
    findings: list[dict[str, Any]] | None = None,
    walk_errors: list[dict[str, str]] | None = None,
    error: str | None = None,
    seconds: float = 0.0,
) -> dict[str, Any]:
    """One record, its keys always in the schema's order."""
    return {
        "schema": RECORD_SCHEMA,
        "target": target,
        "kind": kind,
        "host": host,
        "kernel_release": kernel_release,
        "build_id": build_id,
        "command": command,
        "verdict": verdict,
        "exit_status": status,
        "findings": findings or [],
        "walk_errors": walk_errors or [],
        "error": error,
        "seconds": round(seconds, 3),
    }


def error_record(
    target: str, kind: str | None, command: str, error: str, seconds: float = 0.0
) -> dict[str, Any]:
    """The record of a target that could not be inspected (exit status 2)."""
    return record(
        target,
        kind,
        command,
        status=EXIT_CANNOT_INSPECT,
        verdict="cannot-inspect",
        error=error,
        seconds=seconds,
    )
