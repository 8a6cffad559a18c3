# SPDX-License-Identifier: LGPL-2.1-or-later
"""The KHO helpers (:mod:`luo_drgn.helpers.kho`) on the real fixtures."""

from __future__ import annotations

from typing import Any

import drgn

from luo_drgn import examples
from luo_drgn import helpers as h
from tests.support.fixtures import only
from tests.support.plain import (
    all_luo_files,
    session_named,
)
from tests.support.plain import files as plain_files


@only(lambda name: name in ("outgoing", "disabled"))
def test_luo_kho_enabled(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: kho=off read as KHO enabled, or the reverse."""
    # The disabled fixture's kernel said why on its console.
    disabled = expected["disabled_reason"] or ""
    assert h.kho_is_enabled(prog) is ("KHO is disabled" not in disabled)


@only(lambda name: name in ("outgoing", "frozen"))
def test_luo_read_ser(prog: drgn.Program) -> None:
    """Would catch: a physical read of a serialized structure unlike the bytes in memory."""
    f = plain_files(session_named(prog, "vm-alpha", "outgoing"))[0]
    pa = f.serialized_data.value_()
    ser = h.kho_read_phys(prog, "struct memfd_luo_ser", pa)
    assert ser.type_.type_name() == "struct memfd_luo_ser" and ser.address_ is None
    raw = prog.read(pa, ser.type_.size, True)
    assert ser.to_bytes_() == raw
    # The same through the direct map, where drgn can translate.
    virt = drgn.Object(prog, "struct memfd_luo_ser", address=pa + prog["page_offset_base"].value_())
    assert ser.size == virt.size and ser.nr_folios == virt.nr_folios


@only(lambda name: name in ("incoming", "flb-incoming"))
def test_luo_kho_preserved(prog: drgn.Program) -> None:
    """An unretrieved file's state is on a page KHO marked ('KHOP' in the
    upper half of page->private, read here with plain drgn); a retrieve
    clears the mark (kho_restore_page())."""
    from drgn.helpers.linux.mm import phys_to_page

    seen = set()
    for f in all_luo_files(prog):
        pa = f.serialized_data.value_()
        if not pa:
            continue
        marked = phys_to_page(prog, pa).private.value_() >> 32 == 0x4B484F50
        assert h.kho_is_preserved(prog, pa) is marked
        assert marked is (f.retrieve_status.value_() == 0)
        seen.add(marked)
    assert seen == {True, False}
    assert h.kho_is_preserved(prog, 0x100000) is False  # kernel text


def test_luo_kho_preserved_range_ends() -> None:
    """Would catch: the pfn range check off by one at either end: page 0
    and the last page below max_pfn are looked at, max_pfn itself is past
    the memory map (each given KHO's mark here)."""
    from drgn.helpers.linux.mm import pfn_to_page

    prog = examples.load("incoming").program()
    max_pfn, shift = prog["max_pfn"].value_(), prog["PAGE_SHIFT"].value_()
    mark = (0x4B484F50 << 32).to_bytes(8, "little")  # 'KHOP' in the upper half
    for pfn in (0, max_pfn - 1):
        assert h.kho_is_preserved(prog, pfn << shift) is False
        at = pfn_to_page(prog, pfn).private.address_
        prog.add_memory_segment(at, 8, lambda a, n, o, p: mark[o : o + n], False)
        assert h.kho_is_preserved(prog, pfn << shift) is True
    at = pfn_to_page(prog, max_pfn).private.address_
    prog.add_memory_segment(at, 8, lambda a, n, o, p: mark[o : o + n], False)
    assert h.kho_is_preserved(prog, max_pfn << shift) is False  # marked, but past the map
