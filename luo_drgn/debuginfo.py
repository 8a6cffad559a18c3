# SPDX-License-Identifier: LGPL-2.1-or-later
"""Where a kernel's debug info is found: by its build ID, in the
directories given with ``-s`` and drgn's standard ones.

One search for every kernel luo-drgn opens: the dump or running kernel
(:func:`luo_drgn.target.open_target`), each dump of a fleet scan, and the
next kernel a loaded image will boot (:mod:`luo_drgn.nextkernel`).  drgn
itself matches files by build ID, and ignores one of another build; this
module tells it where else to look.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from drgn import Program

__all__ = ("SEARCHED", "add_search_directories", "build_id_path")

# What a directory is searched for, as drgn searches /usr/lib/debug.
SEARCHED = (
    ".build-id/NN/REST.debug, vmlinux, boot/vmlinux-RELEASE and "
    "lib/modules/RELEASE/vmlinux, there and under its usr/lib/debug"
)


def build_id_path(build_id: str) -> Path:
    """Where a debug file with ``build_id`` (hex) sits in a debug directory:
    ``.build-id/NN/REST.debug``, as distributions install them."""
    return Path(".build-id", build_id[:2], build_id[2:] + ".debug")


def add_search_directories(prog: Program, directories: Iterable[Path]) -> None:
    """Search each directory as drgn searches /usr/lib/debug, and so its
    ``usr/lib/debug`` too: a distro debug package unpacked there (``dpkg
    -x``, ``rpm2cpio | cpio -id``) is found as installed.  The directories
    come before drgn's standard ones."""
    extra = tuple(str(p) for d in directories for p in (d, d / "usr/lib/debug") if p.is_dir())
    options = prog.debug_info_options
    options.directories = extra + tuple(options.directories)
    options.kernel_directories = extra + tuple(options.kernel_directories)
