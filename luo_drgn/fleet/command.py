# SPDX-License-Identifier: LGPL-2.1-or-later
"""``luo-inspect scan``: targets found, records written as JSON Lines, the
summary after them; the click command in :mod:`luo_drgn.cli` only parses."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from typing import IO, Any

from .pool import SchedulerError, default_jobs, default_memory_mb, scan
from .summary import render_summary, summarize
from .targets import TargetKindError, discover

__all__ = ("ScanError", "scan_command")


class ScanError(Exception):
    """The scan cannot start (no such target, no scheduler); one line."""


def _progress(stream: IO[str]) -> Any:
    """A progress line on a terminal, none in a pipe."""
    if not stream.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\r\033[K" if done == total else ""
        stream.write(f"\rluo-inspect scan: {done}/{total} targets\033[K{end}")
        stream.flush()

    return show


def scan_command(
    specs: Sequence[str],
    command: str,
    *,
    symbols: Sequence[str] = (),
    output: str | None = None,
    summary_fmt: str = "text",
    jobs: int | None = None,
    timeout: float | None = None,
    memory_mb: int | None = None,
    scratch: str | None = None,
    scheduler: str | None = None,
    verbose: bool = False,
) -> int:
    """Scan ``specs``; return the worst exit status of the targets.

    :raises ScanError: when the scan cannot start
    """
    try:
        targets = discover(specs)
    except TargetKindError as e:
        raise ScanError(str(e)) from None
    workers = jobs or default_jobs()
    with ExitStack() as stack:
        if scratch is None:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="luo-scan-"))
        job_list = [
            {
                "target": t,
                "command": command,
                "symbols": list(symbols),
                "scratch": scratch,
                "verbose": verbose,
            }
            for t in targets
        ]
        out: IO[str] = stack.enter_context(open(output, "w")) if output else sys.stdout
        records = []
        try:
            for rec in scan(
                job_list,
                workers=workers,
                timeout=timeout,
                memory_mb=memory_mb or default_memory_mb(workers),
                scheduler=scheduler,
                progress=_progress(sys.stderr),
            ):
                out.write(json.dumps(rec) + "\n")
                out.flush()
                records.append(rec)
        except SchedulerError as e:
            raise ScanError(str(e)) from None
    summary = summarize(records, command)
    if summary_fmt != "none":
        (sys.stdout if output else sys.stderr).write(render_summary(summary, summary_fmt))
    return int(summary["exit_status"])
