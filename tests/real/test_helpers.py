# SPDX-License-Identifier: LGPL-2.1-or-later
"""The helpers as a layer (:mod:`luo_drgn.helpers`): each module exports
helpers and only helpers, imports nothing of luo-drgn, and runs copied out
on its own; each helper module has its tests in
``tests/real/test_helpers_<module>.py``, each helper's result compared
with the guest's log (the manifest) or with the same value reached by plain
drgn (``prog[...]``, ``list_for_each_entry``), never with luo_drgn's own
output, in the manner of drgn's ``tests/linux_kernel/helpers``."""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from luo_drgn import examples
from luo_drgn import helpers as h

LAYER = Path(h.__file__).parent

LAYER_MODULES = tuple(p.stem for p in sorted(LAYER.glob("*.py")) if p.stem != "__init__")

# What each module's helpers are named after: the kernel objects they walk,
# so none collides in drgn's CLI globals.
PREFIXES = {
    "_words": (),
    "bounded": ("list_", "xa_"),
    "cmdline": ("cmdline_",),
    "file_holders": ("file_", "files_", "io_", "iommufd_", "loop_", "sock_", "unix_"),
    "kexec": ("kexec_", "kimage_"),
    "kho": ("kho_",),
    "vfs": ("file_",),
}

LUO_PREFIXES = ("luo_", "memfd_luo_")


@pytest.mark.parametrize("module", LAYER_MODULES)
def test_all_lists_every_helper_and_only_helpers(module: str) -> None:
    """Would catch: a public helper missing from __all__, an unsorted __all__,
    a constant, class or internal function exported (drgn's CLI would import
    it into every session's globals), or a helper name without the object
    it walks as its prefix."""
    import inspect

    mod = importlib.import_module(f"luo_drgn.helpers.{module}")
    assert list(mod.__all__) == sorted(mod.__all__)
    public = {
        n
        for n, v in vars(mod).items()
        if not n.startswith("_") and inspect.isfunction(v) and v.__module__ == mod.__name__
    }
    assert public <= set(mod.__all__)
    for name in mod.__all__:
        assert inspect.isfunction(getattr(mod, name)), name
        # A validating iterator is its plain name with validate_ before it.
        plain = name[len("validate_") :] if name.startswith("validate_") else name
        assert plain.startswith(PREFIXES.get(module, LUO_PREFIXES)), name
    assert set(mod.__all__) <= set(h.__all__)


@pytest.mark.parametrize("module", LAYER_MODULES)
def test_the_drgn_layer_imports_only_drgn(module: str) -> None:
    """Would catch: a helper module importing the tool (layout, model, walk),
    which drgn's tree could not take."""
    tree = ast.parse((LAYER / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    outside = {
        name
        for name in imported
        if not name.startswith((".", "drgn"))
        and name.split(".")[0]
        not in ("__future__", "collections", "dataclasses", "struct", "typing")
    }
    assert not outside
    assert all(name.count(".") == 1 or not name.startswith(".") for name in imported)


def test_the_helpers_run_are_the_ones_asked_for() -> None:
    """Would catch: the run of these tests inside drgn
    (tests/real/test_helpers_in_drgn.py) testing luo-drgn's own helpers
    instead of drgn's copies, and so proving nothing."""
    from tests.support.helpers_from_drgn import VARIABLE

    where = "drgn.helpers.linux." if os.environ.get(VARIABLE) else "luo_drgn.helpers."
    assert h.luo_for_each_session.__module__.startswith(where)
    assert sys.modules["luo_drgn.helpers.kho"].__name__.startswith(where)


def test_the_drgn_layer_runs_alone(tmp_path: Path) -> None:
    """The helpers copied out, with luo_drgn made unimportable, walk a real
    core: the drgn layer needs no other file of the tool."""
    shutil.copytree(LAYER, tmp_path / "luo_layer", ignore=shutil.ignore_patterns("__pycache__"))
    ex = examples.load("incoming")
    probe = f"""
import sys
sys.modules["luo_drgn"] = None  # any import of the tool now fails
sys.path.insert(0, {str(tmp_path)!r})
import drgn
from luo_layer import luo_for_each_session, validate_luo_session_for_each_file
prog = drgn.Program()
prog.set_core_dump({str(ex.core)!r})
prog.load_debug_info([{str(ex.debug[0])!r}])
for s in luo_for_each_session(prog, "incoming"):
    print(s.name.string_().decode(), len(list(validate_luo_session_for_each_file(s))))
"""
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    # incoming's guest retrieved vm-alpha's three files and left vm-beta's two
    # (the manifest), vm-gamma was finished, and empty had none.
    want = {s["name"]: len(s["files"]) for s in ex.manifest["expected"]["sessions"]}
    got = dict(line.rsplit(" ", 1) for line in proc.stdout.splitlines())
    assert {name: int(n) for name, n in got.items()} == want
