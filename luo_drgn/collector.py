# SPDX-License-Identifier: LGPL-2.1-or-later
"""Build a :class:`~luo_drgn.model.Snapshot` from a drgn Program.

The collector never raises because of bad memory: a fault, a broken list or
an impossible value becomes an entry in ``snapshot.errors`` saying where it
happened, and the rest of the snapshot is still filled.  A bug in luo-drgn
is not bad memory: it propagates (see :meth:`~luo_drgn.collector_base.CollectorBase.guard`).

It reads memory only through the helpers (:mod:`luo_drgn.helpers`), in the
order of one pass over memory: LUO's state, the handlers, the sessions and
their files here; what crosses the kexec in
:mod:`luo_drgn.collector_handover`; the error plumbing each read needs in
:mod:`luo_drgn.collector_base`; the holders in :mod:`luo_drgn.holders`.
"""

from __future__ import annotations

import contextlib
import time
from typing import TypeVar

from drgn import FaultError, Object, Program, ProgramFlags
from drgn.helpers.linux.panic import panic_message, panic_task
from drgn.helpers.linux.printk import get_printk_records
from drgn.helpers.linux.sched import task_cpu

from . import helpers as h
from .collector_base import Progress, kernel_name, kernel_text, unread
from .collector_handover import HandoverReads
from .helpers._words import KeptBlocks
from .helpers.bounded import WalkError
from .helpers.liveupdate import LUO_DIRECTIONS, LuoFileRow
from .holders import NOT_IN_DUMP, scan_holders
from .model import (
    Handler,
    Holder,
    HolderList,
    KexecImage,
    LuoState,
    Panic,
    PreservedFile,
    Session,
    Snapshot,
    Target,
    paused_gc,
)
from .nextkernel import ser_layouts, symbolic_errname

T = TypeVar("T")
LIVE_ATTEMPTS = 3
# Seconds to wait before reading an unexplained reference count again.
LIVE_REREAD_DELAY = 0.2
# A host with many sessions: say how far the walk got every this many.
PROGRESS_EVERY = 100


