# SPDX-License-Identifier: LGPL-2.1-or-later
"""drgn plugin: the ``%luo`` command.

Registered through the ``drgn.plugins`` entry point: drgn imports this module
the first time it sets a program, and the decorator registers the command.
``%luo`` takes luo-inspect's commands and output options, parsed by drgn's
own argparse-based command machinery, and runs them through the same engine
(:mod:`luo_drgn.engine`).  Output goes to stdout, so drgn's redirections work
(``%luo report --format markdown > report.md``, ``%luo check | grep error``).
The command returns the snapshot (or diff), so ``_`` holds it afterwards.

Every drgn start imports this module, whether or not ``%luo`` is typed: it
imports only drgn's command machinery and :mod:`luo_drgn.request`, and the
engine at the first ``%luo``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Callable

from drgn import Program
from drgn.commands import (
    CommandArgumentError,
    CommandError,
    CommandFuncDecorator,
    argument,
    drgn_argument,
)
from drgn.commands.linux import linux_kernel_command as _linux_kernel_command

from .request import ALL_COMMANDS, COMMANDS, FORMATS, PREFLIGHT_HELP, Request, RequestError

if TYPE_CHECKING:
    from .diff import Diff
    from .model import Snapshot

__all__ = ("drgn_prog_set", "exit_status")

# Where the last %luo leaves its exit status, for commands/luo.py (a drgn
# command returns its value into _, which stays the snapshot).
_EXIT_STATUS = "luo_drgn_exit_status"

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
            choices=(*ALL_COMMANDS, "help"),
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
            help="with preflight: the next kernel's command line (its liveupdate= and kho=)",
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
    prog.cache[_EXIT_STATUS] = 0
    if args.command == "help":
        print(parser.format_help(), end="")
        return None
    request = Request(
        args.command,
        args.format,
        session=args.session,
        redact=args.redact,
        next_cmdline=args.next_cmdline,
        next_kernel=args.next_kernel,
        next_kernel_debug=args.next_kernel_debug,
        before=args.before,
    )
    try:
        request.check()
    except RequestError as e:
        raise CommandArgumentError(f"{name}: {e}") from None
    if args.drgn:
        from .drgn_code import drgn_code

        print(drgn_code(request, prog), end="")
        return None
    from . import engine

    try:
        outcome = engine.run(request, engine.Source(prog=prog))
        for chunk in outcome.chunks:
            sys.stdout.write(chunk)
    except Exception as e:  # noqa: BLE001 - one line, as luo-inspect's exit 2
        failed = engine.failure(e)
        prog.cache[_EXIT_STATUS] = failed.status
        raise CommandError(f"{name}: {failed.line}") from (e if failed.bug else None)
    prog.cache[_EXIT_STATUS] = outcome.status
    return outcome.value


def exit_status(prog: Program) -> int:
    """The exit status of the last ``%luo`` on ``prog``, as luo-inspect's
    (0 for help and --drgn)."""
    return int(prog.cache.get(_EXIT_STATUS, 0))


def drgn_prog_set(prog: Program) -> None:
    """drgn's plugin hook; importing this module already registered %luo."""
