# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run the helper tests against a copy of the helpers inside drgn.

``tests/real/test_helpers_in_drgn.py`` copies ``luo_drgn/helpers/`` into a
copy of the installed drgn's ``drgn/helpers/linux/`` and runs the helper
tests with ``LUO_DRGN_HELPERS_FROM_DRGN=1``: :func:`alias` (called first
thing by ``tests/conftest.py``) then makes ``luo_drgn.helpers`` and each of
its modules the copies drgn imported, so every test, and every part of
luo-drgn they call, runs drgn's copy of the helpers."""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "luo_drgn" / "helpers"
VARIABLE = "LUO_DRGN_HELPERS_FROM_DRGN"


def modules() -> list[str]:
    """The helper modules, as copied into drgn (the package's own
    ``__init__`` stays behind: drgn's imports every module itself)."""
    return sorted(p.stem for p in SOURCE.glob("*.py") if p.stem != "__init__")


def alias() -> None:
    """With :data:`VARIABLE` set, make ``luo_drgn.helpers`` drgn's copies."""
    if not os.environ.get(VARIABLE):
        return
    import drgn.helpers.linux as linux

    import luo_drgn

    package = types.ModuleType("luo_drgn.helpers")
    # The static tests read the helpers' sources: those stay where they are.
    package.__file__ = str(SOURCE / "__init__.py")
    package.__path__ = []
    names: list[str] = []
    for name in modules():
        module = importlib.import_module(f"{linux.__name__}.{name}")
        sys.modules[f"luo_drgn.helpers.{name}"] = module
        setattr(package, name, module)
        for helper in getattr(module, "__all__", ()):
            setattr(package, helper, getattr(linux, helper))
            names.append(helper)
    package.__all__ = sorted(names)  # type: ignore[attr-defined]
    sys.modules["luo_drgn.helpers"] = package
    luo_drgn.helpers = package  # type: ignore[attr-defined]
