# SPDX-License-Identifier: LGPL-2.1-or-later
"""A minimal newc cpio writer for the guest initramfs.

Written here rather than calling cpio(1) or gen_init_cpio so that device
nodes (``/dev/console``) can be created without root and without a kernel
tree at hand.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def regular(path: str, data: bytes, executable: bool = False) -> Entry:
    return Entry(path, stat.S_IFREG | (0o755 if executable else 0o644), data)


def char_device(path: str, major: int, minor: int) -> Entry:
    return Entry(path, stat.S_IFCHR | 0o600, rdev=(major, minor))


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _record(ino: int, entry: Entry) -> bytes:
    name = entry.path.lstrip("/").encode() + b"\0"
    fields = (
        ino,
        entry.mode,
        0,
        0,
        1 if not stat.S_ISDIR(entry.mode) else 2,
        0,
        len(entry.data),
        0,
        0,
        entry.rdev[0],
        entry.rdev[1],
        len(name),
        0,
    )
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = header + name + _pad4(len(header) + len(name))
    return out + entry.data + _pad4(len(entry.data))


def build(entries: list[Entry]) -> bytes:
    """Return an uncompressed newc archive holding ``entries``, in order."""
    out = [_record(i + 1, e) for i, e in enumerate(entries)]
    out.append(_record(0, Entry("TRAILER!!!", 0)))
    return b"".join(out)
