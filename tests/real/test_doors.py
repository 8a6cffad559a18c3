# SPDX-License-Identifier: LGPL-2.1-or-later
"""The three doors (luo-inspect, drgn's %luo, commands/luo.py) run one
engine: on real fixtures, every command, with each of its exit statuses
(0, 1 and 2), prints the same document and exits the same way through
each; one parametrized test, and a check that no (command, status) cell is
left out.

The expected statuses are the fixtures' own facts: what their guests did
(``incoming``: a healthy handover; ``fault-duplicate-token``: a token the
kernel refuses; ``disabled``: LUO off, so nothing is handed over;
``deserialize-failed``: the kernel's own saved_err), not luo-inspect's output.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from drgn.commands import CommandError, run_command

import luo_drgn.plugin
from luo_drgn import examples
from luo_drgn.cli import main
from luo_drgn.request import ALL_COMMANDS
from tests.support.doors import console_script, program, run_script

TOP = Path(__file__).resolve().parents[2]
SCRIPT = str(TOP / "commands" / "luo.py")
SAVED_BEFORE = examples.DATA / "fixtures" / "journey-after" / "before.json"

SAVED_MISSING = "/nonexistent/before.json"


@dataclass(frozen=True)
class Case:
    """One command on one fixture, and the status each door must exit with,
    taken from what the fixture's guests did (the reason), not from
    luo-inspect's output."""

    command: str
    status: int
    fixture: str
    options: tuple[str, ...]
    why: str

    @property
    def id(self) -> str:
        return " ".join((self.command, *self.options, f"-> {self.status}", f"[{self.fixture}]"))


REPORTS = ("summary", "handlers", "sessions", "files", "check", "report")
CASES = [
    *[
        Case(cmd, 0, "incoming", (), "a healthy handover: its guest retrieved and finished")
        for cmd in REPORTS
    ],
    *[
        Case(cmd, 1, "fault-duplicate-token", (), "a token twice in a session: an error")
        for cmd in REPORTS
    ],
    *[
        Case(cmd, 2, "incoming", ("--session", "vm-alpha"), "--session takes sessions, files")
        for cmd in REPORTS
        if cmd not in ("sessions", "files")
    ],
    *[
        Case(cmd, 2, "incoming", ("--next-cmdline", "x"), "--next-cmdline takes preflight")
        for cmd in ("sessions", "files")
    ],
    # Both doors narrow to the session asked for; the state is the guest's.
    Case("sessions", 0, "incoming", ("--session", "vm-beta"), "vm-beta was handed over"),
    Case("files", 0, "incoming", ("--session", "vm-alpha"), "vm-alpha was handed over"),
    # LUO off: nothing is handed over, nothing is wrong (info only).
    Case("report", 0, "disabled", (), "kho=off: LUO disabled itself, no error"),
    # The kernel's own saved_err: its deserialization failed (EIO on opens).
    Case("report", 1, "deserialize-failed", (), "the next kernel's opens returned EIO"),
    Case("preflight", 0, "outgoing", (), "its next kernel took the handover (incoming)"),
    Case("preflight", 1, "doomed", (), "its next kernel panicked at boot"),
    Case("preflight", 1, "disabled", (), "LUO off: nothing is handed over"),
    Case(
        "preflight",
        1,
        "outgoing",
        ("--next-cmdline", "liveupdate=off"),
        "early_liveupdate_param(): the next kernel keeps LUO off",
    ),
    Case("preflight", 2, "outgoing", ("--next-kernel", "/nonexistent"), "no such next kernel"),
    Case("diff", 0, "incoming", ("example:frozen",), "frozen's next kernel: nothing lost"),
    Case("diff", 1, "journey-after", (str(SAVED_BEFORE),), "a retrieve failed, EOPNOTSUPP"),
    Case("diff", 2, "journey-after", (SAVED_MISSING,), "no saved report there"),
]


def _without_target(doc: dict[str, Any]) -> dict[str, Any]:
    """A document less what names where the program came from (luo-inspect
    opened a path; drgn's doors were handed a program)."""
    return {k: v for k, v in doc.items() if k not in ("target", "before", "after")}


def via_luo_inspect(tmp_path: Path, ex: examples.Example, *args: str) -> tuple[int, str]:
    out = tmp_path / "out.json"
    core, debug = str(ex.core), str(ex.debug[0])
    if args[0] == "diff":
        argv = ["-s", debug, "diff", args[1], core, "-o", str(out), *args[2:]]
    else:
        argv = ["-c", core, "-s", debug, *args, "-o", str(out)]
    status = main(argv)
    return status, out.read_text() if out.exists() else ""


