# SPDX-License-Identifier: LGPL-2.1-or-later
"""Synthetic drgn programs for the LUO layouts no kernel here has.

The real fixtures are 7.2; the v6 series, 6.19.0, 6.19.y/7.0 and 7.1 are
built here with drgn's own API (``set_linux_kernel_custom``, type and object
finders, memory segments) from the LUO structures of each kernel version
(documented member by member in ``luo_drgn/helpers/liveupdate_layout.py``).

Each layout is one declarative description: its struct definitions, as
``(member, type)`` lists in a tiny notation (``u64``, ``char[64]``, ``*luo_file``,
``list_head`` for an embedded struct).  :class:`Kernel` computes offsets,
serves the types and globals, and writes objects into one memory block
mapped both at a direct-map virtual address and at physical 0.

The state written into each (:func:`populate`) is the same on every layout,
and :data:`STATE` is its ground truth for the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from drgn import (
    Architecture,
    Object,
    Platform,
    PlatformFlags,
    Program,
    Type,
    TypeKind,
    TypeMember,
)

Members = list[tuple[str, str]]

# -- layouts -----------------------------------------------------------------

_COMMON: dict[str, Members] = {
    "list_head": [("next", "*list_head"), ("prev", "*list_head")],
    "atomic64_t": [("counter", "long")],
    "atomic_t": [("counter", "int")],
    "refcount_struct": [("refs", "atomic_t")],
    # What drgn's mutex_owner() reads: the owner task in an atomic_long.
    "mutex": [("owner", "atomic64_t"), ("wait", "char[24]")],
    "file_ref": [("refcnt", "atomic64_t")],
    "inode": [("i_ino", "u64"), ("i_nlink", "u32"), ("i_size", "long")],
    "file": [
        ("f_ref", "file_ref"),
        ("f_op", "*void"),
        ("f_inode", "*inode"),
        ("private_data", "*void"),
        ("f_path", "path"),
    ],
    "path": [("mnt", "*void"), ("dentry", "*void")],
    "liveupdate_file_handler": [
        ("ops", "*void"),
        ("compatible", "char[48]"),
        ("list", "list_head"),
    ],
    "luo_file_ser!": [("compatible", "char[48]"), ("data", "u64"), ("token", "u64")],
    "luo_file_set_ser!": [("files", "u64"), ("count", "u64")],
    "luo_session_ser!": [("name", "char[64]"), ("file_set_ser", "luo_file_set_ser")],
    "luo_session_header_ser!": [("count", "u64")],
    "luo_file": [
        ("fh", "*liveupdate_file_handler"),
        ("file", "*file"),
        ("serialized_data", "u64"),
        ("private_data", "*void"),
        ("retrieve_status", "int"),
        ("mutex", "mutex"),
        ("list", "list_head"),
        ("token", "u64"),
    ],
    "luo_file_set": [("files_list", "list_head"), ("files", "*luo_file_ser"), ("count", "long")],
    "luo_session": [
        ("name", "char[64]"),
        ("ser", "*luo_session_ser"),
        ("list", "list_head"),
        ("retrieved", "bool"),
        ("file_set", "luo_file_set"),
        ("mutex", "mutex"),
    ],
    "luo_session_header": [
        ("count", "long"),
        ("list", "list_head"),
        ("rwsem", "char[40]"),
        ("header_ser", "*luo_session_header_ser"),
        ("ser", "*luo_session_ser"),
        ("active", "bool"),
    ],
    "luo_session_global": [("incoming", "luo_session_header"), ("outgoing", "luo_session_header")],
    "luo_global_t": [
        ("enabled", "bool"),
        ("fdt_out", "*void"),
        ("fdt_in", "*void"),
        ("liveupdate_num", "u64"),
    ],
    "memfd_luo_ser!": [("pos", "u64"), ("size", "u64"), ("nr_folios", "u64"), ("folios", "u64")],
}

_FLB: dict[str, Members] = {
    "liveupdate_file_handler": [
        ("ops", "*void"),
        ("compatible", "char[48]"),
        ("list", "list_head"),
        ("flb_list", "list_head"),
    ],
    "luo_flb_private_state": [
        ("count", "long"),
        ("data", "u64"),
        ("obj", "*void"),
        ("retrieved", "bool"),
    ],
    "luo_flb_private": [
        ("list", "list_head"),
        ("outgoing", "luo_flb_private_state"),
        ("incoming", "luo_flb_private_state"),
        ("users", "int"),
        ("initialized", "bool"),
    ],
    "liveupdate_flb": [
        ("ops", "*void"),
        ("compatible", "char[48]"),
        ("private", "luo_flb_private"),
    ],
    "luo_flb_link": [("flb", "*liveupdate_flb"), ("list", "list_head")],
    "luo_flb_global": [("list", "list_head"), ("count", "long")],
}

_XARRAY: dict[str, Members] = {
    "xarray": [("xa_flags", "u32"), ("xa_head", "*void")],
    "xa_node": [
        ("shift", "u8"),
        ("offset", "u8"),
        ("count", "u8"),
        ("nr_values", "u8"),
        ("parent", "*xa_node"),
        ("array", "*xarray"),
        ("slots", "*void[64]"),
    ],
}


# What drgn's for_each_task() and the holder scan read: tasks by PID through
# init_pid_ns's IDR (an xarray), each with an fd table.  No mm: the synthetic
# tasks map nothing.
_TASKS: dict[str, Members] = {
    **_XARRAY,
    "hlist_head": [("first", "*hlist_node")],
    "hlist_node": [("next", "*hlist_node"), ("pprev", "*void")],
    "idr": [("idr_rt", "xarray"), ("idr_base", "u32"), ("idr_next", "u32")],
    "pid_namespace": [("idr", "idr"), ("level", "u32")],
    "pid": [("count", "u32"), ("level", "u32"), ("tasks", "hlist_head[4]")],
    "fdtable": [("max_fds", "u32"), ("fd", "*void")],
    "files_struct": [("count", "u32"), ("fdt", "*fdtable")],
    "task_struct": [
        ("tgid", "int"),
        ("comm", "char[16]"),
        ("files", "*files_struct"),
        ("mm", "*void"),
        ("pid_links", "hlist_node[4]"),
    ],
}


def _without(members: Members, *names: str) -> Members:
    return [m for m in members if m[0] not in names]


def _replace(members: Members, name: str, new: tuple[str, str]) -> Members:
    return [new if m[0] == name else m for m in members]


LAYOUTS: dict[str, dict[str, Members]] = {
    # Nov 2025 patch series: files on session->files_list, bool retrieved,
    # no private_data, the session carries its own serialization fields.
    "v6": {
        **_COMMON,
        **_TASKS,
        "luo_file": _replace(
            _without(_COMMON["luo_file"], "private_data"), "retrieve_status", ("retrieved", "bool")
        ),
        "luo_session": [
            ("name", "char[64]"),
            ("files_list", "list_head"),
            ("ser", "*luo_session_ser"),
            ("count", "long"),
            ("list", "list_head"),
            ("retrieved", "bool"),
            ("mutex", "mutex"),
            ("files", "*luo_file_ser"),
            ("pgcnt", "u64"),
        ],
        "luo_session_ser!": [
            ("name", "char[64]"),
            ("files", "u64"),
            ("pgcnt", "u64"),
            ("count", "u64"),
        ],
        "luo_session_header_ser!": [("pgcnt", "u64"), ("count", "u64")],
        "luo_session_global": _COMMON["luo_session_global"] + [("deserialized", "bool")],
    },
    # 6.19.0: struct luo_file_set, private_data, still bool retrieved.
    "6.19": {
        **_COMMON,
        **_TASKS,
        "luo_file": _replace(_COMMON["luo_file"], "retrieve_status", ("retrieved", "bool")),
    },
    # 6.19.y backport and 7.0: int retrieve_status, FLBs with a long count.
    "7.0": {**_COMMON, **_TASKS, **_FLB},
    # 7.1: luo_preserved_files, refcount_t FLB counts.
    "7.1": {
        **_COMMON,
        **_TASKS,
        **_FLB,
        **_XARRAY,
        "luo_flb_private_state": _replace(
            _FLB["luo_flb_private_state"], "count", ("count", "refcount_struct")
        ),
    },
}

GLOBALS: dict[str, dict[str, str]] = {
    "v6": {
        "luo_file_handler_list": "list_head",
        "luo_session_global": "luo_session_global",
        "luo_global": "luo_global_t",
        "memfd_luo_handler": "liveupdate_file_handler",
        "init_pid_ns": "pid_namespace",
    },
}
# Enum constants (drgn's for_each_task() reads PIDTYPE_PID).
CONSTANTS = {"PIDTYPE_PID": 0}
GLOBALS["6.19"] = GLOBALS["v6"]
GLOBALS["7.0"] = {**GLOBALS["v6"], "luo_flb_global": "luo_flb_global"}
GLOBALS["7.1"] = {**GLOBALS["7.0"], "luo_preserved_files": "xarray"}

# -- the type notation --------------------------------------------------------

_PRIMS = {
    "u8": (1, False),
    "u32": (4, False),
    "int": (4, True),
    "u64": (8, False),
    "long": (8, True),
    "char": (1, True),
}
_SPEC = re.compile(r"^(\*?)(\w+)(?:\[(\d+)\])?$")

BASE_VIRT = 0xFFFF888000000000
MEMORY_SIZE = 1 << 20


class Kernel:
    """A synthetic kernel of one layout: types, globals and memory."""

    def __init__(self, layout: str) -> None:
        self.defs = {k.rstrip("!"): v for k, v in LAYOUTS[layout].items()}
        self.packed = {k.rstrip("!") for k in LAYOUTS[layout] if k.endswith("!")}
        self.prog = Program(
            Platform(Architecture.UNKNOWN, PlatformFlags.IS_64_BIT | PlatformFlags.IS_LITTLE_ENDIAN)
        )
        self.prog.set_linux_kernel_custom(
            f"OSRELEASE=synthetic-{layout}\nPAGESIZE=4096\n"
            "SYMBOL(swapper_pg_dir)=ffffffff82000000\n".encode(),
            False,
        )
        self.mem = bytearray(MEMORY_SIZE)
        self.brk = 0x1000
        self.types: dict[str, Type] = {}
        self.globals = {name: (spec, self.alloc(spec)) for name, spec in GLOBALS[layout].items()}
        read = lambda addr, count, offset, phys: bytes(self.mem[offset : offset + count])  # noqa: E731
        self.prog.add_memory_segment(BASE_VIRT, MEMORY_SIZE, read, False)
        self.prog.add_memory_segment(0, MEMORY_SIZE, read, True)
        self.prog.register_type_finder("luo-synthetic", self._find_type, enable_index=0)
        self.prog.register_object_finder("luo-synthetic", self._find_object, enable_index=0)

    # sizes and offsets

    def size_align(self, spec: str) -> tuple[int, int]:
        ptr, base, n = _SPEC.match(spec).groups()  # type: ignore[union-attr]
        count = int(n) if n else 1
        if ptr:
            size, align = 8, 8
        elif base == "bool":
            size, align = 1, 1
        elif base in _PRIMS:
            size = align = _PRIMS[base][0]
        else:
            size, align = self.struct_layout(base)[1:]
        return size * count, align

    def struct_layout(self, tag: str) -> tuple[dict[str, tuple[int, str]], int, int]:
        offsets, off, max_align = {}, 0, 1
        packed = tag in self.packed
        for name, spec in self.defs[tag]:
            size, align = self.size_align(spec)
            align = 1 if packed else align
            off = -(-off // align) * align
            offsets[name] = (off, spec)
            off += size
            max_align = max(max_align, align)
        return offsets, -(-off // max_align) * max_align, max_align

    def offset(self, tag: str, path: str) -> tuple[int, str]:
        total, spec = 0, tag
        for part in path.split("."):
            m = re.match(r"(\w+)(?:\[(\d+)\])?$", part)
            off, spec = self.struct_layout(spec)[0][m.group(1)]  # type: ignore[union-attr]
            total += off
            if m.group(2):  # type: ignore[union-attr]
                elem = re.sub(r"\[\d+\]$", "", spec)
                total += int(m.group(2)) * self.size_align(elem)[0]  # type: ignore[union-attr]
                spec = elem
        return total, spec

    # drgn types

    def mk(self, spec: str) -> Type:
        if spec in self.types:
            return self.types[spec]
        ptr, base, n = _SPEC.match(spec).groups()  # type: ignore[union-attr]
        prog = self.prog
        if n:
            t = prog.array_type(self.mk(spec[: spec.index("[")]), int(n))
        elif ptr:
            t = prog.pointer_type(prog.void_type() if base == "void" else self.mk(base))
        elif base == "bool":
            t = prog.bool_type("_Bool", 1)
        elif base in _PRIMS:
            size, signed = _PRIMS[base]
            t = prog.int_type(base, size, signed)
        else:
            offsets, size, _ = self.struct_layout(base)
            members = [
                TypeMember(lambda s=s: self.mk(s), name, off * 8)
                for name, (off, s) in offsets.items()
            ]
            # luo_global is an anonymous struct in luo_core.c.
            t = prog.struct_type(None if base == "luo_global_t" else base, size, members)
        self.types[spec] = t
        return t

    def _find_type(self, prog: Program, kinds: Any, name: str, filename: str | None):  # type: ignore[no-untyped-def]
        if TypeKind.STRUCT in kinds and name in self.defs:
            return self.mk(name)
        return None

    def _find_object(self, prog: Program, name: str, flags: Any, filename: str | None):  # type: ignore[no-untyped-def]
        if name in CONSTANTS:
            return Object(prog, self.mk("int"), value=CONSTANTS[name])
        if name in self.globals:
            spec, addr = self.globals[name]
            return Object(prog, self.mk(spec), address=addr)
        return None

    # memory

    def alloc(self, spec: str, count: int = 1) -> int:
        size, align = self.size_align(spec)
        self.brk = -(-self.brk // max(align, 64)) * max(align, 64)
        addr = BASE_VIRT + self.brk
        self.brk += size * count
        assert self.brk < MEMORY_SIZE
        return addr

    def set(self, addr: int, tag: str, path: str, value: Any) -> None:
        off, spec = self.offset(tag, path)
        pos = addr - BASE_VIRT + off
        if isinstance(value, bytes):
            self.mem[pos : pos + len(value)] = value
        else:
            size = self.size_align(spec)[0]
            signed = _PRIMS.get(spec, (0, False))[1]
            self.mem[pos : pos + size] = (
                (value & ((1 << (size * 8)) - 1)).to_bytes(size, "little")
                if not signed
                else value.to_bytes(size, "little", signed=True)
            )

    def addr_of(self, addr: int, tag: str, path: str) -> int:
        return addr + self.offset(tag, path)[0]

    def list_init(self, head: int) -> None:
        self.set(head, "list_head", "next", head)
        self.set(head, "list_head", "prev", head)

    def list_add_tail(self, head: int, node: int) -> None:
        prev = int.from_bytes(self.mem[head - BASE_VIRT + 8 : head - BASE_VIRT + 16], "little")
        self.set(node, "list_head", "next", head)
        self.set(node, "list_head", "prev", prev)
        self.set(prev, "list_head", "next", node)
        self.set(head, "list_head", "prev", node)

    def glob(self, name: str) -> int:
        return self.globals[name][1]

    def phys(self, addr: int) -> int:
        return addr - BASE_VIRT


# -- the state written on every layout ------------------------------------------


@dataclass(frozen=True)
class FileSpec:
    token: int
    refcount: int | None  # None: no struct file (incoming, not retrieved)
    status: int = 0  # normalised retrieve status
    fds: tuple[tuple[int, int], ...] = ()  # (pid, fd) slots holding the file

    def __post_init__(self) -> None:
        # Every reference is explained: one per fd slot, and LUO's own.
        assert self.refcount is None or self.refcount == len(self.fds) + 1


OUTGOING = {
    "alpha": [FileSpec(0x10, 3, fds=((1, 3), (1, 4))), FileSpec(0x11, 1)],
    "beta": [FileSpec(0x10, 2, fds=((2, 3),))],
}
INCOMING = {
    "gamma": [
        FileSpec(0x70, 2, 1, fds=((1, 5),)),
        FileSpec(0x71, None, 0),
        FileSpec(0x72, None, -5),
    ]
}
TASKS = {1: "init", 2: "agent"}
MEMFD = "memfd-v1"
FLB_NAME = "test-flb-v1"
FD_TABLE_SIZE = 8


def files_head(k: Kernel, session: int) -> int:
    if "file_set" in dict(k.defs["luo_session"]):
        return k.addr_of(session, "luo_session", "file_set.files_list")
    return k.addr_of(session, "luo_session", "files_list")


def set_file_count(k: Kernel, session: int, count: int) -> None:
    path = "file_set.count" if "file_set" in dict(k.defs["luo_session"]) else "count"
    k.set(session, "luo_session", path, count)


def populate(layout: str, *, frozen: bool = True, pending: bool = False) -> Kernel:
    """
    Write :data:`OUTGOING` and :data:`INCOMING` (a retrieved session, one
    file retrieved, one waiting, and a failed retrieve where the layout can
    keep one) into a synthetic kernel, with :data:`TASKS` holding the files
    in their fd tables as each :class:`FileSpec` says.

    :param frozen: the outgoing sessions were serialized for a kexec (the
        header entry count and the names written); else nothing was
    :param pending: the incoming sessions were handed over but not yet
        deserialized: only their serialized entries exist
    """
    k = Kernel(layout)
    bool_retrieved = "retrieved" in dict(k.defs["luo_file"])
    k.set(k.glob("luo_global"), "luo_global_t", "enabled", 1)
    k.set(k.glob("luo_global"), "luo_global_t", "liveupdate_num", 1)

    handler = k.glob("memfd_luo_handler")
    k.set(handler, "liveupdate_file_handler", "compatible", MEMFD.encode())
    k.list_init(k.glob("luo_file_handler_list"))
    k.list_add_tail(
        k.glob("luo_file_handler_list"), k.addr_of(handler, "liveupdate_file_handler", "list")
    )

    g = k.glob("luo_session_global")
    preserved: list[int] = []
    fd_slots: dict[tuple[int, int], int] = {}
    for direction, sessions in (("outgoing", OUTGOING), ("incoming", INCOMING)):
        head = k.addr_of(g, "luo_session_global", f"{direction}.list")
        k.list_init(head)
        in_memory = not (direction == "incoming" and pending)
        written = frozen if direction == "outgoing" else True
        k.set(g, "luo_session_global", f"{direction}.count", len(sessions) if in_memory else 0)
        k.set(g, "luo_session_global", f"{direction}.active", 1)
        header_ser = k.alloc("luo_session_header_ser")
        ser = k.alloc("luo_session_ser", len(sessions))
        k.set(g, "luo_session_global", f"{direction}.header_ser", header_ser)
        k.set(g, "luo_session_global", f"{direction}.ser", ser)
        k.set(header_ser, "luo_session_header_ser", "count", len(sessions) if written else 0)
        ser_size = k.size_align("luo_session_ser")[0]
        for i, (name, files) in enumerate(sessions.items()):
            s = k.alloc("luo_session")
            if in_memory:
                k.set(s, "luo_session", "name", name.encode())
                k.set(s, "luo_session", "retrieved", int(direction == "incoming"))
                k.list_init(files_head(k, s))
                set_file_count(k, s, len(files))
                k.list_add_tail(head, k.addr_of(s, "luo_session", "list"))
            entries = k.alloc("luo_file_ser", len(files))
            entry_size = k.size_align("luo_file_ser")[0]
            for j, spec in enumerate(files):
                data = k.alloc("memfd_luo_ser")
                k.set(data, "memfd_luo_ser", "size", 4096 * (j + 1))
                if in_memory:
                    f = k.alloc("luo_file")
                    k.set(f, "luo_file", "fh", handler)
                    k.set(f, "luo_file", "token", spec.token)
                    k.set(f, "luo_file", "serialized_data", k.phys(data))
                    if spec.refcount is not None:
                        file, inode = k.alloc("file"), k.alloc("inode")
                        k.set(inode, "inode", "i_ino", spec.token)
                        k.set(file, "file", "f_inode", inode)
                        k.set(file, "file", "f_ref.refcnt.counter", spec.refcount - 1)
                        k.set(f, "luo_file", "file", file)
                        preserved.append(file)
                        fd_slots.update({slot: file for slot in spec.fds})
                    if bool_retrieved:
                        k.set(f, "luo_file", "retrieved", int(spec.status > 0))
                    else:
                        k.set(f, "luo_file", "retrieve_status", spec.status)
                    k.list_add_tail(files_head(k, s), k.addr_of(f, "luo_file", "list"))
                e = entries + j * entry_size
                k.set(e, "luo_file_ser", "compatible", MEMFD.encode())
                k.set(e, "luo_file_ser", "data", k.phys(data))
                k.set(e, "luo_file_ser", "token", spec.token)
            if written:
                se = ser + i * ser_size
                k.set(se, "luo_session_ser", "name", name.encode())
                files_path = "file_set_ser." if layout != "v6" else ""
                k.set(se, "luo_session_ser", files_path + "files", k.phys(entries))
                k.set(se, "luo_session_ser", files_path + "count", len(files))
    _tasks(k, fd_slots)
    if "luo_preserved_files" in k.globals:
        _xarray(k, k.glob("luo_preserved_files"), dict(enumerate(preserved)))
    if "luo_flb_global" in k.globals:
        _flb(k, handler, sum(1 for fs in OUTGOING.values() for _ in fs), layout)
    return k


def _tasks(k: Kernel, fd_slots: dict[tuple[int, int], int]) -> None:
    """:data:`TASKS`, found through init_pid_ns's IDR, with fd tables."""
    pids = {}
    for nr, comm in TASKS.items():
        task, files, fdt = k.alloc("task_struct"), k.alloc("files_struct"), k.alloc("fdtable")
        fds = k.alloc("*void", FD_TABLE_SIZE)
        k.set(task, "task_struct", "tgid", nr)
        k.set(task, "task_struct", "comm", comm.encode())
        k.set(task, "task_struct", "files", files)
        k.set(files, "files_struct", "fdt", fdt)
        k.set(fdt, "fdtable", "max_fds", FD_TABLE_SIZE)
        k.set(fdt, "fdtable", "fd", fds)
        for (pid_nr, fd), file in fd_slots.items():
            if pid_nr == nr:
                k.mem[fds - BASE_VIRT + 8 * fd : fds - BASE_VIRT + 8 * fd + 8] = file.to_bytes(
                    8, "little"
                )
        pid = pids[nr] = k.alloc("pid")
        # pid->tasks[PIDTYPE_PID].first is the task's pid_links[PIDTYPE_PID].
        k.set(pid, "pid", "tasks[0].first", k.addr_of(task, "task_struct", "pid_links[0]"))
    _xarray(k, k.addr_of(k.glob("init_pid_ns"), "pid_namespace", "idr.idr_rt"), pids)


