# SPDX-License-Identifier: LGPL-2.1-or-later
"""luo-inspect: the command line.

It opens the target named by its options (a vmcore, the running kernel, or a
bundled example), inspects it once and renders what the command asks for.
drgn's ``%luo`` (:mod:`luo_drgn.plugin`) is the same engine behind drgn's own
command parser.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click
from drgn import Program

from . import examples
from .checks import handover_accepted, has_errors, inspect
from .collector import collect
from .diff import diff
from .model import Snapshot, Target
from .nextkernel import NextKernelError, read_next_kernel
from .render import (
    COMMANDS,
    FORMATS,
    PREFLIGHT_HELP,
    prints_paths,
    render_chunks,
    render_diff,
)
from .saved import SavedReportError, load_report
from .target import TargetError, open_target

SEVERITY_COLORS = {"error": "red", "warning": "yellow", "info": "blue"}


@dataclass
class State:
    """Options and the target of one invocation."""

    prog: Program | None = None
    target: Target | None = None
    core: str | None = None
    symbols: Sequence[str] = ()
    example: str | None = None
    fmt: str = "text"
    output: str | None = None
    redact: bool = False
    verbose: bool = False
    # preflight: what is known of the kernel the handover goes to
    next_cmdline: str | None = None
    next_kernel: str | None = None
    next_kernel_debug: Sequence[str] = ()
    snapshot: Snapshot | None = None

    def open(self) -> tuple[Program, Target]:
        if self.prog is not None and self.target is not None:
            return self.prog, self.target
        if self.example is not None:
            if self.core or self.symbols:
                raise click.UsageError("--example opens a bundled vmcore: drop -c/-s")
            ex = examples.load(self.example)
            self.prog, self.target = open_target(str(ex.core), [str(p) for p in ex.debug])
            examples.apply_writes(self.prog, ex.writes)
            self.target.path = f"example {self.example}: {ex.sources[0]}"
            self.target.debuginfo = ex.sources[1:]
        else:
            self.prog, self.target = open_target(self.core, self.symbols, quiet=not self.verbose)
        return self.prog, self.target

    def inspect(self, command: str = "report") -> Snapshot:
        if self.snapshot is None:
            prog, target = self.open()
            snap = collect(prog, target, progress=_progress(), paths=prints_paths(command))
            snap.next_cmdline = self.next_cmdline
            if self.next_kernel is not None:
                snap.next_kernel = read_next_kernel(self.next_kernel, self.next_kernel_debug)
                snap.notes.extend(snap.next_kernel.notes)
            self.snapshot = inspect(snap)
            _progress_done()
        return self.snapshot


def _progress() -> Callable[[str], None] | None:
    """Where each phase (and every PROGRESS_EVERY sessions) is announced: on
    stderr, and only when it is a terminal, so that JSON on stdout and logs
    of scripted runs stay clean."""
    if not sys.stderr.isatty():
        return None
    return lambda label: click.echo(f"\rluo-inspect: reading {label}...\033[K", err=True, nl=False)


def _progress_done() -> None:
    if sys.stderr.isatty():
        click.echo("\r\033[K", err=True, nl=False)


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--format, -o, --redact: accepted before or after the command name."""
    fn = click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default=None,
        help="output format (default: text)",
    )(fn)
    fn = click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, writable=True),
        default=None,
        help="write the output to FILE",
    )(fn)
    fn = click.option(
        "--redact",
        is_flag=True,
        default=None,
        help="replace kernel addresses and process names with placeholders",
    )(fn)
    return fn


def _merge(state: State, fmt: str | None, output: str | None, redact: bool | None) -> None:
    if fmt is not None:
        state.fmt = fmt
    if output is not None:
        state.output = output
    if redact:
        state.redact = True


