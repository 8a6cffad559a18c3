# SPDX-License-Identifier: LGPL-2.1-or-later
"""The one engine behind luo-inspect, ``%luo`` and ``commands/luo.py``.

A door parses its arguments into a :class:`~luo_drgn.request.Request` and
hands it here with the target (a program it opened, or where to open one);
:func:`run` inspects it once and returns what to print and the exit status,
the same for every door:

- the report commands: 0 no error finding, 1 error findings;
- ``preflight``: 0 the next kernel will accept the handover, 1 it will not;
- ``diff``: 0 nothing lost, 1 something lost or failed;
- 2 (raised as an error, each door prints it as one line): the target
  cannot be inspected.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Optional

from drgn import Program

from . import examples
from .analysis import inspect
from .checks import has_errors
from .collector import collect
from .diff import Diff, diff
from .model import NextKernel, Snapshot, Target
from .nextboot import next_kernel_name
from .nextkernel import NextKernelError, read_loaded_kernel, read_next_kernel
from .preflight import Preflight, preflight
from .report import (
    SavedReportError,
    load_report,
    prints_findings,
    prints_paths,
    render_chunks,
    render_diff,
)
from .request import EXIT_CANNOT_INSPECT, Request, RequestError
from .target import TargetError, open_target, own_debug_file, target_of

__all__ = (
    "EXIT_CANNOT_INSPECT",
    "INSPECT_ERRORS",
    "Failure",
    "Outcome",
    "Source",
    "decide",
    "exit_status",
    "failure",
    "inspect_source",
    "open_side",
    "run",
)

# What makes a target impossible to inspect (exit 2, one line).
INSPECT_ERRORS = (
    TargetError,
    examples.ExampleError,
    NextKernelError,
    SavedReportError,
    RequestError,
)


class Failure(NamedTuple):
    """What a door does with an exception: its exit status, the one line
    it writes, and whether it is a bug in luo-drgn (whose traceback ``-v``
    shows)."""

    status: int
    line: str
    bug: bool


def failure(e: Exception, expected: tuple[type[Exception], ...] = ()) -> Failure:
    """
    The one error-to-exit mapping of every door (luo-inspect, ``%luo``,
    ``commands/luo.py``, a scan's records): an exception a request raised,
    as an exit status and the one line that says why.

    :param expected: the door's own errors that are not bugs (a scan's
        ScanError, a target of no known kind), shown as they are
    :return: :data:`EXIT_CANNOT_INSPECT` and the line: a target that cannot
        be inspected or a usage error says what is wrong; anything else is a
        bug in luo-drgn, an "internal error" naming the exception
    """
    if isinstance(e, (*INSPECT_ERRORS, *expected)):
        return Failure(EXIT_CANNOT_INSPECT, str(e), False)
    return Failure(EXIT_CANNOT_INSPECT, f"internal error: {type(e).__name__}: {e}", True)


Progress = Optional[Callable[[str], None]]
Style = Callable[[str, str], str]


def _plain(text: str, severity: str) -> str:
    return text


@dataclass
class Source:
    """Where the target is: a program a door already has (drgn's), or a
    vmcore (``core``), the running kernel (neither), or a bundled example."""

    prog: Program | None = None
    core: str | None = None
    symbols: Sequence[str] = ()
    example: str | None = None
    verbose: bool = False

    def directories(self) -> list[Path]:
        """The -s paths that are directories: searched by build ID."""
        return [Path(s) for s in self.symbols if Path(s).is_dir()]

    def open(self) -> tuple[Program, Target]:
        if self.prog is not None:
            return self.prog, target_of(self.prog)
        if self.example is not None:
            if self.core or self.symbols:
                raise RequestError("--example opens a bundled vmcore: drop -c/-s")
            ex = examples.load(self.example)
            prog, target = open_target(str(ex.core), [str(p) for p in ex.debug])
            examples.apply_writes(prog, ex.writes)
            target.path = f"example {self.example}: {ex.sources[0]}"
            target.debuginfo = ex.sources[1:]
            return prog, target
        return open_target(self.core, self.symbols, quiet=not self.verbose)


@dataclass
class Outcome:
    """What a request gives: the output, in pieces to be written as they
    come (a host's JSON report is tens of megabytes), its exit status, and
    the snapshot or diff it came from (``%luo`` returns it into ``_``)."""

    chunks: Iterator[str]
    status: int
    value: Snapshot | Diff


def inspect_target(
    prog: Program,
    target: Target,
    request: Request,
    progress: Progress = None,
    directories: Sequence[Path] = (),
) -> Snapshot:
    """Collect ``prog`` once, add what the request knows of the next
    kernel, and run the checks.

    :param directories: where debug info is searched by build ID (``-s
        DIR``): preflight's next kernel's too
    :raises NextKernelError: for a ``--next-kernel`` that cannot be read, or
        that is not the kernel loaded for ``kexec -e``
    """
    # The next kernel decides findings: every command that prints them
    # reads the kernel the loaded image boots (check says what preflight says).
    findings = prints_findings(request.command)
    snap = collect(
        prog, target, progress=progress, paths=prints_paths(request.command), next_kernel=findings
    )
    loaded = _loaded_kernel(prog, snap, directories) if findings else None
    snap.next_kernel = loaded
    if request.next_cmdline is not None:
        snap.next_cmdline, snap.next_cmdline_source = request.next_cmdline, "--next-cmdline"
    if request.next_kernel is not None:
        given = read_next_kernel(request.next_kernel, request.next_kernel_debug, directories)
        _check_given(given, loaded, snap)
        snap.next_kernel = given
    if snap.next_kernel is not None:
        snap.notes.extend(snap.next_kernel.notes)
    return inspect(snap)


# The kernels that loaded images boot, as read_loaded_kernel() read them (or
# why it could not), the most recently used last.
_LOADED_KERNELS: dict[tuple[object, ...], NextKernel | str] = {}
# A fleet's update moves its hosts to one or two releases.
LOADED_KERNELS_KEPT = 4


def _loaded_kernel(prog: Program, snap: Snapshot, directories: Sequence[Path]) -> NextKernel | None:
    """The kernel the loaded image boots, read from its payload: with this
    kernel's own debug info when it is the same build (the image's data
    still says what the debug file cannot: kho_enable's initial value),
    else with the debug info its build ID finds."""
    image = snap.kexec_image
    if image is None or image.payload is None:
        return None
    payload, image.payload = image.payload, None  # megabytes: read once
    own = own_debug_file(prog)
    known = {snap.target.build_id: own} if snap.target.build_id and own else {}
    # Unpacking and reading a kernel takes most of a second, and the same
    # kernel comes again: a drgn session that runs %luo again, a diff's two
    # sides, a fleet worker's targets that loaded one release.  The key is
    # the payload's hash (a live kernel may have loaded another since) and
    # where its debug info is looked for.
    key = (
        hashlib.sha256(payload).digest(),
        tuple(map(str, directories)),
        tuple((k, tuple(v)) for k, v in known.items()),
    )
    read = _LOADED_KERNELS.pop(key, None)
    if read is None:
        try:
            read = read_loaded_kernel(payload, directories, known)
        except NextKernelError as e:
            read = str(e)
    _LOADED_KERNELS[key] = read  # the most recent last
    while len(_LOADED_KERNELS) > LOADED_KERNELS_KEPT:
        del _LOADED_KERNELS[next(iter(_LOADED_KERNELS))]
    if isinstance(read, str):
        image.payload_note = read
        return None
    return copy.deepcopy(read)


def _check_given(given: NextKernel, loaded: NextKernel | None, snap: Snapshot) -> None:
    """A --next-kernel must be what kexec -e boots (preflight answers for
    that kernel, ``loaded``): refused when the loaded image is another
    build."""
    if loaded is None or loaded.build_id is None or given.build_id is None:
        if snap.kexec_image is not None:
            given.notes.append(
                f"--next-kernel {given.path} could not be matched with the image loaded for "
                f"kexec -e ({snap.kexec_image.payload_note or 'its build ID is not known'})"
            )
        return
    if given.build_id != loaded.build_id:
        raise NextKernelError(
            f"--next-kernel {given.path} (build ID {given.build_id}) is not the kernel loaded "
            f"for kexec -e: that is {next_kernel_name(loaded)}; preflight answers for the "
            "kernel that will boot: drop --next-kernel, or load that kernel first"
        )


def inspect_source(source: Source, request: Request, progress: Progress = None) -> Snapshot:
    """Open ``source`` and inspect it (:func:`inspect_target`), its ``-s``
    directories searched for the next kernel's debug info too."""
    prog, target = source.open()
    return inspect_target(prog, target, request, progress, source.directories())


def open_side(
    spec: str, symbols: Sequence[str] = (), verbose: bool = False, progress: Progress = None
) -> Snapshot:
    """One side of a diff: a saved JSON report, ``live`` (the running
    kernel), ``example:NAME`` (a bundled fixture) or a vmcore.

    :raises SavedReportError: for a report that is not one, or one saved
        with ``--redact``: its session names are placeholders, and matching
        them with the other side's would be a guess
    """
    if spec.endswith(".json"):
        saved = load_report(spec)
        if saved.redacted:
            raise SavedReportError(
                f"diff: {spec} is a report saved with --redact, whose session names are "
                "placeholders that match nothing; diff the unredacted reports, then redact "
                "the diff: luo-inspect diff --redact BEFORE AFTER"
            )
        return saved
    if spec.startswith("example:"):
        source = Source(example=spec.split(":", 1)[1], verbose=verbose)
    else:
        source = Source(core=None if spec == "live" else spec, symbols=symbols, verbose=verbose)
    return inspect_source(source, Request("report"), progress)


def decide(request: Request, snap: Snapshot) -> tuple[int, Preflight | None]:
    """A report command's exit status, and preflight's verdict when the
    command is preflight (selected once: its status comes from it)."""
    if request.command == "preflight":
        verdict = preflight(snap)
        return verdict.status, verdict
    return (1 if has_errors(snap) else 0), None


def exit_status(request: Request, value: Snapshot | Diff) -> int:
    """The exit status of a request's result (see the module's text)."""
    if isinstance(value, Diff):
        return 1 if value.lost else 0
    return decide(request, value)[0]


def run(
    request: Request,
    source: Source,
    *,
    progress: Progress = None,
    done: Callable[[], None] | None = None,
    style: Style = _plain,
) -> Outcome:
    """
    Run one request on a target.

    :param progress: called with a short label as each phase of the
        collection starts
    :param done: called once the target is read, before any output
    :param style: colours a severity in text output (a terminal)
    :raises: one of :data:`INSPECT_ERRORS` when the target cannot be
        inspected or the options do not go together
    """
    request.check()
    value: Snapshot | Diff
    if request.command == "diff":
        assert request.before is not None  # checked
        before = open_side(request.before, request.before_symbols, source.verbose, progress)
        if request.after is not None:
            after = open_side(request.after, request.after_symbols, source.verbose, progress)
        else:
            after = inspect_source(source, Request("report"), progress)
        if done is not None:
            done()
        value = diff(before, after)
        chunks: Iterator[str] = iter((render_diff(value, request.fmt),))
    else:
        value = inspect_source(source, request, progress)
        if done is not None:
            done()
        status, verdict = decide(request, value)
        chunks = render_chunks(
            value,
            request.command,
            request.fmt,
            redact=request.redact,
            session=request.session,
            style=style,
            preflight=verdict,
            status=status,
        )
        return Outcome(chunks, status, value)
    return Outcome(chunks, exit_status(request, value), value)
