# SPDX-License-Identifier: LGPL-2.1-or-later
"""Reports: a snapshot as the ``luo-inspect/1`` document, its JSON, text and
Markdown forms, redaction, the saved report read back, and the diff view.

Nothing here analyses: the checks and the preflight verdict are made
before (:mod:`luo_drgn.checks`, :mod:`luo_drgn.engine`), and a report only
shows them.

- :mod:`~luo_drgn.report.document`: the document and each command's part;
- :mod:`~luo_drgn.report.saved`: a saved JSON report read back;
- :mod:`~luo_drgn.report.redact`: ``--redact``;
- :mod:`~luo_drgn.report.jsonstream`: JSON written as it is made;
- :mod:`~luo_drgn.report.blocks`: the typed page text and Markdown are
  written from;
- :mod:`~luo_drgn.report.text`: a document's sections, as a page;
- :mod:`~luo_drgn.report.diffview`: the diff across a kexec;
- :mod:`~luo_drgn.report.render`: one command's output, in any format.
"""

from .diffview import DIFF_SCHEMA, diff_document, render_diff
from .document import SCHEMA, document, prints_findings, prints_paths, select
from .redact import Redactor
from .render import render, render_chunks
from .saved import SavedReportError, load_report

__all__ = (
    "DIFF_SCHEMA",
    "SCHEMA",
    "Redactor",
    "SavedReportError",
    "diff_document",
    "document",
    "load_report",
    "prints_findings",
    "prints_paths",
    "render",
    "render_chunks",
    "render_diff",
    "select",
)
