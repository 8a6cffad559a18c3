# SPDX-License-Identifier: LGPL-2.1-or-later
"""The helpers as drgn would merge them: copied into an installed drgn's
``drgn/helpers/linux/``, they import, add only helper names to drgn's CLI
globals, and pass the project's helper tests there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import drgn

from luo_drgn import helpers
from tests.support.helpers_from_drgn import SOURCE, VARIABLE, modules

TOP = Path(__file__).resolve().parents[2]
# The helper tests: the layer's, one module a helper module, the walks'.
HELPER_TESTS = sorted(
    str(p.relative_to(TOP))
    for p in (TOP / "tests" / "real").glob("test_helpers*.py")
    if p.name != Path(__file__).name
) + ["tests/real/test_walk.py"]
LISTING = (
    "import json, drgn, drgn.helpers.linux as linux; "
    "print(json.dumps([drgn.__file__, sorted(linux.__all__)]))"
)


def _drgn_with_helpers(tmp_path: Path) -> Path:
    """A copy of the installed drgn package with the helper modules in its
    ``drgn/helpers/linux/`` (drgn's compiled ``_drgn`` stays installed)."""
    site = tmp_path / "site"
    shutil.copytree(
        Path(drgn.__file__).parent, site / "drgn", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in modules():
        target = site / "drgn" / "helpers" / "linux" / f"{name}.py"
        assert not target.exists(), f"{name}.py would replace drgn's own module"
        shutil.copy(SOURCE / f"{name}.py", target)
    return site


def _listing(pythonpath: str | None) -> tuple[str, list[str]]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run(
        [sys.executable, "-c", LISTING], env=env, capture_output=True, text=True, check=True
    ).stdout
    where, names = json.loads(out)
    return where, names


def test_the_helpers_merge_into_drgn(tmp_path: Path) -> None:
    """Would catch: a helper module that imports the rest of luo-drgn or
    imports absolutely (it would not import inside drgn), a module name
    that is drgn's own, or an export that is not a helper (a constant, a
    class, an internal function) landing in every drgn session's globals;
    and then any helper that behaves differently there."""
    site = _drgn_with_helpers(tmp_path)
    where, merged = _listing(str(site))
    assert Path(where).is_relative_to(site)
    _, original = _listing(None)
    assert set(merged) - set(original) == set(helpers.__all__)
    assert set(original) <= set(merged)

    # The helper tests (HELPER_TESTS), on the committed fixtures, with luo_drgn.helpers
    # made drgn's copies (tests/support/helpers_from_drgn.py).
    env = dict(os.environ, PYTHONPATH=str(site), LUO_DRGN_COMMITTED_ONLY="1")
    env[VARIABLE] = "1"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            *HELPER_TESTS,
        ],
        cwd=TOP,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
