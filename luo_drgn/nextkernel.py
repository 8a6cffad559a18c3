# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Next Kernel
-----------

The ``luo_drgn.nextkernel`` module reads, from the image of the kernel a
handover goes to and without a core, what the handover depends on: whether
that kernel has LUO at all, the LUO ABI string its ``luo_early_startup()``
compares, the layouts of the serialized structures, and the compatible
strings of the file handlers it builds in.

drgn ignores a vmlinux loaded without a target, so the image is set up as a
custom Linux kernel program carrying its own build ID (which lets drgn
accept the matching debug info) and its loadable segments as memory (so
static data such as a handler's compatible string can be read).  A bzImage
is unpacked first; it is stripped, so its debug info comes from a separate
file or drgn's default search.  A debug-only file (``objcopy
--only-keep-debug``) has the types but none of the data: the layouts are
compared and the rest is said to be unknown.
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import drgn
from drgn import Architecture, Platform, PlatformFlags, Program, SymbolKind

from .model import NextKernel, SerLayout

__all__ = (
    "SER_TYPES",
    "NextKernelError",
    "read_next_kernel",
    "ser_layouts",
)

# The structures that cross the kexec (include/linux/kho/abi/).
SER_TYPES = (
    "struct luo_ser",
    "struct kho_block_header_ser",
    "struct luo_session_ser",
    "struct luo_file_set_ser",
    "struct luo_file_ser",
    "struct memfd_luo_ser",
)


class NextKernelError(Exception):
    """The next kernel's image cannot be read; ``str(e)`` says why."""


# -- the image ---------------------------------------------------------------

_MAGICS = (
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x1f\x8b\x08", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x5d\x00\x00", "lzma"),
)


def _unpack_bzimage(data: bytes, path: str) -> bytes:
    """The vmlinux inside a bzImage, as scripts/extract-vmlinux finds it: the
    first compressed stream that decompresses to an ELF file."""
    for magic, kind in _MAGICS:
        start = data.find(magic)
        while start >= 0:
            try:
                if kind == "xz":
                    out = lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data[start:])
                elif kind == "lzma":
                    out = lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(data[start:])
                elif kind == "gzip":
                    out = gzip.decompress(data[start:])
                else:
                    raise NextKernelError(
                        f"{path}: a zstd-compressed bzImage; unpack it with the kernel's "
                        "scripts/extract-vmlinux and pass the vmlinux"
                    )
            except (lzma.LZMAError, OSError, EOFError):
                out = b""
            if out.startswith(b"\x7fELF"):
                return out
            start = data.find(magic, start + 1)
    raise NextKernelError(f"{path}: not an ELF file, and no vmlinux found inside it")


@dataclass
class _Elf:
    data: bytes

    def __post_init__(self) -> None:
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
            raise NextKernelError("not a little-endian 64-bit ELF file")
        (self.machine,) = struct.unpack_from("<H", d, 0x12)
        (self.phoff, self.shoff) = struct.unpack_from("<QQ", d, 0x20)
        self.phentsize, self.phnum, self.shentsize, self.shnum, self.shstrndx = struct.unpack_from(
            "<HHHHH", d, 0x36
        )

    def segments(self) -> list[tuple[int, int, int, int]]:
        """(type, file offset, virtual address, file size) of each segment."""
        out = []
        for i in range(self.phnum):
            p_type, _, off, vaddr, _, filesz = struct.unpack_from(
                "<IIQQQQ", self.data, self.phoff + i * self.phentsize
            )
            out.append((p_type, off, vaddr, filesz))
        return out

    def sections(self) -> dict[str, tuple[int, int, int, int]]:
        """name -> (type, address, file offset, size)."""
        raw = []
        for i in range(self.shnum):
            name, sh_type, _, addr, off, size = struct.unpack_from(
                "<IIQQQQ", self.data, self.shoff + i * self.shentsize
            )
            raw.append((name, sh_type, addr, off, size))
        if not raw:
            return {}
        strtab = raw[self.shstrndx]
        names = self.data[strtab[3] : strtab[3] + strtab[4]]
        return {names[n : names.index(b"\0", n)].decode(): (t, a, o, s) for n, t, a, o, s in raw}

    def build_id(self) -> str | None:
        for p_type, off, _, size in self.segments():
            if p_type != 4:  # PT_NOTE
                continue
            pos, end = off, off + size
            while pos + 12 <= end:
                namesz, descsz, ntype = struct.unpack_from("<III", self.data, pos)
                name_at = pos + 12
                desc_at = name_at + ((namesz + 3) & ~3)
                if desc_at + descsz > end:
                    break  # a note past its segment: garbage, not a build ID
                if ntype == 3 and self.data[name_at : name_at + namesz] == b"GNU\0":
                    return self.data[desc_at : desc_at + descsz].hex()
                pos = desc_at + ((descsz + 3) & ~3)
        return None


