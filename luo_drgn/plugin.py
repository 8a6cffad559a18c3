"""drgn plugin: the ``%luo`` command.

Registered through the ``drgn.plugins`` entry point; drgn imports this module
the first time it sets a program, which registers the command.  ``%luo``
takes the same subcommands and options as ``luo-inspect`` (without the
target options: it inspects the session's program) and returns the
snapshot, so ``_`` holds it afterwards.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from drgn import Program
from drgn.commands import parse_shell_command
from drgn.commands.linux import linux_kernel_custom_command

from .cli import run_in_drgn
from .model import Snapshot


@linux_kernel_custom_command(
    name="luo",
    description="inspect the Live Update Orchestrator (luo-drgn)",
    usage="**luo** [*command*] [--format text|json|markdown] [-o *FILE*] [--redact]",
    long_description="Runs a luo-inspect command on this program: summary (the "
    "default), handlers, sessions, files [--session NAME], check or report. "
    "Returns the snapshot.",
    parse=parse_shell_command,
)
def _cmd_luo(prog: Program, name: str, args: Sequence[str], **kwargs: Any) -> Optional[Snapshot]:
    result, _ = run_in_drgn(prog, args)
    return result


def drgn_prog_set(prog: Program) -> None:
    """drgn's plugin hook; importing this module already registered %luo."""
