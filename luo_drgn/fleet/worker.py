# SPDX-License-Identifier: LGPL-2.1-or-later
"""One target of a scan, inspected as ``luo-inspect COMMAND`` would, into a
record.

A vmcore or an example goes through the engine (:mod:`luo_drgn.engine`)
exactly as ``luo-inspect -c VMCORE -s DIR... COMMAND`` does, so its record
has that run's exit status and findings; a saved JSON document (what each
host writes with ``--format json -o FILE``) is relayed: the command, the
findings and the exit status it holds.

``python -m luo_drgn.fleet.worker`` reads a job (JSON) on stdin and writes
its record on stdout: the per-target process of a scan run by Dask.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any

from .. import engine
from ..engine import Source, failure
from ..findings import ERROR, INFO
from ..report.document import SCHEMA
from ..request import Request
from .record import error_record, finding_counts, record, verdict_name
from .targets import EXAMPLE_PREFIX, TargetKindError, opened

__all__ = ("Job", "inspect_job", "main")

# A job: {"target": str, "command": str, "symbols": [str], "scratch": str|None}
Job = dict[str, Any]


def inspect_job(job: Job) -> dict[str, Any]:
    """The record of one job; never raises (a target that cannot be
    inspected gets an error record, as luo-inspect would exit 2)."""
    started = time.monotonic()
    target, command = job["target"], job["command"]
    kind: str | None = None
    try:
        with opened(target, job.get("scratch")) as (kind, path):
            if kind == "saved":
                assert path is not None
                rec = _relay(target, command, path)
            else:
                source = (
                    Source(example=target[len(EXAMPLE_PREFIX) :])
                    if path is None
                    else Source(core=str(path), symbols=tuple(job.get("symbols") or ()))
                )
                rec = _inspect(target, kind, command, source)
    except MemoryError:
        rec = error_record(
            target, kind, command, "ran out of memory (the scan's --memory limit per target)"
        )
    except Exception as e:  # noqa: BLE001 - one target's bug must not end the scan
        failed = failure(e, (TargetKindError,))
        rec = error_record(target, kind, command, failed.line)
        if job.get("verbose") and failed.bug:
            traceback.print_exc()
    rec["seconds"] = round(time.monotonic() - started, 3)
    return rec


def _inspect(target: str, kind: str, command: str, source: Source) -> dict[str, Any]:
    request = Request(command)
    snap = engine.inspect_source(source, request)
    tgt = snap.target
    status, verdict = engine.decide(request, snap)
    shown = verdict.shown if verdict is not None else snap.findings
    return record(
        target,
        kind,
        command,
        status=status,
        verdict=verdict_name(command, status, verdict.accepted if verdict else None),
        host=tgt.hostname,
        kernel_release=tgt.kernel_release,
        build_id=tgt.build_id,
        findings=finding_counts((f.code, f.severity) for f in shown),
        walk_errors=[{"where": e.where, "message": e.message} for e in snap.errors],
    )


def _saved_command(doc: dict[str, Any]) -> str | None:
    """The command a document was written by: said in it since luo-drgn
    0.2; before, told by the parts only it writes (PARTS)."""
    if isinstance(doc.get("command"), str):
        return str(doc["command"])
    if "preflight" in doc:
        return "preflight"
    if "luo" in doc and "sessions" in doc:
        return "report"
    if "findings" in doc and "errors" in doc and "luo" not in doc:
        return "check"
    return None


def _saved_status(doc: dict[str, Any], command: str) -> int:
    """The exit status a document holds (said in it since luo-drgn 0.2;
    before, worked out from its findings as the engine does)."""
    if isinstance(doc.get("exit_status"), int):
        return int(doc["exit_status"])
    findings = doc.get("findings") or []
    if command == "preflight":
        # Its findings are the deciding ones, then the losses: once
        # accepted, only losses are left, and a loss above info fails.
        accepted = bool((doc.get("preflight") or {}).get("accepted"))
        return 0 if accepted and all(f.get("severity") == INFO for f in findings) else 1
    return 1 if any(f.get("severity") == ERROR for f in findings) else 0


def _relay(target: str, command: str, path: Any) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise TargetKindError(f"{target}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise TargetKindError(f"{target}: not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise TargetKindError(f"{target}: JSON, but not a {SCHEMA} document")
    saved = _saved_command(doc)
    if saved != command:
        raise TargetKindError(
            f"{target}: a document written by {saved or 'an unknown command'}, "
            f"not by {command}: scan it with --command {saved}"
            if saved
            else f"{target}: a document that holds no command's answer"
        )
    t = doc.get("target") or {}
    status = _saved_status(doc, command)
    accepted = (doc.get("preflight") or {}).get("accepted")
    return record(
        target,
        "saved",
        command,
        status=status,
        verdict=verdict_name(command, status, accepted),
        host=t.get("hostname"),
        kernel_release=t.get("kernel_release"),
        build_id=t.get("build_id"),
        findings=finding_counts(
            (str(f.get("code")), str(f.get("severity"))) for f in doc.get("findings") or []
        ),
        walk_errors=[
            {"where": str(e.get("where")), "message": str(e.get("message"))}
            for e in doc.get("errors") or []
        ],
    )


def main() -> int:
    """Read a job on stdin, write its record on stdout."""
    job = json.load(sys.stdin)
    json.dump(inspect_job(job), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
