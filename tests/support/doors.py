# SPDX-License-Identifier: LGPL-2.1-or-later
"""luo-inspect and %luo run in-process, as the tests drive them."""

from __future__ import annotations

import sys

import click
from click.testing import CliRunner

from luo_drgn.cli import main


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def _entry(args: tuple[str, ...]) -> None:
    """luo-inspect's entry function (main() maps findings to exit codes),
    wrapped for click's CliRunner."""
    sys.exit(main(list(args)))


def run(*args: str) -> tuple[int, str]:
    """Run luo-inspect in-process; return (exit status, stdout and stderr)."""
    result = CliRunner().invoke(_entry, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def luo(prog, command: str):  # type: ignore[no-untyped-def]
    """Run %luo as drgn's REPL does (the plugin imported, as drgn's hook does)."""
    from drgn.commands import run_command

    import luo_drgn.plugin  # noqa: F401

    return run_command(prog, command, globals={})


def console_script(name: str) -> str:
    """The console script ``name`` of the Python running the tests (its
    venv's ``bin``), not another Python's found first on PATH."""
    import shutil
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    assert found is not None, f"{name} is not installed (pip install -e .)"
    return found


SCRIPT = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "commands" / "luo.py")


def run_script(prog, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """``commands/luo.py`` as drgn runs it (``prog`` in its globals, its
    arguments in sys.argv), in this process: (exit status, stdout, stderr).
    A test per door runs it under a real drgn too."""
    import contextlib
    import io
    import runpy
    import sys

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = [SCRIPT, *args]
    status: object = "no exit status"
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(SCRIPT, init_globals={"prog": prog}, run_name="__main__")
    except SystemExit as e:
        status = e.code
    finally:
        sys.argv = argv
    assert isinstance(status, int), status
    return status, out.getvalue(), err.getvalue()


_programs: dict[str, object] = {}


def program(name: str):  # type: ignore[no-untyped-def]
    """The committed example ``name`` opened once per test process (for
    the doors that are handed a program: ``%luo``, commands/luo.py)."""
    from luo_drgn import examples

    if name not in _programs:
        _programs[name] = examples.load(name).program()
    return _programs[name]