class _Collector(HandoverReads):
    # -- sections ---------------------------------------------------------

    def run(self) -> Snapshot:
        prog, snap = self.prog, self.snap
        with self.guard("the panic"):
            snap.target.panic = self.panic()
        layout = h.luo_layout(prog)
        snap.target.layout = layout.name
        if not layout.present:
            snap.luo = LuoState(
                "absent",
                "kernel built without CONFIG_LIVEUPDATE (no luo_session_global in its debug info)",
            )
            return snap
        # If luo_global itself cannot be read, walk the rest anyway: the
        # error says why the state is a guess.
        snap.luo = LuoState("enabled", "luo_global could not be read")
        with self.guard("luo_global"):
            liveupdate_num = h.luo_liveupdate_count(prog)
            if not h.luo_is_enabled(prog):
                snap.luo = LuoState(
                    "disabled", self.disabled_reason(), liveupdate_num=liveupdate_num
                )
                self.read_kernel_log()
                return snap
            snap.luo = LuoState("enabled", liveupdate_num=liveupdate_num)
            snap.luo.device_in_use = h.luo_device_in_use(prog)
            snap.kho_default = self.kho_default()
            snap.symbolic_errname = symbolic_errname(prog)
        if self.next_kernel:
            with self.guard("KHO FDT"):
                compatible = h.kho_fdt_compatible(prog)
                snap.kho_abi = compatible.decode(errors="replace") if compatible else None
        self.progress("handlers")
        with self.guard("luo_file_handler_list"):
            self.collect_handlers()
        self.progress("sessions")
        for direction in LUO_DIRECTIONS:
            with self.guard(f"{direction} sessions"):
                self.collect_sessions(direction)
        with self.guard("outgoing frozen state"):
            # 7.2: one walk of the freeze state says frozen too; before, the
            # helper's heuristic.
            freeze = h.luo_outgoing_freeze_state(prog)
            if freeze is None:
                snap.luo.frozen = h.luo_outgoing_frozen(prog)
            else:
                snap.luo.freeze, snap.luo.freeze_reserved, snap.luo.freeze_written = freeze
                snap.luo.frozen = snap.luo.freeze == "frozen"
                if snap.luo.freeze == "rolled-back":
                    self.read_kernel_log()
        with self.guard("incoming state"):
            snap.luo.incoming_present = h.luo_incoming_present(prog)
            snap.luo.incoming_deserialized = h.luo_incoming_deserialized(prog)
        with self.guard("deserialization result"):
            status = h.luo_deserialize_status(prog)
            if status is not None and status[0] and status[1]:
                snap.luo.deserialize_error = status[1]
                self.read_kernel_log()
        if snap.luo.frozen:
            with self.guard("serialized outgoing sessions"):
                snap.serialized_outgoing = self.collect_serialized(
                    h.validate_luo_for_each_serialized_session(prog, "outgoing")
                )
        if layout.block_sets:
            snap.ser_layouts = ser_layouts(prog)
            with self.guard("outgoing handover"):
                snap.handover_out = self.collect_handover_out()
            if snap.luo.incoming_deserialized is False:
                with self.guard("pending incoming handover"):
                    snap.handover_in = self.collect_handover_in()
        with self.guard("kexec_image"):
            self.collect_kexec_image()
        with self.guard("pending incoming sessions"):
            snap.pending_incoming = self.collect_serialized(
                h.luo_for_each_pending_incoming_session(prog)
            )
        if layout.preserved_xarray:
            with self.guard("luo_preserved_files"):
                snap.preserved_index = {
                    # Keyed by inode numbers, the tree is sparse and deep: each
                    # node read whole (xa_for_each() reads ~80 times an entry).
                    index: entry
                    for index, entry in h.validate_luo_for_each_preserved_file_entry(
                        prog, MAX_PRESERVED_FILES
                    )
                }
        else:
            snap.notes.append(
                f"layout {layout.generation} has no luo_preserved_files index "
                "(7.1+): the index was not checked"
            )
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

    def panic(self) -> Panic | None:
        """The panic a kdump was taken at: its message and task (the log is
        read only when the dump names a CPU that panicked)."""
        task = _crashed_task(self.prog)
        if task is None:
            return None
        messages = _panic_messages(self.prog)
        panic = Panic(
            kernel_text(messages[0]) if messages else "unknown: no panic message in the log buffer",
            kernel_text(messages[1]) if messages and messages[1] else None,
        )
        with self.guard("the task that panicked"):
            panic.pid = task.pid.value_()
            panic.comm = kernel_text(task.comm.string_())
            panic.cpu = task_cpu(task)
        return panic

    def read_kernel_log(self) -> None:
        """LUO's messages from the log buffer, read once: they explain a
        disabled LUO, a failed freeze or a failed deserialization."""
        if self.snap.luo.kernel_log:
            return
        with self.guard("kernel log"):
            self.snap.luo.kernel_log = [kernel_text(m) for m in h.luo_log_messages(self.prog)]

    def collect_kexec_image(self) -> None:
        """The image loaded for kexec -e, and the command line it boots
        with (x86-64: from its boot_params segment)."""
        try:
            image = h.kexec_loaded_image(self.prog)
        except LookupError:
            return  # no CONFIG_KEXEC_CORE: nothing can be loaded
        self.snap.kexec_read = True
        if not image:
            return
        try:
            fdt: int | None = image.kho.fdt.value_()
        except AttributeError:
            fdt = None  # before kho_fill_kimage() (6.16)
        loaded = KexecImage(
            image.value_(),
            bool(image.file_mode.value_()),
            bool(image.preserve_context.value_()),
            fdt,
        )
        self.snap.kexec_image = loaded
        try:
            found = h.kimage_boot_params_cmdline(image)
        except (FaultError, WalkError) as e:
            loaded.cmdline_note = unread("its boot_params segment", e)
            return
        if found is None:
            loaded.cmdline_note = "no boot_params segment (not an x86-64 bzImage)"
        else:
            loaded.cmdline = found[1].decode(errors="replace")
        if self.next_kernel:
            self.collect_kexec_payload(image, loaded)

    def collect_kexec_payload(self, image: Object, loaded: KexecImage) -> None:
        """The compressed kernel the loaded image boots (preflight identifies
        it): a kernel segment is megabytes, read only when asked."""
        try:
            loaded.payload = h.kimage_kernel_payload(image)
        except (FaultError, WalkError) as e:
            loaded.payload_note = unread("its kernel segment", e)
            return
        if loaded.payload is None:
            loaded.payload_note = (
                "it holds no x86-64 bzImage payload where boot_params says "
                "(loaded by kexec_load(), or another architecture)"
            )

    def kho_default(self) -> bool | None:
        """This kernel's CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT, where memory
        shows it: kho_enable starts at it, kho= changes it, and a failed
        scratch reservation clears it; LUO being enabled means it did not
        fail (luo_early_startup() disables LUO when KHO is off)."""
        cmdline = h.cmdline_saved(self.prog)
        if cmdline is None:
            return None  # no command line in the debug info: nothing to tell by
        if h.cmdline_bool(cmdline, "kho")[1] is not None:
            return None  # kho= decided, not the default
        return h.kho_is_enabled(self.prog)

    def disabled_reason(self) -> str:
        # luo_early_startup() and luo_late_startup(): why enabled is false.
        prog = self.prog
        if h.kho_is_enabled(prog) is False:
            return (
                "KHO is disabled: kexec handover was turned off or could not "
                "reserve its scratch area, so LUO disabled itself"
            )
        try:
            value = h.cmdline_param(prog, "liveupdate")
            requested = h.luo_liveupdate_requested(prog)
        except (LookupError, FaultError):
            value = requested = None
        if value is None:
            return "LUO is off by default: the kernel command line has no liveupdate=on"
        if requested is False:
            return f"liveupdate={kernel_text(value)} on the kernel command line turned LUO off"
        if requested is None:
            return (
                f"liveupdate={kernel_text(value)} on the kernel command line is not a boolean, so "
                "LUO stayed off"
            )
        return (
            "LUO was asked for (liveupdate=on) but failed to start: its restore at boot or "
            "its outgoing set-up (luo_late_startup()) failed; see the kernel log"
        )

    def collect_handlers(self) -> None:
        handlers, _ = self.drain(
            h.validate_luo_for_each_file_handler(self.prog), "luo_file_handler_list"
        )
        self.handler_objects = handlers
        for fh in handlers:
            with self.guard(f"file handler at {fh.value_():#x}"):
                self.snap.handlers.append(
                    Handler(
                        fh.value_(),
                        kernel_text(fh.compatible.string_()),
                        fh.ops.value_(),
                    )
                )

    def collect_sessions(self, direction: str) -> None:
        prog, snap = self.prog, self.snap
        d = getattr(snap.luo, direction)
        d.session_count = h.luo_session_header_count(prog, direction)
        sessions, d.sessions_complete = self.drain(
            h.validate_luo_for_each_session(prog, direction), f"{direction} sessions"
        )
        registered = {x.address: x.compatible for x in snap.handlers}
        for i, s in enumerate(sessions):
            if i % PROGRESS_EVERY == 0 and len(sessions) > PROGRESS_EVERY:
                self.progress(f"{direction} sessions ({i}/{len(sessions)})")
            with self.guard(f"{direction} session at {s.value_():#x}"):
                snap.sessions.append(self.collect_session(s, direction, registered))

    def collect_session(self, s: Object, direction: str, registered: dict[int, str]) -> Session:
        name = kernel_name(s.name.string_())
        session = Session(
            s.value_(),
            name,
            direction,
            bool(s.retrieved.value_()),
            None,
            h.luo_session_file_count(s),
        )
        session.name_terminated = h.luo_session_name_terminated(s)
        if h.luo_layout(self.prog).block_sets:
            with self.guard(f"block set of {direction} session {name!r}", name):
                session.block_set = self.block_set_state(
                    s.file_set.block_set.address_of_(),
                    f"blocks of session {name!r}",
                    name,
                    pas=direction == "outgoing",
                )
        with self.guard(f"mutex of {direction} session {name!r}", name):
            owner = h.luo_session_mutex_owner(s)
            session.mutex_owner = (owner[0], kernel_text(owner[1])) if owner else None
        # One read a luo_file (what validate_luo_session_for_each_file()
        # reads member by member), for hosts with tens of thousands.
        files, session.files_complete = self.drain(
            h.validate_luo_session_for_each_file_row(s),
            f"files of {direction} session {name!r}",
            name,
        )
        for f in files:
            with self.guard(f"luo_file at {f.address:#x} in session {name!r}", name):
                session.files.append(self.collect_file(f, name, registered, direction))
        if direction == "incoming":
            session.finished = h.luo_session_finished(s)
        return session

    def collect_file(
        self, f: LuoFileRow, session: str, registered: dict[int, str], direction: str
    ) -> PreservedFile:
        prog = self.prog
        fh = self.same(f.fh)
        pf = PreservedFile(
            address=f.address,
            token=self.same(f.token),
            handler=registered.get(fh),
            handler_address=fh,
            handler_registered=fh in registered,
            file=f.file or None,
            retrieve_status=f.retrieve_status,
            serialized_data=f.serialized_data,
        )
        if f.mutex_locked:
            owner = h.luo_file_mutex_owner(Object(prog, "struct luo_file *", f.address))
            pf.mutex_owner = (owner[0], kernel_text(owner[1])) if owner else None
        if direction == "incoming" and pf.retrieve_status == 0 and pf.serialized_data:
            # The handler's state still waits in preserved memory until a
            # retrieve restores (and frees) it.
            with self.guard(f"preserved memory of {session!r} token {pf.token:#x}"):
                pf.data_preserved = h.kho_is_preserved(prog, pf.serialized_data)
        if pf.file is not None:
            where = f"struct file {pf.file:#x} of {session!r} token {pf.token:#x}"
            file = Object(prog, "struct file *", pf.file)
            row = None
            # An outgoing memfd not retrieved: its seals, which the freeze
            # does not hand over again (memfd_luo_file_seals()).
            sealable = (
                direction == "outgoing"
                and pf.retrieve_status == 0
                and bool(pf.handler and pf.handler.startswith("memfd"))
            )
            with self.guard(where, session, pf.token):
                try:
                    row = h.file_row(prog, pf.file, seals=sealable)
                    pf.refcount, pf.inode, pf.size = row.refcount, row.ino, self.same(row.size)
                    pf.seals = row.seals
                    self.f_ops[pf.file] = self.same(row.f_op)
                except FaultError:
                    # Member by member, as far as they can be read.
                    pf.refcount = h.file_refcount(file)
                    pf.inode = int(file.f_inode.i_ino.value_())
                    pf.size = int(file.f_inode.i_size.value_())
                    pf.seals = h.memfd_luo_file_seals(file) if sealable else None
            if pf.refcount is not None and self.paths:
                try:
                    pf.path = kernel_text(h.file_fd_path(file, row))
                except Exception as e:  # noqa: BLE001 - a path is cosmetic
                    self.snap.notes.append(f"no path for {where}: {e}")
        if pf.handler and pf.handler.startswith("memfd") and pf.retrieve_status == 0:
            # After a retrieve the memfd handler frees its serialized state.
            with self.guard(f"memfd state of {session!r} token {pf.token:#x}", session, pf.token):
                memfd = h.memfd_luo_ser_scalars(prog, f.serialized_data)
                if memfd is not None:
                    # Read-only, and alike across a host's memfds: shared.
                    memfd = self._memfds.setdefault(tuple(memfd.items()), memfd)
                pf.memfd = memfd
        return pf

    def collect_holders(self) -> None:
        snap = self.snap
        files = [f for s in snap.sessions for f in s.files if f.file is not None]
        scan = scan_holders(
            self.prog,
            {f.file for f in files if f.file is not None},
            f_ops=self.f_ops,
            # A host has tens of thousands of tasks: say how far the scan got.
            progress=lambda tasks: self.progress(f"file references ({tasks} tasks)"),
        )
        for where, message, address in scan.errors:
            self.error(where, message, address)
        for where, address in scan.missing:
            self.missing(where, address)
        if scan.tasks_missing:
            snap.holders_not_in_dump.append(f"{scan.tasks_missing} tasks")
        snap.holders_not_in_dump += [kind for kind, why in scan.unscanned if why == NOT_IN_DUMP]
        luo = Holder("luo")  # one object for every file: holders are not changed
        taken: set[int] = set()
        for f in files:
            # luo_file->file is itself a reference: taken by preserve
            # (outgoing, fget() in luo_preserve_file()) or by retrieve.
            holders = scan.files.get(f.file or 0) or HolderList()
            if f.file in taken:  # two luo_files on one struct file: their own lists
                holders = HolderList(holders[:-1])
            taken.add(f.file or 0)
            holders.append(luo)
            f.holders = holders
        if snap.target.kind == "live":
            # A syscall holds a temporary fget() reference while it runs: on a
            # live kernel, read an unexplained count once more, a moment later.
            unexplained = [f for f in files if (f.refcount or 0) > len(f.holders)]
            if unexplained:
                time.sleep(LIVE_REREAD_DELAY)
            for f in unexplained:
                with self.guard(f"struct file {f.file:#x} read again", None, f.token):
                    f.refcount_reread = h.file_refcount(Object(self.prog, "struct file *", f.file))
        for s in snap.sessions:
            s.holders = scan.sessions.get(s.address, [])
        snap.luo_device_holders = scan.luo_device
        snap.holders_unscanned = scan.unscanned
        snap.holders_scanned = True


