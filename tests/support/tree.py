# SPDX-License-Identifier: LGPL-2.1-or-later
"""A copy of the source tree for planting bugs in (the mutation test and
the mutation benchmark), and pytest run inside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from luo_drgn import examples

TOP = Path(__file__).resolve().parents[2]


def copy_tree(dest: Path) -> None:
    """The source tree without its caches; the committed fixtures linked."""
    committed = TOP / "vmcores" / "data"

    def ignored(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n in ("__pycache__", ".cache")}
        return skipped | ({"data"} if Path(folder) == committed.parent else set())

    items = (
        "luo_drgn",
        "tests",
        "vmcores",
        "commands",
        "docs",
        ".ci",
        "pyproject.toml",
        "README.md",
    )
    for item in items:
        src = TOP / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=ignored)
        else:
            shutil.copy2(src, dest / item)
    (dest / "vmcores" / "data").symlink_to(committed)


def run_pytest(
    tree: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """pytest in a copied tree.  Without ``env``, on the committed fixtures
    only: regenerating the fresh or full runs into the shared cache would
    delete the outer session's fixtures under it."""
    extra = env if env is not None else {"LUO_DRGN_COMMITTED_ONLY": "1"}
    full_env = {
        **os.environ,
        # The copy's luo_drgn comes first on sys.path (pytest's pythonpath
        # is its own root); decompressed fixtures are shared, not redone.
        "LUO_DRGN_CACHE": str(examples.cache_dir()),
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }
    full_env.pop("CI", None)  # the copy's fixtures are given or committed
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=tree,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
