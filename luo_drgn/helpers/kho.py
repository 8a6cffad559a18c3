# SPDX-License-Identifier: LGPL-2.1-or-later
"""
KHO Block Sets
--------------

The ``luo_drgn.helpers.kho`` module provides helpers for the Kexec HandOver
(KHO) memory that LUO serializes into: the linked chains of one-page blocks
(``struct kho_block_set``, ``kernel/liveupdate/kho_block.c``) that hold the
serialized sessions and files since Linux 7.2, read in this kernel from
their in-memory list or, as the next kernel reads them, from the physical
``next`` of each block header; and the mark KHO leaves on memory the
previous kernel preserved.

Serialized data is addressed physically, so it is read through physical
memory (:func:`kho_read_phys`), which needs no direct-map translation.
"""

from __future__ import annotations

from collections.abc import Iterator

import drgn
from drgn import FaultError, IntegerLike, Object, Program, Type
from drgn.helpers.common.prog import takes_program_or_default
from drgn.helpers.linux.list import list_for_each_entry
from drgn.helpers.linux.mm import pfn_to_page, virt_to_phys

from .bounded import WalkError, validate_list_for_each_entry_bounded

__all__ = (
    "kho_block_count_per_block",
    "kho_block_entries",
    "kho_block_pa",
    "kho_block_set_for_each_block",
    "kho_fdt_compatible",
    "kho_is_enabled",
    "kho_is_preserved",
    "kho_read_phys",
    "kho_read_phys_array",
    "validate_kho_block_chain_for_each_entry",
    "validate_kho_block_chain_for_each_header",
    "validate_kho_block_set_for_each_block",
)


# kho_block.c's KHO_MAX_BLOCKS: the next kernel rejects a longer chain.
KHO_MAX_BLOCKS = 10000


# A block is a page; far above any page size, a bound for garbage counts.
_MAX_BLOCK_SIZE = 1 << 24


# kernel/liveupdate/kexec_handover.c: 'KHOP', in page->private of the first
# page of each range the previous kernel preserved (union kho_page_info:
# unsigned int order, then unsigned int magic).
_KHO_PAGE_MAGIC = 0x4B484F50


@takes_program_or_default
def kho_is_preserved(prog: Program, phys: IntegerLike) -> bool | None:
    """
    Return whether ``phys`` starts memory the previous kernel preserved
    through KHO and nothing has restored yet: ``deserialize_bitmap()`` marks
    the first page of each preserved range with ``KHO_PAGE_MAGIC`` in
    ``page->private``, which ``kho_restore_page()`` checks and clears.

    :param phys: a physical address
    :return: None when the program has no memory map to look in
    """
    try:
        max_pfn = prog["max_pfn"].value_()
        page_shift = prog["PAGE_SHIFT"].value_()
    except LookupError:
        return None
    pfn = int(phys) >> page_shift
    if not 0 <= pfn < max_pfn:
        return False
    private = pfn_to_page(prog, pfn).private.value_()
    little = prog.platform is not None and bool(
        prog.platform.flags & drgn.PlatformFlags.IS_LITTLE_ENDIAN
    )
    magic = (private >> 32) if little else (private & 0xFFFFFFFF)
    return bool(magic == _KHO_PAGE_MAGIC)


# scripts/dtc/libfdt/fdt.h: a flattened device tree, big-endian.
_FDT_MAGIC = 0xD00DFEED
_FDT_BEGIN_NODE, _FDT_END_NODE, _FDT_PROP, _FDT_NOP = 1, 2, 3, 4
_FDT_HEADER_SIZE = 40


def _be32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "big")


def _fdt_root_property(fdt: bytes, name: bytes) -> bytes | None:
    """A property of a flattened device tree's root node, or None (not an
    FDT, no such property, or a tree cut short)."""
    if len(fdt) < _FDT_HEADER_SIZE or _be32(fdt, 0) != _FDT_MAGIC:
        return None
    struct_at, strings_at = _be32(fdt, 8), _be32(fdt, 12)
    at = struct_at
    if _be32(fdt, at) != _FDT_BEGIN_NODE:
        return None
    at = fdt.find(b"\0", at + 4)  # the root's name, "" (then padding)
    if at < 0:
        return None
    at = (at + 4) & ~3
    while at + 12 <= len(fdt):
        token = _be32(fdt, at)
        if token == _FDT_NOP:
            at += 4
            continue
        if token != _FDT_PROP:
            return None  # the root's first child, or its end: no such property
        length, name_off = _be32(fdt, at + 4), _be32(fdt, at + 8)
        end = fdt.find(b"\0", strings_at + name_off)
        if fdt[strings_at + name_off : end] == name:
            return fdt[at + 12 : at + 12 + length]
        at = (at + 12 + length + 3) & ~3
    return None


