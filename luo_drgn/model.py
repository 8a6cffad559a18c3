"""The snapshot: what luo-drgn read, as plain data.

No drgn Objects live here, so a snapshot can be checked, rendered, compared
and serialized without the program it came from.  Addresses are ints (the
renderers format them); absent values are None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class Holder:
    """Who holds a reference to a struct file.

    ``kind`` is ``"fd"`` (an fd-table slot), ``"vma"`` (a mapping) or
    ``"luo"`` (LUO's own reference, from preserve or retrieve).
    """

    kind: str
    pid: Optional[int] = None
    comm: Optional[str] = None
    fd: Optional[int] = None
    vma: Optional[int] = None  # start address of the mapping


@dataclass
class Handler:
    address: int
    compatible: str
    ops: Optional[int]


@dataclass
class PreservedFile:
    address: int  # struct luo_file *
    token: int
    handler: Optional[str]  # the handler's compatible, None if unreadable
    handler_address: int
    handler_registered: bool
    file: Optional[int]  # struct file *, None (NULL) before retrieve
    path: Optional[str] = None
    inode: Optional[int] = None
    retrieve_status: int = 0  # 0 not attempted, 1 retrieved, <0 errno
    serialized_data: int = 0
    frozen: Optional[bool] = None  # serialized for the next kernel
    refcount: Optional[int] = None  # -1: the struct file is dead
    explained_refs: Optional[int] = None
    holders: list[Holder] = field(default_factory=list)
    memfd: Optional[dict[str, int]] = None


@dataclass
class Session:
    address: int
    name: str
    direction: str  # "outgoing" | "incoming"
    retrieved: bool
    finished: Optional[bool]
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
    session_count: Optional[int] = None  # what the session header claims
    sessions_complete: bool = True


@dataclass
class LuoState:
    state: str = "absent"  # "absent" | "disabled" | "enabled"
    reason: Optional[str] = None
    liveupdate_num: Optional[int] = None
    frozen: Optional[bool] = None
    incoming_present: Optional[bool] = None
    incoming_deserialized: Optional[bool] = None
    outgoing: Direction = field(default_factory=Direction)
    incoming: Direction = field(default_factory=Direction)


@dataclass
class Target:
    kind: str  # "vmcore" | "live"
    path: Optional[str]
    kernel_release: Optional[str]
    debuginfo: list[str]
    layout: Optional[str] = None


@dataclass
class Finding:
    code: str
    severity: str  # "error" | "warning" | "info"
    message: str
    session: Optional[str] = None
    token: Optional[int] = None
    address: Optional[int] = None


@dataclass
class WalkErrorRecord:
    """Something that could not be read: where, why, and what it belonged to."""

    where: str
    message: str
    address: Optional[int] = None
    session: Optional[str] = None
    token: Optional[int] = None


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
    preserved_index: Optional[dict[int, int]] = None
    flbs: list[Flb] = field(default_factory=list)
    luo_device_holders: list[Holder] = field(default_factory=list)
    # Whether the one-pass holder scan ran (``holders`` are meaningful).
    holders_scanned: bool = False
    findings: list[Finding] = field(default_factory=list)
    errors: list[WalkErrorRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def session(self, name: str, direction: Optional[str] = None) -> Session:
        for s in self.sessions:
            if s.name == name and direction in (None, s.direction):
                return s
        raise KeyError(name)