# Far above any real count of preserved files, low enough that a corrupted
# luo_preserved_files tree cannot keep the walk busy.
MAX_PRESERVED_FILES = 1 << 20
# What the kernel logs before a panic, naming its cause (lib/bug.c's
# "WARNING:", an oops, a BUG()).
_PANIC_CAUSES = (b"WARNING: ", b"BUG: ", b"Oops: ", b"kernel BUG at ")
_PANIC = b"Kernel panic - not syncing: "


def _crashed_task(prog: Program) -> Object | None:
    """drgn's panic_task(), None for a live kernel and for a dump taken
    without a panic (a QEMU memory dump)."""
    if prog.flags & ProgramFlags.IS_LIVE:
        return None
    try:
        task = panic_task(prog)
    except (LookupError, FaultError):
        return None
    return task if task else None


def _panic_messages(prog: Program) -> tuple[bytes, bytes | None] | None:
    """The panic's message (drgn's panic_message(), without its prefix),
    and the warning, oops or BUG logged before it, which names its cause;
    None when the log has no "Kernel panic" (an oops alone is not one)."""
    message = panic_message(prog)
    if message is None or not message.startswith(_PANIC):
        return None
    cause = None
    for r in get_printk_records(prog):
        if r.text.startswith(_PANIC):
            break
        if r.text.startswith(_PANIC_CAUSES):
            cause = r.text.strip()
    return message[len(_PANIC) :].strip(), cause