def via_plugin(prog: Any, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    if args[0] == "diff":
        args = ("diff", "--before", args[1], *args[2:])
    try:
        run_command(prog, shlex.join(["luo", *args]), globals={})
    except CommandError:
        return 2, capsys.readouterr().out
    return luo_drgn.plugin.exit_status(prog), capsys.readouterr().out


def via_script_in_process(prog: Any, *args: str) -> tuple[int, str]:
    """commands/luo.py, in this process (:func:`via_script` runs it under
    drgn, in one case)."""
    if args and args[0] == "diff":
        args = ("diff", "--before", args[1], *args[2:])
    status, out, _ = run_script(prog, *args)
    return status, out


def via_script(ex: examples.Example, *args: str) -> tuple[int, str]:
    if args and args[0] == "diff":
        args = ("diff", "--before", args[1], *args[2:])
    drgn = console_script("drgn")
    proc = subprocess.run(
        [drgn, "-q", "-c", str(ex.core), "-s", str(ex.debug[0]), SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(TOP)},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


def test_every_command_and_status_is_covered() -> None:
    """Would catch: a command added, or a status of one, that no door case
    below exercises."""
    cells = {(c.command, c.status) for c in CASES}
    assert cells == {(cmd, status) for cmd in ALL_COMMANDS for status in (0, 1, 2)}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_doors_agree(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Would catch: a door that filters, renders or maps exit statuses on
    its own (commands/luo.py once exited 0 for a refused preflight), or
    turns a usage error into a traceback or another status than 2."""
    ex = examples.load(case.fixture)
    if case.command == "diff":
        args = ("diff", case.options[0], "--format", "json", *case.options[1:])
    else:
        args = (case.command, "--format", "json", *case.options)
    got = {
        "luo-inspect": via_luo_inspect(tmp_path, ex, *args),
        "%luo": via_plugin(program(case.fixture), capsys, *args),
        "commands/luo.py": via_script_in_process(program(case.fixture), *args),
    }
    assert {door: status for door, (status, _) in got.items()} == dict.fromkeys(got, case.status), (
        case.why
    )
    if case.status == 2:
        return
    docs = {door: _without_target(json.loads(out)) for door, (_, out) in got.items()}
    assert docs["%luo"] == docs["luo-inspect"]
    assert docs["commands/luo.py"] == docs["luo-inspect"]
    if case.command != "diff":
        # drgn's two doors were handed the same kind of program: even the
        # target they describe is the same.
        assert (
            json.loads(got["%luo"][1])["target"] == json.loads(got["commands/luo.py"][1])["target"]
        )
    if "--session" in case.options:
        want = case.options[1]
        assert [s["name"] for s in docs["%luo"]["sessions"]] == [want]
    if case.command == "diff" and case.status == 1:
        # The guest's retrieve of vm-alpha's 0x101 failed with EOPNOTSUPP.
        failed = [r for r in docs["%luo"]["rows"] if r["state"] == "retrieve-failed"]
        assert [(r["session"], r["token"]) for r in failed] == [("vm-alpha", 0x101)]


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if (c.command, c.fixture, c.options) == ("preflight", "doomed", ())],
    ids=lambda c: c.id,
)
def test_the_script_door_under_drgn(case: Case, tmp_path: Path) -> None:
    """Would catch: commands/luo.py failing where drgn runs it (its import
    of this checkout, drgn's globals), or exiting otherwise than
    luo-inspect (it once exited 0 for a refused preflight).  One case in a
    real drgn process; the others run the script in this one."""
    ex = examples.load(case.fixture)
    args = (case.command, "--format", "json", *case.options)
    status, out = via_script(ex, *args)
    want_status, want = via_luo_inspect(tmp_path, ex, *args)
    assert status == want_status == case.status
    assert _without_target(json.loads(out)) == _without_target(json.loads(want))


def test_a_bug_in_the_tool_is_an_internal_error_not_a_finding(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Would catch: the collector's guard swallowing a bug in luo-drgn as a
    corrupt-structure finding about the kernel (exit 1): it is exit 2, one
    line, in luo-inspect and %luo."""
    from luo_drgn import helpers

    def broken(session: Any) -> Any:
        raise TypeError("a bug planted by the test")

    monkeypatch.setattr(helpers, "validate_luo_session_for_each_file_row", broken)
    assert main(["--example", "incoming", "check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("luo-inspect: internal error: TypeError: a bug planted by the test")
    assert "corrupt-structure" not in err and "Traceback" not in err
    with pytest.raises(CommandError, match="luo: internal error: TypeError: a bug planted"):
        run_command(program("incoming"), "luo check", globals={})
