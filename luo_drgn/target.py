# SPDX-License-Identifier: LGPL-2.1-or-later
"""Open what the user asked to inspect, or say in one line why not.

drgn's ``program_from_core_dump()``/``program_from_kernel()`` swallow missing
debug info; the inspector needs to report it, so the Program is set up by
hand here and every failure becomes a :class:`TargetError` whose message
says what is wrong and what to do.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import drgn
from drgn import FaultError, Program, ProgramFlags

from .debuginfo import SEARCHED, add_search_directories
from .model import Target


class TargetError(Exception):
    """The target cannot be inspected; ``str(e)`` is the one line to show."""


def _check_core_path(path: Path) -> None:
    if not path.exists():
        raise TargetError(f"{path}: no such file")
    if path.is_dir():
        raise TargetError(f"{path}: is a directory, not a vmcore")
    if not os.access(path, os.R_OK):
        raise TargetError(f"{path}: permission denied")
    if path.stat().st_size == 0:
        raise TargetError(f"{path}: empty file, not a vmcore")


# Files users attach that are not a vmcore yet: (magic, offset, what, do).
_WRAPPED = (
    (b"\xfd7zXZ\x00", 0, "an xz-compressed file", "decompress it first (xz -dk FILE)"),
    (b"\x1f\x8b", 0, "a gzip-compressed file", "decompress it first (gzip -dk FILE)"),
    (b"\x28\xb5\x2f\xfd", 0, "a zstd-compressed file", "decompress it first (zstd -d FILE)"),
    (b"BZh", 0, "a bzip2-compressed file", "decompress it first (bzip2 -dk FILE)"),
    (b"\x04\x22\x4d\x18", 0, "an lz4-compressed file", "decompress it first (lz4 -d FILE)"),
    (b"ustar", 257, "a tar archive", "extract the vmcore from it first (tar -xf FILE)"),
    (b"PK\x03\x04", 0, "a zip archive", "extract the vmcore from it first (unzip FILE)"),
)
_FLATTENED = b"makedumpfile\0"
_KDUMP = (b"KDUMP   ", b"DISKDUMP")
# struct new_utsname in a kdump header: six fields of 65 bytes after the
# signature and the header version.
_UTS_FIELD = 65


def _head(path: Path, size: int = 8192) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def _kdump_header(head: bytes) -> bytes | None:
    """The kdump-compressed header at the start of a file, or of the first
    record of a flattened one (makedumpfile -F, QEMU's kdump formats)."""
    if head.startswith(_KDUMP):
        return head
    if head.startswith(_FLATTENED):
        # A 4096-byte flattened header, then records of (offset, size, data).
        record = head[4096 + 16 :]
        if record.startswith(_KDUMP):
            return record
    return None


def _unreadable(path: Path, error: object) -> str:
    """One line for a file drgn could not open: what it is, what to do
    (compressed and archived files are refused before drgn tries them)."""
    head = _head(path)
    header = _kdump_header(head)
    if header is not None:
        sysname = header[12 : 12 + _UTS_FIELD].split(b"\0", 1)[0]
        if not sysname:
            # QEMU's dump-guest-memory fills only utsname.machine, and
            # libkdumpfile cannot tell the kernel from it.
            return (
                f"{path}: a kdump-compressed dump written by QEMU (dump-guest-memory "
                "-z/-l/-s or a kdump-* format), which drgn cannot read: dump the guest "
                "again in ELF format (dump-guest-memory without a format option)"
            )
        if head.startswith(_FLATTENED):
            return (
                f"{path}: a flattened kdump (makedumpfile -F) that drgn cannot read "
                f"({error}): rebuild it with makedumpfile -R"
            )
        return f"{path}: a kdump-compressed dump that drgn (libkdumpfile) cannot read: {error}"
    if head.startswith(b"\x7fELF"):
        return f"{path}: an ELF file that is not a kernel vmcore: {error}"
    return f"{path}: not a kernel vmcore (ELF or kdump): {error}"


def _set_core(prog: Program, path: Path) -> None:
    head = _head(path, 512)
    for magic, offset, what, todo in _WRAPPED:
        if head[offset : offset + len(magic)] == magic:
            raise TargetError(f"{path}: {what}, not a vmcore: {todo}")
    try:
        prog.set_core_dump(str(path))
    except OSError as e:
        raise TargetError(f"{path}: cannot open: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - libkdumpfile raises plain Exception
        raise TargetError(_unreadable(path, e)) from None
    if not prog.flags & ProgramFlags.IS_LINUX_KERNEL:
        raise TargetError(f"{path}: a userspace core dump, not a kernel vmcore (no VMCOREINFO)")


def _set_live(prog: Program) -> None:
    try:
        prog.set_kernel()
    except PermissionError:
        raise TargetError(
            "cannot read /proc/kcore: permission denied "
            "(run as root to inspect the running kernel, or pass -c VMCORE)"
        ) from None
    except FileNotFoundError:
        raise TargetError(
            "no /proc/kcore: the running kernel was built without "
            "CONFIG_PROC_KCORE (pass -c VMCORE instead)"
        ) from None
    except (OSError, ValueError) as e:
        raise TargetError(f"cannot open the running kernel: {e}") from None


def _named(prog: Program) -> str:
    """`` (build ID ...)``, where the dump says which build it is."""
    build_id = kernel_build_id(prog)
    return f" (build ID {build_id})" if build_id else ""


def _load_debug_info(prog: Program, symbols: Sequence[str]) -> None:
    files = [s for s in symbols if not Path(s).is_dir()]
    directories = [Path(s) for s in symbols if Path(s).is_dir()]
    for s in files:
        if not Path(s).is_file():
            raise TargetError(f"{s}: no such debug info file or directory")
    add_search_directories(prog, directories)
    try:
        if files:
            prog.load_debug_info(files, default=bool(directories))
        else:
            prog.load_default_debug_info()
    except drgn.MissingDebugInfoError as e:
        if directories and not files:
            raise TargetError(
                f"no debug info for this kernel{_named(prog)} in "
                f"{', '.join(map(str, directories))} (looked for {SEARCHED})"
            ) from None
        if symbols:
            raise TargetError(
                f"the debug info given does not match this kernel ({e}); pass the "
                "vmlinux of the kernel that made the vmcore"
            ) from None
        raise TargetError(
            f"no debug info found for this kernel ({e}); pass -s VMLINUX "
            "or install the kernel's debug package"
        ) from None
    except (OSError, ValueError) as e:
        raise TargetError(f"cannot load debug info: {e}") from None
    try:
        kernel_debug = prog.main_module().debug_file_path
    except LookupError:
        kernel_debug = None
    if symbols and kernel_debug is None:
        # drgn matches files by build ID and ignores one from another build.
        raise TargetError(
            "the debug info given is not for this kernel (no file there has its "
            "build ID); pass the vmlinux of the kernel that made the vmcore, or the "
            "directory its debug package is unpacked in"
        )


def _vmcoreinfo_release(prog: Program) -> str | None:
    try:
        info = prog["VMCOREINFO"].string_().decode(errors="replace")
    except (LookupError, FaultError):
        return None
    for line in info.splitlines():
        if line.startswith("OSRELEASE="):
            return str(line.split("=", 1)[1])
    return None


def _check_readable(prog: Program, path: Path | None) -> str:
    """Read the kernel release through the debug info: proves that memory and
    debug info agree, and that the core is not cut short."""
    what = str(path) if path else "the running kernel"
    try:
        release = prog["init_uts_ns"].name.release.string_().decode(errors="replace")
    except FaultError as e:
        raise TargetError(
            f"{what}: cannot read kernel memory at {e.address:#x} (truncated or damaged vmcore?)"
        ) from None
    except LookupError as e:
        raise TargetError(f"{what}: the debug info lacks init_uts_ns ({e})") from None
    expected = _vmcoreinfo_release(prog)
    if expected and release != expected:
        raise TargetError(
            f"{what}: the debug info is for another build (kernel memory says "
            f"{release!r} through it, VMCOREINFO says {expected!r})"
        )
    return str(release)


def open_target(
    core: str | None, symbols: Sequence[str] = (), quiet: bool = True
) -> tuple[Program, Target]:
    """
    Open a vmcore (``core``) or the running kernel (``core`` None) with the
    given debug info files (default: drgn's standard search).

    :param quiet: silence drgn's own warnings (the error says it once)
    :raises TargetError: with a one-line explanation
    """
    if quiet:
        logging.getLogger("drgn").setLevel(logging.ERROR)
    prog = Program()
    path = Path(core) if core is not None else None
    if path is not None:
        _check_core_path(path)
        _set_core(prog, path)
    else:
        _set_live(prog)
    _load_debug_info(prog, symbols)
    release = _check_readable(prog, path)
    target = target_of(prog)
    target.path = str(path) if path is not None else "/proc/kcore"
    target.kernel_release = release
    target.debuginfo = target.debuginfo or list(symbols)
    return prog, target


def target_of(prog: Program) -> Target:
    """Describe a Program somebody else opened (drgn's ``%luo``)."""
    try:
        debuginfo = sorted({m.debug_file_path for m in prog.modules() if m.debug_file_path})
    except (AttributeError, LookupError):
        debuginfo = []
    try:
        uts = prog["init_uts_ns"].name
        release: str | None = uts.release.string_().decode(errors="replace")
        hostname: str | None = uts.nodename.string_().decode(errors="replace")
    except (LookupError, FaultError):
        release = hostname = None
    live = bool(prog.flags & ProgramFlags.IS_LIVE)
    return Target(
        kind="live" if live else "vmcore",
        path="/proc/kcore" if live else None,
        kernel_release=release,
        debuginfo=debuginfo,
        hostname=hostname,
        build_id=kernel_build_id(prog),
    )


def own_debug_file(prog: Program) -> list[str]:
    """The debug file drgn loaded for the kernel of ``prog`` (none found: [])."""
    try:
        path = prog.main_module().debug_file_path
    except LookupError:
        return []
    return [path] if path else []


def kernel_build_id(prog: Program) -> str | None:
    """The kernel's build ID (hex) as drgn knows it: from VMCOREINFO's
    BUILD-ID line, or the running kernel's notes."""
    try:
        build_id = prog.main_module().build_id
    except LookupError:
        return None
    return build_id.hex() if build_id else None
