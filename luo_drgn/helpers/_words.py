# SPDX-License-Identifier: LGPL-2.1-or-later
"""How a target stores a pointer, for helpers that read arrays of pointers
in one read and unpack them (a fd table, a hash table's buckets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from drgn import PlatformFlags, Program

__all__: tuple[str, ...] = ()  # not a helper: imported by name


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
        leaving drgn's address range (OverflowError)."""
        data: bytes = prog.read(address & ((1 << (8 * self.size)) - 1), size, physical)
        return data

    @classmethod
    def cached(cls, prog: Program) -> Words:
        """:meth:`of`, once per program."""
        try:
            words: Words = prog.cache["pointer_words"]
        except KeyError:
            words = prog.cache["pointer_words"] = cls.of(prog)
        return words
