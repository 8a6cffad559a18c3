# SPDX-License-Identifier: LGPL-2.1-or-later
"""Where the fixture generator reads and writes.

Committed data lives under ``vmcores/data``; everything regenerated or
decompressed lives in the cache directory (``$LUO_DRGN_CACHE``, default
``.cache/`` at the top of the checkout, ignored by git).
"""

from __future__ import annotations

from pathlib import Path

from luo_drgn import examples
from luo_drgn.examples import cache_dir

VMCORES = Path(__file__).resolve().parent
TOP = VMCORES.parent
DATA = VMCORES / "data"  # luo_drgn.examples.DATA reads the same tree
FIXTURES = DATA / "fixtures"


def work_dir() -> Path:
    path = cache_dir() / "build"
    path.mkdir(parents=True, exist_ok=True)
    return path


# Kernels committed under data/kernel; the others are built into the cache
# when needed (the `full` kernel's debug info would take a fifth of the
# fixture budget).
COMMITTED_KERNELS = ("luo", "no-luo")


def kernel_dir(name: str) -> Path:
    """Where kernel ``name`` is kept (and written when built)."""
    if name in COMMITTED_KERNELS:
        return DATA / "kernel" / name
    return examples.kernel_dir(name)
