# SPDX-License-Identifier: LGPL-2.1-or-later
"""Preflight's verdict: whether the next kernel will accept the handover,
from the findings that decide it (:data:`luo_drgn.findings.DECIDING_CODES`),
and what this kexec loses of what this kernel received.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .findings import DECIDING_CODES, ERROR, INFO, LOSING_CODES
from .model import Finding, Snapshot
from .restore import left_behind


def preflight_findings(snap: Snapshot) -> list[Finding]:
    """
    The findings that decide whether the next kernel will accept the
    handover: handover verdicts and errors of the outgoing side that the
    freeze or the restore acts on (:data:`luo_drgn.findings.DECIDING_CODES`).
    A finding about an incoming session is left out: the handover is made
    of outgoing ones.
    """
    return [
        f
        for f in snap.findings
        if f.code in DECIDING_CODES
        and f.direction != "incoming"
        # A disabled or absent LUO hands nothing over: that is the verdict.
        and (f.severity == ERROR or f.code in ("luo-disabled", "luo-absent"))
    ]


@dataclass
class Preflight:
    """Preflight's verdict: whether the next kernel will accept the
    handover, the findings that decide it, what this kexec loses of what
    this kernel received (:func:`luo_drgn.restore.left_behind`), and the
    other errors, which are shown apart and decide nothing."""

    accepted: bool
    findings: list[Finding]
    other_errors: list[Finding]
    losses: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> int:
        """Preflight's exit status: 0 accepted with nothing lost, 1 the
        handover fails or this kexec loses data."""
        return 0 if self.accepted and not any(f.severity != INFO for f in self.losses) else 1

    @property
    def shown(self) -> list[Finding]:
        """The findings preflight's report lists: those that decide, then
        what this kexec loses (the other errors are listed apart)."""
        return self.findings + self.losses


def preflight(snap: Snapshot) -> Preflight:
    """The verdict of ``preflight`` on an inspected snapshot."""
    deciding = preflight_findings(snap)
    taken = {id(f) for f in deciding}
    others = [f for f in snap.findings if f.severity == ERROR and id(f) not in taken]
    losses = (
        [f for f in snap.findings if f.code in LOSING_CODES] + list(left_behind(snap))
        if snap.luo.state == "enabled"
        else []
    )
    return Preflight(snap.luo.state == "enabled" and not deciding, deciding, others, losses)
