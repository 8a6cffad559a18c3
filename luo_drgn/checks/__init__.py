# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks: pure functions from a snapshot to findings.

Each check looks at one kind of trouble and returns findings with a stable
``code``.  Where a check cannot run (a walk stopped early, a layout without
the structure), it says so in the returned notes instead of guessing.
Checks never change the snapshot (:mod:`luo_drgn.derive` works out what
they read); codes and severities come from :mod:`luo_drgn.findings`.  Each
sits beside the kernel code it mirrors, cited, in the module of its
subject: LUO's state (:mod:`~luo_drgn.checks.state`), its structures
(:mod:`~luo_drgn.checks.structure`), each preserved file's life
(:mod:`~luo_drgn.checks.files`), FLBs (:mod:`~luo_drgn.checks.flbs`); the
restore path's verdicts are :mod:`luo_drgn.restore`, preflight's
:mod:`luo_drgn.preflight`.
"""

from __future__ import annotations

from .. import restore
from ..findings import ERROR, SEVERITIES
from ..model import Finding, Snapshot
from ._common import Check, Notes
from .files import (
    check_finished,
    check_not_in_dump,
    check_preserve_in_progress,
    check_references,
    check_retrieve,
)
from .flbs import check_flbs
from .state import (
    check_deserialize_failed,
    check_freeze,
    check_luo_state,
    check_walk_errors,
)
from .structure import (
    check_counts,
    check_duplicate_session_names,
    check_duplicate_tokens,
    check_handlers,
    check_invariants,
    check_preserved_index,
    check_serialization,
)

__all__ = ("CHECKS", "has_errors", "run_checks")


CHECKS: tuple[Check, ...] = (
    check_luo_state,
    check_deserialize_failed,
    check_freeze,
    check_invariants,
    check_duplicate_tokens,
    check_duplicate_session_names,
    check_counts,
    check_references,
    check_retrieve,
    check_finished,
    check_serialization,
    check_preserved_index,
    check_preserve_in_progress,
    check_handlers,
    check_flbs,
    restore.check_handover,
    check_walk_errors,
    check_not_in_dump,
)


def run_checks(snap: Snapshot) -> tuple[list[Finding], Notes]:
    """Run every check; return the findings (errors first) and the notes."""
    notes: Notes = []
    findings = [f for check in CHECKS for f in check(snap, notes)]
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    return findings, notes


def has_errors(snap: Snapshot) -> bool:
    """Whether any finding is an error (luo-inspect's exit status 1)."""
    return any(f.severity == ERROR for f in snap.findings)
