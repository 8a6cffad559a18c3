# SPDX-License-Identifier: LGPL-2.1-or-later
"""The struct file helpers (:mod:`luo_drgn.helpers.vfs`) on the real fixtures."""

from __future__ import annotations

from typing import Any

import drgn

from luo_drgn import examples
from luo_drgn import helpers as h
from tests.support.fixtures import only
from tests.support.plain import (
    all_luo_files,
    expected_files,
    has_sessions,
    session_named,
)
from tests.support.plain import files as plain_files


@only(has_sessions)
def test_luo_preserved_file_refcount(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a file's reference count read without file_ref_t's offset of one."""
    for f, want in zip(all_luo_files(prog), expected_files(expected)):
        if want["has_file"]:
            assert h.file_refcount(f.file) == want["refcount"]


def test_luo_preserved_file_refcount_dead_file() -> None:
    """Would catch: a file_ref value read in the wrong zone, at either side of
    each zone's edge (include/linux/file_ref.h's table of the zones):
    FILE_REF_RELEASED and above mean released."""

    prog = examples.load("outgoing").program()
    file = plain_files(session_named(prog, "vm-alpha", "outgoing"))[0].file
    assert h.file_refcount(file) == 5
    refcnt = file.f_ref.refcnt.counter.address_
    # include/linux/file_ref.h: the saturation zone is alive (pinned); the
    # dead zone and NOREF are released.
    for raw, want in (
        (0xA000000000000000, -2),
        (0xBFFFFFFFFFFFFFFF, -2),
        (0xC000000000000000, -1),
        (0xFFFFFFFFFFFFFFFF, -1),
        (0x7FFFFFFFFFFFFFFE, 0x7FFFFFFFFFFFFFFF),
        # Each zone's first value: FILE_REF_MAXREF is still a count.
        (0x7FFFFFFFFFFFFFFF, 0x8000000000000000),
        (0x8000000000000000, -2),
        (0x0000000000000000, 1),  # FILE_REF_ONEREF
    ):
        data = raw.to_bytes(8, "little")
        prog.add_memory_segment(refcnt, 8, lambda a, n, off, phys, d=data: d[off : off + n])
        assert h.file_refcount(file) == want, hex(raw)


@only(lambda name: name in ("outgoing", "incoming"))
def test_luo_preserved_file_path(prog: drgn.Program) -> None:
    """Would catch: a memfd's path shown otherwise than /proc/PID/fd shows it."""
    for f in all_luo_files(prog):
        if f.file:
            path = h.file_fd_path(f.file)
            name = f.file.f_path.dentry.d_name.name.string_()
            # As /proc/PID/fd shows a memfd: its dentry name, deleted.
            assert path == b"/" + name + b" (deleted)"
            assert name.startswith(b"memfd:") or name == b""
