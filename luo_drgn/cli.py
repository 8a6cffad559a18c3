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
from dataclasses import dataclass, field
from typing import Any, Callable

import click

from . import engine, examples
from .engine import Source, failure
from .request import (
    COMMANDS,
    DIFF_HELP,
    FORMATS,
    PREFLIGHT_HELP,
    SCAN_COMMANDS,
    SESSION_COMMANDS,
    Request,
    RequestError,
)

SEVERITY_COLORS = {"error": "red", "warning": "yellow", "info": "blue"}


@dataclass
class State:
    """The target and output options of one invocation."""

    source: Source = field(default_factory=Source)
    fmt: str = "text"
    output: str | None = None
    redact: bool = False
    verbose: bool = False


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


def _emit(state: State, request: Request) -> int:
    """Run ``request`` through the engine, write its output, return its
    exit status."""
    request.fmt, request.redact = state.fmt, state.redact
    to_terminal = state.output is None and sys.stdout.isatty()

    def style(text: str, severity: str) -> str:
        return click.style(text, fg=SEVERITY_COLORS.get(severity)) if to_terminal else text

    state.source.verbose = state.verbose
    try:
        outcome = engine.run(
            request, state.source, progress=_progress(), done=_progress_done, style=style
        )
    except RequestError as e:
        raise click.UsageError(str(e)) from None
    if state.output is not None:
        with open(state.output, "w") as out:
            out.writelines(outcome.chunks)
    elif state.fmt == "json":
        # Written as it is made: a host's report is tens of megabytes.
        sys.stdout.writelines(outcome.chunks)
        sys.stdout.flush()
    else:
        click.echo("".join(outcome.chunks), nl=False, color=to_terminal)
    return outcome.status


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
    state.source = Source(core=core, symbols=symbols, example=example)
    state.verbose = state.verbose or verbose
    _merge(state, fmt, output, redact)
    if ctx.invoked_subcommand is None:
        return _emit(state, Request("summary"))
    return None


def _report_command(name: str, help: str) -> None:
    """Register a command that inspects the target and prints section
    ``name``; it takes the output options (and, files and sessions,
    --session)."""

    def run_command(
        state: State,
        fmt: str | None,
        output: str | None,
        redact: bool | None,
        session: str | None = None,
    ) -> int:
        _merge(state, fmt, output, redact)
        return _emit(state, Request(name, session=session))

    fn = output_options(click.pass_obj(run_command))
    if name in SESSION_COMMANDS:
        fn = click.option("--session", metavar="NAME", help="only this session")(fn)
    cli.command(name=name, help=help)(fn)


for _name, _help in COMMANDS.items():
    _report_command(_name, _help)


@cli.command(name="preflight", help=PREFLIGHT_HELP)
@output_options
@click.option(
    "--next-cmdline",
    metavar="CMDLINE",
    help="the command line the next kernel boots with (kexec --command-line): its "
    "liveupdate= and kho= read as that kernel will (LUO and KHO must both end up on)",
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
    return _emit(
        state,
        Request(
            "preflight",
            next_cmdline=next_cmdline,
            next_kernel=next_kernel,
            next_kernel_debug=next_kernel_debug,
        ),
    )


@cli.command(name="diff", help=DIFF_HELP)
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
    _merge(state, fmt, output, redact)
    if state.source.core or state.source.example:
        raise click.UsageError("diff takes BEFORE and AFTER instead of -c/--example")
    symbols = state.source.symbols
    return _emit(
        state,
        Request(
            "diff",
            before=before,
            after=after,
            before_symbols=before_symbols or symbols,
            after_symbols=after_symbols or symbols,
        ),
    )


@cli.command(name="scan")
@click.argument("targets", nargs=-1, required=True)
@click.option(
    "--command",
    "command",
    type=click.Choice(SCAN_COMMANDS),
    default="check",
    show_default=True,
    help="what to ask of every target",
)
@click.option(
    "-s",
    "--symbols",
    metavar="PATH",
    multiple=True,
    help="debug info directory or file (repeatable): each dump's is found by its build ID",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write the records to FILE")
@click.option(
    "--summary",
    "summary_fmt",
    type=click.Choice((*FORMATS, "none")),
    default="text",
    show_default=True,
    help="the summary after the records (on stdout with -o, else on stderr)",
)
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="targets at once (default: CPUs)")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="seconds per target")
@click.option(
    "--memory",
    "memory_mb",
    type=click.IntRange(min=64),
    help="MiB of address space per target (default: memory / jobs)",
)
@click.option(
    "--scratch", type=click.Path(file_okay=False), help="where to unwrap compressed dumps"
)
@click.option("--scheduler", metavar="ADDRESS", help="run on a Dask scheduler (tcp://HOST:8786)")
@click.pass_obj
def _scan(
    state: State,
    targets: tuple[str, ...],
    command: str,
    symbols: tuple[str, ...],
    output: str | None,
    summary_fmt: str,
    jobs: int | None,
    timeout: float | None,
    memory_mb: int | None,
    scratch: str | None,
    scheduler: str | None,
) -> int:
    """Inspect many targets, one JSON Lines record each, then a summary of the
    fleet. TARGETS are vmcores (ELF, kdump; xz, gzip, bzip2 or zstd-wrapped),
    saved --format json documents, example:NAME, or directories of them.
    Exit status: the worst of the targets'."""
    from . import fleet

    if state.source.core or state.source.example:
        raise click.UsageError("scan takes TARGETS instead of -c/--example")
    try:
        return fleet.scan_command(
            targets,
            command,
            symbols=(*state.source.symbols, *symbols),
            output=output,
            summary_fmt=summary_fmt,
            jobs=jobs,
            timeout=timeout,
            memory_mb=memory_mb,
            scratch=scratch,
            scheduler=scheduler,
            verbose=state.verbose,
        )
    except fleet.ScanError as e:
        failed = failure(e, (fleet.ScanError,))
        click.echo(f"luo-inspect: {failed.line}", err=True)
        return failed.status


@cli.command(name="shell")
@click.pass_obj
def _shell(state: State) -> None:
    """drgn's interactive shell on the same target, with the luo_drgn helpers
    imported."""
    import drgn.cli

    from . import helpers

    prog, target = state.source.open()

    def add_globals(g: dict[str, Any]) -> dict[str, Any]:
        g.update({name: getattr(helpers, name) for name in helpers.__all__})
        g["luo_snapshot"] = lambda: engine.inspect_target(prog, target, Request("report"))
        return g

    drgn.cli.run_interactive(
        prog,
        globals_func=add_globals,
        banner_func=lambda banner: (
            banner + "\nluo_drgn helpers imported; luo_snapshot() returns the inspector's snapshot."
        ),
    )


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
    except Exception as e:  # noqa: BLE001 - every error is one line and exit 2
        failed = failure(e)
        line = failed.line
        if failed.bug:
            if state.verbose or "-v" in args or "--verbose" in args:
                traceback.print_exc()
            line += " (run with -v for the traceback)"
        click.echo(f"luo-inspect: {line}", err=True)
        return failed.status
    # A command's exit status (see luo_drgn.engine); None for --help.
    return result if isinstance(result, int) else 0
