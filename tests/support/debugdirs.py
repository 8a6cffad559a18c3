# SPDX-License-Identifier: LGPL-2.1-or-later
"""A debug directory as distributions lay them out (``.build-id/NN/REST.debug``),
holding the committed kernels' debug info: what ``-s DIR`` points at when
luo-drgn finds a kernel's debug info by its build ID.  Build IDs come from
binutils' readelf, not from luo-drgn."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from luo_drgn import examples
from luo_drgn.debuginfo import build_id_path

# Every committed kernel (vmcores/data/kernel).
KERNELS = ("luo", "no-luo", "full", "kho-default-off", "luo-7.3", "luo-7.3-kho-v5")


def readelf_build_id(path: Path) -> str:
    """The GNU build ID of an ELF file, as binutils' readelf prints it."""
    notes = subprocess.run(["readelf", "-n", path], capture_output=True, text=True, check=True)
    match = re.search(r"Build ID: ([0-9a-f]+)", notes.stdout)
    assert match, notes.stdout
    return match.group(1)


def kernel_debug(name: str) -> Path:
    """A committed kernel's debug info, decompressed into the cache."""
    return examples.decompressed(examples.kernel_dir(name) / "vmlinux.debug.xz")


def build_id_dir(root: Path, kernels: tuple[str, ...] = KERNELS) -> Path:
    """``root`` with each kernel's debug info linked under its build ID."""
    for name in kernels:
        debug = kernel_debug(name)
        link = root / build_id_path(readelf_build_id(debug))
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(debug, link)
    return root
