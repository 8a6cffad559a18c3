# SPDX-License-Identifier: LGPL-2.1-or-later
"""From the collected facts to findings: what follows from the facts, then
the checks.

The collector only reads memory into a snapshot.  What the kernel will do
with it is worked out here, before the checks run: whether each outgoing
file is frozen, how many of a file's references its holders explain, and,
before LUO freezes, what the freeze will write (the restore model's
:func:`~luo_drgn.freeze.predict_freeze`).  The checks then look at the
snapshot without changing it (:func:`luo_drgn.checks.run_checks`).
"""

from __future__ import annotations

from .checks import run_checks
from .derive import explained_refs, frozen_files
from .freeze import predict_freeze
from .model import Snapshot

__all__ = ("derive", "inspect")


def derive(snap: Snapshot) -> None:
    """Fill in what follows from the collected facts: each outgoing file's
    ``frozen``, once holders were scanned ``explained_refs``, before a
    freeze the handover it will write, and the next kernel's command line
    from the loaded kexec image when none was given."""
    image = snap.kexec_image
    if snap.next_cmdline is None and image is not None and image.cmdline is not None:
        # The command line the loaded image boots with, unless preflight
        # was told another.
        snap.next_cmdline, snap.next_cmdline_source = image.cmdline, "the loaded kexec image"
    if snap.handover_out is None and not snap.luo.frozen:
        snap.handover_out = predict_freeze(snap)
    frozen = frozen_files(snap)
    for s in snap.sessions:
        for f in s.files:
            if s.direction == "outgoing":
                f.frozen = frozen[f.address]
            if snap.holders_scanned and f.file is not None:
                f.explained_refs = explained_refs(s, f)


def inspect(snap: Snapshot) -> Snapshot:
    """Derive what follows from the snapshot, fill ``snap.findings`` and
    extend ``snap.notes``; return ``snap``."""
    derive(snap)
    snap.findings, notes = run_checks(snap)
    snap.notes.extend(notes)
    return snap
