# SPDX-License-Identifier: LGPL-2.1-or-later
"""
File Holders
------------

The ``luo_drgn.helpers.file_holders`` module provides helpers for the kernel
objects, other than fd tables and mappings, that hold a reference to a
``struct file`` (as of Linux 7.2):

- an SCM_RIGHTS message in flight: the ``struct scm_fp_list`` of each skb
  queued on an AF_UNIX socket (``UNIXCB(skb).fp``).  Since Linux 6.10 the
  unix garbage collector tracks only sockets in flight, so the files are
  found in the receive queues of every unix socket of every network
  namespace (``net->unx.table``, where embryo sockets are hashed too; the
  per-namespace table is there since Linux 6.0);
- an io_uring ring's registered (fixed) files (``ctx->file_table``, since
  Linux 6.13 an array of ``struct io_rsrc_node`` pointers);
- a loop device's backing file (``lo->lo_backing_file``);
- an iommufd IOAS mapping made with ``IOMMU_IOAS_MAP_FILE`` (Linux 6.13):
  the ``iopt_pages`` of its areas hold the file.

Each walk is bounded by what the kernel itself allows and raises
:class:`~luo_drgn.helpers.bounded.WalkError` (a
:class:`drgn.helpers.ValidationError`) on an impossible size instead of
reading garbage for ever.  Arrays of pointers are read in one read, with the
pointer size and byte order of ``prog.platform``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from drgn import Object, Program, cast, container_of
from drgn.helpers.linux.idr import idr_for_each
from drgn.helpers.linux.rbtree import rbtree_inorder_for_each_entry
from drgn.helpers.linux.xarray import xa_for_each

from ._words import Words
from .bounded import WalkError

__all__ = (
    "file_holders_known_file_operations",
    "file_member_word_reader",
    "files_struct_fd_array",
    "io_uring_task_for_each_registered_ring",
    "iommufd_ctx_for_each_mapped_file",
    "loop_for_each_backing_file",
    "sock_file",
    "validate_io_ring_ctx_for_each_fixed_file",
    "validate_unix_for_each_sock",
    "validate_unix_sock_for_each_inflight_file",
)

# net/unix/af_unix.h (since 6.0): UNIX_HASH_SIZE = 256 * 2 buckets per
# namespace, unbound sockets in the first half, bound ones in the second.
UNIX_HASH_SIZE = 512
# A socket receive queue or an hlist bucket longer than this is garbage
# (net.core.rmem_max bounds a queue far below it).
MAX_QUEUE = 1 << 20
# io_uring/filetable.h: the low bits of io_rsrc_node.file_ptr are flags.
FFS_FLAGS = 0x3
# An fd table (or a ring's file table) larger than this is garbage (the
# kernel's own limit, sysctl fs.nr_open, is at most 2**30 but defaults to
# 2**20).
MAX_FDS = 1 << 24


def validate_unix_for_each_sock(net: Object) -> Iterator[Object]:
    """
    Iterate over the AF_UNIX sockets of a network namespace: every socket,
    bound or not, including embryo sockets not yet accepted
    (``unix_create1()`` hashes each one into ``net->unx.table``).

    :param net: ``struct net *``
    :return: Iterator of ``struct sock *`` objects.
    :raises WalkError: if a bucket's chain is impossibly long
    """
    prog = net.prog_
    words = Words.cached(prog)
    buckets = net.unx.table.buckets.value_()
    if not buckets:
        return
    sock_t = prog.type("struct sock *")
    node_offset = (
        prog.type("struct sock").member("__sk_common").offset
        + prog.type("struct sock_common").member("skc_node").offset
    )
    # One read for the bucket heads (struct hlist_head is one pointer).
    raw = prog.read(buckets, UNIX_HASH_SIZE * words.size)
    for (node,) in struct.iter_unpack(words.fmt, raw):
        n = 0
        while node:
            n += 1
            if n > MAX_QUEUE:
                raise WalkError("unix socket hash", buckets, f"a chain longer than {MAX_QUEUE}")
            yield Object(prog, sock_t, node - node_offset)
            node = words.read(prog, node)  # hlist_node.next


def validate_unix_sock_for_each_inflight_file(sk: Object) -> Iterator[Object]:
    """
    Iterate over the files passed with SCM_RIGHTS in messages queued on a
    unix socket and not yet received: each holds a reference in the
    ``struct scm_fp_list`` of its skb (``UNIXCB(skb).fp``).

    :param sk: ``struct sock *`` of an AF_UNIX socket
    :return: Iterator of ``struct file *`` objects.
    :raises WalkError: if the receive queue does not close
    """
    prog = sk.prog_
    head = sk.sk_receive_queue.address_of_()
    head_addr = head.value_()
    skb = cast("struct sk_buff *", head.next)
    parms_t = prog.type("struct unix_skb_parms *")
    n = 0
    while skb.value_() != head_addr:
        n += 1
        if n > MAX_QUEUE or not skb.value_():
            raise WalkError("unix receive queue", head_addr, "the queue does not close")
        fp = cast(parms_t, skb.cb.address_of_()).fp
        if fp:
            count = fp.count.value_()
            if not 0 <= count <= len(fp.fp):
                raise WalkError("SCM_RIGHTS list", fp.value_(), f"{count} files")
            for i in range(count):
                yield fp.fp[i]
        skb = skb.next


def validate_io_ring_ctx_for_each_fixed_file(ctx: Object) -> Iterator[tuple[int, Object]]:
    """
    Iterate over the registered (fixed) files of an io_uring ring, as
    ``io_slot_file()`` reads them (io_uring/filetable.h): the node pointer
    of each slot, its ``file_ptr`` with the flag bits masked.

    :param ctx: ``struct io_ring_ctx *``
    :return: Iterator of (slot, ``struct file *``) tuples.
    :raises WalkError: if the table's size is impossible
    """
    prog = ctx.prog_
    words = Words.cached(prog)
    data = ctx.file_table.data
    nr = data.nr.value_()
    if not 0 <= nr <= MAX_FDS:
        raise WalkError("io_uring file table", ctx.value_(), f"{nr} slots")
    if not nr:
        return
    file_ptr = prog.type("struct io_rsrc_node").member("file_ptr").offset
    file_t = prog.type("struct file *")
    # One read for the node pointers, one per used slot for its file.
    raw = prog.read(data.nodes.value_(), nr * words.size)
    for slot, (node,) in enumerate(struct.iter_unpack(words.fmt, raw)):
        if node:
            file = words.read(prog, node + file_ptr) & ~FFS_FLAGS
            if file:
                yield slot, Object(prog, file_t, file)


def io_uring_task_for_each_registered_ring(task: Object) -> Iterator[tuple[int, Object]]:
    """
    Iterate over the io_uring rings a task registered with
    ``IORING_REGISTER_RING_FDS`` (``tctx->registered_rings``, read whole):
    each holds a reference to the ring's file (``io_ring_add_registered_file()``),
    so a ring whose fd was closed lives on there, with its fixed files.

    :param task: ``struct task_struct *``
    :return: Iterator of (index, ``struct file *``) tuples: the ring files.
    """
    tctx = task.io_uring.read_()
    if not tctx:
        return
    for index, file in enumerate(tctx.registered_rings.read_()):
        if file:
            yield index, file


def loop_for_each_backing_file(prog: Program) -> Iterator[tuple[Object, Object]]:
    """
    Iterate over the loop devices that have a backing file
    (``lo->lo_backing_file``, set by ``loop_configure()``).

    :return: Iterator of (``struct loop_device *``, ``struct file *``) tuples.
    """
    lo_t = prog.type("struct loop_device *")
    for _, entry in idr_for_each(prog["loop_index_idr"].address_of_()):
        lo = cast(lo_t, entry)
        file = lo.lo_backing_file.read_()
        if file:
            yield lo, file


def iommufd_ctx_for_each_mapped_file(ictx: Object) -> Iterator[tuple[Object, Object]]:
    """
    Iterate over the files mapped into the IOASes of an iommufd with
    ``IOMMU_IOAS_MAP_FILE``: each ``struct iopt_pages`` of type
    ``IOPT_ADDRESS_FILE`` holds one reference (``iopt_alloc_file_pages()``),
    however many areas share it, in however many IOASes
    (``IOMMU_IOAS_COPY`` shares the source's pages): it is given once, with
    the first IOAS that maps it.

    :param ictx: ``struct iommufd_ctx *``
    :return: Iterator of (``struct iommufd_ioas *``, ``struct file *``) tuples.
    """
    prog = ictx.prog_
    ioas_type = prog["IOMMUFD_OBJ_IOAS"].value_()
    file_type = prog["IOPT_ADDRESS_FILE"].value_()
    seen: set[int] = set()  # iopt_pages already given, across the IOASes
    for _, entry in xa_for_each(ictx.objects.address_of_()):
        # Reserved slots of objects being created hold XA_ZERO_ENTRY, which
        # xa_for_each() skips; any other entry is an iommufd_object.
        obj = cast("struct iommufd_object *", entry)
        if obj.type.value_() != ioas_type:
            continue
        ioas = container_of(obj, "struct iommufd_ioas", "obj")
        for area in rbtree_inorder_for_each_entry(
            "struct iopt_area", ioas.iopt.area_itree.rb_root.address_of_(), "node.rb"
        ):
            pages = area.pages.read_()
            if not pages or pages.value_() in seen:
                continue
            seen.add(pages.value_())
            if pages.type.value_() == file_type and pages.file:
                yield ioas, pages.file.read_()


# --- one-read forms for a pass over every task's fds -------------------------


def files_struct_fd_array(files: Object) -> tuple[int, ...]:
    """
    Read a task's whole fd array (``files->fdt->fd``) in one read.

    A host has millions of fd slots: one read per table, unpacked with the
    pointer size and byte order of ``prog.platform``, is what makes a pass
    over every task's fds affordable.

    :param files: ``struct files_struct *``
    :return: the ``struct file`` address in each slot, 0 for an unused one,
        indexed by fd
    :raises WalkError: when ``max_fds`` is impossible (over :data:`MAX_FDS`)
    :raises FaultError: when the table cannot be read
    """
    prog = files.prog_
    fdt = files.fdt
    max_fds = fdt.max_fds.value_()
    if not 0 <= max_fds <= MAX_FDS:
        raise WalkError("fd table", fdt.value_(), f"impossible max_fds {max_fds}")
    words = Words.cached(prog)
    raw = prog.read(fdt.fd.value_(), max_fds * words.size)
    slots: tuple[int, ...] = struct.unpack(f"{words.fmt[0]}{max_fds}{words.fmt[1]}", raw)
    return slots


def file_member_word_reader(prog: Program, member: str) -> Callable[[int], int]:
    """
    Get a reader of one pointer-sized member of ``struct file``, given the
    file's address: for a pass that reads ``f_op`` or ``private_data`` of
    thousands of files without an Object each.

    :param member: ``"f_op"``, ``"private_data"`` or another pointer member
    :return: a function from a ``struct file`` address to the member's value
        (raising :class:`drgn.FaultError` where it cannot be read)
    """
    words = Words.cached(prog)
    offset = prog.type("struct file").member(member).offset

    def read(file: int) -> int:
        return words.read(prog, file + offset)

    return read


def sock_file(sk: Object) -> int:
    """
    Get the ``struct file`` of the socket a ``struct sock`` belongs to, the
    file an fd of its owner points at.

    :param sk: ``struct sock *``
    :return: the file's address; 0 for a sock with no socket (an embryo
        socket, or one itself in flight)
    """
    socket = sk.sk_socket.value_()
    if not socket:
        return 0
    return int(Object(sk.prog_, "struct socket *", socket).file.value_())


def file_holders_known_file_operations(prog: Program) -> dict[str, int | None]:
    """
    Get the addresses of the ``file_operations`` that make a struct file
    worth a second look in a pass over fds (a LUO session or the LUO device,
    a socket, an io_uring ring, an iommufd), and of what tells whether the
    unix socket and loop drivers are built in.

    :return: ``luo_session_fops``, ``luo_fops``, ``socket_file_ops``,
        ``io_uring_fops``, ``iommufd_fops``, ``unix_dgram_ops`` and
        ``loop_index_idr``, each its address or None where this kernel
        lacks it
    """
    out: dict[str, int | None] = {}
    for name in (
        "luo_session_fops",
        "luo_fops",
        "socket_file_ops",
        "io_uring_fops",
        "iommufd_fops",
        "unix_dgram_ops",
        "loop_index_idr",
    ):
        try:
            out[name] = prog[name].address_
        except LookupError:
            out[name] = None
    return out
