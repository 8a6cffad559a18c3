# SPDX-License-Identifier: LGPL-2.1-or-later
"""How the helpers read memory (:mod:`luo_drgn.helpers._words`): pointers
as the target stores them, and the blocks a collection keeps
(:class:`~luo_drgn.helpers._words.KeptBlocks`), against drgn's own reads of
real memory."""

from __future__ import annotations

import drgn
import pytest
from drgn.helpers.linux.mm import phys_to_virt

from luo_drgn import examples
from luo_drgn.helpers import _words
from luo_drgn.helpers._words import KeptBlocks, Words
from tests.support.plain import files as plain_files
from tests.support.plain import session_named


def _file_structs(prog: drgn.Program) -> list[tuple[int, int]]:
    """(address, size) of each luo_file and struct file of the fixture's
    vm-alpha session: slab objects, some sharing a block."""
    out = []
    for f in plain_files(session_named(prog, "vm-alpha", "outgoing")):
        out.append((f.value_(), drgn.sizeof(f[0])))
        out.append((f.file.value_(), drgn.sizeof(f.file[0])))
    return out


def test_kept_blocks_read_what_drgn_reads() -> None:
    """Would catch: a kept block served at the wrong offset, a read that
    crosses a block's end served from the first block alone, or a physical
    read served from a virtual block."""
    prog = examples.load("outgoing").program()
    words = Words.cached(prog)
    reads = _file_structs(prog)
    structs = reads[0][0]
    # Across the end of a block, and the physical page of the first object.
    end = (structs | (_words._BLOCK - 1)) - 3
    reads.append((end, 8))
    want = [prog.read(at, n) for at, n in reads]
    phys = prog.read(0x1000, 64, True)
    with KeptBlocks(prog):
        assert [words.read_bytes(prog, at, n) for at, n in reads] == want
        assert words.read_bytes(prog, 0x1000, 64, True) == phys
        kept = prog.cache[_words._KEPT]
        # The structures' blocks, not the one crossed nor the physical page.
        assert set(kept) == {at - at % _words._BLOCK for at, n in reads[:-1]}
        assert all(len(b) == _words._BLOCK for b in kept.values())
        # Read again: from the blocks, the same bytes.
        assert [words.read_bytes(prog, at, n) for at, n in reads] == want


def test_kept_blocks_are_the_memory_of_one_collection() -> None:
    """Would catch: blocks kept after the collection (a live kernel's next
    %luo would read stale memory), an inner collection reading the outer's
    blocks, or more blocks kept than the bound."""
    prog = examples.load("outgoing").program()
    words = Words.cached(prog)
    at, n = _file_structs(prog)[0]
    before = prog.read(at, n)
    changed = bytes(b ^ 0xFF for b in before)
    with KeptBlocks(prog):
        assert words.read_bytes(prog, at, n) == before
        prog.add_memory_segment(at, n, lambda a, m, o, p: changed[o : o + m])
        assert words.read_bytes(prog, at, n) == before  # as when first read
        with KeptBlocks(prog):
            assert words.read_bytes(prog, at, n) == changed
        assert words.read_bytes(prog, at, n) == before  # the outer's blocks again
        # Many blocks (the direct map of the first megabytes): never more
        # kept than the bound.
        for page in range(1, 2 * _words._BLOCKS_KEPT):
            words.read_bytes(prog, phys_to_virt(prog, page * _words._BLOCK).value_(), 8)
            assert 0 < len(prog.cache[_words._KEPT]) <= _words._BLOCKS_KEPT
    assert _words._KEPT not in prog.cache
    assert words.read_bytes(prog, at, n) == changed


def test_a_block_that_faults_reads_the_structure_alone() -> None:
    """Would catch: a structure in memory whose block is not all there (a
    partial segment) faulting because its block does, or a read of missing
    memory answering instead of faulting."""
    prog = drgn.Program(drgn.host_platform)
    data = bytes(range(256))
    base = 0x10000080  # half a block in memory
    prog.add_memory_segment(base, len(data), lambda a, m, o, p: data[o : o + m])
    words = Words.cached(prog)
    with KeptBlocks(prog):
        assert words.read_bytes(prog, base + 16, 8) == data[16:24]
        assert words.read_bytes(prog, base + 16, 8) == data[16:24]
        assert prog.cache[_words._KEPT] == {}
        with pytest.raises(drgn.FaultError):
            words.read_bytes(prog, base - 8, 8)
        with pytest.raises(drgn.FaultError):
            words.read_bytes(prog, 0x20000000, 8)


def test_words_are_the_targets_pointers() -> None:
    """Would catch: a pointer read with the host's byte order or size
    instead of the target's, or an address past the top of the address
    space leaving drgn's range (OverflowError) instead of wrapping as the
    kernel's does."""
    prog = examples.load("outgoing").program()
    words = Words.cached(prog)
    assert (words.size, words.order, words.fmt) == (8, "little", "<Q")
    head = prog["luo_session_global"].outgoing.list
    assert words.read(prog, head.address_) == head.next.value_()
    # An address worked out past the top wraps, as the kernel's pointer
    # arithmetic does.
    assert words.read_bytes(prog, (1 << 64) + head.address_, 8) == prog.read(head.address_, 8)
