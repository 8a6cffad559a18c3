# SPDX-License-Identifier: LGPL-2.1-or-later
"""Block reads for luo-drgn's collector.

Not part of the helper API: the collector reads tens of thousands of
luo_files and struct files, and drgn's member-by-member reads (one read, one
Object, per member) would cost it several times a plain walk.  These read
each structure, list entry or XArray node in one read and unpack the
members used, with the same meaning and the same checks as the helpers of
:mod:`luo_drgn.helpers`, which stay the reference (tests hold them equal on
every fixture).  Word size and byte order come from ``prog.platform``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

from drgn import FaultError, Object, Program, Type, TypeKind, offsetof, sizeof

from .helpers import liveupdate as lu
from .helpers._words import Words
from .helpers.bounded import (
    DEFAULT_LIMIT,
    WalkError,
    fault_error,
    validate_list_addresses,
)

__all__ = (
    "FileRow",
    "LuoFileRow",
    "list_for_each_entry_block",
    "luo_session_file_rows",
    "memfd_luo_ser_scalars",
    "preserved_file_path",
    "preserved_file_row",
    "xa_for_each_block",
)


def list_for_each_entry_block(
    prog: Program,
    type: str | Type,
    head: int,
    member: str,
    what: str,
    limit: int = DEFAULT_LIMIT,
) -> Iterator[tuple[int, bytes]]:
    """
    Iterate over the entries of a list as
    :func:`validate_list_for_each_entry_bounded` does, with the same checks,
    reading each entry whole in one read.

    :param head: address of the ``struct list_head``
    :raises WalkError: see :func:`validate_list_for_each_bounded`
    :return: Iterator of (entry address, the entry's bytes) tuples.
    """
    entry_type = prog.type(type) if isinstance(type, str) else type
    size, offset = sizeof(entry_type), offsetof(entry_type, member)
    # struct list_head: next, then prev.
    words = Words.cached(prog)
    fmt = words.fmt  # byte order, then one pointer
    pair = struct.Struct(fmt[0] + 2 * fmt[1])
    blocks: dict[int, bytes] = {}

    def read_head() -> tuple[int, int]:
        nxt, prev = pair.unpack(prog.read(head, pair.size))
        return nxt, prev

    def read_node(addr: int) -> tuple[int, int]:
        raw = blocks[addr] = words.read_bytes(prog, addr - offset, size)
        nxt, prev = pair.unpack_from(raw, offset)
        return nxt, prev

    for addr in validate_list_addresses(head, read_head, read_node, what, limit):
        yield addr - offset, blocks.pop(addr)


# include/linux/xarray.h: an internal entry has its low two bits 10; node
# pointers are internal entries above 4096, sibling entries below 256.
_XA_ZERO_ENTRY = (257 << 2) | 2
_XA_CHUNK_SHIFT_MAX = 64


def _xa_is_node(entry: int) -> bool:
    return (entry & 3) == 2 and entry > 4096


def xa_for_each_block(
    prog: Program, xa: int, what: str, limit: int = DEFAULT_LIMIT
) -> Iterator[tuple[int, int]]:
    """
    Iterate over the entries of an XArray as
    :func:`drgn.helpers.linux.xarray.xa_for_each` does (in index order, zero
    entries skipped), reading each node in one read, and bounded: a corrupted
    tree (a node reached twice, a shift that does not descend, more than
    ``limit`` entries) raises :class:`WalkError`.

    :param xa: address of the ``struct xarray``
    :return: Iterator of (index, entry value) tuples.
    """
    words = Words.cached(prog)
    node_type = prog.type("struct xa_node")
    shift_at, slots_at = offsetof(node_type, "shift"), offsetof(node_type, "slots")
    slots = struct.Struct(f"{words.fmt[0]}{node_type.member('slots').type.length}{words.fmt[1]}")
    try:
        head = words.read(prog, xa + offsetof(prog.type("struct xarray"), "xa_head"))
    except FaultError as e:
        raise fault_error(what, "cannot read the xarray head", e) from e
    if not _xa_is_node(head):
        if head and head != _XA_ZERO_ENTRY:
            yield 0, head
        return
    seen: set[int] = set()
    count = 0

    def read_node(
        entry: int, base: int, parent_shift: int
    ) -> tuple[int, int, Iterator[tuple[int, int]]]:
        node = entry - 2
        if node in seen:
            raise WalkError(what, node, "cycle (a node is reached twice)")
        seen.add(node)
        try:
            raw = prog.read(node, slots_at + slots.size)
        except FaultError as e:
            raise fault_error(what, "fault reading an xarray node", e) from e
        shift = raw[shift_at]
        if shift >= parent_shift:
            raise WalkError(what, node, f"node shift {shift} does not descend")
        return base, shift, iter(enumerate(slots.unpack_from(raw, slots_at)))

    # Depth first, slot by slot: (first index, shift, the slots left).
    stack = [read_node(head, 0, _XA_CHUNK_SHIFT_MAX + 1)]
    while stack:
        base, shift, rest = stack[-1]
        for i, entry in rest:
            if not entry or entry == _XA_ZERO_ENTRY:
                continue
            index = base + (i << shift)
            if _xa_is_node(entry):
                stack.append(read_node(entry, index, shift))
                break
            if (entry & 3) == 2:
                # xa_is_internal() and not a node: a sibling (its entry was
                # yielded at its first slot), or a retry entry a concurrent
                # deletion left for RCU readers, which xas_retry() skips.
                continue
            count += 1
            if count > limit:
                raise WalkError(what, xa, f"more than {limit} entries")
            yield index, entry
        else:
            stack.pop()


_FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}


class _Fields:
    """Chosen members of a structure: where they are, how to unpack them.
    One read covers the span from the first member used to the last."""

    def __init__(self, prog: Program, type: str, members: tuple[str, ...]) -> None:
        ref = Object(prog, type, address=0)  # a reference: nothing is read
        order = Words.cached(prog).fmt[0]  # "<" or ">"
        fields: list[tuple[struct.Struct, int, bool]] = []
        for path in members:
            member = ref
            for part in path.split("."):
                member = member.member_(part)
            kind = member.type_.unaliased_kind()
            size = sizeof(member.type_)
            if member.bit_field_size_ is not None or size not in _FORMATS:
                raise NotImplementedError(f"{type}.{path} cannot be unpacked")
            base = member.type_.unaliased()
            if kind == TypeKind.ENUM and base.type is not None:
                base = base.type
            signed = kind in (TypeKind.INT, TypeKind.ENUM) and bool(base.is_signed)
            fmt = _FORMATS[size] if signed else _FORMATS[size].upper()
            assert member.address_ is not None
            fields.append((struct.Struct(order + fmt), member.address_, kind == TypeKind.BOOL))
        self.start = min(at for _, at, _ in fields)
        self.size = max(at + s.size for s, at, _ in fields) - self.start
        self.fields = [(s, at - self.start, is_bool) for s, at, is_bool in fields]

    def read(self, prog: Program, address: int, physical: bool = False) -> list[Any]:
        """Read the members of the structure at ``address``."""
        raw = Words.cached(prog).read_bytes(prog, address + self.start, self.size, physical)
        return self._unpack(raw, 0)

    def unpack(self, raw: bytes) -> list[Any]:
        """Unpack the members from the bytes of a whole structure."""
        return self._unpack(raw, self.start)

    def _unpack(self, raw: bytes, base: int) -> list[Any]:
        return [
            bool(s.unpack_from(raw, base + off)[0])
            if is_bool
            else s.unpack_from(raw, base + off)[0]
            for s, off, is_bool in self.fields
        ]


def _fields(prog: Program, type: str, *members: str) -> _Fields:
    key = ("luo_drgn_fields", type, members)
    try:
        fields: _Fields = prog.cache[key]
    except KeyError:
        fields = prog.cache[key] = _Fields(prog, type, members)
    return fields


class LuoFileRow(NamedTuple):
    """A ``struct luo_file``, as the helpers read it."""

    address: int
    fh: int  # luo_file->fh
    file: int  # luo_file->file
    token: int  # luo_file->token
    retrieve_status: int  # luo_file_retrieve_status()
    serialized_data: int  # luo_file->serialized_data
    mutex_locked: bool  # luo_file_mutex_owner() is not None


# include/linux/mutex.h: the owner word's low bits are flags (MUTEX_FLAGS).
_MUTEX_FLAGS = 0x07


def luo_session_file_rows(session: Object) -> Iterator[LuoFileRow]:
    """validate_luo_session_for_each_file(), each luo_file read in one read."""
    prog = session.prog_
    status = lu._retrieve_field(prog) or "retrieve_status"
    fields = _fields(
        prog,
        "struct luo_file",
        "fh",
        "file",
        "token",
        status,
        "serialized_data",
        "mutex.owner.counter",
    )
    what = f"files of session {bytes(session.name.string_())!r}"
    head = lu.luo_session_files_head(session).value_()
    for address, raw in list_for_each_entry_block(prog, "struct luo_file", head, "list", what):
        fh, file, token, retrieve, data, owner = fields.unpack(raw)
        retrieve = lu._retrieve_state(status, retrieve)
        yield LuoFileRow(address, fh, file, token, retrieve, data, bool(owner & ~_MUTEX_FLAGS))


class FileRow(NamedTuple):
    """A ``struct file`` and its inode, as the helpers read them."""

    refcount: int  # luo_preserved_file_refcount()
    ino: int  # luo_preserved_file_ino()
    size: int  # luo_preserved_file_size()
    f_op: int  # file->f_op, which the holder scan would read again
    # What preserved_file_path() needs, in the same read.
    inode: int  # file->f_inode
    mnt: int  # file->f_path.mnt
    dentry: int  # file->f_path.dentry
    seals: int | None = None  # memfd_luo_file_seals(), when asked for


def preserved_file_row(prog: Program, file: int, seals: bool = False) -> FileRow:
    """
    :param seals: read a shmem memfd's seals too, with its inode in one
        read (its ``struct shmem_inode_info`` holds both)
    """
    file_ref = lu._has_file_ref(prog)
    count = "f_ref.refcnt.counter" if file_ref else "f_count.counter"
    raw_count, inode, f_op, mnt, dentry = _fields(
        prog, "struct file", count, "f_inode", "f_op", "f_path.mnt", "f_path.dentry"
    ).read(prog, file)
    refcount = lu._file_ref_count(raw_count) if file_ref else raw_count
    if seals and f_op == lu._shmem_fops(prog):
        info = _fields(
            prog, "struct shmem_inode_info", "seals", "vfs_inode.i_ino", "vfs_inode.i_size"
        )
        try:
            at = prog.cache["luo_drgn_shmem_vfs_inode"]
        except KeyError:
            at = prog.cache["luo_drgn_shmem_vfs_inode"] = offsetof(
                prog.type("struct shmem_inode_info"), "vfs_inode"
            )
        # container_of(inode, struct shmem_inode_info, vfs_inode)
        sealed, ino, size = info.read(prog, inode - at)
        return FileRow(refcount, ino, size, f_op, inode, mnt, dentry, sealed)
    ino, size = _fields(prog, "struct inode", "i_ino", "i_size").read(prog, inode)
    return FileRow(refcount, ino, size, f_op, inode, mnt, dentry)


def preserved_file_path(file: Object, row: FileRow | None) -> bytes:
    """lu.luo_preserved_file_path(), without d_path() for a memfd: a pseudo
    file (``alloc_file_pseudo()``: its dentry is its own parent) on
    ``shm_mnt``, for which d_path() names the filesystem and the helper the
    dentry.

    :param row: the file's row, already read (None: it could not be, and the
        public helper reads what it can)
    """
    prog = file.prog_
    try:
        shm_mnt = prog.cache["luo_drgn_shm_mnt"]
    except KeyError:
        try:
            shm_mnt = prog["shm_mnt"].value_()
        except (KeyError, LookupError, FaultError):
            shm_mnt = None
        prog.cache["luo_drgn_shm_mnt"] = shm_mnt
    if row is None or shm_mnt is None or row.mnt != shm_mnt:
        return lu.luo_preserved_file_path(file)
    parent, length, name = _fields(
        prog, "struct dentry", "d_parent", "d_name.len", "d_name.name"
    ).read(prog, row.dentry)
    if parent != row.dentry:
        return lu.luo_preserved_file_path(file)
    (nlink,) = _fields(prog, "struct inode", "i_nlink").read(prog, row.inode)
    path = b"/" + bytes(prog.read(name, length))
    return path + b" (deleted)" if nlink == 0 else path


def memfd_luo_ser_scalars(prog: Program, serialized_data: int) -> dict[str, Any] | None:
    """The integer members of memfd_luo_serialized_state(), by name, read
    in one physical read.

    :param serialized_data: the luo_file's (the physical address of its
        ``struct memfd_luo_ser``)
    """
    if not serialized_data:
        return None
    try:
        names = prog.cache["luo_drgn_memfd_ser_members"]
    except KeyError:
        try:
            t = prog.type("struct memfd_luo_ser")
        except LookupError:
            names = None
        else:
            names = tuple(
                m.name
                for m in t.members or ()
                if m.name is not None
                and m.type.unaliased_kind() in (TypeKind.INT, TypeKind.BOOL, TypeKind.ENUM)
            )
        prog.cache["luo_drgn_memfd_ser_members"] = names
    if names is None:
        return None
    values = _fields(prog, "struct memfd_luo_ser", *names).read(
        prog, serialized_data, physical=True
    )
    # One value per name: _Fields.read() unpacks the members it was given.
    return dict(zip(names, values))