def _platform(elf: _Elf) -> Platform:
    if elf.machine == 62:  # EM_X86_64
        arch = Architecture.X86_64
    elif elf.machine == 183:  # EM_AARCH64
        arch = Architecture.AARCH64
    else:
        arch = Architecture.UNKNOWN
    return Platform(arch, PlatformFlags.IS_64_BIT | PlatformFlags.IS_LITTLE_ENDIAN)


# -- reading it ----------------------------------------------------------------


def ser_layouts(prog: Program) -> dict[str, SerLayout | None]:
    """The layout of each serialized structure in a program (None where the
    kernel does not have it)."""
    out: dict[str, SerLayout | None] = {}
    for name in SER_TYPES:
        try:
            t = prog.type(name)
        except LookupError:
            out[name] = None
            continue
        out[name] = (
            t.size,
            tuple((m.name or "", m.bit_offset, drgn.sizeof(m.type)) for m in t.members or ()),
        )
    return out


def _handlers(prog: Program) -> list[str]:
    """Compatible strings of the struct liveupdate_file_handler objects the
    kernel is built with (each registers itself at init)."""
    t = prog.type("struct liveupdate_file_handler")
    out = []
    for sym in prog.symbols():
        if sym.kind != SymbolKind.OBJECT or sym.size != t.size:
            continue
        try:
            obj = prog.object(sym.name)
        except LookupError:
            continue
        if obj.type_.unaliased().type_name() == "struct liveupdate_file_handler":
            out.append(obj.compatible.string_().decode(errors="replace"))
    return sorted(set(out))


_ABI = re.compile(rb"\x00(luo-v[0-9]+)\x00")


def read_next_kernel(path: str, debug: Sequence[str] = ()) -> NextKernel:
    """
    Read the kernel image at ``path`` (a vmlinux or a bzImage).

    :param debug: its debug info, if the image has none (a bzImage never
        does); without it, drgn's default search is used
    :raises NextKernelError: if it cannot be read
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise NextKernelError(f"{path}: cannot read: {e.strerror or e}") from None
    if not data.startswith(b"\x7fELF"):
        data = _unpack_bzimage(data, path)
        image_has_debug = False
    else:
        image_has_debug = True
    elf = _Elf(data)
    sections = elf.sections()
    # objcopy --only-keep-debug leaves .rodata and .data without contents.
    debug_only = sections.get(".rodata", (8, 0, 0, 0))[0] == 8  # SHT_NOBITS
    build_id = elf.build_id()
    prog = Program(_platform(elf))
    # swapper_pg_dir is never walked: the image segments serve every read.
    vmcoreinfo = "OSRELEASE=next\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82000000\n"
    if build_id:
        vmcoreinfo += f"BUILD-ID={build_id}\n"
    prog.set_linux_kernel_custom(vmcoreinfo.encode(), False)
    if not debug_only:
        for p_type, off, vaddr, size in elf.segments():
            if p_type == 1 and size:  # PT_LOAD
                chunk = data[off : off + size]
                prog.add_memory_segment(
                    vaddr, size, lambda a, n, o, p, chunk=chunk: chunk[o : o + n], False
                )
    try:
        if debug:
            prog.load_debug_info(list(debug))
        elif image_has_debug and ".debug_info" in sections:
            prog.load_debug_info([path])
        else:
            prog.load_default_debug_info()
    except drgn.MissingDebugInfoError as e:
        raise NextKernelError(
            f"{path}: no debug info for this kernel ({e}); pass its debug vmlinux with "
            "--next-kernel-debug"
        ) from None
    if prog.main_module().debug_file_path is None:
        raise NextKernelError(f"{path}: the debug info given is not for this kernel")
    notes = []
    try:
        prog["luo_session_global"]
        has_luo = True
    except LookupError:
        has_luo = False
    abi: str | None = None
    handlers: list[str] | None = None
    if debug_only:
        notes.append(
            f"{path} holds debug info only (objcopy --only-keep-debug): its LUO ABI string and "
            "file handlers cannot be read; pass the vmlinux or the bzImage"
        )
    elif has_luo:
        found = {m.group(1).decode() for m in _ABI.finditer(data)}
        if len(found) == 1:
            abi = found.pop()
        else:
            notes.append(f"{path}: LUO ABI string not found unambiguously ({sorted(found)})")
        handlers = _handlers(prog)
    kho_default: bool | None = None
    if not debug_only:
        # kexec_handover.c: kho_enable's initializer is
        # IS_ENABLED(CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT).
        with contextlib.suppress(LookupError, drgn.FaultError):
            kho_default = bool(prog["kho_enable"].value_())
    return NextKernel(
        path,
        has_luo,
        abi,
        handlers,
        ser_layouts(prog),
        notes,
        kho_default,
        symbolic_errname(prog),
    )


def symbolic_errname(prog: drgn.Program) -> bool:
    """Whether a kernel prints ``%pe`` as a name (``-EINVAL``): lib/errname.c,
    built with CONFIG_SYMBOLIC_ERRNAME, defines errname() (without it, only
    its declaration is in the debug info, with no address)."""
    try:
        return prog.function("errname").address_ is not None
    except LookupError:
        return False
