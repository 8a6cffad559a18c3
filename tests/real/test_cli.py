# SPDX-License-Identifier: LGPL-2.1-or-later
"""luo-inspect, %luo and the commands/ scripts on the real fixtures.

About 700 lines: one test per option and output of the command line, each
short; tests/real/test_doors.py holds the three doors equal."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from luo_drgn import examples
from tests.support.doors import console_script, luo, program, run, run_script
from tests.support.fixtures import skip_loudly

TOP = Path(__file__).resolve().parents[2]
COMMANDS = ["summary", "handlers", "sessions", "files", "check", "report"]
FORMATS = ["text", "json", "markdown"]
KERNEL_ADDRESS = re.compile(r"0xffff[0-9a-f]{12}")
SCHEMA = json.loads(resources.files("luo_drgn").joinpath("luo-inspect-1.schema.json").read_text())
# Built once: jsonschema.validate() checks the schema itself at every call.
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
# What a document says of itself before its tool and target: the command
# that wrote it and that command's exit status (luo-inspect scan relays them).
SAYS = ["command", "exit_status"]


def example_paths(name: str) -> tuple[str, str]:
    ex = examples.load(name)
    return str(ex.core), str(ex.debug[0])


# What each command shows (besides the header), and the headings it prints.
PARTS = {
    "summary": ["luo", "findings"],
    "handlers": ["handlers"],
    "sessions": ["sessions"],
    "files": ["sessions", "holder_scan"],
    "check": ["findings", "errors", "not_in_dump"],
    "report": [
        "luo",
        "handlers",
        "sessions",
        "pending_incoming",
        "holder_scan",
        "flbs",
        "serialized_flbs",
        "findings",
        "errors",
        "not_in_dump",
    ],
}
HEADINGS = {
    "summary": ["LUO"],
    "handlers": ["File handlers"],
    "sessions": ["Sessions"],
    "files": ["Preserved files"],
    "check": ["Findings", "Errors"],
    "report": [
        "LUO",
        "File handlers",
        "Sessions",
        "Preserved files",
        "Incoming data not yet deserialized",
        "FLBs",
        "Findings",
        "Errors",
    ],
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_every_format(command: str, fmt: str) -> None:
    """Would catch: a command or format whose output drops sessions or findings, breaks the JSON
    schema, or changes the document's part order."""
    expected = examples.load("incoming").manifest["expected"]
    names = [s["name"] for s in expected["sessions"]]
    waiting = [s["name"] for s in expected["sessions"] if not s["retrieved"]]
    # Retrieved with files never retrieved: finishing them would discard those.
    discarding = [
        s["name"]
        for s in expected["sessions"]
        if s["retrieved"]
        and not s["finished"]
        and any(f["retrieve_status"] == 0 for f in s["files"])
    ]
    code, out = run("--example", "incoming", command, "--format", fmt)
    assert code == 0, out
    if fmt == "json":
        doc = json.loads(out)
        VALIDATOR.validate(doc)
        assert doc["target"]["kernel_release"] == "7.2.13"
        assert list(doc) == ["schema", *SAYS, "tool", "target", *PARTS[command]]
        assert (doc["command"], doc["exit_status"]) == (command, code)
        if "sessions" in doc:
            assert [s["name"] for s in doc["sessions"]] == names
        if "findings" in doc:
            assert sorted(f["session"] for f in doc["findings"] if f["token"] is None) == sorted(
                waiting + discarding
            )
        if "handlers" in doc:
            assert [x["compatible"] for x in doc["handlers"]] == ["memfd-v2"]
        return
    if fmt == "markdown":
        assert out.startswith("# luo-inspect report: 7.2.13")
        headings = [line[3:] for line in out.splitlines() if line.startswith("## ")]
    else:
        assert "kernel:     7.2.13" in out
        lines = out.splitlines()
        headings = [
            a for a, b in zip(lines, lines[1:]) if b and set(b) == {"-"} and len(a) == len(b)
        ]
    assert headings == HEADINGS[command] + (["Notes"] if "Notes" in headings else [])
    if command in ("sessions", "report"):
        assert all(name in out for name in names)
    if command == "files":
        with_files = [s["name"] for s in expected["sessions"] if s["files"]]
        assert with_files == ["vm-alpha", "vm-beta"]
        assert all(f"inc {name}" in out for name in with_files)
    if command in ("check", "report"):
        assert out.count("not-retrieved") == len(waiting) + 1  # + vm-alpha's 0x102
    if command == "summary":
        assert discarding == ["vm-alpha"]
        assert "findings: 1 warning, 3 info" in out
    if command == "handlers":
        assert "memfd-v2" in out