def _xarray(k: Kernel, xa: int, entries: dict[int, int]) -> None:
    """An xarray of one node (indices below 64) at ``xa``."""
    node = k.alloc("xa_node")
    for i, e in entries.items():
        k.set(node, "xa_node", f"slots[{i}]", e)
    k.set(node, "xa_node", "count", len(entries))
    # An internal entry: the node pointer with bit 1 set.
    k.set(xa, "xarray", "xa_head", node | 2)


def _flb(k: Kernel, handler: int, users: int, layout: str) -> None:
    flb = k.alloc("liveupdate_flb")
    k.set(flb, "liveupdate_flb", "compatible", FLB_NAME.encode())
    count_path = "private.outgoing.count" + (".refs.counter" if layout == "7.1" else "")
    k.set(flb, "liveupdate_flb", count_path, users)
    head = k.addr_of(k.glob("luo_flb_global"), "luo_flb_global", "list")
    k.list_init(head)
    k.list_add_tail(head, k.addr_of(flb, "liveupdate_flb", "private.list"))
    link = k.alloc("luo_flb_link")
    k.set(link, "luo_flb_link", "flb", flb)
    flb_list = k.addr_of(handler, "liveupdate_file_handler", "flb_list")
    k.list_init(flb_list)
    k.list_add_tail(flb_list, k.addr_of(link, "luo_flb_link", "list"))
