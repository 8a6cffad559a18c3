# SPDX-License-Identifier: LGPL-2.1-or-later
"""``luo-inspect scan``: one engine run per target, over a fleet.

Live updates roll out across fleets of hosts in waves, and an operator's
questions are about the fleet: which hosts will lose data if they kexec
now, and which failure classes do a failed wave's dumps fall into.  A scan
takes vmcores (ELF or kdump, also xz/gzip/bzip2/zstd-wrapped), saved
``--format json`` documents, bundled examples and directories of them; it
inspects each target with the same engine as ``luo-inspect`` in a process of
its own (a target that hangs inside drgn's C code can only be killed), and
writes one JSON Lines record per target, then a summary of the classes.

- :mod:`~luo_drgn.fleet.targets`: finding the targets, telling what each is,
  unwrapping a compressed dump sparse into scratch space;
- :mod:`~luo_drgn.fleet.record`: the ``luo-inspect-scan/1`` record;
- :mod:`~luo_drgn.fleet.worker`: one target inspected, as a record;
- :mod:`~luo_drgn.fleet.pool`: the records of many targets, from a local
  pool of processes or from Dask's distributed scheduler;
- :mod:`~luo_drgn.fleet.summary`: the fleet's classes, in text, Markdown
  or JSON;
- :mod:`~luo_drgn.fleet.command`: ``luo-inspect scan`` itself.
"""

from .command import ScanError, scan_command
from .pool import scan
from .record import RECORD_SCHEMA, SUMMARY_SCHEMA
from .summary import render_summary, summarize

__all__ = (
    "RECORD_SCHEMA",
    "SUMMARY_SCHEMA",
    "ScanError",
    "render_summary",
    "scan",
    "scan_command",
    "summarize",
)