@pytest.mark.parametrize("name", examples.fixture_names())
def test_report_json_of_every_fixture(name: str) -> None:
    """Would catch: a fixture whose JSON report breaks the schema, misstates LUO's state, or exits
    other than its error findings say."""
    code, out = run("--example", name, "--format", "json", "report")
    doc = json.loads(out)
    VALIDATOR.validate(doc)
    assert list(doc) == ["schema", *SAYS, "tool", "target", *PARTS["report"]]
    assert (doc["command"], doc["exit_status"]) == ("report", code)
    expected = examples.load(name).manifest["expected"]
    assert doc["luo"]["state"] == expected["luo_state"]
    errors = [f for f in doc["findings"] if f["severity"] == "error"]
    assert code == (1 if errors else 0)
    if name.startswith("fault-"):
        want = {
            f["code"] for f in expected["fault"]["expected_findings"] if f["severity"] == "error"
        }
        assert {f["code"] for f in errors} == want


def test_json_values_are_normalised() -> None:
    """Would catch: JSON values left as drgn objects or strings where numbers belong, or a freed
    file shown with a stale refcount."""
    _, out = run("--example", "incoming", "--format", "json", "report")
    doc = json.loads(out)
    alpha = next(s for s in doc["sessions"] if s["name"] == "vm-alpha")
    assert [f["token"] for f in alpha["files"]] == [0x100, 0x101, 0x102]
    assert [f["retrieve_status"] for f in alpha["files"]] == [1, 1, 0]
    assert alpha["files"][2]["file"] is None and alpha["files"][2]["refcount"] is None
    assert alpha["files"][0]["holders"] == [{"pid": 1, "comm": "init", "fd": 6}, {"kind": "luo"}]
    assert doc["luo"]["liveupdate_num"] == 1 and doc["luo"]["incoming"]["deserialized"]


def test_files_session_filter() -> None:
    """Would catch: --session ignored, or filtering the files of the session it names."""
    _, out = run("--example", "outgoing", "files", "--session", "vm-beta", "--format", "json")
    doc = json.loads(out)
    assert [s["name"] for s in doc["sessions"]] == ["vm-beta"]
    assert [f["token"] for f in doc["sessions"][0]["files"]] == [0x100, 0x200]


@pytest.mark.parametrize("fmt", FORMATS)
def test_redact_leaves_no_kernel_address(fmt: str) -> None:
    """Would catch: a kernel address or a process name left in a redacted report, in any format."""
    code, plain = run("--example", "fault-bad-file-pointer", "report", "--format", fmt)
    assert KERNEL_ADDRESS.search(plain) and "init" in plain
    code, out = run("--example", "fault-bad-file-pointer", "--redact", "report", "--format", fmt)
    assert code == 1
    assert not KERNEL_ADDRESS.search(out), KERNEL_ADDRESS.search(out)
    assert "<addr-1>" in out and "<comm-1>" in out
    assert re.search(r"\binit\b", out) is None
    if fmt == "json":
        VALIDATOR.validate(json.loads(out))


def test_redaction_is_stable() -> None:
    """Would catch: one struct file given two placeholders, so a redacted report no longer shows
    which entries are the same object."""
    _, out = run("--example", "outgoing", "--redact", "--format", "json", "report")
    doc = json.loads(out)
    # One struct file, one placeholder, wherever it appears.
    alpha0 = doc["sessions"][0]["files"][0]
    assert alpha0["file"].startswith("<addr-")
    assert all(h.get("comm") in (None, "<comm-1>") for h in alpha0["holders"])


def test_output_file(tmp_path: Path) -> None:
    """Would catch: -o writing to stdout as well, or a Markdown report missing a section."""
    dest = tmp_path / "report.md"
    code, out = run("--example", "frozen", "report", "--format", "markdown", "-o", str(dest))
    assert code == 0 and out == ""
    text = dest.read_text()
    assert "## Sessions" in text and "## Findings" in text and "## Errors" in text


