# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Struct File
-----------

The ``luo_drgn.helpers.vfs`` module provides helpers for any ``struct
file``: its reference count (``f_count``, or since Linux 6.13 the
``file_ref_t`` ``f_ref``, which stores the count minus one and has
saturation and dead zones), the path ``/proc/PID/fd`` shows for it, and a
one-read row of the members an inspector of many files needs.

These helpers are not LUO's: they are meant for drgn itself
(``drgn.helpers.linux.fs``), and kept here until drgn has them.
"""

from __future__ import annotations

from typing import NamedTuple

from drgn import FaultError, Object, Program, offsetof
from drgn.helpers.linux.fs import d_path

from ._words import Words
from .bounded import (
    _fields,
)
from .liveupdate_layout import (
    _has_file_ref,
)

__all__ = (
    "file_fd_path",
    "file_refcount",
    "file_row",
)


# include/linux/file_ref.h (64-bit)
_FILE_REF_SATURATION_ZONE = 0x8000000000000000

_FILE_REF_RELEASED = 0xC000000000000000


def file_refcount(file: Object) -> int:
    """
    Get the number of references held on a struct file.

    :param file: ``struct file *``
    :return: the count; -1 when the file is released (file_ref's dead zone,
        or no reference at all); -2 when the count is in file_ref's
        saturation zone (the file is pinned for good: the count no longer
        counts)
    """
    # Since 6.13 ("fs: add file_ref"), f_ref is a file_ref_t whose atomic
    # stores count - 1 (include/linux/file_ref.h): up to FILE_REF_MAXREF a
    # count, then the saturation zone, then from FILE_REF_RELEASED the dead
    # zone, FILE_REF_NOREF (no reference) at the top.
    if _has_file_ref(file.prog_):
        return _file_ref_count(int(file.f_ref.refcnt.counter.value_()))
    return int(file.f_count.counter.value_())


def _file_ref_count(raw: int) -> int:
    raw &= 0xFFFFFFFFFFFFFFFF
    if raw < _FILE_REF_SATURATION_ZONE:
        return raw + 1
    return -2 if raw < _FILE_REF_RELEASED else -1


def _shmem_fops(prog: Program) -> int | None:
    """The address of ``shmem_file_operations`` (memfds outside hugetlbfs
    use it), cached; None without shmem."""
    try:
        return prog.cache["shmem_file_operations"]  # type: ignore[no-any-return]
    except KeyError:
        try:
            fops: int | None = prog["shmem_file_operations"].address_
        except LookupError:
            fops = None
        prog.cache["shmem_file_operations"] = fops
        return fops


class FileRow(NamedTuple):
    """A ``struct file`` and its inode, as the helpers read them."""

    refcount: int  # file_refcount()
    ino: int  # inode->i_ino
    size: int  # inode->i_size
    f_op: int  # file->f_op, which the holder scan would read again
    # What file_fd_path() needs, in the same read.
    inode: int  # file->f_inode
    mnt: int  # file->f_path.mnt
    dentry: int  # file->f_path.dentry
    nlink: int  # inode->i_nlink: 0 for an unlinked file, as memfds are
    seals: int | None = None  # memfd_luo_file_seals(), when asked for


def file_row(prog: Program, file: int, seals: bool = False) -> FileRow:
    """
    Read what an inspector of many files needs of a struct file and its
    inode, each in one read: the reference count (:func:`file_refcount`),
    the inode's number and size, ``f_op``, and what :func:`file_fd_path`
    needs.

    :param file: address of the ``struct file``
    :param seals: read a shmem memfd's seals too, with its inode in one
        read (its ``struct shmem_inode_info`` holds both)
    :return: the file's row
    :raises FaultError: when the file or its inode cannot be read
    """
    file_ref = _has_file_ref(prog)
    count = "f_ref.refcnt.counter" if file_ref else "f_count.counter"
    raw_count, inode, f_op, mnt, dentry = _fields(
        prog, "struct file", count, "f_inode", "f_op", "f_path.mnt", "f_path.dentry"
    ).read(prog, file)
    refcount = _file_ref_count(raw_count) if file_ref else raw_count
    if seals and f_op == _shmem_fops(prog):
        info = _fields(
            prog,
            "struct shmem_inode_info",
            "seals",
            "vfs_inode.i_ino",
            "vfs_inode.i_size",
            "vfs_inode.i_nlink",
        )
        try:
            at = prog.cache["shmem_inode_info_vfs_inode"]
        except KeyError:
            at = prog.cache["shmem_inode_info_vfs_inode"] = offsetof(
                prog.type("struct shmem_inode_info"), "vfs_inode"
            )
        # container_of(inode, struct shmem_inode_info, vfs_inode)
        sealed, ino, size, nlink = info.read(prog, inode - at)
        return FileRow(refcount, ino, size, f_op, inode, mnt, dentry, nlink, sealed)
    ino, size, nlink = _fields(prog, "struct inode", "i_ino", "i_size", "i_nlink").read(prog, inode)
    return FileRow(refcount, ino, size, f_op, inode, mnt, dentry, nlink)


def _shm_mnt(prog: Program) -> int | None:
    """The address of ``shm_mnt``, the internal mount memfds live on
    (cached); None without shmem."""
    try:
        return prog.cache["shm_mnt"]  # type: ignore[no-any-return]
    except KeyError:
        try:
            shm_mnt: int | None = prog["shm_mnt"].value_()
        except (LookupError, FaultError):
            shm_mnt = None
        prog.cache["shm_mnt"] = shm_mnt
        return shm_mnt


def file_fd_path(file: Object, row: FileRow | None = None) -> bytes:
    """
    Get the path of a struct file as ``/proc/PID/fd`` shows it.

    Memfds live on an internal mount (``shm_mnt``), for which ``d_path()``
    names the filesystem; ``/proc`` shows the dentry's own name, and
    `` (deleted)`` for an unlinked inode, as memfds are.  Given the file's
    :func:`file_row`, a memfd's path is read without ``d_path()``: it is a
    pseudo file (``alloc_file_pseudo()``: its dentry is its own parent),
    so its name is its dentry's.

    :param file: ``struct file *``
    :param row: the file's :func:`file_row`, already read, or None
    :return: the path, as bytes
    """
    prog = file.prog_
    shm_mnt = _shm_mnt(prog) if row is not None else None
    if row is not None and shm_mnt is not None and row.mnt == shm_mnt:
        parent, length, name = _fields(
            prog, "struct dentry", "d_parent", "d_name.len", "d_name.name"
        ).read(prog, row.dentry)
        if parent == row.dentry:
            path = b"/" + Words.cached(prog).read_bytes(prog, name, length)
            return path + b" (deleted)" if row.nlink == 0 else path
    path = d_path(file.f_path.address_of_())
    if path.startswith(b"["):
        path = b"/" + file.f_path.dentry.d_name.name.string_()
    if file.f_inode.i_nlink.value_() == 0:
        path += b" (deleted)"
    return path