def collect(
    prog: Program,
    target: Target,
    progress: Progress = None,
    accounting: bool = True,
    paths: bool = True,
    next_kernel: bool = False,
) -> Snapshot:
    """
    Read everything luo-drgn knows about from ``prog`` into a snapshot.

    :param target: what ``prog`` was opened on (recorded in the snapshot)
    :param progress: called with a short label as each phase starts
    :param accounting: whether to find who holds each file (one pass over
        every task's fds and mappings)
    :param paths: whether to read each file's path (only reports print them)
    :param next_kernel: whether to read what the checks need of the next
        kernel: the loaded image's compressed kernel, this kernel's KHO ABI
    """
    # Live memory changes while it is read: a list that moved under the walk
    # shows up as a walk error, so a live target is read again, a bounded
    # number of times, until one read is consistent.
    live = target.kind == "live"
    attempts = LIVE_ATTEMPTS if live else 1
    reads = 0
    while True:
        reads += 1
        # A dump's slab pages are read once a collection (KeptBlocks): a
        # read of a vmcore costs about the same whatever its size.  Not a
        # live kernel's: /proc/kcore copies what is read twice, through a
        # bounce buffer (read_kcore_iter()), so a 4 KiB block costs more
        # than the structures it serves (in the scale benchmark's TCG guest,
        # check took 1.27 times the floor with blocks, 1.16 without).
        with paused_gc(), KeptBlocks(prog) if not live else contextlib.nullcontext():
            snap = _Collector(prog, target, progress, accounting, paths, next_kernel).run()
        if not snap.errors or reads == attempts:
            break
    if reads > 1:
        snap.notes.append(
            f"live kernel read {reads} times: "
            + (
                "the last read was consistent"
                if not snap.errors
                else "every read met changing data; the errors are the last read's"
            )
        )
    return snap
