"""Build a :class:`~luo_drgn.model.Snapshot` from a drgn Program.

The collector never raises because of bad memory: a fault, a broken list or
an impossible value becomes an entry in ``snapshot.errors`` saying where it
happened, and the rest of the snapshot is still filled.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional, TypeVar

from drgn import FaultError, Object, Program
from drgn.helpers.linux.fs import d_path

from . import helpers as h
from .holders import scan_holders
from .layout import Layout, luo_layout
from .model import (
    Flb, Handler, Holder, LuoState, PreservedFile, SerializedFile, SerializedSession,
    Session, Snapshot, Target, WalkErrorRecord,
)
from .walk import WalkError

T = TypeVar("T")
LIVE_ATTEMPTS = 3
Progress = Optional[Callable[[str], None]]


class _Collector:
    def __init__(self, prog: Program, target: Target, progress: Progress,
                 accounting: bool) -> None:
        self.prog = prog
        self.accounting = accounting
        self.handler_objects: list[Object] = []  # struct liveupdate_file_handler *
        self.snap = Snapshot(target=target)
        self.progress = progress or (lambda msg: None)

    # -- error plumbing ---------------------------------------------------

    def error(self, where: str, message: str, address: Optional[int] = None,
              session: Optional[str] = None, token: Optional[int] = None) -> None:
        if address is not None:
            message += f" at {address:#x}"
        self.snap.errors.append(WalkErrorRecord(where, message, address, session, token))

    @contextlib.contextmanager
    def guard(self, where: str, session: Optional[str] = None,
              token: Optional[int] = None) -> Iterator[None]:
        """Turn whatever bad memory throws at us into an error entry."""
        try:
            yield
        except WalkError as e:
            # ``where`` names the list the walk was on (e.what says it again).
            self.error(where, e.reason, e.address, session, token)
        except FaultError as e:
            self.error(where, f"memory fault: {e.message}", e.address, session, token)
        except Exception as e:  # noqa: BLE001 - never a traceback on a bad core
            self.error(where, f"{type(e).__name__}: {e}", None, session, token)

    def drain(self, it: Iterator[T], where: str,
              session: Optional[str] = None) -> tuple[list[T], bool]:
        """Read an iterator to its end or its first error; say which."""
        out: list[T] = []
        with self.guard(where, session):
            out.extend(it)
            return out, True
        return out, False

    # -- sections ---------------------------------------------------------

    def run(self) -> Snapshot:
        prog, snap = self.prog, self.snap
        layout = luo_layout(prog)
        snap.target.layout = layout.name
        if not layout.present:
            snap.luo = LuoState("absent", "kernel built without CONFIG_LIVEUPDATE "
                                          "(no luo_session_global in its debug info)")
            return snap
        # If luo_global itself cannot be read, walk the rest anyway: the
        # error says why the state is a guess.
        snap.luo = LuoState("enabled", "luo_global could not be read")
        with self.guard("luo_global"):
            if not h.luo_enabled(prog):
                snap.luo = LuoState("disabled", self.disabled_reason())
                return snap
            snap.luo = LuoState("enabled", liveupdate_num=h.luo_liveupdate_num(prog))
        self.progress("handlers")
        with self.guard("luo_file_handler_list"):
            self.collect_handlers()
        self.progress("sessions")
        for direction in h.DIRECTIONS:
            with self.guard(f"{direction} sessions"):
                self.collect_sessions(direction, layout)
        with self.guard("outgoing frozen state"):
            snap.luo.frozen = h.luo_outgoing_frozen(prog)
        with self.guard("incoming state"):
            self.collect_incoming_state(layout)
        if snap.luo.frozen:
            with self.guard("serialized outgoing sessions"):
                snap.serialized_outgoing = self.collect_serialized(
                    h.for_each_serialized_session(prog, "outgoing"))
        if snap.luo.frozen is not None:
            self.mark_frozen_files()
        with self.guard("pending incoming sessions"):
            snap.pending_incoming = self.collect_serialized(
                h.for_each_pending_incoming_session(prog))
        if layout.preserved_xarray:
            with self.guard("luo_preserved_files"):
                snap.preserved_index = {i: f.value_() for i, f in h.for_each_preserved_file(prog)}
        else:
            snap.notes.append(f"layout {layout.generation} has no luo_preserved_files index "
                              "(7.1+): the index was not checked")
        if layout.flb:
            with self.guard("luo_flb_global"):
                self.collect_flbs()
        if self.accounting:
            self.progress("file references")
            with self.guard("file reference holders"):
                self.collect_holders()
        else:
            snap.notes.append("file reference holders were not scanned")
        return snap

    def disabled_reason(self) -> str:
        prog = self.prog
        try:
            if not prog["kho_enable"].value_():
                return ("KHO is disabled: kexec handover was turned off or could not "
                        "reserve its scratch area, so LUO disabled itself")
        except LookupError:
            pass
        try:
            cmdline = prog["saved_command_line"].string_().decode(errors="replace")
        except (LookupError, FaultError):
            cmdline = ""
        if "liveupdate=" not in cmdline:
            return "liveupdate=on is not on the kernel command line"
        return "LUO failed to start (see the kernel log for luo: messages)"

    def collect_handlers(self) -> None:
        handlers, _ = self.drain(h.for_each_file_handler(self.prog), "luo_file_handler_list")
        self.handler_objects = handlers
        for fh in handlers:
            with self.guard(f"file handler at {fh.value_():#x}"):
                self.snap.handlers.append(
                    Handler(fh.value_(), h.handler_compatible(fh), fh.ops.value_()))

    def collect_sessions(self, direction: str, layout: Layout) -> None:
        prog, snap = self.prog, self.snap
        d = getattr(snap.luo, direction)
        d.session_count = h.session_header_count(prog, direction)
        sessions, d.sessions_complete = self.drain(
            h.for_each_session(prog, direction), f"{direction} sessions")
        registered = {x.address: x.compatible for x in snap.handlers}
        for s in sessions:
            with self.guard(f"{direction} session at {s.value_():#x}"):
                snap.sessions.append(self.collect_session(s, direction, layout, registered))

    def collect_session(self, s: Object, direction: str, layout: Layout,
                        registered: dict[int, str]) -> Session:
        name = h.session_name(s)
        retrieved = bool(s.retrieved.value_())
        session = Session(s.value_(), name, direction, retrieved, None, h.session_file_count(s))
        files, session.files_complete = self.drain(
            h.for_each_session_file(s), f"files of {direction} session {name!r}", name)
        for f in files:
            with self.guard(f"luo_file at {f.value_():#x} in session {name!r}", name):
                session.files.append(self.collect_file(f, name, registered))
        if direction == "incoming":
            session.finished = self.incoming_finished(s, session, layout)
        return session

    def incoming_finished(self, s: Object, session: Session, layout: Layout) -> Optional[bool]:
        # Only a retrieved session can be finished, and finishing empties it.
        if not session.retrieved or session.files or session.file_count:
            return False
        if layout.block_sets:
            # 7.2: a file set restored from the previous kernel keeps
            # block_set.incoming after finish destroys its blocks; a session
            # handed over with no files never restored one, so memory cannot
            # tell whether it was finished.
            return True if s.file_set.block_set.incoming.value_() else None
        return None

    def collect_file(self, f: Object, session: str, registered: dict[int, str]) -> PreservedFile:
        fh = f.fh.value_()
        pf = PreservedFile(
            address=f.value_(), token=f.token.value_(), handler=registered.get(fh),
            handler_address=fh, handler_registered=fh in registered,
            file=f.file.value_() or None, retrieve_status=h.luo_file_retrieve_status(f),
            serialized_data=f.serialized_data.value_(),
        )
        if pf.file is not None:
            where = f"struct file {pf.file:#x} of {session!r} token {pf.token:#x}"
            with self.guard(where, session, pf.token):
                pf.refcount = h.file_refcount(f.file)
                pf.inode = f.file.f_inode.i_ino.value_()
            if pf.refcount is not None:
                try:
                    pf.path = file_path(f.file)
                except Exception as e:  # noqa: BLE001 - a path is cosmetic
                    self.snap.notes.append(f"no path for {where}: {e}")
        if pf.handler and pf.handler.startswith("memfd") and pf.retrieve_status == 0:
            # After a retrieve the memfd handler frees its serialized state.
            with self.guard(f"memfd state of {session!r} token {pf.token:#x}",
                            session, pf.token):
                pf.memfd = h.memfd_serialized_state(f)
        return pf

    def collect_incoming_state(self, layout: Layout) -> None:
        inc = self.prog["luo_session_global"].incoming
        luo = self.snap.luo
        luo.incoming_present = bool(inc.active.value_())
        if not luo.incoming_present:
            luo.incoming_deserialized = None
        elif layout.block_sets:
            # Deserialization destroys the incoming block set (head_pa = 0).
            luo.incoming_deserialized = not inc.block_set.head_pa.value_()
        else:
            luo.incoming_deserialized = inc.list.next.value_() != inc.list.address_

    def collect_serialized(self, sessions_it: Iterator[Object]) -> list[SerializedSession]:
        out = []
        sessions, _ = self.drain(sessions_it, "serialized sessions")
        for ser in sessions:
            name = ser.name.string_().decode(errors="replace")
            _, count = h.serialized_session_files(ser)
            entries, _ = self.drain(h.for_each_serialized_file(ser),
                                    f"serialized files of {name!r}")
            out.append(SerializedSession(name, count, [
                SerializedFile(e.token.value_(), e.compatible.string_().decode(errors="replace"),
                               e.data.value_()) for e in entries]))
        return out

    def mark_frozen_files(self) -> None:
        """An outgoing file is frozen when its entry was serialized (none
        are before the freeze)."""
        written = {(s.name, f.token) for s in self.snap.serialized_outgoing for f in s.files}
        for s in self.snap.sessions:
            if s.direction == "outgoing":
                for f in s.files:
                    f.frozen = (s.name, f.token) in written

    def collect_flbs(self) -> None:
        flbs, _ = self.drain(h.for_each_flb(self.prog), "luo_flb_global.list")
        users: dict[int, list[str]] = {}
        for fh in self.handler_objects:
            for flb in h.handler_flbs(fh):
                users.setdefault(flb.value_(), []).append(h.handler_compatible(fh))
        for flb in flbs:
            out, inc = h.flb_counts(flb)
            self.snap.flbs.append(Flb(flb.value_(), flb.compatible.string_().decode(
                errors="replace"), out, inc, users.get(flb.value_(), [])))

    def collect_holders(self) -> None:
        snap = self.snap
        files = [f for s in snap.sessions for f in s.files if f.file is not None]
        scan = scan_holders(self.prog, {f.file for f in files})
        for where, message, address in scan.errors:
            self.error(where, message, address)
        for f in files:
            # LUO's own reference: taken by preserve (outgoing) or retrieve.
            f.holders = list(scan.files.get(f.file, [])) + [Holder("luo")]
            f.explained_refs = len(f.holders)
        for s in snap.sessions:
            s.holders = scan.sessions.get(s.address, [])
        snap.luo_device_holders = scan.luo_device


def file_path(file: Object) -> str:
    """
    The path of a struct file as /proc/PID/fd shows it.

    :param file: ``struct file *``
    """
    path = d_path(file.f_path.address_of_()).decode(errors="replace")
    if path.startswith("["):
        # An internal mount (memfds live on shm_mnt): d_path names the
        # filesystem; /proc shows the dentry's own name instead.
        path = "/" + file.f_path.dentry.d_name.name.string_().decode(errors="replace")
    if file.f_inode.i_nlink.value_() == 0:
        path += " (deleted)"
    return path


def collect(prog: Program, target: Target, progress: Progress = None,
            accounting: bool = True) -> Snapshot:
    """
    Read everything luo-drgn knows about from ``prog`` into a snapshot.

    :param target: what ``prog`` was opened on (recorded in the snapshot)
    :param progress: called with a short label as each phase starts
    :param accounting: whether to find who holds each file (one pass over
        every task's fds and mappings)
    """
    # Live memory changes while it is read: a list that moved under the walk
    # shows up as a walk error, so a live target is read again, a bounded
    # number of times, until one read is consistent.
    attempts = LIVE_ATTEMPTS if target.kind == "live" else 1
    for attempt in range(1, attempts + 1):
        snap = _Collector(prog, target, progress, accounting).run()
        if not snap.errors:
            break
    if attempt > 1:
        snap.notes.append(
            f"live kernel read {attempt} times: " + (
                "the last read was consistent" if not snap.errors else
                "every read met changing data; the errors are the last read's"))
    return snap