@takes_program_or_default
def kho_fdt_compatible(prog: Program) -> bytes | None:
    """
    Get the KHO ABI this kernel hands over: the ``compatible`` of the root
    node of its KHO FDT (``kho_out.fdt``, one page, made by ``kho_init()``
    with ``KHO_FDT_COMPATIBLE``), which the next kernel's ``kho_populate()``
    checks with ``fdt_node_check_compatible()``; on a mismatch it prints
    "...is incompatible with..." and disables KHO revival.

    :return: the string without its NUL (``b"kho-v4"``), or None on a kernel
        without KHO or before ``kho_init()`` made the FDT
    :raises FaultError: if the FDT page is not in memory
    """
    try:
        fdt = prog["kho_out"].fdt.value_()
    except (LookupError, AttributeError):
        return None
    if not fdt:
        return None
    value = _fdt_root_property(prog.read(fdt, prog["PAGE_SIZE"].value_()), b"compatible")
    return value.split(b"\0", 1)[0] if value is not None else None


def kho_read_phys(prog: Program, type: str | Type, pa: int) -> Object:
    """
    Read a serialized LUO structure at a physical address.

    Serialized data is addressed physically (it must survive the kexec);
    reading it through physical memory needs no direct-map translation and
    works on any core drgn can open.

    :param type: the structure's type, e.g. ``"struct luo_session_ser"``
    :param pa: its physical address
    :return: a value object (it has no address)
    """
    t = prog.type(type) if isinstance(type, str) else type
    return Object.from_bytes_(prog, t, prog.read(pa, t.size, True))


def kho_read_phys_array(prog: Program, t: Type, pa: int, count: int, what: str) -> list[Object]:
    """
    Read ``count`` consecutive serialized values of type ``t`` at physical
    address ``pa``, in one read.

    :param what: what the array is, for the error message
    :raises WalkError: if they cannot be read
    :return: list of ``t`` value objects
    :param t: the value type
    :param pa: physical address of the first value
    :param count: how many values
    """
    try:
        raw = prog.read(pa, count * t.size, True)
    except FaultError as e:
        err = WalkError(what, e.address, "cannot read serialized entries")
        raise err from e
    return [Object.from_bytes_(prog, t, raw, bit_offset=i * t.size * 8) for i in range(count)]


@takes_program_or_default
def kho_block_count_per_block(prog: Program, type: str | Type) -> int:
    """
    Get how many entries of a type fit in one KHO block, as
    ``KHO_BLOCK_SET_INIT()`` computes it: a page less the block header.

    :param type: the entry type, e.g. ``"struct luo_file_ser"``
    :return: entries per block
    """
    t = prog.type(type) if isinstance(type, str) else type
    header_size: int = prog.type("struct kho_block_header_ser").size
    entry_size: int = t.size
    return (int(prog["PAGE_SIZE"].value_()) - header_size) // entry_size


def kho_block_set_for_each_block(block_set: Object) -> Iterator[Object]:
    """
    Iterate over the blocks of a KHO block set, in chain order.

    :param block_set: ``struct kho_block_set *``
    :return: Iterator of ``struct kho_block *`` objects.
    """
    return list_for_each_entry("struct kho_block", block_set.blocks.address_of_(), "list")


def validate_kho_block_set_for_each_block(block_set: Object) -> Iterator[Object]:
    """
    Like :func:`kho_block_set_for_each_block`, validating the list as it
    goes and stopping past :data:`KHO_MAX_BLOCKS`: ``kho_block_set_grow()``
    refuses a block beyond it (-ENOSPC), so a longer list is corrupt.

    :param block_set: ``struct kho_block_set *``
    :raises WalkError: see
        :func:`~luo_drgn.helpers.bounded.validate_list_for_each_bounded`
    :return: Iterator of ``struct kho_block *`` objects.
    """
    return validate_list_for_each_entry_bounded(
        "struct kho_block",
        block_set.blocks.address_of_(),
        "list",
        "kho_block_set blocks",
        limit=KHO_MAX_BLOCKS,
    )


