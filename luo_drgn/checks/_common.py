# SPDX-License-Identifier: LGPL-2.1-or-later
"""What every check shares: the notes list a check may add to, its type, and
how a finding names a session and a file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Callable

from ..model import Finding, PreservedFile, Session, Snapshot

Notes = list[str]


Check = Callable[[Snapshot, Notes], Iterable[Finding]]


def _where(s: Session, f: PreservedFile | None = None) -> str:
    text = f"{s.direction} session {s.name!r}"
    if f is not None:
        text += f" token {f.token:#x} (luo_file {f.address:#x})"
    return text
