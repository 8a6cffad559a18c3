# SPDX-License-Identifier: LGPL-2.1-or-later
"""A saved ``luo-inspect --format json report`` read back as a snapshot: an
operator saves one right before ``kexec -e`` and diffs it against the kernel
the update booted.  The document itself is read by
:func:`~luo_drgn.report.document.from_document`, beside the code that
writes it; this module reads the file and names it."""

from __future__ import annotations

import json
from pathlib import Path

from ..model import Snapshot
from .document import DocumentError, from_document

__all__ = ("SavedReportError", "load_report")


class SavedReportError(Exception):
    """Not a saved luo-inspect report; ``str(e)`` says why."""


def load_report(path: str) -> Snapshot:
    """
    Read a JSON report saved by ``luo-inspect --format json report``.

    :raises SavedReportError: if the file is not one
    """
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise SavedReportError(f"{path}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise SavedReportError(f"{path}: not JSON: {e}") from None
    try:
        snap = from_document(doc)
    except DocumentError as e:
        raise SavedReportError(
            f"{path}: {e}: save one with 'luo-inspect --format json report'"
        ) from None
    t = snap.target
    t.kind, t.path = f"saved {t.kind}", f"{path} ({t.path})"
    return snap
