# SPDX-License-Identifier: LGPL-2.1-or-later
"""``%luo --drgn``: the drgn code that does what a request does (drgn's
convention for commands), built for the arguments given with drgn's
:class:`~drgn.commands.DrgnCodeBuilder`.

The listing commands are written with the helpers alone; the others with
the engine's parts (collect, inspect, render), as luo-inspect runs them.
"""

from __future__ import annotations

from drgn import Program
from drgn.commands import DrgnCodeBuilder

from .helpers.liveupdate import LUO_DIRECTIONS
from .request import Request

__all__ = ("drgn_code",)


def _directions(code: DrgnCodeBuilder, request: Request) -> None:
    """Open the loop over sessions, narrowed to --session."""
    code.add_from_import("luo_drgn.helpers", "luo_for_each_session")
    code.append(f"for direction in {LUO_DIRECTIONS!r}:\n")
    code.append("    for session in luo_for_each_session(prog, direction):\n")
    code.append("        name = session.name.string_().decode(errors='replace')\n")
    if request.session is not None:
        code.append(f"        if name != {request.session!r}:\n            continue\n")


def _snapshot(code: DrgnCodeBuilder, request: Request) -> None:
    """``snapshot``: the target collected and checked, as the engine does."""
    code.add_from_import("luo_drgn.collector", "collect")
    code.add_from_import("luo_drgn.analysis", "inspect")
    code.add_from_import("luo_drgn.target", "target_of")
    code.append("snapshot = collect(prog, target_of(prog))\n")
    if request.next_cmdline is not None:
        code.append(
            f"snapshot.next_cmdline = {request.next_cmdline!r}\n"
            "snapshot.next_cmdline_source = '--next-cmdline'\n"
        )
    if request.next_kernel is not None:
        code.add_from_import("luo_drgn.nextkernel", "read_next_kernel")
        debug = list(request.next_kernel_debug)
        code.append(
            f"snapshot.next_kernel = read_next_kernel({request.next_kernel!r}, {debug!r})\n"
            "snapshot.notes.extend(snapshot.next_kernel.notes)\n"
        )
    code.append("inspect(snapshot)\n")


def drgn_code(request: Request, prog: Program) -> str:
    """The code for ``request`` on ``prog`` (a program called ``prog``)."""
    code = DrgnCodeBuilder(prog)
    command = request.command
    if command == "handlers":
        code.add_from_import("luo_drgn.helpers", "luo_for_each_file_handler")
        code.append(
            "for handler in luo_for_each_file_handler(prog):\n"
            "    print(hex(handler), handler.compatible.string_().decode())\n"
        )
    elif command == "sessions":
        _directions(code, request)
        code.add_from_import("luo_drgn.helpers", "luo_session_file_count")
        code.append(
            "        print(direction, name, bool(session.retrieved),\n"
            "              luo_session_file_count(session))\n"
        )
    elif command == "files":
        _directions(code, request)
        code.add_from_import(
            "luo_drgn.helpers", "luo_file_retrieve_status", "luo_session_for_each_file"
        )
        code.append(
            "        for luo_file in luo_session_for_each_file(session):\n"
            "            print(direction, name, hex(luo_file.token),\n"
            "                  luo_file_retrieve_status(luo_file), hex(luo_file.file))\n"
        )
    elif command == "diff":
        _snapshot(code, request)
        code.add_from_import("luo_drgn.diff", "diff")
        code.add_from_import("luo_drgn.engine", "open_side")
        code.append(
            f"across = diff(open_side({request.before!r}), snapshot)\n"
            "for row in across.rows:\n"
            "    print(row.session, row.token, row.state, row.detail)\n"
            "print('lost' if across.lost else 'nothing lost')\n"
        )
    else:
        _snapshot(code, request)
        if command == "preflight":
            code.add_from_import("luo_drgn.preflight", "preflight")
            code.append(
                "verdict = preflight(snapshot)\n"
                "print('accepted' if verdict.accepted else 'refused')\n"
                "for finding in verdict.findings + verdict.losses:\n"
            )
        else:
            code.append("for finding in snapshot.findings:\n")
        code.append("    print(finding.severity, finding.code, finding.message)\n")
    return code.get()
