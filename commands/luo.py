#!/usr/bin/env drgn
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Inspect the Live Update Orchestrator (LUO) of a kernel, as a drgn script.

For a drgn whose environment has drgn, click and tabulate but not luo-drgn
installed: the script imports luo_drgn from this checkout and runs drgn's
``%luo`` command on the program drgn opened, with luo-inspect's exit status.

usage: drgn [-c VMCORE] [-s VMLINUX] commands/luo.py [COMMAND] [--format text|json|markdown]
                                                     [--session NAME] [--redact] [--drgn]

COMMAND is summary (the default), handlers, sessions, files, check, report,
preflight, diff (with --before REPORT) or help.  Exit status: 0 no error
finding (preflight: the next kernel will accept the handover; diff: nothing
lost), 1 otherwise, 2 a usage error or a target that cannot be inspected.

examples:
  drgn -c vmcore -s vmlinux commands/luo.py report --format markdown > report.md
  drgn commands/luo.py check --format json        # the running kernel (root)
"""

import shlex
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from drgn.commands import CommandError, run_command

    from luo_drgn.engine import EXIT_CANNOT_INSPECT
    from luo_drgn.plugin import exit_status

    try:
        run_command(prog, shlex.join(["luo", *sys.argv[1:]]))  # type: ignore[name-defined]  # noqa: F821
    except CommandError as e:
        print(e, file=sys.stderr)
        sys.exit(EXIT_CANNOT_INSPECT)
    sys.exit(exit_status(prog))  # type: ignore[name-defined]  # noqa: F821
