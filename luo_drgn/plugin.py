# SPDX-License-Identifier: LGPL-2.1-or-later
"""drgn plugin: the ``%luo`` command.

Registered through the ``drgn.plugins`` entry point: drgn imports this module
the first time it sets a program, and the decorator registers the command.
``%luo`` takes luo-inspect's commands and output options, parsed by drgn's
own argparse-based command machinery, and inspects the session's program.
Output goes to stdout, so drgn's redirections work (``%luo report --format
markdown > report.md``, ``%luo check | grep error``).  The command returns
the snapshot, so ``_`` holds it afterwards.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from drgn import Program
from drgn.commands import (
    CommandArgumentError,
    CommandError,
    CommandFuncDecorator,
    argument,
    drgn_argument,
)
from drgn.commands.linux import linux_kernel_command as _linux_kernel_command

from .checks import inspect
from .collector import collect
from .diff import Diff, diff
from .model import Snapshot
from .nextkernel import NextKernelError, read_next_kernel
from .render import COMMANDS, FORMATS, PREFLIGHT_HELP, render, render_diff
from .saved import SavedReportError, load_report
from .target import target_of

# The helper calls behind each command, for --drgn (drgn's convention: show
# how to do the same with drgn's API).
_DRGN_CODE = {
    "handlers": """\
from luo_drgn.helpers import luo_file_handler_compatible, luo_for_each_file_handler

for fh in luo_for_each_file_handler(prog):
    print(hex(fh), luo_file_handler_compatible(fh).decode())
""",
    "sessions": """\
from luo_drgn.helpers import (
    LUO_DIRECTIONS, luo_for_each_session, luo_session_file_count, luo_session_name,
    luo_session_retrieved,
)

for direction in LUO_DIRECTIONS:
    for s in luo_for_each_session(prog, direction):
        print(direction, luo_session_name(s).decode(), luo_session_retrieved(s),
              luo_session_file_count(s))
""",
    "files": """\
from luo_drgn.helpers import (
    LUO_DIRECTIONS, luo_file_retrieve_status, luo_file_struct_file, luo_file_token,
    luo_for_each_session, luo_session_for_each_file, luo_session_name,
)

for direction in LUO_DIRECTIONS:
    for s in luo_for_each_session(prog, direction):
        for f in luo_session_for_each_file(s):
            print(luo_session_name(s).decode(), hex(luo_file_token(f)),
                  luo_file_retrieve_status(f), luo_file_struct_file(f))
""",
}
_DRGN_SNAPSHOT = """\
from luo_drgn.checks import inspect
from luo_drgn.collector import collect
from luo_drgn.target import target_of

snapshot = inspect(collect(prog, target_of(prog)))
for finding in snapshot.findings:
    print(finding.severity, finding.code, finding.message)
"""


# drgn declares linux_kernel_command through copy_func_signature, which
# mypy cannot see through; it has command()'s signature.
linux_kernel_command: Callable[..., CommandFuncDecorator] = _linux_kernel_command


@linux_kernel_command(
    name="luo",
    description="inspect the Live Update Orchestrator (luo-drgn)",
    long_description="Runs a luo-inspect command on this program and returns the "
    "snapshot it inspected (in _).\n\ncommands:\n"
    # "|" starts a line block: drgn's help formatter keeps it as it is.
    + "".join(f"|  {cmd:<9} {text}\n" for cmd, text in COMMANDS.items())
    + f"|  preflight {PREFLIGHT_HELP.split('?')[0]}?\n"
    + "|  diff      Across the kexec: a saved report (--before) against this kernel.\n"
    + "|  help      This text.",
    arguments=(
        argument(
            "command",
            nargs="?",
            default="summary",
            choices=(*COMMANDS, "preflight", "diff", "help"),
            help="what to show (default: summary)",
        ),
        argument("--format", choices=FORMATS, default="text", help="output format (default: text)"),
        argument("--session", metavar="NAME", help="with files or sessions: only this session"),
        argument(
            "--before",
            metavar="REPORT",
            help="with diff: a report saved before the kexec (luo-inspect --format json report)",
        ),
        argument(
            "--next-cmdline",
            metavar="CMDLINE",
            help="with preflight: the next kernel's command line, checked for liveupdate=on",
        ),
        argument(
            "--next-kernel",
            metavar="IMAGE",
            help="with preflight: the kernel to kexec into (vmlinux or bzImage)",
        ),
        argument(
            "--next-kernel-debug",
            metavar="PATH",
            action="append",
            default=[],
            help="with preflight: debug info of --next-kernel, when the image has none",
        ),
        argument(
            "--redact",
            action="store_true",
            help="replace kernel addresses and process names with placeholders",
        ),
        drgn_argument,
    ),
)
def _cmd_luo(
    prog: Program,
    name: str,
    args: argparse.Namespace,
    *,
    parser: argparse.ArgumentParser,
    **kwargs: Any,
) -> Snapshot | Diff | None:
    if args.command == "help":
        print(parser.format_help(), end="")
        return None
    if args.session is not None and args.command not in ("files", "sessions"):
        raise CommandArgumentError(f"{name}: --session goes with files or sessions")
    if args.drgn:
        print(_DRGN_CODE.get(args.command, _DRGN_SNAPSHOT), end="")
        return None
    if args.command == "diff":
        if args.before is None:
            raise CommandArgumentError(f"{name}: diff needs --before REPORT")
        try:
            before = load_report(args.before)
        except SavedReportError as e:
            raise CommandError(f"{name}: {e}") from None
        result = diff(before, inspect(collect(prog, target_of(prog))))
        print(render_diff(result, args.format), end="")
        return result
    if args.before is not None:
        raise CommandArgumentError(f"{name}: --before goes with diff")
    if args.command != "preflight" and (args.next_cmdline or args.next_kernel):
        raise CommandArgumentError(f"{name}: --next-cmdline and --next-kernel go with preflight")
    snap = collect(prog, target_of(prog))
    snap.next_cmdline = args.next_cmdline
    if args.next_kernel is not None:
        try:
            snap.next_kernel = read_next_kernel(args.next_kernel, args.next_kernel_debug)
        except NextKernelError as e:
            raise CommandError(f"{name}: {e}") from None
        snap.notes.extend(snap.next_kernel.notes)
    inspect(snap)
    print(render(snap, args.command, args.format, redact=args.redact, session=args.session), end="")
    return snap


def drgn_prog_set(prog: Program) -> None:
    """drgn's plugin hook; importing this module already registered %luo."""