def test_exit_codes() -> None:
    """Would catch: an exit status that does not follow the error findings (0, 1), or a bad example
    name that is not exit 2."""
    assert run("--example", "outgoing", "check")[0] == 0
    assert run("--example", "fault-duplicate-token", "check")[0] == 1
    assert run("--example", "no-luo", "check")[0] == 0  # info only
    assert run("--example", "nonexistent", "check")[0] == 2


def _run_with_stderr(stderr_is_terminal: bool, *args: str) -> tuple[str, str]:
    """luo-inspect as a process, stdout a pipe, stderr a terminal (a pty) or
    a pipe: (stdout, stderr)."""
    import pty

    master, slave = pty.openpty() if stderr_is_terminal else os.pipe()  # (read, write)
    proc = subprocess.Popen(
        [sys.executable, "-m", "luo_drgn", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=TOP,
        text=True,
    )
    os.close(slave)
    out, _ = proc.communicate(timeout=120)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the pty's other end is closed
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    return out, err.decode()


def test_progress_only_on_a_terminal() -> None:
    """Would catch: progress lines written into redirected output, or left on the terminal after the
    report."""
    core, debug = example_paths("outgoing")
    out, err = _run_with_stderr(True, "-c", core, "-s", debug, "--format", "json", "report")
    # The phases, on stderr, each line overwriting the last, then erased.
    assert "luo-inspect: reading sessions..." in err
    assert "luo-inspect: reading file references..." in err
    assert err.endswith("\r\x1b[K")
    assert json.loads(out)["sessions"]  # stdout holds the JSON alone
    out, err = _run_with_stderr(False, "-c", core, "-s", debug, "--format", "json", "report")
    assert err == "" and json.loads(out)["sessions"]


def test_progress_counts_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Would catch: progress labels that skip a phase, miscount the sessions
    read, or count the holder scan's tasks otherwise than every Nth."""
    from drgn.helpers.linux.pid import for_each_task

    from luo_drgn import collector, holders
    from luo_drgn.model import Target

    ex = examples.load("outgoing")
    prog = ex.program()
    labels: list[str] = []
    monkeypatch.setattr(collector, "PROGRESS_EVERY", 2)
    monkeypatch.setattr(holders, "PROGRESS_EVERY_TASKS", 8)
    collector.collect(prog, Target("vmcore", "outgoing", None, []), labels.append)
    tasks = sum(1 for _ in for_each_task(prog))  # plain drgn
    assert tasks >= 8
    # outgoing: vm-alpha, vm-beta, vm-gamma, empty.
    assert labels == [
        "handlers",
        "sessions",
        "outgoing sessions (0/4)",
        "outgoing sessions (2/4)",
        "file references",
        *[f"file references ({n} tasks)" for n in range(8, tasks + 1, 8)],
    ]
    # No session count for as few sessions as the cadence: one phase label.
    monkeypatch.setattr(collector, "PROGRESS_EVERY", 4)
    labels.clear()
    collector.collect(prog, Target("vmcore", "outgoing", None, []), labels.append)
    assert [x for x in labels if x.startswith("outgoing")] == []


def test_whole_fault_vmcore_as_a_user_has_it() -> None:
    """Would catch: a fault found only through the fixtures' recorded writes, not in a whole vmcore
    as a user attaches it."""
    core, debug = example_paths("fault-leaked-reference")
    code, out = run("-c", core, "-s", debug, "check", "--format", "json")
    assert code == 1
    (leak,) = [f for f in json.loads(out)["findings"] if f["code"] == "leaked-file-reference"]
    assert leak["session"] == "vm-beta" and leak["token"] == 0x200


# -- bad inputs: exit 2 and one line --------------------------------------------


def bad(tmp_path: Path, what: str) -> list[str]:
    core, debug = example_paths("outgoing")
    other_debug = example_paths("no-luo")[1]
    if what == "missing":
        return ["-c", str(tmp_path / "nope"), "-s", debug]
    if what == "directory":
        return ["-c", str(tmp_path), "-s", debug]
    if what == "empty":
        (tmp_path / "empty").write_bytes(b"")
        return ["-c", str(tmp_path / "empty"), "-s", debug]
    if what == "random":
        (tmp_path / "random").write_bytes(os.urandom(65536))
        return ["-c", str(tmp_path / "random"), "-s", debug]
    if what == "truncated":
        with open(core, "rb") as f:
            (tmp_path / "truncated").write_bytes(f.read(1 << 20))
        return ["-c", str(tmp_path / "truncated"), "-s", debug]
    if what == "other-build":
        return ["-c", core, "-s", other_debug]
    if what == "no-debuginfo":
        return ["-c", core]
    if what == "missing-symbols":
        return ["-c", core, "-s", str(tmp_path / "vmlinux")]
    raise AssertionError(what)


BAD = {
    "missing": "no such file",
    "directory": "is a directory",
    "empty": "empty file",
    "random": "not a kernel vmcore",
    "truncated": "truncated or damaged",
    "other-build": "not for this kernel",
    "no-debuginfo": "no debug info found",
    "missing-symbols": "no such debug info file",
}


@pytest.mark.parametrize("what", sorted(BAD))
def test_bad_input(tmp_path: Path, what: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Would catch: a bad path, core or debug file that gives a traceback, output on stdout, or more
    than one line, instead of exit 2."""
    monkeypatch.setenv("DEBUGINFOD_URLS", "")  # no network lookups for missing debug info
    proc = subprocess.run(
        [sys.executable, "-m", "luo_drgn", *bad(tmp_path, what), "report"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("luo-inspect: ")
    assert BAD[what] in lines[0]
    assert "Traceback" not in proc.stderr


def test_userspace_core(tmp_path: Path) -> None:
    """Would catch: a userspace core dump opened as if it were a kernel's, instead of refused with
    why."""
    if shutil.which("gcore") is None:
        skip_loudly(
            "gdb is not installed, so the userspace-core test did NOT run (apt-get install gdb)"
        )
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        subprocess.run(
            ["gcore", "-o", str(tmp_path / "core"), str(sleeper.pid)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    finally:
        sleeper.kill()
    (ucore,) = tmp_path.glob("core.*")
    code, out = run("-c", str(ucore), "-s", example_paths("outgoing")[1])
    assert code == 2 and "userspace core dump" in out


# -- the real executables -----------------------------------------------------------


def test_luo_inspect_executable() -> None:
    """Would catch: a broken console-script entry point (the installed luo-inspect)."""
    exe = console_script("luo-inspect")
    proc = subprocess.run(
        [exe, "--example", "incoming", "report"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "vm-gamma" in proc.stdout and "not-retrieved" in proc.stdout


def drgn_run(
    core: str, debug: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    exe = console_script("drgn")
    return subprocess.run(
        [exe, "-q", "-c", core, "-s", debug, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


SCRIPT = str(TOP / "commands" / "luo.py")


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_script(command: str) -> None:
    """Would catch: commands/luo.py printing another document, or exiting otherwise, than luo-
    inspect for the same core (in this process: tests/real/test_doors.py runs it under drgn)."""
    status, out, err = run_script(program("fault-duplicate-token"), command, "--format", "json")
    doc = json.loads(out)
    VALIDATOR.validate(doc)
    assert doc["target"]["kernel_release"] == "7.2.13"
    # As luo-inspect: the status says whether the target has error findings,
    # whichever part of the document the command prints.
    assert status == 1, err
    if command in ("check", "report", "summary"):
        assert [f["code"] for f in doc["findings"] if f["severity"] == "error"] == [
            "duplicate-token"
        ]
    if command in ("sessions", "files", "report"):
        assert [s["name"] for s in doc["sessions"]] == ["vm-alpha", "vm-beta", "vm-gamma", "empty"]


def test_commands_script_default_and_usage_error() -> None:
    """Would catch: the drgn script without a default command, or a usage error that is a traceback
    instead of exit 2."""
    status, out, _ = run_script(program("outgoing"))
    assert status == 0 and "outgoing sessions:" in out
    status, _, err = run_script(program("outgoing"), "bogus")
    assert status == 2 and "invalid choice: 'bogus'" in err
    assert "Traceback" not in err


PLUGIN_PROBE = """
from drgn.commands import run_command
snap = run_command(prog, "luo check --format json > /dev/null")
print("RESULT", type(snap).__name__, sorted({f.code for f in snap.findings}))
"""


def test_plugin_through_its_entry_point() -> None:
    """drgn loads the plugin from the installed entry point (not an import
    by the test) and %luo returns the snapshot."""
    core, debug = example_paths("fault-duplicate-token")
    proc = drgn_run(core, debug, "-e", PLUGIN_PROBE)
    assert "RESULT Snapshot ['duplicate-token']" in proc.stdout, proc.stderr


def test_plugin_can_be_disabled() -> None:
    """Would catch: the plugin loading although DRGN_DISABLE_PLUGINS names it."""
    core, debug = example_paths("outgoing")
    proc = drgn_run(core, debug, "-e", PLUGIN_PROBE, env={"DRGN_DISABLE_PLUGINS": "luo"})
    assert "RESULT" not in proc.stdout and "luo" in proc.stderr


def test_plugin_rejects_target_options(capsys: pytest.CaptureFixture[str]) -> None:
    """Would catch: %luo accepting luo-inspect's target options, or --session with a command that
    ignores it."""
    from drgn.commands import CommandArgumentError

    prog = program("outgoing")
    with pytest.raises(CommandArgumentError, match="unrecognized arguments: -c"):
        luo(prog, "luo -c check")
    with pytest.raises(CommandArgumentError, match="--session goes with files or sessions"):
        luo(prog, "luo check --session vm-alpha")
    snap = luo(prog, "luo sessions --format json")
    assert [s.name for s in snap.sessions] == ["vm-alpha", "vm-beta", "vm-gamma", "empty"]
    doc = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in doc["sessions"]] == ["vm-alpha", "vm-beta", "vm-gamma", "empty"]


def test_plugin_help_comes_from_its_parser(capsys: pytest.CaptureFixture[str]) -> None:
    """Would catch: %luo help that lists other commands or options than its parser takes."""
    prog = program("outgoing")
    assert luo(prog, "luo help") is None
    out = capsys.readouterr().out
    assert out.startswith("usage: luo [--format {text,json,markdown}]")
    for command in [*COMMANDS, "help", "--redact", "--session NAME", "--drgn"]:
        assert command in out


def test_plugin_output_follows_drgn_redirection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Would catch: %luo writing to the terminal when drgn's command line redirects its output."""
    prog = program("fault-duplicate-token")
    dest = tmp_path / "report.md"
    snap = luo(prog, f"luo report --format markdown > {dest}")
    assert capsys.readouterr().out == ""
    text = dest.read_text()
    assert text.startswith("# luo-inspect report: 7.2.13") and "duplicate-token" in text
    assert [f.code for f in snap.findings if f.severity == "error"] == ["duplicate-token"]


DRGN_CODE_CASES = {
    "handlers": ("memfd-v2", None),
    "sessions": ("outgoing vm-beta", None),
    "files": ("vm-beta 0x100", None),
    "files --session vm-alpha": ("outgoing vm-alpha 0x", "vm-beta"),
    "sessions --session vm-gamma": ("outgoing vm-gamma", "vm-alpha"),
    "check": ("error duplicate-token", None),
    "preflight": ("refused", "accepted"),
    # early_liveupdate_param(): the next kernel keeps LUO off.
    "preflight --next-cmdline liveupdate=off": ("next-kernel-no-luo", "accepted"),
}


@pytest.mark.parametrize("command", list(DRGN_CODE_CASES))
def test_plugin_drgn_code_runs(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--drgn prints helper code built for the arguments given (drgn's
    convention); that code runs on the same program and finds what the
    command reports, narrowed as the options say."""
    prog = program("fault-duplicate-token")
    assert luo(prog, f"luo {command} --drgn") is None
    code = capsys.readouterr().out
    exec(compile(code, f"<luo {command} --drgn>", "exec"), {"prog": prog})
    out = capsys.readouterr().out
    want, unwanted = DRGN_CODE_CASES[command]
    assert want in out
    assert unwanted is None or unwanted not in out


def test_plugin_drgn_code_for_diff(capsys: pytest.CaptureFixture[str]) -> None:
    """Would catch: --drgn code for a diff that does not run, or reaches another verdict than the
    command."""
    prog = program("journey-after")
    saved = examples.DATA / "fixtures" / "journey-after" / "before.json"
    assert luo(prog, f"luo diff --before {saved} --drgn") is None
    code = capsys.readouterr().out
    assert repr(str(saved)) in code
    exec(compile(code, "<luo diff --drgn>", "exec"), {"prog": prog})
    out = capsys.readouterr().out
    # The guest's retrieve of vm-alpha's 0x101 failed (EOPNOTSUPP).
    assert "vm-alpha 257 retrieve-failed" in out and out.endswith("lost\n")


def test_python_dash_m_and_help() -> None:
    """Would catch: python -m luo_drgn broken, or --help without the commands and options."""
    proc = subprocess.run(
        [sys.executable, "-m", "luo_drgn", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "report" in proc.stdout and "--redact" in proc.stdout


def test_shell_has_the_helpers() -> None:
    """Would catch: the shell command without the helpers or luo_snapshot() in its namespace."""
    script = (
        'print("SESSIONS", [s.name.string_().decode() for s in luo_for_each_session(prog)])\n'
        'print("FINDINGS", [f.code for f in luo_snapshot().findings])\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "luo_drgn", "--example", "fault-duplicate-token", "shell"],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TOP,
    )
    assert "SESSIONS ['vm-alpha', 'vm-beta', 'vm-gamma', 'empty']" in proc.stdout
    assert "FINDINGS ['duplicate-token']" in proc.stdout


def test_text_shows_who_holds_dev_liveupdate() -> None:
    """Would catch: the summary not naming the process that holds /dev/liveupdate, or text-only
    fields leaking into JSON."""
    expected = examples.load("outgoing").manifest["expected"]["luo_device_holders"]
    want = ", ".join(f"{x['pid']}/init fd {x['fd']}" for x in expected)
    _, out = run("--example", "outgoing", "summary")
    assert f"/dev/liveupdate held by:       {want}" in out
    _, out = run("--example", "outgoing", "report", "--format", "json")
    assert "text_only" not in json.loads(out)


# -- preflight ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,status",
    [
        # What each run's next kernel did: the standard scenario's retrieved
        # its sessions (the incoming fixture); doomed's panicked; the faults'
        # failed every open (EIO) or lost sessions silently.
        ("outgoing", 0),
        ("frozen", 0),
        ("doomed", 1),
        ("doomed-frozen", 1),
        ("fault-ser-file-count", 1),
        ("fault-ser-session-drop", 1),
        # No handover at all: LUO is off, or its restore failed.
        ("disabled", 1),
        ("doomed-panic", 1),
    ],
)
def test_preflight_exit_status(name: str, status: int) -> None:
    """Would catch: preflight accepting a handover the next kernel refused, or refusing one it took
    (the guests' next kernels are the oracle)."""
    code, out = run("--example", name, "preflight")
    assert code == status, out
    verdict = "will accept the handover" if status == 0 else "will NOT accept the handover"
    assert f"verdict:           the next kernel {verdict}" in out


def test_preflight_json_holds_only_deciding_findings() -> None:
    """Would catch: preflight's JSON carrying findings that do not decide the handover, or a verdict
    object with wrong fields."""
    code, out = run("--example", "doomed", "preflight", "--format", "json")
    doc = json.loads(out)
    VALIDATOR.validate(doc)
    assert (doc["command"], doc["exit_status"]) == ("preflight", code)
    assert code == 1 and list(doc) == [
        "schema",
        *SAYS,
        "tool",
        "target",
        "luo",
        "preflight",
        "findings",
        "errors",
    ]
    assert doc["preflight"] == {
        "accepted": False,
        "exit_status": 1,
        "handover": "predicted",
        "sessions": 51,
        "files": 2,
        "next_cmdline": None,
        "next_cmdline_source": None,
        "next_kernel": None,
        # Nothing loaded: which kernel boots is not known.
        "next_kernel_identity": None,
        # Dumped at @@LUO-READY, before the driver's kexec_file_load().
        "kexec_image": {"loaded": False},
        "losses": 0,
        "other_errors": [],
    }
    assert [f["code"] for f in doc["findings"]] == ["next-kernel-panic"]


def test_preflight_a_leak_does_not_decide() -> None:
    """fault-leaked-reference: one reference too many on vm-beta 0x200's
    struct file.  Neither the freeze (luo_file_freeze(), memfd_luo_freeze())
    nor the next kernel's restore (luo_file_deserialize(),
    memfd_luo_retrieve()) reads f_ref: the handover is the outgoing
    fixture's, whose next kernel retrieved everything.  Would catch: a leak
    flipping the verdict (exit 1), or the leak hidden from preflight."""
    code, out = run("--example", "fault-leaked-reference", "preflight", "--format", "json")
    doc = json.loads(out)
    VALIDATOR.validate(doc)
    assert code == 0 and doc["preflight"]["accepted"] is True
    assert doc["findings"] == []
    assert [(f["code"], f["session"], f["token"]) for f in doc["preflight"]["other_errors"]] == [
        ("leaked-file-reference", "vm-beta", 0x200)
    ]
    code, text = run("--example", "fault-leaked-reference", "preflight")
    assert "the next kernel will accept the handover" in text
    assert "Other errors (they do not decide the handover)" in text
    assert "leaked-file-reference" in text.split("Other errors", 1)[1]


# The outgoing fixture's next kernel, booted with liveupdate=on, took the
# handover (the incoming fixture is that boot). The others below differ only
# in the command line; what they do follows from the 7.2.13 code:
# early_liveupdate_param() and kho_parse_enable() are kstrtobool() (the last
# accepted value wins), luo_early_startup() disables LUO when
# kho_is_enabled() is false, liveupdate_ioctl_init() registers
# /dev/liveupdate only when liveupdate_enabled().
@pytest.mark.parametrize(
    "cmdline,status,says",
    [
        ("console=ttyS0 liveupdate=on", 0, None),
        ("liveupdate=1", 0, None),
        ("liveupdate=y", 0, None),
        ("liveupdate=true", 0, None),
        ("liveupdate=ON", 0, None),
        ("liveupdate=e", 0, None),
        ("liveupdate=on kho=on", 0, None),
        ("liveupdate=on liveupdate=0", 1, "liveupdate=0 turns LUO off"),
        ("liveupdate=off liveupdate=on", 0, None),
        ("liveupdate=on -- liveupdate=off", 0, None),
        ("console=ttyS0", 1, "has no liveupdate= that turns LUO on"),
        ("liveupdate=on kho=off", 1, "kho=off turns KHO off"),
        ("kho=off liveupdate=on", 1, "kho=off turns KHO off"),
        ("kho=off", 1, "kho=off turns KHO off"),
    ],
)
def test_preflight_next_command_line_as_the_kernel_parses_it(
    cmdline: str, status: int, says: str | None
) -> None:
    """Would catch: liveupdate= matched as the literal "liveupdate=on" (a
    refused liveupdate=1, an accepted liveupdate=on liveupdate=0), or kho=off
    not seen at all."""
    code, out = run(
        "--example", "outgoing", "preflight", "--next-cmdline", cmdline, "--format", "json"
    )
    doc = json.loads(out)
    assert code == status and doc["preflight"]["accepted"] is (status == 0)
    no_luo = [f["message"] for f in doc["findings"] if f["code"] == "next-kernel-no-luo"]
    if says is None:
        assert no_luo == []
    else:
        assert len(no_luo) == 1 and says in no_luo[0]
        assert "liveupdate_ioctl_init() registers no /dev/liveupdate" in no_luo[0]
        if "KHO" in says:
            # luo_core.c: the warning only when liveupdate= had turned LUO on.
            warned = "luo: Disabling liveupdate because KHO is disabled" in no_luo[0]
            assert warned is ("liveupdate=on" in cmdline)


def test_preflight_next_command_line() -> None:
    """Would catch: --next-cmdline ignored, or a command line without liveupdate=on read as enabling
    LUO."""
    code, out = run("--example", "outgoing", "preflight", "--next-cmdline", "console=ttyS0")
    assert code == 1 and "next-kernel-no-luo" in out
    code, out = run(
        "--example", "outgoing", "preflight", "--next-cmdline", "console=ttyS0 liveupdate=on"
    )
    assert code == 0 and "next command line: console=ttyS0 liveupdate=on" in out


def test_preflight_in_drgn(capsys: pytest.CaptureFixture[str]) -> None:
    """Would catch: %luo preflight on a frozen core reaching another verdict than luo-inspect."""
    prog = program("doomed-frozen")
    snap = luo(prog, "luo preflight --format json")
    doc = json.loads(capsys.readouterr().out)
    assert doc["preflight"]["accepted"] is False and doc["preflight"]["handover"] == "frozen"
    assert [f.code for f in snap.findings if f.severity == "error"] == ["next-kernel-panic"]


def kernel_files(name: str) -> tuple[str, str]:
    """A committed kernel's bzImage and its (decompressed) debug info."""
    root = examples.DATA / "kernel" / name
    return str(root / "bzImage"), str(examples.decompressed(root / "vmlinux.debug.xz"))


@pytest.mark.parametrize("kernel", ["luo", "no-luo", "full"])
def test_next_kernel_build_id_is_readelfs(kernel: str) -> None:
    """Would catch: the next kernel's build ID (which ties its image to its
    debug info) misread from its ELF notes, in the bzImage's vmlinux or in
    the debug file; binutils' readelf is the oracle."""
    from luo_drgn.nextkernel import _Elf, unpack

    image, debug = kernel_files(kernel)
    notes = subprocess.run(["readelf", "-n", debug], capture_output=True, text=True, check=True)
    (want,) = re.findall(r"Build ID: ([0-9a-f]+)", notes.stdout)
    assert _Elf(Path(debug).read_bytes()).build_id() == want
    assert _Elf(unpack(Path(image).read_bytes(), image)).build_id() == want


def preflight_next(example: str, kernel: str, *more: str) -> tuple[int, str]:
    image, debug = kernel_files(kernel)
    return run(
        "--example",
        example,
        "preflight",
        "--next-kernel",
        image,
        "--next-kernel-debug",
        debug,
        *more,
    )


def test_preflight_next_kernel_with_luo() -> None:
    """Would catch: a next kernel with LUO refused, or a doomed state accepted because the next
    kernel looks fine."""
    code, out = preflight_next("outgoing", "luo", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["preflight"]["accepted"] and doc["findings"] == []
    assert doc["preflight"]["next_kernel"] == kernel_files("luo")[0]
    # The doomed state stays doomed whatever the next kernel: its own chain.
    code, out = preflight_next("doomed", "luo")
    assert code == 1 and "next-kernel-panic" in out


def test_preflight_next_kernel_without_luo() -> None:
    """Would catch: a next kernel built without CONFIG_LIVEUPDATE accepted, or its finding not
    saying what is lost."""
    code, out = preflight_next("outgoing", "no-luo", "--format", "json")
    doc = json.loads(out)
    assert code == 1
    (f,) = doc["findings"]
    assert f["code"] == "next-kernel-no-luo" and "built without CONFIG_LIVEUPDATE" in f["message"]
    assert "all 4 sessions are lost" in f["message"]


def test_preflight_next_kernel_debug_only_says_so() -> None:
    """Would catch: a debug-only file taken for a bootable next kernel without saying so."""
    _, debug = kernel_files("luo")
    code, out = run("--example", "outgoing", "preflight", "--next-kernel", debug)
    assert code == 0
    assert "holds debug info only (objcopy --only-keep-debug)" in out


def test_preflight_next_kernel_without_debug_info(monkeypatch: pytest.MonkeyPatch) -> None:
    """Would catch: a next kernel without debug info that gives a traceback instead of one clear
    line, exit 2."""
    monkeypatch.setenv("DEBUGINFOD_URLS", "")
    image, _ = kernel_files("luo")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "luo_drgn",
            "--example",
            "outgoing",
            "preflight",
            "--next-kernel",
            image,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert (
        line.startswith("luo-inspect: ")
        and "pass its debug vmlinux with --next-kernel-debug" in line
    )


def test_plugin_import_is_light() -> None:
    """Every drgn start imports the plugin: it must not bring in the tool
    (the engine, collector, renderers and tabulate cost ~150 ms), only what
    builds %luo's parser.  tests/bench/bench_import.py times it."""
    probe = (
        "import sys, luo_drgn.plugin\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('luo_drgn', 'tabulate', 'click'))))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["luo_drgn", "luo_drgn.plugin", "luo_drgn.request"], proc.stderr
