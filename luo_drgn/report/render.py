# SPDX-License-Identifier: LGPL-2.1-or-later
"""One command's output for a snapshot, in the format asked for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Callable

from ..model import Snapshot, paused_gc
from ..preflight import Preflight
from .document import PARTS, TEXT_ONLY, document, finding_part, preflight_part, select
from .jsonstream import _in_pieces, _json_chunks
from .redact import Redactor
from .text import render_text


def render(
    snap: Snapshot,
    command: str,
    fmt: str = "text",
    *,
    redact: bool = False,
    session: str | None = None,
    style: Callable[[str, str], str] = lambda text, severity: text,
    preflight: Preflight | None = None,
    status: int | None = None,
) -> str:
    """
    One command's output for a snapshot: the part of the document that
    ``command`` shows, redacted if asked, in ``fmt`` (text, json or markdown).

    :param session: with ``files`` and ``sessions``, only this session
    :param style: colours a severity in text output (a terminal)
    """
    return "".join(
        render_chunks(
            snap,
            command,
            fmt,
            redact=redact,
            session=session,
            style=style,
            preflight=preflight,
            status=status,
        )
    )


def render_chunks(
    snap: Snapshot,
    command: str,
    fmt: str = "text",
    *,
    redact: bool = False,
    session: str | None = None,
    style: Callable[[str, str], str] = lambda text, severity: text,
    preflight: Preflight | None = None,
    status: int | None = None,
) -> Iterator[str]:
    """:func:`render`'s output in pieces, to be written as they come: a
    host's JSON report is tens of megabytes, made session by session.

    :param preflight: with ``preflight``, the verdict and the findings that
        decide it (:func:`luo_drgn.checks.preflight`: rendering decides
        nothing)
    :param status: the command's exit status, written into its JSON with
        the command's name, so that a saved document says what it answered
        (``luo-inspect scan`` relays it)
    """
    if command == "preflight" and preflight is None:
        raise ValueError("the preflight command renders a verdict: pass preflight=")
    with paused_gc():
        # JSON written once is made session by session; what is read twice
        # (the redactor, the text writers) gets lists.
        lazy = fmt == "json" and not redact
        doc = document(snap, sessions="sessions" in PARTS[command], lazy=lazy)
        if preflight is not None and command == "preflight":
            doc["preflight"] = preflight_part(snap, preflight)
            doc["findings"] = [finding_part(f) for f in preflight.shown]
            doc["preflight"]["other_errors"] = [finding_part(f) for f in preflight.other_errors]
        if redact:
            doc = Redactor().redact(doc)
        part = select(doc, command, session)
        if fmt == "json":
            if status is not None:
                part = {"schema": part["schema"], "command": command, "exit_status": status, **part}
            yield from _in_pieces(_json_chunks({k: v for k, v in part.items() if k != TEXT_ONLY}))
            yield "\n"
            return
        yield render_text(
            part,
            command,
            markdown=fmt == "markdown",
            style=style if fmt == "text" else (lambda text, severity: text),
        )
