# SPDX-License-Identifier: LGPL-2.1-or-later
"""What every part of the collector shares: the snapshot it fills, and the
error plumbing of each read (:meth:`CollectorBase.guard` turns bad memory
into a walk error and lets a bug in luo-drgn through)."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Callable, Optional, TypeVar

from drgn import FaultError, Object, ObjectAbsentError, OutOfBoundsError, Program
from drgn.helpers import ValidationError

from .helpers.bounded import WalkError
from .holders import not_in_dump
from .model import (
    Snapshot,
    Target,
    WalkErrorRecord,
)

T = TypeVar("T")
Progress = Optional[Callable[[str], None]]


class Guard:
    """:meth:`CollectorBase.guard`'s context manager: a class, not a
    generator, because a host's collection enters tens of thousands (a few
    per preserved file) and a generator's costs three times as much."""

    __slots__ = ("collector", "session", "token", "where")

    def __init__(
        self, collector: CollectorBase, where: str, session: str | None, token: int | None
    ) -> None:
        self.collector, self.where, self.session, self.token = collector, where, session, token

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        e: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if e is None:
            return False
        c, where, session, token = self.collector, self.where, self.session, self.token
        if isinstance(e, (WalkError, FaultError)):
            if not_in_dump(e):
                c.missing(where, e.address, session, token)
            elif isinstance(e, WalkError):
                # ``where`` names the list the walk was on (e.what says it again).
                c.error(where, e.reason, e.address, session, token)
            else:
                c.error(where, f"memory fault: {e.message}", e.address, session, token)
            return True
        if isinstance(e, (ValidationError, ObjectAbsentError, OutOfBoundsError)):
            c.error(where, f"{type(e).__name__}: {e}", None, session, token)
            return True
        return False


class CollectorBase:
    """The collector's state and error plumbing."""

    def __init__(
        self,
        prog: Program,
        target: Target,
        progress: Progress,
        accounting: bool,
        paths: bool,
        next_kernel: bool = False,
    ) -> None:
        self.prog = prog
        self.accounting = accounting
        self.paths = paths
        self.next_kernel = next_kernel
        self.f_ops: dict[int, int] = {}  # struct file -> f_op, read with the file
        self._ints: dict[int, int] = {}
        self._memfds: dict[tuple[tuple[str, int], ...], dict[str, int]] = {}
        self.handler_objects: list[Object] = []  # struct liveupdate_file_handler *
        self.snap = Snapshot(target=target)
        self.progress = progress or (lambda msg: None)

    def same(self, value: int) -> int:
        """One int object for a value many files share (a handler, a token,
        an f_op): a host's snapshot has a hundred thousand of each."""
        return self._ints.setdefault(value, value)

    # -- error plumbing ---------------------------------------------------

    def error(
        self,
        where: str,
        message: str,
        address: int | None = None,
        session: str | None = None,
        token: int | None = None,
    ) -> None:
        if address is not None:
            message += f" at {address:#x}"
        self.snap.errors.append(WalkErrorRecord(where, message, address, session, token))

    def missing(
        self,
        where: str,
        address: int | None,
        session: str | None = None,
        token: int | None = None,
    ) -> None:
        """A read the dump cannot serve: not an error, a fact about the dump."""
        self.snap.not_in_dump.append(
            WalkErrorRecord(where, "not in the dump", address, session, token)
        )

    def guard(self, where: str, session: str | None = None, token: int | None = None) -> Guard:
        """Turn what bad memory throws at us into an error entry: a fault, a
        walk that stopped, a value drgn cannot use.  Anything else is a bug
        in luo-drgn, not a fact about the kernel: it propagates (the doors
        report an internal error, exit 2), never a corrupt-structure."""
        return Guard(self, where, session, token)

    def drain(
        self, it: Iterator[T], where: str, session: str | None = None
    ) -> tuple[list[T], bool]:
        """Read an iterator to its end or its first error; say which."""
        out: list[T] = []
        with self.guard(where, session):
            out.extend(it)
            return out, True
        return out, False


def kernel_text(raw: bytes) -> str:
    """A kernel string for display: undecodable bytes replaced, not fatal."""
    return raw.decode(errors="replace")


def kernel_name(raw: bytes) -> str:
    """A name the kernel compares as bytes (strncmp(): session names in
    luo_session_insert(), FLB compatibles in luo_flb_retrieve_one()), as
    text that keeps distinct bytes distinct: UTF-8 as it is, any other byte
    as ``\\xNN`` and a backslash doubled (so neither form is mistaken for
    the other).  A replacement character would make two names one."""
    if b"\\" not in raw:
        try:
            return raw.decode()
        except UnicodeDecodeError:
            pass
    return raw.replace(b"\\", b"\\\\").decode(errors="backslashreplace")


def unread(what: str, e: Exception) -> str:
    """Why a loaded image's segment could not be read: a filtered dump lacks
    it (not an error), or its pages fault."""
    return f"{what} is not in the dump" if not_in_dump(e) else f"{what} cannot be read ({e})"
