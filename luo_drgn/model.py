# SPDX-License-Identifier: LGPL-2.1-or-later
"""The snapshot: what luo-drgn read, as plain data.

No drgn Objects live here, so a snapshot can be checked, rendered, compared
and serialized without the program it came from.  Addresses are ints (the
renderers format them); absent values are None.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Holder:
    """Who holds a reference to a struct file.

    ``kind`` is ``"fd"`` (an fd-table slot), ``"vma"`` (a mapping) or
    ``"luo"`` (LUO's own reference, from preserve or retrieve).
    """

    kind: str
    pid: int | None = None
    comm: str | None = None
    fd: int | None = None
    vma: int | None = None  # start address of the mapping


@dataclass
class Handler:
    address: int
    compatible: str
    ops: int | None


@dataclass
class PreservedFile:
    address: int  # struct luo_file *
    token: int
    handler: str | None  # the handler's compatible, None if unreadable
    handler_address: int
    handler_registered: bool
    file: int | None  # struct file *, None (NULL) before retrieve
    path: str | None = None
    inode: int | None = None
    retrieve_status: int = 0  # 0 not attempted, 1 retrieved, <0 errno
    serialized_data: int = 0
    frozen: bool | None = None  # serialized for the next kernel
    refcount: int | None = None  # -1: the struct file is dead
    explained_refs: int | None = None
    holders: list[Holder] = field(default_factory=list)
    memfd: dict[str, int] | None = None


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


@dataclass
class SerializedFile:
    token: int
    handler: str
    data: int


@dataclass
class SerializedSession:
    name: str
    file_count: int  # what the entry claims
    files: list[SerializedFile] = field(default_factory=list)


@dataclass
class Flb:
    address: int
    compatible: str
    outgoing_count: int
    incoming_count: int
    handlers: list[str] = field(default_factory=list)


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


@dataclass
class Target:
    kind: str  # "vmcore" | "live"
    path: str | None
    kernel_release: str | None
    debuginfo: list[str]
    layout: str | None = None


@dataclass
class Finding:
    code: str
    severity: str  # "error" | "warning" | "info"
    message: str
    session: str | None = None
    token: int | None = None
    address: int | None = None


@dataclass
class WalkErrorRecord:
    """Something that could not be read: where, why, and what it belonged to."""

    where: str
    message: str
    address: int | None = None
    session: str | None = None
    token: int | None = None


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
    # luo_preserved_files (7.1+): index -> struct file *; None where absent.
    preserved_index: dict[int, int] | None = None
    flbs: list[Flb] = field(default_factory=list)
    luo_device_holders: list[Holder] = field(default_factory=list)
    # Whether the one-pass holder scan ran (``holders`` are meaningful).
    holders_scanned: bool = False
    findings: list[Finding] = field(default_factory=list)
    errors: list[WalkErrorRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def session(self, name: str, direction: str | None = None) -> Session:
        for s in self.sessions:
            if s.name == name and direction in (None, s.direction):
                return s
        raise KeyError(name)
