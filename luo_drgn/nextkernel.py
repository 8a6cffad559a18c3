# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Next Kernel
-----------

The ``luo_drgn.nextkernel`` module reads, from the image of the kernel a
handover goes to and without a core, what the handover depends on: which
build it is (build ID, ``linux_banner``), whether that kernel has LUO at
all, the KHO ABI its ``kho_populate()`` and the LUO ABI its
``luo_early_startup()`` compare, the layouts of the serialized structures,
the compatible strings of the file handlers it builds in, its KHO default
and its built-in command line.  The image is a file (``--next-kernel``) or
the compressed kernel of the image loaded for ``kexec -e``, read from
memory (:func:`~luo_drgn.helpers.kexec.kimage_kernel_payload`); the debug
info of the latter is found by its build ID (:mod:`luo_drgn.debuginfo`),
and without it only what the image's data carries is known, the rest named
in ``unknown``.

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

import bz2
import contextlib
import gzip
import lzma
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import drgn
from drgn import Architecture, Platform, PlatformFlags, Program, SymbolKind

from .debuginfo import add_search_directories
from .helpers.cmdline import cmdline_builtin
from .helpers.kho import kho_is_enabled
from .helpers.liveupdate_layout import luo_layout
from .model import NextKernel, SerLayout

__all__ = (
    "LOADED_IMAGE",
    "SER_TYPES",
    "NextKernelError",
    "read_loaded_kernel",
    "read_next_kernel",
    "ser_layouts",
    "unpack",
)

# NextKernel.source of the image loaded for kexec -e.
LOADED_IMAGE = "the loaded image"

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

# The compressors a kernel payload comes in (arch/x86/boot/compressed:
# CONFIG_KERNEL_GZIP, _XZ, _LZMA, _BZIP2, _ZSTD, _LZ4, _LZO), by the magic
# scripts/extract-vmlinux looks for.
_MAGICS = (
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x1f\x8b\x08", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x5d\x00\x00", "lzma"),
    (b"BZh", "bzip2"),
    (b"\x02\x21\x4c\x18", "lz4"),
    (b"\x89\x4c\x5a\x4f", "lzo"),
)


def _zstd(data: bytes, what: str) -> bytes:
    try:
        import zstandard
    except ImportError:
        raise NextKernelError(
            f"{what}: a zstd-compressed kernel, and the zstandard package is not installed "
            "(pip install 'luo-drgn[fleet]')"
        ) from None
    try:
        out: bytes = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except zstandard.ZstdError:
        return b""
    return out


def _decompress(kind: str, data: bytes, what: str) -> bytes:
    try:
        if kind == "xz":
            return lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data)
        if kind == "lzma":
            return lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(data)
        if kind == "gzip":
            return gzip.decompress(data)
        if kind == "bzip2":
            return bz2.BZ2Decompressor().decompress(data)
        if kind == "zstd":
            return _zstd(data, what)
    except (lzma.LZMAError, OSError, EOFError, ValueError):
        return b""
    raise _Unsupported(kind)


class _Unsupported(Exception):
    """A compressor no library here unpacks (lz4's legacy frames, lzo)."""


def unpack(data: bytes, what: str) -> bytes:
    """
    The vmlinux inside a bzImage or a compressed kernel payload, as
    scripts/extract-vmlinux finds it: the first compressed stream that
    decompresses to an ELF file (x86's payload is vmlinux.bin, an ELF file
    stripped of its symbols: its notes and data stay).

    :raises NextKernelError: if there is none
    """
    unsupported = []
    for magic, kind in _MAGICS:
        start = data.find(magic)
        while start >= 0:
            try:
                out = _decompress(kind, data[start:], what)
            except _Unsupported:
                unsupported.append(kind)
                break
            if out.startswith(b"\x7fELF"):
                return out
            start = data.find(magic, start + 1)
    if unsupported:
        raise NextKernelError(
            f"{what}: no vmlinux found inside it; it may be {'- or '.join(unsupported)}-"
            "compressed, which luo-drgn cannot unpack: unpack it with the kernel's "
            "scripts/extract-vmlinux and pass the vmlinux with --next-kernel"
        )
    raise NextKernelError(f"{what}: not an ELF file, and no vmlinux found inside it")


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
# include/linux/kho/abi/kexec_handover.h: KHO_FDT_COMPATIBLE.
_KHO_ABI = re.compile(rb"\x00(kho-v[0-9]+)\x00")
# A file handler's compatible, by the convention of every in-tree one
# ("memfd-v2"): what an image without debug info shows of its handlers.
# It is a char array inside the handler (struct liveupdate_file_handler),
# after a pointer, not a string of its own.
_COMPATIBLE = re.compile(rb"(?<![\w-])([a-z][a-z0-9_]*(?:-[a-z0-9_]+)*-v[0-9]+)\x00")
# init/version-timestamp.c: linux_banner, "Linux version RELEASE (...".
_BANNER = re.compile(rb"Linux version ([^\s\x00]+) [^\x00\n]*")
# kernel/configs.c with CONFIG_IKCONFIG: the .config, gzip'd between markers.
_IKCONFIG = re.compile(rb"IKCFG_ST(.*?)IKCFG_ED", re.S)