def kho_block_pa(block: Object) -> int:
    """
    Get the physical address of a block's serialized header (what the
    previous block's ``next`` and a chain's head point to).

    :param block: ``struct kho_block *``
    :return: the physical address
    """
    return int(virt_to_phys(block.ser).value_())


@takes_program_or_default
def validate_kho_block_chain_for_each_header(
    prog: Program, head_pa: int
) -> Iterator[tuple[int, Object]]:
    """
    Iterate over a serialized KHO block chain as the next kernel reads it:
    from ``head_pa`` along each header's physical ``next``.

    Like ``kho_block_set_is_cyclic()``, the walk refuses a chain that comes
    back on itself or is longer than :data:`KHO_MAX_BLOCKS`; it yields
    every block before the one that shows it.

    :param head_pa: physical address of the first block header
    :raises WalkError: on a cycle, a chain too long, or an unreadable header
    :return: Iterator of (physical address, ``struct kho_block_header_ser``
        value) tuples.
    """
    header_t = prog.type("struct kho_block_header_ser")
    what = f"KHO block chain at {head_pa:#x}"
    seen: set[int] = set()
    pa = head_pa
    while pa:
        if pa in seen:
            raise WalkError(what, pa, "cycle in the block chain")
        if len(seen) >= KHO_MAX_BLOCKS:
            raise WalkError(what, pa, f"more than {KHO_MAX_BLOCKS} blocks")
        seen.add(pa)
        try:
            header = kho_read_phys(prog, header_t, pa)
        except FaultError as e:
            raise WalkError(what, e.address, "cannot read a block header") from e
        yield pa, header
        pa = int(header.next.value_())


@takes_program_or_default
def kho_block_entries(prog: Program, type: str | Type, pa: int, count: int) -> list[Object]:
    """
    Read the first ``count`` entries of the serialized block whose header is
    at physical ``pa`` (entries follow the header).

    :param type: the entry type, e.g. ``"struct luo_session_ser"``
    :raises WalkError: if they cannot be read, or do not fit in a block
    :return: list of ``type`` value objects
    :param pa: physical address of the block's header
    :param count: how many entries to read
    """
    t = prog.type(type) if isinstance(type, str) else type
    header_size = prog.type("struct kho_block_header_ser").size
    what = f"KHO block at {pa:#x}"
    if count < 0 or count * t.size + header_size > _MAX_BLOCK_SIZE:
        raise WalkError(what, pa, f"impossible entry count {count}")
    return kho_read_phys_array(prog, t, pa + header_size, count, what)


@takes_program_or_default
def validate_kho_block_chain_for_each_entry(
    prog: Program, head_pa: int, type: str | Type, what: str
) -> Iterator[Object]:
    """
    Iterate over the entries of a serialized KHO block chain, each block's
    header count of them, as the next kernel reads them.

    :param head_pa: physical address of the first block header
    :param type: the entry type, e.g. ``"struct luo_file_ser"``
    :param what: what the chain holds, for the error message
    :raises WalkError: see :func:`validate_kho_block_chain_for_each_header` and
        :func:`kho_block_entries`
    :return: Iterator of ``type`` value objects.
    """
    for pa, header in validate_kho_block_chain_for_each_header(prog, head_pa):
        try:
            yield from kho_block_entries(prog, type, pa, int(header.count.value_()))
        except WalkError as e:
            raise WalkError(what, e.address, e.reason) from e


@takes_program_or_default
def kho_is_enabled(prog: Program) -> bool | None:
    """
    Return whether Kexec HandOver is enabled (``kho_is_enabled()``), which
    LUO needs, or None on a kernel without KHO.

    KHO turns itself off when it cannot reserve its scratch area; LUO then
    disables itself too (``liveupdate_early_init()``).

    :return: True, False, or None without KHO
    """
    try:
        return bool(prog["kho_enable"].value_())
    except LookupError:
        return None
