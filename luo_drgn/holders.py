# SPDX-License-Identifier: LGPL-2.1-or-later
"""
File Holders
------------

The ``luo_drgn.holders`` module finds who holds each ``struct file``, in one
pass over every task.

Reference accounting must not scan the system once per preserved file: a
hypervisor host may have tens of thousands of preserved files and a million
open fds.  :func:`scan_holders` walks every task once, reads each fd table
as one block of pointers (pointer size and byte order from
``prog.platform``), visits each ``files_struct`` and ``mm_struct`` once
however many threads share it, and returns a map from struct file address to
its holders, restricted to the files asked for.

It also finds the fds of LUO's own files (session files and
``/dev/liveupdate``), recognised by their ``file_operations``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Callable, Literal

from drgn import FaultError, Object, PlatformFlags, Program
from drgn.helpers.linux.mm import for_each_vma
from drgn.helpers.linux.pid import for_each_task

from .model import Holder

__all__ = (
    "HolderScan",
    "scan_holders",
)

# An fd table larger than this is treated as garbage (the kernel's own
# limit, sysctl fs.nr_open, is at most 2**30 but defaults to 2**20).
MAX_FDS = 1 << 24
MAX_TASKS = 1 << 22  # pid_max can be at most 2**22
# vm.max_map_count defaults to 65530; far above that, the tree is garbage.
MAX_VMAS = 1 << 22


@dataclass
class HolderScan:
    """Result of :func:`scan_holders`."""

    # struct file address -> holders (fd slots and mappings)
    files: dict[int, list[Holder]] = field(default_factory=dict)
    # struct luo_session address -> fds of its session file
    sessions: dict[int, list[Holder]] = field(default_factory=dict)
    luo_device: list[Holder] = field(default_factory=list)
    errors: list[tuple[str, str, int | None]] = field(default_factory=list)
    f_ops: dict[int, int] = field(default_factory=dict)  # struct file -> f_op
    tasks: int = 0
    fds: int = 0


@dataclass(frozen=True)
class _Words:
    """How this target stores a pointer: size and byte order, from
    ``prog.platform``."""

    size: int
    order: Literal["little", "big"]
    fmt: str  # struct format of one pointer

    @classmethod
    def of(cls, prog: Program) -> _Words:
        platform = prog.platform
        if platform is None:
            raise ValueError("the program has no platform")
        size = 8 if platform.flags & PlatformFlags.IS_64_BIT else 4
        little = bool(platform.flags & PlatformFlags.IS_LITTLE_ENDIAN)
        return cls(
            size,
            "little" if little else "big",
            ("<" if little else ">") + ("Q" if size == 8 else "I"),
        )

    def read(self, prog: Program, address: int) -> int:
        return int.from_bytes(prog.read(address, self.size), self.order)


def _fops_address(prog: Program, name: str) -> int | None:
    try:
        address: int | None = prog[name].address_
    except LookupError:
        return None
    return address


def scan_holders(
    prog: Program, wanted: Iterable[int], progress: Callable[[int], None] | None = None
) -> HolderScan:
    """
    Walk every task once and record who holds the struct files in ``wanted``.

    :param wanted: addresses of ``struct file`` objects to account for
    :param progress: called with the number of tasks seen, now and then
    """
    wanted_set = set(wanted)
    scan = HolderScan()
    words = _Words.of(prog)
    session_fops = _fops_address(prog, "luo_session_fops")
    device_fops = _fops_address(prog, "luo_fops")
    luo_fops = {a for a in (session_fops, device_fops) if a is not None}
    file_t = prog.type("struct file")
    f_op_offset = file_t.member("f_op").offset
    private_offset = file_t.member("private_data").offset
    seen_files_structs: set[int] = set()
    seen_mms: set[int] = set()

    def record(addr: int, holder: Holder) -> None:
        scan.files.setdefault(addr, []).append(holder)

    try:
        tasks = for_each_task(prog)
        for task in tasks:
            scan.tasks += 1
            if scan.tasks > MAX_TASKS:
                scan.errors.append(("tasks", f"more than {MAX_TASKS} tasks", None))
                break
            if progress is not None and scan.tasks % 256 == 0:
                progress(scan.tasks)
            try:
                pid = task.tgid.value_()
                comm = task.comm.string_().decode(errors="replace")
                files = task.files.value_()
                mm = task.mm.value_()
            except FaultError as e:
                scan.errors.append(("task", "cannot read a task", e.address))
                continue
            if files and files not in seen_files_structs:
                seen_files_structs.add(files)
                _scan_fd_table(
                    prog,
                    words,
                    task.files,
                    pid,
                    comm,
                    wanted_set,
                    luo_fops,
                    session_fops,
                    device_fops,
                    f_op_offset,
                    private_offset,
                    scan,
                    record,
                )
            if mm and mm not in seen_mms:
                seen_mms.add(mm)
                _scan_mappings(task.mm, pid, comm, wanted_set, scan, record)
    except FaultError as e:
        scan.errors.append(("tasks", "task list walk faulted", e.address))
    return scan


def _scan_fd_table(
    prog: Program,
    words: _Words,
    files: Object,
    pid: int,
    comm: str,
    wanted: set[int],
    luo_fops: set[int],
    session_fops: int | None,
    device_fops: int | None,
    f_op_offset: int,
    private_offset: int,
    scan: HolderScan,
    record: Callable[[int, Holder], None],
) -> None:
    try:
        fdt = files.fdt
        max_fds = fdt.max_fds.value_()
        if not 0 <= max_fds <= MAX_FDS:
            scan.errors.append(
                (f"fd table of pid {pid}", f"impossible max_fds {max_fds}", fdt.value_())
            )
            return
        raw = prog.read(fdt.fd.value_(), max_fds * words.size)
    except FaultError as e:
        scan.errors.append((f"fd table of pid {pid}", "cannot read the fd table", e.address))
        return
    for fd, (addr,) in enumerate(struct.iter_unpack(words.fmt, raw)):
        if not addr:
            continue
        scan.fds += 1
        if addr in wanted:
            record(addr, Holder("fd", pid=pid, comm=comm, fd=fd))
        if not luo_fops:
            continue
        try:
            f_op = scan.f_ops.get(addr)
            if f_op is None:
                # One read per distinct struct file, however many fds share it.
                f_op = scan.f_ops[addr] = words.read(prog, addr + f_op_offset)
            if f_op not in luo_fops:
                continue
            holder = Holder("fd", pid=pid, comm=comm, fd=fd)
            if f_op == device_fops:
                scan.luo_device.append(holder)
            elif f_op == session_fops:
                session = words.read(prog, addr + private_offset)
                scan.sessions.setdefault(session, []).append(holder)
        except FaultError as e:
            scan.errors.append((f"fd {fd} of pid {pid}", "cannot read struct file", e.address))


def _scan_mappings(
    mm: Object,
    pid: int,
    comm: str,
    wanted: set[int],
    scan: HolderScan,
    record: Callable[[int, Holder], None],
) -> None:
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
        scan.errors.append((f"mappings of pid {pid}", "cannot walk the VMAs", e.address))