def _unique(pattern: re.Pattern[bytes], data: bytes) -> tuple[str | None, set[str]]:
    found = {m.group(1).decode() for m in pattern.finditer(data)}
    return (next(iter(found)) if len(found) == 1 else None), found


def _ikconfig(data: bytes) -> dict[str, str] | None:
    """The image's own .config, where it carries one (CONFIG_IKCONFIG)."""
    m = _IKCONFIG.search(data)
    if m is None:
        return None
    try:
        text = gzip.decompress(m.group(1)).decode(errors="replace")
    except (OSError, EOFError):
        return None
    out = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
    return out


def read_next_kernel(
    path: str, debug: Sequence[str] = (), directories: Sequence[Path] = ()
) -> NextKernel:
    """
    Read the kernel image at ``path`` (a vmlinux or a bzImage).

    :param debug: its debug info, if the image has none (a bzImage never
        does); without it, the directories and drgn's default search are
        searched for its build ID
    :raises NextKernelError: if it cannot be read, or no debug info for it
        is found
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise NextKernelError(f"{path}: cannot read: {e.strerror or e}") from None
    if data.startswith(b"\x7fELF"):
        return _read(data, path, debug, directories, image_has_debug=True, strict=True)
    return _read(unpack(data, path), path, debug, directories, image_has_debug=False, strict=True)


def read_loaded_kernel(
    payload: bytes,
    directories: Sequence[Path] = (),
    known: Mapping[str, Sequence[str]] | None = None,
) -> NextKernel:
    """
    Read the kernel the image loaded for ``kexec -e`` will boot, from its
    compressed payload (:func:`~luo_drgn.helpers.kexec.kimage_kernel_payload`).
    Its debug info is looked for by build ID in ``directories`` and drgn's
    default search; without it, what its data shows is read (the ABI
    strings, the handlers' compatibles, the .config of CONFIG_IKCONFIG) and
    the rest is named in ``unknown``.

    :param known: debug info already at hand, by build ID (the running
        kernel's own, for an image of the same build)
    :raises NextKernelError: if the payload does not unpack to a kernel
    """
    elf = unpack(payload, LOADED_IMAGE)
    debug = (known or {}).get(_Elf(elf).build_id() or "", ())
    return _read(elf, LOADED_IMAGE, debug, directories, image_has_debug=False, strict=False)


def _read(
    data: bytes,
    path: str,
    debug: Sequence[str],
    directories: Sequence[Path],
    *,
    image_has_debug: bool,
    strict: bool,
) -> NextKernel:
    elf = _Elf(data)
    sections = elf.sections()
    # objcopy --only-keep-debug leaves .rodata and .data without contents.
    debug_only = sections.get(".rodata", (8, 0, 0, 0))[0] == 8  # SHT_NOBITS
    build_id = elf.build_id()
    banner = _BANNER.search(data)
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
    add_search_directories(prog, directories)
    debug_found = True
    try:
        if debug:
            prog.load_debug_info(list(debug))
        elif image_has_debug and ".debug_info" in sections:
            prog.load_debug_info([path])
        else:
            prog.load_default_debug_info()
    except drgn.MissingDebugInfoError as e:
        if strict:
            raise NextKernelError(
                f"{path}: no debug info for this kernel ({e}); pass its debug vmlinux with "
                "--next-kernel-debug, or a directory with -s"
            ) from None
        debug_found = False
    debug_file = prog.main_module().debug_file_path if debug_found else None
    if debug_found and debug_file is None:
        if strict:
            raise NextKernelError(f"{path}: the debug info given is not for this kernel")
        debug_found = False
    notes: list[str] = []
    unknown: dict[str, str] = {}
    abi, abis = _unique(_ABI, data)
    kho_abi, khos = (None, set()) if debug_only else _unique(_KHO_ABI, data)
    config = None if debug_only else _ikconfig(data)
    handlers: list[str] | None = None
    kho_default: bool | None = None
    builtin: str | None = None
    layouts: dict[str, SerLayout | None] = {}
    if debug_found:
        has_luo = luo_layout(prog).present
        layouts = ser_layouts(prog)
    else:
        # A kernel without CONFIG_LIVEUPDATE has no LUO ABI string.
        has_luo = bool(abis)
        unknown["debug_info"] = (
            f"its debug info (build ID {build_id or 'unknown'}, in no -s directory nor drgn's "
            "default paths): the layouts of the serialized structures are taken from its LUO "
            "ABI string, its file handlers from its data"
        )
    if debug_only:
        notes.append(
            f"{path} holds debug info only (objcopy --only-keep-debug): its LUO ABI string and "
            "file handlers cannot be read; pass the vmlinux or the bzImage"
        )
        abi = None
    elif has_luo:
        if abi is None:
            notes.append(f"{path}: LUO ABI string not found unambiguously ({sorted(abis)})")
        if debug_found:
            handlers = _handlers(prog)
        else:
            handlers = sorted(
                {m.group(1).decode() for m in _COMPATIBLE.finditer(data)} - abis - khos
            )
    if not debug_only:
        if kho_abi is None:
            unknown["kho_abi"] = f"its KHO ABI (KHO_FDT_COMPATIBLE: {sorted(khos) or 'not found'})"
        # kexec_handover.c: kho_enable's initializer is
        # IS_ENABLED(CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT).
        if debug_found:
            with contextlib.suppress(drgn.FaultError):
                kho_default = kho_is_enabled(prog)
            raw_builtin = cmdline_builtin(prog)
            builtin = None if raw_builtin is None else raw_builtin.decode(errors="replace")
        if config is not None:
            kho_default = config.get("CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT") == "y"
            if config.get("CONFIG_CMDLINE_BOOL") != "y":
                builtin = None
            elif builtin is None:
                builtin = config.get("CONFIG_CMDLINE", '""').strip('"')
        if kho_default is None:
            unknown["kho_default"] = "its KHO default (CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT)"
        if not debug_found and config is None:
            unknown["builtin_cmdline"] = (
                "its built-in command line (CONFIG_CMDLINE_BOOL, CONFIG_CMDLINE)"
            )
    override: bool | None = None
    if config is not None:
        override = config.get("CONFIG_CMDLINE_OVERRIDE") == "y"
    elif builtin:
        unknown["cmdline_override"] = (
            "whether its built-in command line replaces the one given "
            "(CONFIG_CMDLINE_OVERRIDE: the image carries no .config)"
        )
    return NextKernel(
        path,
        has_luo,
        abi,
        handlers,
        layouts,
        notes,
        kho_default,
        symbolic_errname(prog) if debug_found else None,
        build_id=build_id,
        banner=banner.group(0).decode(errors="replace").rstrip() if banner else None,
        release=banner.group(1).decode(errors="replace") if banner else None,
        kho_abi=kho_abi,
        builtin_cmdline=builtin,
        cmdline_override=override,
        source="--next-kernel" if strict else LOADED_IMAGE,
        debug_file=debug_file,
        unknown=unknown,
    )


def symbolic_errname(prog: drgn.Program) -> bool:
    """Whether a kernel prints ``%pe`` as a name (``-EINVAL``): lib/errname.c,
    built with CONFIG_SYMBOLIC_ERRNAME, defines errname() (without it, only
    its declaration is in the debug info, with no address)."""
    try:
        return prog.function("errname").address_ is not None
    except LookupError:
        return False
