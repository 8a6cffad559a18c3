# SPDX-License-Identifier: LGPL-2.1-or-later
"""VMCOREINFO notes in QEMU's ELF dumps.

drgn needs a VMCOREINFO note to open a kernel core.  QEMU writes one only
when the guest filled its vmcoreinfo device, which the kernel's fw_cfg
driver does late in boot: a kernel that panics in an early initcall (LUO's
restore runs at early_initcall) is dumped without one, and the previous
kernel's is gone with the kexec.  The same kernel build has the same
symbols, so the previous kernel's text serves once its ``phys_base`` is the
new kernel's.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

PT_NOTE = 4
NAME = b"VMCOREINFO"


def _program_headers(data: bytes) -> tuple[int, int, int]:
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a little-endian ELF64 file")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return phoff, phentsize, phnum


def _notes(blob: bytes) -> list[tuple[bytes, int, bytes]]:
    out, pos = [], 0
    while pos + 12 <= len(blob):
        namesz, descsz, ntype = struct.unpack_from("<III", blob, pos)
        pos += 12
        name = blob[pos : pos + namesz].rstrip(b"\0")
        pos += (namesz + 3) & ~3
        out.append((name, ntype, blob[pos : pos + descsz]))
        pos += (descsz + 3) & ~3
    return out


def _note_segment(path: Path) -> tuple[int, int, int]:
    """(index of the PT_NOTE header, its file offset, its size)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
        phoff, phentsize, phnum = _program_headers(head)
        for i in range(phnum):
            p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
                "<IIQQQQ", head, phoff + i * phentsize
            )
            if p_type == PT_NOTE:
                return i, p_offset, p_filesz
    raise ValueError(f"{path}: no PT_NOTE segment")


def read_vmcoreinfo(path: Path) -> str | None:
    """The VMCOREINFO text of an ELF core, or None."""
    _, offset, size = _note_segment(path)
    with open(path, "rb") as f:
        f.seek(offset)
        for name, _, desc in _notes(f.read(size)):
            if name == NAME:
                return desc.decode()
    return None


def with_phys_base(vmcoreinfo: str, phys_base: int) -> str:
    return re.sub(
        r"^NUMBER\(phys_base\)=.*$", f"NUMBER(phys_base)={phys_base}", vmcoreinfo, flags=re.M
    )


def add_vmcoreinfo(path: Path, vmcoreinfo: str) -> None:
    """Give an ELF core a VMCOREINFO note: its notes, and the new one, are
    appended to the file and the PT_NOTE header pointed at them (a note
    segment may lie anywhere in the file, so nothing else moves)."""
    index, offset, size = _note_segment(path)
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        notes = b"".join(_pack(n, t, d) for n, t, d in _notes(f.read(size)) if n != NAME) + _pack(
            NAME, 0, vmcoreinfo.encode()
        )
        end = f.seek(0, 2)
        f.write(notes)
        head = f.seek(0) or f.read(64)
        phoff, phentsize, _ = _program_headers(head)
        # p_offset at +8, p_filesz at +32 of an Elf64_Phdr.
        f.seek(phoff + index * phentsize + 8)
        f.write(struct.pack("<Q", end))
        f.seek(phoff + index * phentsize + 32)
        f.write(struct.pack("<Q", len(notes)))


def _pack(name: bytes, ntype: int, desc: bytes) -> bytes:
    out = struct.pack("<III", len(name) + 1, len(desc), ntype)
    out += (name + b"\0").ljust((len(name) + 1 + 3) & ~3, b"\0")
    return out + desc.ljust((len(desc) + 3) & ~3, b"\0")