def _emit(state: State, command: str, session: str | None = None) -> Snapshot:
    snap = state.inspect(command)
    to_terminal = state.output is None and sys.stdout.isatty()

    def style(text: str, severity: str) -> str:
        return click.style(text, fg=SEVERITY_COLORS.get(severity)) if to_terminal else text

    chunks = render_chunks(
        snap, command, state.fmt, redact=state.redact, session=session, style=style
    )
    if state.output is not None:
        with open(state.output, "w") as out:
            out.writelines(chunks)
    elif state.fmt == "json":
        # Written as it is made: a host's report is tens of megabytes.
        sys.stdout.writelines(chunks)
        sys.stdout.flush()
    else:
        click.echo("".join(chunks), nl=False, color=to_terminal)
    return snap


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--core",
    metavar="PATH",
    help="vmcore (ELF or kdump) to inspect; default: the running kernel",
)
@click.option(
    "-s",
    "--symbols",
    metavar="PATH",
    multiple=True,
    help="vmlinux or debug info file (repeatable); default: drgn's search",
)
@click.option(
    "--example",
    metavar="NAME",
    help="inspect a bundled example vmcore: " + ", ".join(examples.fixture_names()),
)
@output_options
@click.option("-v", "--verbose", is_flag=True, help="show tracebacks of internal errors")
@click.version_option(package_name="luo-drgn", prog_name="luo-inspect")
@click.pass_context
def cli(
    ctx: click.Context,
    core: str | None,
    symbols: tuple[str, ...],
    example: str | None,
    fmt: str | None,
    output: str | None,
    redact: bool | None,
    verbose: bool,
) -> Any:
    """Inspect the Live Update Orchestrator (LUO) of a vmcore or the running
    kernel: sessions, preserved files, what was serialized for the next
    kernel, and who holds each file.

    Exit status: 0 no error found, 1 error findings, 2 the target could not
    be inspected.
    """
    state: State = ctx.ensure_object(State)
    state.core, state.symbols, state.example = core, symbols, example
    state.verbose = state.verbose or verbose
    _merge(state, fmt, output, redact)
    if ctx.invoked_subcommand is None:
        return _emit(state, "summary")
    return None


@cli.result_callback()
def _result(result: Any, **kwargs: Any) -> Any:
    return result


def _report_command(name: str, help: str) -> None:
    """Register a command that inspects the target and prints section
    ``name``; it takes the output options (and files, --session)."""

    def run_command(
        state: State,
        fmt: str | None,
        output: str | None,
        redact: bool | None,
        session: str | None = None,
    ) -> Snapshot:
        _merge(state, fmt, output, redact)
        return _emit(state, name, session)

    fn = output_options(click.pass_obj(run_command))
    if name == "files":
        fn = click.option("--session", metavar="NAME", help="only this session's files")(fn)
    cli.command(name=name, help=help)(fn)


for _name, _help in COMMANDS.items():
    _report_command(_name, _help)


@cli.command(name="preflight", help=PREFLIGHT_HELP)
@output_options
@click.option(
    "--next-cmdline",
    metavar="CMDLINE",
    help="the command line the next kernel boots with (kexec --command-line): checked "
    "for liveupdate=on, without which it ignores the handover",
)
@click.option(
    "--next-kernel",
    metavar="IMAGE",
    type=click.Path(dir_okay=False),
    help="the kernel to kexec into (vmlinux or bzImage): its LUO ABI, serialized "
    "layouts and file handlers are compared with what is handed over",
)
@click.option(
    "--next-kernel-debug",
    metavar="PATH",
    multiple=True,
    help="debug info of --next-kernel when the image has none (a bzImage never does)",
)
@click.pass_obj
def _preflight(
    state: State,
    fmt: str | None,
    output: str | None,
    redact: bool | None,
    next_cmdline: str | None,
    next_kernel: str | None,
    next_kernel_debug: tuple[str, ...],
) -> int:
    _merge(state, fmt, output, redact)
    state.next_cmdline = next_cmdline
    state.next_kernel, state.next_kernel_debug = next_kernel, next_kernel_debug
    snap = _emit(state, "preflight")
    return 0 if handover_accepted(snap) else 1


