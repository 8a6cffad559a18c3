# SPDX-License-Identifier: LGPL-2.1-or-later
"""The snapshot: what luo-drgn read, as plain data.

No drgn Objects live here, so a snapshot can be checked, rendered, compared
and serialized without the program it came from.  Addresses are ints (the
renderers format them); absent values are None.
"""

from __future__ import annotations

import gc
import sys
from array import array
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, overload


@contextmanager
def paused_gc() -> Generator[None, None, None]:
    """Pause Python's cyclic garbage collector while a snapshot is built or
    rendered: it holds no cycles, and on a host with a million fds the
    collector's full passes over every object made up a third of a run."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# slots: a host's snapshot holds a Holder per fd (a million on a large one)
# and a PreservedFile per preserved file.  dataclass() takes slots= from
# Python 3.10 on; on 3.9 (RHEL 9's) these classes keep a __dict__.
SLOTS: dict[str, Any] = {"slots": True} if sys.version_info >= (3, 10) else {}


@dataclass(**SLOTS)
class Holder:
    """Who holds a reference to a struct file.

    ``kind`` is ``"fd"`` (an fd-table slot), ``"vma"`` (a mapping),
    ``"luo"`` (LUO's own reference, from preserve or retrieve), or a kernel
    object: ``"exe"`` (a process's executable), ``"scm"`` (an SCM_RIGHTS
    message queued on a unix socket), ``"io_uring"`` (a ring's fixed file),
    ``"loop"`` (a loop device's backing file), ``"iommufd"`` (an IOAS
    mapping).  For a kernel object, ``pid``/``comm``/``fd`` name the fd
    through which a process holds that object (the receiving socket, the
    ring, the iommufd), where one does.
    """

    kind: str
    pid: int | None = None
    comm: str | None = None
    fd: int | None = None
    vma: int | None = None  # start address of the mapping
    obj: int | None = None  # the holding kernel object (sock, ring, loop device, IOAS)
    slot: int | None = None  # io_uring fixed-file slot
    device: str | None = None  # loop device name
    ioas: int | None = None  # iommufd object id of the IOAS


# Process names of fd holders, each stored once (see HolderList).
_COMM_IDS: dict[str, int] = {}
_COMMS: list[str] = []


class HolderList(Sequence[Holder]):
    """The holders of one struct file, in the order they were found, stored
    compactly: a host has a holder per open fd (a million on a large one),
    so fd holders are kept as three 32-bit integers (pid, process name, fd)
    in one array and made into :class:`Holder` objects only as they are
    read.  Compares equal to a list of the same holders."""

    __slots__ = ("_fds", "_others")

    def __init__(self, holders: Iterable[Holder] = ()) -> None:
        self._fds = array("i")  # pid, process name (an index in _COMMS), fd
        # The other holders, each with its position among all of them.
        self._others: list[tuple[int, Holder]] | None = None
        for holder in holders:
            self.append(holder)

    def add_fd(self, pid: int, comm: str, fd: int) -> None:
        """Append ``Holder("fd", pid, comm, fd)``."""
        cid = _COMM_IDS.get(comm)
        if cid is None:
            cid = _COMM_IDS[comm] = len(_COMMS)
            _COMMS.append(comm)
        if 0 <= pid < 1 << 31 and 0 <= fd < 1 << 31:
            self._fds.extend((pid, cid, fd))
        else:  # a value a corrupted dump can hold, that 32 bits cannot
            self._add_other(Holder("fd", pid, comm, fd))

    def append(self, holder: Holder) -> None:
        if (
            holder.kind == "fd"
            and holder.pid is not None
            and holder.comm is not None
            and holder.fd is not None
            and holder == Holder("fd", holder.pid, holder.comm, holder.fd)
        ):
            self.add_fd(holder.pid, holder.comm, holder.fd)
        else:
            self._add_other(holder)

    def _add_other(self, holder: Holder) -> None:
        if self._others is None:
            self._others = []
        self._others.append((len(self), holder))

    def __len__(self) -> int:
        return len(self._fds) // 3 + (len(self._others) if self._others else 0)

    def __iter__(self) -> Iterator[Holder]:
        fds, others = self._fds, self._others or []
        i = j = 0
        for position in range(len(self)):
            if j < len(others) and others[j][0] == position:
                yield others[j][1]
                j += 1
            else:
                yield Holder("fd", fds[i], _COMMS[fds[i + 1]], fds[i + 2])
                i += 3

    def runs(self) -> Iterator[Holder | Iterator[tuple[int, str, int]]]:
        """The holders in order, as a writer of many wants them: each run of
        fd holders as (pid, process name, fd) tuples, unpacked from the
        array a run at a time, and each other holder as itself."""
        fds, comms = self._fds, _COMMS
        i = position = 0
        for at, holder in self._others or ():
            end = i + 3 * (at - position)
            if end > i:
                yield zip(
                    fds[i:end:3], map(comms.__getitem__, fds[i + 1 : end : 3]), fds[i + 2 : end : 3]
                )
            i, position = end, at + 1
            yield holder
        if i < len(fds):
            yield zip(fds[i::3], map(comms.__getitem__, fds[i + 1 :: 3]), fds[i + 2 :: 3])

    @overload
    def __getitem__(self, index: int) -> Holder: ...

    @overload
    def __getitem__(self, index: slice) -> list[Holder]: ...

    def __getitem__(self, index: int | slice) -> Holder | list[Holder]:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (HolderList, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"HolderList({list(self)!r})"


@dataclass
class Handler:
    address: int
    compatible: str
    ops: int | None


@dataclass(**SLOTS)
class PreservedFile:
    address: int  # struct luo_file *
    token: int
    handler: str | None  # the handler's compatible, None if unreadable
    handler_address: int
    handler_registered: bool
    file: int | None  # struct file *, None (NULL) before retrieve
    path: str | None = None
    inode: int | None = None
    size: int | None = None  # the inode's i_size, while there is a struct file
    retrieve_status: int = 0  # 0 not attempted, 1 retrieved, <0 errno
    serialized_data: int = 0
    frozen: bool | None = None  # serialized for the next kernel
    refcount: int | None = None  # -1: the struct file is dead; -2: saturated
    # Incoming, not yet retrieved: whether serialized_data starts memory KHO
    # preserved and nothing restored (None: not checked).
    data_preserved: bool | None = None
    # Live targets: the count read again when the first read had more
    # references than holders (a syscall's temporary fget() goes away).
    refcount_reread: int | None = None
    explained_refs: int | None = None
    holders: Sequence[Holder] = field(default_factory=list)  # a HolderList, when scanned
    memfd: dict[str, int] | None = None
    # Who holds its mutex (pid, comm), None when free.
    mutex_owner: tuple[int, str] | None = None
    # Outgoing memfd: its seals now (F_GET_SEALS), to compare with those
    # its serialized state hands over; None when not read.
    seals: int | None = None


@dataclass
class BlockSetState:
    """A file set's in-memory KHO block set (7.2)."""

    nblocks: int  # what it counts
    listed: int  # blocks on its list
    count_per_block: int
    # Outgoing, not frozen yet: the physical address of each listed block's
    # header, where the freeze will write (luo_drgn.freeze.predict_freeze).
    block_pas: list[int] = field(default_factory=list)
    complete: bool = True  # False when the walk of its list stopped early


@dataclass
class Session:
    address: int
    name: str
    direction: str  # "outgoing" | "incoming"
    retrieved: bool
    finished: bool | None
    file_count: int  # what the file set claims
    files: list[PreservedFile] = field(default_factory=list)
    files_complete: bool = True  # False when the walk stopped early
    holders: list[Holder] = field(default_factory=list)
    # Who holds its mutex (pid, comm), None when free.
    mutex_owner: tuple[int, str] | None = None
    name_terminated: bool = True  # a NUL within its name array
    block_set: BlockSetState | None = None  # its file set's blocks (7.2)


@dataclass(**SLOTS)
class SerializedFile:
    token: int
    handler: str | None  # None: a handler this kernel does not know (predicted)
    data: int


@dataclass
class SerializedSession:
    name: str
    file_count: int  # what the entry claims
    files: list[SerializedFile] = field(default_factory=list)


@dataclass
class HandoverBlock:
    """One block of a serialized KHO block chain."""

    pa: int  # physical address of its header
    count: int  # the header's entry count: what the next kernel reads
    next: int  # physical address of the next header, 0 at the end
    # Sessions chain, frozen: names written in slots past ``count``, which
    # the next kernel never reads.
    uncounted: list[str] = field(default_factory=list)


@dataclass
class HandoverChain:
    """A serialized KHO block chain as ``kho_block_set_restore()`` in the
    next kernel will meet it."""

    head_pa: int
    count_per_block: int  # this kernel's; the next kernel's is the same ABI
    blocks: list[HandoverBlock] = field(default_factory=list)
    # Why the walk along ``next`` stopped early: a cycle, too many blocks,
    # an unreadable header.
    fault: str | None = None
    fault_address: int | None = None


@dataclass
class HandoverSession:
    """A session entry as the restore reads it."""

    name: str
    files_pa: int  # file_set_ser.files
    file_count: int  # file_set_ser.count
    files: list[SerializedFile] = field(default_factory=list)
    chain: HandoverChain | None = None  # None when files_pa is 0


@dataclass
class Handover:
    """What one kernel hands the next, as the next one will read it.

    ``source`` says where it comes from: ``"frozen"`` (the data the freeze
    wrote, read from memory), ``"predicted"`` (outgoing, not frozen yet:
    what the freeze will write, from the live block sets and lists) or
    ``"pending"`` (incoming, handed over to this kernel and not yet
    deserialized).
    """

    direction: str  # "outgoing" | "incoming"
    source: str  # "frozen" | "predicted" | "pending"
    compatible: str | None  # luo_ser's ABI string (outgoing)
    sessions_pa: int
    chain: HandoverChain | None
    sessions: list[HandoverSession] = field(default_factory=list)
    # Outgoing: the names on the session list, in order: what should arrive.
    listed: list[str] = field(default_factory=list)


# A serialized structure's layout: size, and (member, bit offset, size) each.
SerLayout = tuple[int, tuple[tuple[str, int, int], ...]]


@dataclass
class NextKernel:
    """What the handover depends on in the kernel it goes to, read from its
    image (luo_drgn.nextkernel)."""

    path: str
    has_luo: bool
    abi: str | None  # LUO ABI string; None: not readable from what was given
    handlers: list[str] | None  # file handler compatibles; None: not readable
    layouts: dict[str, SerLayout | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # kho_enable's initial value (CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT), where
    # the image's data shows it.
    kho_default: bool | None = None
    # CONFIG_SYMBOLIC_ERRNAME (lib/errname.c): %pe prints "-EINVAL", not "-22".
    symbolic_errname: bool | None = None
    # Which build it is: the GNU build ID of its ELF notes, and linux_banner
    # ("Linux version 7.3.4 ...") with the release it names.
    build_id: str | None = None
    banner: str | None = None
    release: str | None = None
    # The KHO ABI its kho_populate() accepts (KHO_FDT_COMPATIBLE, "kho-v4").
    kho_abi: str | None = None
    # x86's CONFIG_CMDLINE (builtin_cmdline; "" with CONFIG_CMDLINE_BOOL and
    # no built-in words, None without CONFIG_CMDLINE_BOOL or not readable)
    # and whether it replaces the boot command line (CONFIG_CMDLINE_OVERRIDE;
    # None: not known).
    builtin_cmdline: str | None = None
    cmdline_override: bool | None = None
    # Where the facts come from: "--next-kernel" or "the loaded image".
    source: str = "--next-kernel"
    # The debug info the facts were read with (None: none was found, and
    # only what the image's data shows is known).
    debug_file: str | None = None
    # What could not be read of it, by fact ("debug_info", "kho_abi",
    # "kho_default", "builtin_cmdline", "cmdline_override"): a short phrase
    # each, which the report shows and the verdict weighs by its key.
    unknown: dict[str, str] = field(default_factory=dict)


@dataclass
class Flb:
    address: int
    compatible: str
    outgoing_count: int
    incoming_count: int
    handlers: list[str] = field(default_factory=list)
    # The opaque handles (.preserve()'s; the one handed over to .retrieve()).
    outgoing_data: int | None = None
    incoming_data: int | None = None
    # 7.2's incoming lifecycle: 0 not retrieved, 1 retrieved, -errno; and
    # whether .finish() ran.  None on layouts without them.
    retrieve_status: int | None = None
    finished: bool | None = None
    # Who holds each direction's lock (pid, comm): its count is in flight
    # (a put, then .unpreserve() or .finish()).
    outgoing_lock_owner: tuple[int, str] | None = None
    incoming_lock_owner: tuple[int, str] | None = None


@dataclass
class SerializedFlb:
    """One entry of a serialized FLB array (``struct luo_flb_ser``)."""

    name: str
    data: int
    count: int


@dataclass
class Direction:
    session_count: int | None = None  # what the session header claims
    sessions_complete: bool = True


@dataclass
class LuoState:
    state: str = "absent"  # "absent" | "disabled" | "enabled"
    reason: str | None = None
    liveupdate_num: int | None = None
    frozen: bool | None = None
    incoming_present: bool | None = None
    incoming_deserialized: bool | None = None
    outgoing: Direction = field(default_factory=Direction)
    incoming: Direction = field(default_factory=Direction)
    # Where the freeze stands (7.2): "idle", "freezing", "frozen" or
    # "rolled-back", with the entries reserved and the names written.
    freeze: str | None = None
    freeze_reserved: int = 0
    freeze_written: int = 0
    # luo_dev.in_use: /dev/liveupdate is open (one holder at most).
    device_in_use: bool | None = None
    # luo_session_deserialize()'s kept error (negative errno), when it ran
    # and failed: every open of /dev/liveupdate returns EIO since.
    deserialize_error: int | None = None
    # When LUO is not enabled or its deserialization failed: its messages in
    # the kernel log (the data rejected is freed by then).
    kernel_log: list[str] = field(default_factory=list)


@dataclass
class Target:
    kind: str  # "vmcore" | "live"
    path: str | None
    kernel_release: str | None
    debuginfo: list[str]
    layout: str | None = None
    panic: Panic | None = None  # a dump of a kernel that panicked
    # init_uts_ns's nodename (what sethostname() or hostname= set; the
    # kernel's default is "(none)"): which host of a fleet this is.
    hostname: str | None = None
    # The kernel's GNU build ID (hex), which names its debug info.
    build_id: str | None = None


@dataclass
class Panic:
    """Why and where the kernel of a dump panicked: what a triager reads
    first."""

    reason: str  # the "Kernel panic - not syncing:" message
    cause: str | None = None  # the warning, oops or BUG logged before it
    pid: int | None = None  # the task on the CPU that panicked
    comm: str | None = None
    cpu: int | None = None


@dataclass
class Finding:
    code: str
    severity: str  # "error" | "warning" | "info"
    message: str
    session: str | None = None
    token: int | None = None
    address: int | None = None
    # The side of ``session``: "outgoing" or "incoming" (one kernel can hold
    # a session of each name: a second live update), None when not about one.
    direction: str | None = None


@dataclass
class WalkErrorRecord:
    """Something that could not be read: where, why, and what it belonged to."""

    where: str
    message: str
    address: int | None = None
    session: str | None = None
    token: int | None = None


@dataclass
class KexecImage:
    """The image loaded for the next ``kexec -e`` (``kexec_image``), as
    ``kernel_kexec()`` will boot it."""

    address: int
    file_mode: bool  # loaded by kexec_file_load(), not kexec_load()
    preserve_context: bool  # KEXEC_PRESERVE_CONTEXT: liveupdate_reboot() is skipped
    kho_fdt: int | None  # image->kho.fdt (0: no KHO data); None: no such field
    # The command line it boots with, None when it could not be read (then
    # cmdline_note says why).
    cmdline: str | None = None
    cmdline_note: str | None = None
    # The compressed kernel it boots (x86-64 bzImage payload), read for
    # the commands that print findings; None with payload_note saying why.
    payload: bytes | None = field(default=None, repr=False)
    payload_note: str | None = None


@dataclass
class Snapshot:
    target: Target
    luo: LuoState = field(default_factory=LuoState)
    handlers: list[Handler] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    # Sessions handed over and not yet deserialized (still in KHO memory).
    pending_incoming: list[SerializedSession] = field(default_factory=list)
    # What the outgoing side serialized for the next kernel (frozen state).
    serialized_outgoing: list[SerializedSession] = field(default_factory=list)
    # The handover as the next kernel (outgoing) or this one's first open of
    # /dev/liveupdate (incoming, pending) will read it (7.2).
    handover_out: Handover | None = None
    handover_in: Handover | None = None
    # 7.2, outgoing, not frozen yet: what the freeze will start from (the
    # predicted handover_out is made of them by the analysis, not read).
    luo_ser_compatible: str | None = None  # luo_ser's ABI string
    # This kernel's CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT as memory tells it
    # (kho_enable, when no kho= set it and KHO is on), None where it cannot:
    # the next kernel's default when --next-kernel does not say.
    kho_default: bool | None = None
    # CONFIG_SYMBOLIC_ERRNAME in this kernel: how a next kernel built like it
    # prints an errno with %pe ("-EINVAL" or "-22"); None: not known.
    symbolic_errname: bool | None = None
    # The KHO ABI this kernel hands over (its KHO FDT's compatible,
    # "kho-v4"), read by the commands that print findings; None: not read
    # or no KHO.
    kho_abi: str | None = None
    session_block_set: BlockSetState | None = None  # the outgoing sessions' blocks
    # What is known of the kernel the handover goes to (preflight's options):
    # its command line and what its image says.  None: not given (the same
    # kernel is assumed where it must be).
    next_cmdline: str | None = None
    # Where next_cmdline came from: "--next-cmdline" or "the loaded kexec image".
    next_cmdline_source: str | None = None
    next_kernel: NextKernel | None = None
    # The image loaded for kexec -e: None when the kernel has none loaded
    # (or no kexec); kexec_read says whether it was looked for.
    kexec_image: KexecImage | None = None
    kexec_read: bool = False
    # This kernel's serialized structures, to compare with the next one's.
    ser_layouts: dict[str, SerLayout | None] = field(default_factory=dict)
    # luo_preserved_files (7.1+): index -> struct file *; None where absent.
    preserved_index: dict[int, int] | None = None
    flbs: list[Flb] = field(default_factory=list)
    # The serialized FLB arrays (7.2): outgoing once frozen, incoming when
    # a previous kernel handed one over; None when not read.
    serialized_flbs: dict[str, list[SerializedFlb] | None] = field(default_factory=dict)
    luo_device_holders: list[Holder] = field(default_factory=list)
    # Whether the one-pass holder scan ran (``holders`` are meaningful).
    holders_scanned: bool = False
    # Holder kinds that scan could not show on this target: (kind, why).
    holders_unscanned: list[tuple[str, str]] = field(default_factory=list)
    # What the dump does not have (pages a filtered kdump excluded): the
    # objects that could not be read, which are not errors.
    not_in_dump: list[WalkErrorRecord] = field(default_factory=list)
    # What the holder scan missed for lack of memory ("14 tasks", a holder
    # kind): an unexplained reference may be held there.
    holders_not_in_dump: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[WalkErrorRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Read back from a report written with --redact: its names are
    # placeholders, so it cannot be matched with another side.
    redacted: bool = False

    def session(self, name: str, direction: str | None = None) -> Session:
        for s in self.sessions:
            if s.name == name and direction in (None, s.direction):
                return s
        raise KeyError(name)
