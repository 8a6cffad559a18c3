# SPDX-License-Identifier: LGPL-2.1-or-later
"""The three doors (luo-inspect, drgn's %luo, commands/luo.py) run one
engine: on real fixtures, every command prints the same document and exits
with the same status through each, and a usage error is exit 2 in each.

The expected statuses are the fixtures' own facts: what their guests did
(``incoming``: a healthy handover; ``fault-duplicate-token``: a token the
kernel refuses; ``disabled``: LUO off, so nothing is handed over;
``deserialize-failed``: the kernel's own saved_err), not luo-inspect's output.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from drgn.commands import CommandError, run_command

import luo_drgn.plugin
from luo_drgn import examples
from luo_drgn.cli import main

TOP = Path(__file__).resolve().parents[2]
SCRIPT = str(TOP / "commands" / "luo.py")
SAVED_BEFORE = examples.DATA / "fixtures" / "journey-after" / "before.json"

# fixture -> (report commands' status, preflight's status), from the guests:
# error findings exist where the kernel met a fault (1), the next kernel
# accepts a handover only from an enabled LUO with nothing it refuses, and
# preflight exits 0 only when that kexec also loses nothing this kernel
# received: incoming and deserialize-failed hold incoming files never
# retrieved (the second-update run's third kernel gets ENOENT for them).
STATUS = {
    "incoming": (0, 1),
    "fault-duplicate-token": (1, 1),
    "disabled": (0, 1),
    "deserialize-failed": (1, 1),
}
CASES = [
    *[(cmd, ()) for cmd in ("summary", "handlers", "sessions", "files", "check", "report")],
    ("sessions", ("--session", "vm-beta")),
    ("files", ("--session", "vm-alpha")),
    ("preflight", ()),
    ("preflight", ("--next-cmdline", "liveupdate=off")),
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


def via_script(ex: examples.Example, *args: str) -> tuple[int, str]:
    if args and args[0] == "diff":
        args = ("diff", "--before", args[1], *args[2:])
    drgn = shutil.which("drgn")
    assert drgn is not None
    proc = subprocess.run(
        [drgn, "-q", "-c", str(ex.core), "-s", str(ex.debug[0]), SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(TOP)},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


_programs: dict[str, Any] = {}


def program(name: str) -> Any:
    if name not in _programs:
        _programs[name] = examples.load(name).program()
    return _programs[name]


@pytest.mark.parametrize("name", sorted(STATUS))
@pytest.mark.parametrize(("command", "options"), CASES, ids=[" ".join((c, *o)) for c, o in CASES])
def test_doors_agree(
    name: str,
    command: str,
    options: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Would catch: a door that filters, renders or maps exit statuses on
    its own (commands/luo.py once exited 0 for a refused preflight)."""
    ex = examples.load(name)
    args = (command, "--format", "json", *options)
    report_status, preflight_status = STATUS[name]
    want_status = preflight_status if command == "preflight" else report_status
    if options == ("--next-cmdline", "liveupdate=off"):
        # kernel/liveupdate/luo_core.c, early_liveupdate_param(): LUO stays
        # off in the next kernel, which then reads nothing handed over.
        want_status = 1
    got = {
        "luo-inspect": via_luo_inspect(tmp_path, ex, *args),
        "%luo": via_plugin(program(name), capsys, *args),
        "commands/luo.py": via_script(ex, *args),
    }
    docs = {door: _without_target(json.loads(out)) for door, (_, out) in got.items()}
    assert {door: status for door, (status, _) in got.items()} == dict.fromkeys(got, want_status)
    assert docs["%luo"] == docs["luo-inspect"]
    assert docs["commands/luo.py"] == docs["luo-inspect"]
    # drgn's two doors were handed the same kind of program: even the
    # target they describe is the same.
    assert json.loads(got["%luo"][1])["target"] == json.loads(got["commands/luo.py"][1])["target"]
    if "--session" in options:
        # incoming's guest made vm-alpha and vm-beta (and more); disabled's none.
        want = [options[1]] if name == "incoming" else []
        assert [s["name"] for s in docs["%luo"]["sessions"] if s["name"] in want] == want
        assert {s["name"] for s in docs["%luo"]["sessions"]} <= {options[1]}


def test_doors_agree_on_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """journey-after booted from the handover saved in before.json; its
    guest's retrieve of one file failed (the manifest records the errno the
    agent saw), so the diff exits 1 in each door."""
    ex = examples.load("journey-after")
    failed = [
        f["retrieve_status"]
        for s in ex.manifest["expected"]["sessions"]
        for f in s["files"]
        if f["retrieve_status"] < 0
    ]
    assert failed == [-95]  # EOPNOTSUPP
    args = ("diff", str(SAVED_BEFORE), "--format", "json")
    got = {
        "luo-inspect": via_luo_inspect(tmp_path, ex, *args),
        "%luo": via_plugin(program("journey-after"), capsys, *args),
        "commands/luo.py": via_script(ex, *args),
    }
    assert {door: status for door, (status, _) in got.items()} == dict.fromkeys(got, 1)
    docs = [_without_target(json.loads(out)) for _, out in got.values()]
    assert docs[0]["rows"] and docs[0] == docs[1] == docs[2]


@pytest.mark.parametrize(
    "args",
    [("bogus",), ("check", "--session", "vm-alpha"), ("report", "--next-cmdline", "x")],
    ids=" ".join,
)
def test_usage_errors_exit_2_in_every_door(
    args: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Would catch: a door that turns a usage error into a traceback or exit 1."""
    ex = examples.load("incoming")
    assert via_luo_inspect(tmp_path, ex, *args)[0] == 2
    assert via_plugin(program("incoming"), capsys, *args)[0] == 2
    assert via_script(ex, *args)[0] == 2


def test_a_bug_in_the_tool_is_an_internal_error_not_a_finding(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Would catch: the collector's guard swallowing a bug in luo-drgn as a
    corrupt-structure finding about the kernel (exit 1): it is exit 2, one
    line, in luo-inspect and %luo."""
    from luo_drgn import blockread

    def broken(session: Any) -> Any:
        raise TypeError("a bug planted by the test")

    monkeypatch.setattr(blockread, "luo_session_file_rows", broken)
    assert main(["--example", "incoming", "check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("luo-inspect: internal error: TypeError: a bug planted by the test")
    assert "corrupt-structure" not in err and "Traceback" not in err
    with pytest.raises(CommandError, match="luo: internal error: TypeError: a bug planted"):
        run_command(program("incoming"), "luo check", globals={})
