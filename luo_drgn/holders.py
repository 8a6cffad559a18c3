# SPDX-License-Identifier: LGPL-2.1-or-later
"""
File Holders
------------

The ``luo_drgn.holders`` module finds who holds each ``struct file``, in one
pass over every task and every kernel object that can keep a file.

Reference accounting must not scan the system once per preserved file: a
hypervisor host may have tens of thousands of preserved files and a million
open fds.  :func:`scan_holders` walks every task once, reads each fd table
as one block of pointers (pointer size and byte order from
``prog.platform``), visits each ``files_struct`` and ``mm_struct`` once
however many threads share it, and returns a map from struct file address to
its holders, restricted to the files asked for.

Besides fd tables and mappings, a struct file is held by (as of 7.2):

- a process's executable (``mm->exe_file``);
- an SCM_RIGHTS message in flight: the ``struct scm_fp_list`` of each skb
  queued on an AF_UNIX socket (``UNIXCB(skb).fp``); since 6.10 the unix
  garbage collector tracks only sockets in flight, so the files are found in
  the receive queues of every unix socket of every network namespace
  (``net->unx.table``, where embryo sockets are hashed too);
- an io_uring ring's registered (fixed) files (``ctx->file_table``), of
  every ring an fd table holds or a task registered with
  ``IORING_REGISTER_RING_FDS`` (``tctx->registered_rings``, which keeps a
  ring whose fd was closed);
- a loop device's backing file (``lo->lo_backing_file``);
- an iommufd IOAS mapping made with ``IOMMU_IOAS_MAP_FILE`` (the
  ``iopt_pages`` of its areas hold the file).

Each kind has a helper in :mod:`luo_drgn.helpers.file_holders`;
:func:`scan_holders` feeds them from the one
task pass (rings and iommufd contexts are found in the fd tables, rings
in the tasks' registered rings too).  A kind
the target cannot show (not built in, not in its debug info, a walk that
failed) is recorded in :attr:`HolderScan.unscanned`, so that an unexplained
reference can be told from one that was not looked for.  Some holders are
never scanned: io_uring and AIO requests in flight, and a syscall's
temporary ``fget()`` (see :data:`NEVER_SCANNED`).

It also finds the fds of LUO's own files (session files and
``/dev/liveupdate``), recognised by their ``file_operations``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Callable, Optional

from drgn import FaultError, Object, Program
from drgn.helpers.linux.mm import for_each_vma
from drgn.helpers.linux.net import for_each_net
from drgn.helpers.linux.pid import for_each_task

from .helpers.bounded import WalkError
from .helpers.file_holders import (
    file_holders_known_file_operations,
    file_member_word_reader,
    files_struct_fd_array,
    io_uring_task_for_each_registered_ring,
    iommufd_ctx_for_each_mapped_file,
    loop_for_each_backing_file,
    sock_file,
    validate_io_ring_ctx_for_each_fixed_file,
    validate_unix_for_each_sock,
    validate_unix_sock_for_each_inflight_file,
)
from .model import Holder, HolderList

__all__ = (
    "NEVER_SCANNED",
    "NOT_IN_DUMP",
    "not_in_dump",
    "HolderScan",
    "scan_holders",
)

# The reason given for a holder kind whose walk met a page the dump lacks.
NOT_IN_DUMP = "not in the dump"


def not_in_dump(e: BaseException) -> bool:
    """
    Whether a read failed because the dump does not have that page: a
    filtered kdump (``makedumpfile -d``) leaves out zero, cache, user and
    free pages, and libkdumpfile reports those reads as "Excluded page".
    Missing is not corrupt: such a fault says nothing about the kernel.

    :param e: an exception from a read, or a :class:`~luo_drgn.helpers.bounded.WalkError` whose
        ``__cause__`` is one
    """
    if isinstance(e, WalkError) and e.__cause__ is not None:
        e = e.__cause__
    return isinstance(e, FaultError) and "Excluded page" in str(e)


# Holders no scan can enumerate from memory: each takes a reference for a
# while only, or keeps it where no walk reaches (a request's own file).
NEVER_SCANNED = (
    "io_uring requests in flight",
    "AIO requests in flight",
    "a syscall's temporary fget()",
)
MAX_TASKS = 1 << 22  # pid_max can be at most 2**22
# How often the scan says how far it got (tasks).
PROGRESS_EVERY_TASKS = 256
# vm.max_map_count defaults to 65530; far above that, the tree is garbage.
MAX_VMAS = 1 << 22


@dataclass
class HolderScan:
    """Result of :func:`scan_holders`."""

    # struct file address -> holders (fd slots, mappings, kernel objects)
    files: dict[int, HolderList] = field(default_factory=dict)
    # Holder kinds this target could not show: (kind, why).
    unscanned: list[tuple[str, str]] = field(default_factory=list)
    # struct luo_session address -> fds of its session file
    sessions: dict[int, list[Holder]] = field(default_factory=dict)
    luo_device: list[Holder] = field(default_factory=list)
    errors: list[tuple[str, str, int | None]] = field(default_factory=list)
    # Reads the dump could not serve (a filtered kdump): (what, address).
    missing: list[tuple[str, int | None]] = field(default_factory=list)
    tasks_missing: int = 0  # tasks that could not be read for that reason
    f_ops: dict[int, int] = field(default_factory=dict)  # struct file -> f_op
    tasks: int = 0
    fds: int = 0


@dataclass
class _Fops:
    """The ``file_operations`` that make a struct file worth a second look."""

    session: int | None
    device: int | None
    socket: int | None
    io_uring: int | None
    iommufd: int | None

    unix: bool  # AF_UNIX built in (unix_dgram_ops)
    loop: bool  # the loop driver built in (loop_index_idr)

    @classmethod
    def of(cls, prog: Program) -> _Fops:
        known = file_holders_known_file_operations(prog)
        return cls(
            known["luo_session_fops"],
            known["luo_fops"],
            known["socket_file_ops"],
            known["io_uring_fops"],
            known["iommufd_fops"],
            known["unix_dgram_ops"] is not None,
            known["loop_index_idr"] is not None,
        )

    def all(self) -> set[int]:
        return {
            a
            for a in (self.session, self.device, self.socket, self.io_uring, self.iommufd)
            if a is not None
        }


# (pid, comm, fd) of the first fd found for a struct file (fd None: held
# by a task otherwise, a registered io_uring ring).
_Owner = tuple[int, str, Optional[int]]


@dataclass
class _Pass:
    """What the task pass keeps for the kernel-object holders after it."""

    sockets: dict[int, _Owner] = field(default_factory=dict)  # socket struct file
    rings: dict[int, _Owner] = field(default_factory=dict)  # struct io_ring_ctx *
    iommufds: dict[int, _Owner] = field(default_factory=dict)  # struct iommufd_ctx *


def scan_holders(
    prog: Program,
    wanted: Iterable[int],
    progress: Callable[[int], None] | None = None,
    f_ops: dict[int, int] | None = None,
) -> HolderScan:
    """
    Walk every task once, then the kernel objects that hold files, and
    record who holds the struct files in ``wanted``.

    :param wanted: addresses of ``struct file`` objects to account for
    :param progress: called with the number of tasks seen, now and then
    :param f_ops: ``f_op`` of struct files already read (the caller read the
        wanted ones whole): not read again; the scan adds the others to it
    """
    wanted_set = set(wanted)
    scan = HolderScan(f_ops=f_ops if f_ops is not None else {})
    fops = _Fops.of(prog)
    read_f_op = file_member_word_reader(prog, "f_op")
    read_private = file_member_word_reader(prog, "private_data")
    seen_files_structs: set[int] = set()
    seen_mms: set[int] = set()
    found = _Pass()

    def record(addr: int, holder: Holder) -> None:
        holders = scan.files.get(addr)
        if holders is None:
            holders = scan.files[addr] = HolderList()
        holders.append(holder)

    try:
        tasks = for_each_task(prog)
        for task in tasks:
            scan.tasks += 1
            if scan.tasks > MAX_TASKS:
                scan.errors.append(("tasks", f"more than {MAX_TASKS} tasks", None))
                break
            if progress is not None and scan.tasks % PROGRESS_EVERY_TASKS == 0:
                progress(scan.tasks)
            try:
                pid = task.tgid.value_()
                comm = task.comm.string_().decode(errors="replace")
                files = task.files.value_()
                mm = task.mm.value_()
            except FaultError as e:
                if not_in_dump(e):
                    scan.tasks_missing += 1
                    scan.missing.append(("a task", e.address))
                else:
                    scan.errors.append(("task", "cannot read a task", e.address))
                continue
            if files and files not in seen_files_structs:
                seen_files_structs.add(files)
                _scan_fd_table(
                    task.files,
                    pid,
                    comm,
                    wanted_set,
                    fops,
                    read_f_op,
                    read_private,
                    scan,
                    found,
                    record,
                )
            if mm and mm not in seen_mms:
                seen_mms.add(mm)
                _scan_mm(task.mm, pid, comm, wanted_set, scan, record)
            if fops.io_uring is not None:
                _scan_registered_rings(task, pid, comm, fops, read_private, scan, found)
    except FaultError as e:
        if not_in_dump(e):
            # The rest of the task list is out of reach: every task after it.
            scan.missing.append(("the task list", e.address))
            scan.unscanned.append(("the rest of the task list", NOT_IN_DUMP))
        else:
            scan.errors.append(("tasks", "task list walk faulted", e.address))
    _scan_kernel_holders(prog, fops, found, wanted_set, scan, record)
    return scan


def _scan_registered_rings(
    task: Object,
    pid: int,
    comm: str,
    fops: _Fops,
    read_private: Callable[[int], int],
    scan: HolderScan,
    found: _Pass,
) -> None:
    """Rings a task registered (IORING_REGISTER_RING_FDS): one whose fd was
    closed is reachable only there, and its fixed files are holders too."""
    try:
        for _, file in io_uring_task_for_each_registered_ring(task):
            if file.f_op.value_() == fops.io_uring:
                ctx = read_private(file.value_())
                found.rings.setdefault(ctx, (pid, comm, None))
    except FaultError as e:
        _fault(scan, f"registered io_uring rings of pid {pid}", "cannot read them", e)


def _scan_kernel_holders(
    prog: Program,
    fops: _Fops,
    found: _Pass,
    wanted: set[int],
    scan: HolderScan,
    record: Callable[[int, Holder], None],
) -> None:
    """The kernel objects that hold files, each walked once."""

    def unscanned(kind: str, why: str) -> None:
        scan.unscanned.append((kind, why))

    def failed(kind: str, e: Exception) -> None:
        if not_in_dump(e):
            scan.unscanned.append((kind, NOT_IN_DUMP))
            scan.missing.append((kind, getattr(e, "address", None)))
        else:
            scan.unscanned.append((kind, f"the walk failed: {e}"))

    # SCM_RIGHTS messages in flight, on every unix socket's receive queue.
    if fops.socket is None or not fops.unix:
        unscanned("SCM_RIGHTS messages in flight", "AF_UNIX is not built into this kernel")
    elif _lacks_type(prog, "struct unix_skb_parms"):
        unscanned("SCM_RIGHTS messages in flight", "struct unix_skb_parms is not in the debug info")
    else:
        try:
            for net in for_each_net(prog):
                for sk in validate_unix_for_each_sock(net):
                    for file in validate_unix_sock_for_each_inflight_file(sk):
                        addr = file.value_()
                        if addr not in wanted:
                            continue
                        pid, comm, fd = _owner_of_sock(sk, found)
                        record(addr, Holder("scm", pid, comm, fd, obj=sk.value_()))
        except (FaultError, WalkError) as e:
            failed("SCM_RIGHTS messages in flight", e)

    # io_uring fixed files, of every ring an fd table holds.
    if fops.io_uring is None:
        unscanned("io_uring fixed files", "io_uring is not built into this kernel")
    else:
        for ctx_addr, (pid, comm, fd) in found.rings.items():
            ctx = Object(prog, "struct io_ring_ctx *", ctx_addr)
            try:
                for slot, file in validate_io_ring_ctx_for_each_fixed_file(ctx):
                    if file.value_() in wanted:
                        record(
                            file.value_(),
                            Holder("io_uring", pid, comm, fd, obj=ctx_addr, slot=slot),
                        )
            except (FaultError, WalkError) as e:
                failed(f"io_uring fixed files of ring {ctx_addr:#x}", e)

    # Loop devices' backing files.
    if not fops.loop:
        unscanned("loop devices", "the loop driver is not built into this kernel")
    else:
        try:
            for lo, file in loop_for_each_backing_file(prog):
                if file.value_() in wanted:
                    record(
                        file.value_(),
                        Holder("loop", obj=lo.value_(), device=f"loop{lo.lo_number.value_()}"),
                    )
        except (FaultError, WalkError) as e:
            failed("loop devices", e)

    # iommufd IOAS mappings of files, of every iommufd an fd table holds.
    if fops.iommufd is None:
        unscanned("iommufd IOAS mappings", "iommufd is not built into this kernel")
    else:
        for ictx_addr, (pid, comm, fd) in found.iommufds.items():
            ictx = Object(prog, "struct iommufd_ctx *", ictx_addr)
            try:
                for ioas, file in iommufd_ctx_for_each_mapped_file(ictx):
                    if file.value_() in wanted:
                        record(
                            file.value_(),
                            Holder(
                                "iommufd",
                                pid,
                                comm,
                                fd,
                                obj=ioas.value_(),
                                ioas=ioas.obj.id.value_(),
                            ),
                        )
            except (FaultError, WalkError) as e:
                failed(f"iommufd IOAS mappings of {ictx_addr:#x}", e)


def _lacks_type(prog: Program, name: str) -> bool:
    try:
        prog.type(name)
    except LookupError:
        return True
    return False


def _owner_of_sock(sk: Object, found: _Pass) -> tuple[int | None, str | None, int | None]:
    """The fd through which a process holds socket ``sk``, where one does
    (an embryo socket, or one itself in flight, has none)."""
    file = sock_file(sk)
    if not file:
        return None, None, None
    owner = found.sockets.get(file)
    return owner if owner is not None else (None, None, None)


def _fault(scan: HolderScan, where: str, message: str, e: FaultError) -> None:
    """A fault in the task pass: an error, or memory the dump lacks (then
    the holders it would have shown are unknown, which is not corruption)."""
    if not_in_dump(e):
        scan.missing.append((where, e.address))
        scan.unscanned.append((where, NOT_IN_DUMP))
    else:
        scan.errors.append((where, message, e.address))


def _scan_fd_table(
    files: Object,
    pid: int,
    comm: str,
    wanted: set[int],
    fops: _Fops,
    read_f_op: Callable[[int], int],
    read_private: Callable[[int], int],
    scan: HolderScan,
    found: _Pass,
    record: Callable[[int, Holder], None],
) -> None:
    special = fops.all()
    try:
        slots = files_struct_fd_array(files)
    except WalkError as e:
        scan.errors.append((f"fd table of pid {pid}", e.reason, e.address))
        return
    except FaultError as e:
        _fault(scan, f"fd table of pid {pid}", "cannot read the fd table", e)
        return
    held, f_ops = scan.files, scan.f_ops  # the hot loop: a million slots on a host
    fds = 0
    for fd, addr in enumerate(slots):
        if not addr:
            continue
        fds += 1
        if addr in wanted:
            holders = held.get(addr)
            if holders is None:
                holders = held[addr] = HolderList()
            holders.add_fd(pid, comm, fd)
        if not special:
            continue
        try:
            f_op = f_ops.get(addr)
            if f_op is None:
                # One read per distinct struct file, however many fds share it.
                f_op = f_ops[addr] = read_f_op(addr)
            if f_op not in special:
                continue
            holder = Holder("fd", pid=pid, comm=comm, fd=fd)
            if f_op == fops.device:
                scan.luo_device.append(holder)
            elif f_op == fops.session:
                session = read_private(addr)
                scan.sessions.setdefault(session, []).append(holder)
            elif f_op == fops.socket:
                found.sockets.setdefault(addr, (pid, comm, fd))
            elif f_op == fops.io_uring:
                ctx = read_private(addr)
                found.rings.setdefault(ctx, (pid, comm, fd))
            elif f_op == fops.iommufd:
                ictx = read_private(addr)
                found.iommufds.setdefault(ictx, (pid, comm, fd))
        except FaultError as e:
            _fault(scan, f"fd {fd} of pid {pid}", "cannot read struct file", e)
    scan.fds += fds


def _scan_mm(
    mm: Object,
    pid: int,
    comm: str,
    wanted: set[int],
    scan: HolderScan,
    record: Callable[[int, Holder], None],
) -> None:
    """The mappings of an address space, and its executable file."""
    try:
        exe = mm.exe_file.value_()
        if exe and exe in wanted:
            record(exe, Holder("exe", pid=pid, comm=comm))
    except FaultError as e:
        _fault(scan, f"executable of pid {pid}", "cannot read mm->exe_file", e)
    try:
        for n, vma in enumerate(for_each_vma(mm)):
            if n >= MAX_VMAS:
                scan.errors.append(
                    (f"mappings of pid {pid}", f"more than {MAX_VMAS} VMAs", mm.value_())
                )
                return
            vm_file = vma.vm_file.value_()
            if vm_file and vm_file in wanted:
                record(vm_file, Holder("vma", pid=pid, comm=comm, vma=vma.vm_start.value_()))
    except FaultError as e:
        _fault(scan, f"mappings of pid {pid}", "cannot walk the VMAs", e)
