# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Loaded kexec Image
------------------

The ``luo_drgn.helpers.kexec`` module provides helpers for the kernel image
loaded for the next ``kexec -e`` (``kexec_image``, a ``struct kimage``,
``kernel/kexec_core.c``): how it was loaded and what it will boot with,
read the way ``kernel_kexec()`` and the relocation code will use it.

Both ``kexec_load(2)`` and ``kexec_file_load(2)`` copy each segment into
pages of their own, listed as ``IND_DESTINATION``/``IND_SOURCE`` entries in
the image's entry list (``kimage_add_entry()``), unless a segment was put in
one CMA allocation (``segment_cma``, since Linux 6.16); the buffers the
loader built a segment from (``cmdline_buf``, ``bootparams_buf``) are freed
once it is loaded (``kimage_file_post_load_cleanup()``).  The command line
is therefore read from the boot_params segment's pages, where
``setup_cmdline()`` (x86-64) put it.  KHO data is handed to the image by
``kho_fill_kimage()`` since Linux 6.16 (``image->kho``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from drgn import FaultError, Object, Program, offsetof
from drgn.helpers.common.prog import takes_program_or_default
from drgn.helpers.linux.mm import page_to_phys

from ._words import Words
from .bounded import WalkError

__all__ = (
    "kexec_loaded_image",
    "kimage_boot_params_cmdline",
    "kimage_kernel_payload",
    "kimage_read_segment",
    "validate_kimage_for_each_source_page",
)

# include/linux/kexec.h: the flags in the low bits of a kimage_entry_t.
_IND_DESTINATION = 0x1
_IND_INDIRECTION = 0x2
_IND_DONE = 0x4
_IND_SOURCE = 0x8
# A bound for a garbage entry list: a loaded image of 4 GiB.
_MAX_ENTRIES = 1 << 20
# arch/x86/include/uapi/asm/bootparam.h: hdr.header of a boot_params, "HdrS".
_BOOT_PARAMS_MAGIC = 0x53726448


@takes_program_or_default
def kexec_loaded_image(prog: Program) -> Object:
    """
    Get the image ``kexec -e`` would boot (``kexec_image``).

    :return: ``struct kimage *``, ``NULL`` when none is loaded
    :raises LookupError: if the kernel has no kexec (``CONFIG_KEXEC_CORE``)
    """
    return prog["kexec_image"]


def validate_kimage_for_each_source_page(image: Object) -> Iterator[tuple[int, int]]:
    """
    Iterate over the pages of a loaded image as the relocation code will
    copy them (``for_each_kimage_entry()``): each source page and the
    destination it is copied to.  Each page of entries is read whole.

    :param image: ``struct kimage *``
    :return: Iterator of (destination, source) physical addresses.
    :raises WalkError: if the list runs past a bound (corrupted memory)
    """
    prog = image.prog_
    page_size = prog["PAGE_SIZE"].value_()
    words = Words.cached(prog)
    mask = ~(page_size - 1)
    entries: list[int] = [image.head.value_()]
    index = 0
    destination = 0
    for _ in range(_MAX_ENTRIES):
        if index == len(entries):
            return  # a page of entries without IND_DONE: ends as the kernel's would not
        entry = entries[index]
        index += 1
        if entry == 0 or entry & _IND_DONE:
            return
        if entry & _IND_INDIRECTION:
            data = prog.read(entry & mask, page_size, True)
            entries = [x for (x,) in struct.iter_unpack(words.fmt, data)]
            index = 0
        elif entry & _IND_DESTINATION:
            destination = entry & mask
        elif entry & _IND_SOURCE:
            yield destination, entry & mask
            destination += page_size
    raise WalkError(
        "kexec image entry list", image.head.address_ or 0, f"more than {_MAX_ENTRIES} entries"
    )


def kimage_read_segment(
    image: Object, index: int, offset: int, size: int, pages: dict[int, int] | None = None
) -> bytes:
    """
    Read bytes of one segment of a loaded image from where the kernel keeps
    them until ``kexec -e``: its CMA allocation or its source pages.

    :param image: ``struct kimage *``
    :param index: the segment's index in ``image->segment``
    :param offset: where to start, from the segment's start
    :param size: how many bytes to read
    :param pages: destination -> source, from
        :func:`validate_kimage_for_each_source_page` (walked here when not given)
    :raises ValueError: if the bytes are not all inside the segment
    :raises FaultError: if the bytes are not in memory (not in the dump)
    :return: the bytes
    """
    prog = image.prog_
    segment = image.segment[index]
    mem = segment.mem.value_()
    if offset < 0 or offset + size > segment.memsz.value_():
        raise ValueError(f"bytes {offset}+{size} are outside segment {index}")
    try:
        cma = image.segment_cma[index]
    except (AttributeError, LookupError):
        cma = None
    words = Words.cached(prog)
    if cma is not None and cma.value_():
        return words.read_bytes(prog, page_to_phys(cma).value_() + offset, size, True)
    if pages is None:
        pages = dict(validate_kimage_for_each_source_page(image))
    page_size = prog["PAGE_SIZE"].value_()
    out = bytearray()
    at = mem + offset
    while len(out) < size:
        page = at & ~(page_size - 1)
        source = pages.get(page)
        if source is None:
            raise FaultError(f"no source page for {page:#x} in the kexec image", page)
        n = min(size - len(out), page + page_size - at)
        out += words.read_bytes(prog, source + (at - page), n, True)
        at += n
    return bytes(out)


def _u32(data: bytes, at: int) -> int:
    # x86-64's boot_params: little-endian.
    return int.from_bytes(data[at : at + 4], "little")


def _boot_params_segment(
    image: Object, pages: dict[int, int], fields: tuple[str, ...]
) -> tuple[int, dict[str, int]] | None:
    """The index of the segment that holds an x86-64 image's boot_params
    (found by its ``HdrS`` magic) and the u32 ``fields`` of it, or None."""
    prog = image.prog_
    try:
        params = prog.type("struct boot_params")
    except LookupError:
        return None
    at = {name: offsetof(params, name) for name in ("hdr.header", *fields)}
    head = max(at.values()) + 4
    for index in range(min(image.nr_segments.value_(), len(image.segment))):
        segment = image.segment[index]
        if segment.memsz.value_() < params.size:
            continue
        data = kimage_read_segment(image, index, 0, head, pages)
        if _u32(data, at["hdr.header"]) != _BOOT_PARAMS_MAGIC:
            continue
        return index, {name: _u32(data, offset) for name, offset in at.items()}
    return None


def kimage_boot_params_cmdline(image: Object) -> tuple[int, bytes] | None:
    """
    Get the command line an x86-64 image will boot with: the boot_params
    segment (``bzImage64_load()``: boot_params, then the command line
    ``setup_cmdline()`` points ``hdr.cmd_line_ptr`` at) is found by its
    ``HdrS`` magic.

    :param image: ``struct kimage *``
    :return: (segment index, command line without its NUL), or None when no
        segment holds boot_params (another architecture or loader)
    :raises FaultError: if a segment's pages are not in memory
    """
    pages = dict(validate_kimage_for_each_source_page(image))
    found = _boot_params_segment(
        image, pages, ("hdr.cmd_line_ptr", "ext_cmd_line_ptr", "hdr.cmdline_size")
    )
    if found is None:
        return None
    index, u32 = found
    segment = image.segment[index]
    offset = (u32["ext_cmd_line_ptr"] << 32 | u32["hdr.cmd_line_ptr"]) - segment.mem.value_()
    limit = min(u32["hdr.cmdline_size"] + 1 or 4096, segment.memsz.value_() - offset)
    if offset < 0 or limit <= 0:
        return index, b""
    text = kimage_read_segment(image, index, offset, limit, pages)
    return index, text.split(b"\0", 1)[0]


# A bound for a garbage payload length: far above any compressed kernel.
_MAX_PAYLOAD = 1 << 28


def kimage_kernel_payload(image: Object) -> bytes | None:
    """
    Get the compressed kernel an x86-64 image will boot.
    ``bzImage64_load()`` adds the boot_params segment, then the bzImage's
    protected-mode part as the next segment; the setup header it copied
    into boot_params says where in that part the compressed vmlinux is
    (``hdr.payload_offset``, ``hdr.payload_length``).

    :param image: ``struct kimage *``
    :return: the compressed payload, or None when no segment holds
        boot_params (another architecture, or ``kexec_load()`` with
        another layout) or the header's payload is not in the next segment
    :raises FaultError: if the segments' pages are not in memory
    """
    pages = dict(validate_kimage_for_each_source_page(image))
    found = _boot_params_segment(image, pages, ("hdr.payload_offset", "hdr.payload_length"))
    if found is None:
        return None
    index, u32 = found
    offset, length = u32["hdr.payload_offset"], u32["hdr.payload_length"]
    if index + 1 >= min(image.nr_segments.value_(), len(image.segment)):
        return None
    kernel = image.segment[index + 1]
    if not 0 < length <= _MAX_PAYLOAD or offset + length > kernel.bufsz.value_():
        return None
    return kimage_read_segment(image, index + 1, offset, length, pages)
