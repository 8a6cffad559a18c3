# SPDX-License-Identifier: LGPL-2.1-or-later
"""The loaded kexec image's helpers (:mod:`luo_drgn.helpers.kexec`)."""

from __future__ import annotations

from pathlib import Path

from luo_drgn import examples


def test_kimage_read_segment_prefers_cma(fresh_root: Path) -> None:
    """Would catch: a segment the kernel keeps in CMA (kimage->segment_cma,
    kimage_load_cma_segment(), 6.16+) read from the source-page list
    instead.  The loaded guest's kernel has no CMA, so its first segment's
    CMA page is planted: a page of known bytes, and segment_cma[0] set to
    its struct page; the read must return those bytes."""
    from drgn.helpers.linux.mm import pfn_to_page

    from luo_drgn.helpers.kexec import kimage_read_segment

    prog = examples.load("loaded", fresh_root).program()
    image = prog["kexec_image"]
    assert not image.segment_cma[0]  # kexec_file_load() found no CMA here
    source = kimage_read_segment(image, 0, 0, 16)
    planted, page_pa = b"CMA-PLANTED-PAGE" * 256, 0x2000
    prog.add_memory_segment(page_pa, 4096, lambda a, n, o, p: planted[o : o + n], True)
    pointer = pfn_to_page(prog, page_pa >> 12).value_().to_bytes(8, "little")
    at = image.segment_cma[0].address_
    prog.add_memory_segment(at, 8, lambda a, n, o, p: pointer[o : o + n], False)
    assert kimage_read_segment(image, 0, 0, 16) == planted[:16] != source