def open_side(spec: str, symbols: Sequence[str], verbose: bool) -> Snapshot:
    """One side of a diff: a saved JSON report, "live" (the running
    kernel), "example:NAME" (a bundled fixture) or a vmcore."""
    if spec.endswith(".json"):
        return load_report(spec)
    if spec.startswith("example:"):
        state = State(example=spec.split(":", 1)[1], verbose=verbose)
    else:
        state = State(core=None if spec == "live" else spec, symbols=symbols, verbose=verbose)
    return state.inspect()


@cli.command(name="diff")
@click.argument("before")
@click.argument("after")
@click.option(
    "--before-symbols", metavar="PATH", multiple=True, help="debug info for BEFORE (default: -s)"
)
@click.option(
    "--after-symbols", metavar="PATH", multiple=True, help="debug info for AFTER (default: -s)"
)
@output_options
@click.pass_obj
def _diff(
    state: State,
    before: str,
    after: str,
    before_symbols: tuple[str, ...],
    after_symbols: tuple[str, ...],
    fmt: str | None,
    output: str | None,
    redact: bool | None,
) -> int:
    """Across a kexec: what BEFORE handed over and what AFTER (the kernel the
    live update booted) made of it, per session and token. Each side is a
    vmcore, "live" (the running kernel), a saved 'luo-inspect --format json
    report', or example:NAME. Exit 0 nothing lost, 1 something lost or
    failed, 2 cannot inspect."""
    _merge(state, fmt, output, redact)
    if state.core or state.example:
        raise click.UsageError("diff takes BEFORE and AFTER instead of -c/--example")
    if state.redact:
        raise click.UsageError("--redact does not apply to diff")
    d = diff(
        open_side(before, before_symbols or state.symbols, state.verbose),
        open_side(after, after_symbols or state.symbols, state.verbose),
    )
    text = render_diff(d, state.fmt)
    if state.output is not None:
        Path(state.output).write_text(text)
    else:
        click.echo(text, nl=False)
    return 1 if d.lost else 0


@cli.command(name="shell")
@click.pass_obj
def _shell(state: State) -> None:
    """drgn's interactive shell on the same target, with the luo_drgn helpers
    imported."""
    import drgn.cli

    from . import helpers

    prog, target = state.open()

    def add_globals(g: dict[str, Any]) -> dict[str, Any]:
        g.update({name: getattr(helpers, name) for name in helpers.__all__})
        g["luo_snapshot"] = lambda: inspect(collect(prog, target))
        return g

    drgn.cli.run_interactive(
        prog,
        globals_func=add_globals,
        banner_func=lambda banner: (
            banner + "\nluo_drgn helpers imported; luo_snapshot() returns the inspector's snapshot."
        ),
    )


def exit_status(result: Any) -> int:
    """0 no error finding, 1 error findings (or the int of --help)."""
    if isinstance(result, int):
        return result
    if isinstance(result, Snapshot):
        return 1 if has_errors(result) else 0
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``luo-inspect``: exit 0 (no error finding), 1 (errors), 2 (cannot
    inspect; one line on stderr)."""
    state = State()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="luo-inspect", standalone_mode=False, obj=state)
    except click.ClickException as e:
        e.show()
        return 2
    except click.exceptions.Abort:
        return 2
    except (TargetError, examples.ExampleError, NextKernelError, SavedReportError) as e:
        click.echo(f"luo-inspect: {e}", err=True)
        return 2
    except Exception as e:  # noqa: BLE001
        if state.verbose or "-v" in args or "--verbose" in args:
            traceback.print_exc()
        click.echo(
            f"luo-inspect: internal error: {type(e).__name__}: {e} (run with -v for the traceback)",
            err=True,
        )
        return 2
    return exit_status(result)
