# SPDX-License-Identifier: LGPL-2.1-or-later
"""How a target stores a pointer, for helpers that read arrays of pointers
in one read and unpack them (a fd table, a hash table's buckets); and the
blocks of memory a walk keeps while it reads (:class:`KeptBlocks`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from drgn import FaultError, PlatformFlags, Program

__all__: tuple[str, ...] = ()  # not a helper: imported by name

# No kernel page is smaller: an aligned block lies in one page, so it is in
# a dump (makedumpfile drops whole pages) or mapped as a whole, or not at all.
_BLOCK = 4096
# 256 KiB.  Slab objects allocated together sit together: on a host's
# 10,000 preserved files (66,000 reads), 16 blocks serve 86% of reads, 64
# blocks 87%, every block 93%; keeping every block would grow with the host.
_BLOCKS_KEPT = 64
_KEPT = "kept_blocks"  # prog.cache key: the blocks of the walk under way


class KeptBlocks:
    """
    Within ``with KeptBlocks(prog):``, the helpers that read structures
    whole (through :meth:`Words.read_bytes`) read the aligned 4 KiB block
    around each structure once, and keep the last blocks read: a walk of
    tens of thousands of slab objects (luo_files, struct files, inodes,
    dentries) then reads each slab page once, not once per object.

    Meant for one collection of a snapshot: within it, a live kernel's
    memory reads as it was when its block was first read; the blocks are
    dropped on leaving (an inner block starts afresh and restores the
    outer's).  A block that faults is not kept: the structure is then read
    alone, and faults as it would without the blocks.
    """

    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.outer: dict[int, bytes] | None = None

    def __enter__(self) -> KeptBlocks:
        self.outer = self.prog.cache.get(_KEPT)
        self.prog.cache[_KEPT] = {}
        return self

    def __exit__(self, *exc: object) -> None:
        if self.outer is None:
            del self.prog.cache[_KEPT]
        else:
            self.prog.cache[_KEPT] = self.outer


@dataclass(frozen=True)
class Words:
    """How this target stores a pointer: size and byte order, from
    ``prog.platform``."""

    size: int
    order: Literal["little", "big"]
    fmt: str  # struct format of one pointer

    @classmethod
    def of(cls, prog: Program) -> Words:
        platform = prog.platform
        if platform is None:
            raise ValueError("the program has no platform")
        size = 8 if platform.flags & PlatformFlags.IS_64_BIT else 4
        little = bool(platform.flags & PlatformFlags.IS_LITTLE_ENDIAN)
        return cls(
            size,
            "little" if little else "big",
            ("<" if little else ">") + ("Q" if size == 8 else "I"),
        )

    def read(self, prog: Program, address: int) -> int:
        return int.from_bytes(self.read_bytes(prog, address, self.size), self.order)

    def read_bytes(self, prog: Program, address: int, size: int, physical: bool = False) -> bytes:
        """``prog.read()`` at an address worked out in Python from pointers
        read from memory (a member's offset added, container_of()'s
        subtracted), wrapped as the kernel's pointer arithmetic wraps: a
        garbage pointer then faults (FaultError) like any other, instead of
        leaving drgn's address range (OverflowError).  Within
        :class:`KeptBlocks`, a virtual read inside one block is served from
        the block."""
        address &= (1 << (8 * self.size)) - 1
        kept: dict[int, bytes] | None = prog.cache.get(_KEPT)
        offset = address % _BLOCK
        if kept is None or physical or offset + size > _BLOCK:
            data: bytes = prog.read(address, size, physical)
            return data
        start = address - offset
        block = kept.get(start)
        if block is None:
            try:
                block = prog.read(start, _BLOCK)
            except FaultError:
                # Part of the block is missing: the structure alone may not be.
                data = prog.read(address, size)
                return data
            if len(kept) >= _BLOCKS_KEPT:
                kept.clear()
            kept[start] = block
        return block[offset : offset + size]

    @classmethod
    def cached(cls, prog: Program) -> Words:
        """:meth:`of`, once per program."""
        try:
            words: Words = prog.cache["pointer_words"]
        except KeyError:
            words = prog.cache["pointer_words"] = cls.of(prog)
        return words
