# SPDX-License-Identifier: LGPL-2.1-or-later
"""Where the fixture generator reads and writes.

Committed data lives under ``vmcores/data``; everything regenerated or
decompressed lives in the cache directory (``$LUO_DRGN_CACHE``, default
``.cache/`` at the top of the checkout, ignored by git).
"""

from __future__ import annotations

from pathlib import Path

# kernel_dir: the committed kernels, where luo_drgn.examples finds them too.
from luo_drgn.examples import cache_dir, kernel_dir  # noqa: F401

VMCORES = Path(__file__).resolve().parent
TOP = VMCORES.parent
DATA = VMCORES / "data"  # luo_drgn.examples.DATA reads the same tree
FIXTURES = DATA / "fixtures"


def work_dir() -> Path:
    path = cache_dir() / "build"
    path.mkdir(parents=True, exist_ok=True)
    return path
