# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a user can ask luo-drgn: the commands, formats and options shared by
``luo-inspect``, ``%luo`` and ``commands/luo.py``, and the rules that tie
options to commands.

This module imports nothing but the standard library: the drgn plugin builds
``%luo``'s parser from it at every drgn start, so it must stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = (
    "ALL_COMMANDS",
    "COMMANDS",
    "DIFF_HELP",
    "EXIT_CANNOT_INSPECT",
    "FORMATS",
    "PREFLIGHT_HELP",
    "Request",
    "RequestError",
    "SCAN_COMMANDS",
    "SESSION_COMMANDS",
)

# The commands that print a part of the report, with their help.
COMMANDS: dict[str, str] = {
    "summary": "LUO state and what is wrong, in a few lines (the default).",
    "handlers": "Registered file handlers.",
    "sessions": "Outgoing and incoming sessions.",
    "files": "Preserved files, with who holds each one.",
    "check": "Run the checks: findings, walk errors, notes.",
    "report": "Everything, for a bug report.",
}
FORMATS = ("text", "json", "markdown")
PREFLIGHT_HELP = (
    "Will the next kernel accept the handover? Replays its restore path on what "
    "is (or will be) handed over: exit 0 yes, 1 no (the findings say why), "
    "2 cannot inspect. Meant to gate kexec -e."
)
DIFF_HELP = (
    "Across a kexec: what BEFORE handed over and what AFTER (the kernel the "
    "live update booted) made of it, per session and token. Each side is a "
    'vmcore, "live" (the running kernel), a saved \'luo-inspect --format json '
    "report', or example:NAME. Exit 0 nothing lost, 1 something lost or failed, "
    "2 cannot inspect."
)
ALL_COMMANDS = (*COMMANDS, "preflight", "diff")
# What ``luo-inspect scan`` can ask of every target.
SCAN_COMMANDS = ("check", "preflight", "report")
# The commands that --session narrows.
SESSION_COMMANDS = ("sessions", "files")


# The exit status of a target that cannot be inspected, of a usage error and
# of a bug in luo-drgn, from every door (0 and 1 are the result's own:
# luo_drgn.engine.exit_status()).
EXIT_CANNOT_INSPECT = 2


class RequestError(Exception):
    """Options that do not go together; each door shows it as its usage error."""


@dataclass
class Request:
    """One command with its options, as any door parsed it.

    ``before`` and ``after`` are the sides of a diff: a saved JSON report,
    ``live``, ``example:NAME`` or a vmcore; an absent ``after`` is the
    target the request runs on.
    """

    command: str = "summary"
    fmt: str = "text"
    session: str | None = None
    redact: bool = False
    # preflight: what is known of the kernel the handover goes to
    next_cmdline: str | None = None
    next_kernel: str | None = None
    next_kernel_debug: Sequence[str] = ()
    # diff
    before: str | None = None
    after: str | None = None
    before_symbols: Sequence[str] = ()
    after_symbols: Sequence[str] = ()

    def check(self) -> None:
        """Raise :class:`RequestError` for options the command does not take."""
        if self.command not in ALL_COMMANDS:
            raise RequestError(f"unknown command {self.command!r}")
        if self.fmt not in FORMATS:
            raise RequestError(f"unknown format {self.fmt!r}")
        if self.session is not None and self.command not in SESSION_COMMANDS:
            raise RequestError("--session goes with files or sessions")
        if self.command != "preflight" and (
            self.next_cmdline is not None or self.next_kernel is not None or self.next_kernel_debug
        ):
            raise RequestError("--next-cmdline and --next-kernel go with preflight")
        if self.command == "diff":
            if self.before is None:
                raise RequestError("diff needs the report saved before the kexec (--before)")
            if self.redact:
                raise RequestError("--redact does not apply to diff")
        elif self.before is not None or self.after is not None:
            raise RequestError("--before goes with diff")
