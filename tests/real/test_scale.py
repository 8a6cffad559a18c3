# SPDX-License-Identifier: LGPL-2.1-or-later
"""A small instance of the benchmark's scale scenario, made at every test
session: the scenario and its generator cannot rot, and luo-inspect's block
readers (the fast paths of issue #12) are held to the guest's own log on a
state shaped like a host's (every fd open in 9 processes)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from luo_drgn import examples
from tests.support.fixtures import require_qemu

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP))

from vmcores import scenarios  # noqa: E402

FILES = 250  # 10 sessions of 25


@pytest.fixture(scope="module")
def scale() -> tuple[Path, dict[str, Any], list[str]]:
    require_qemu("the scale scenario was not made and its tests")
    # 512 MiB, as the other fixtures: a small dump to write at every session.
    run = scenarios.scale_run(FILES, "luo", memory_mb=512)
    root = examples.cache_dir() / "scale-test"
    shutil.rmtree(root, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=examples.cache_dir()) as work:
        fixture = scenarios.generate_scale(run, root, Path(work))
    manifest = json.loads((fixture / "manifest.json").read_text())
    (summary,) = [
        json.loads(line.split(" ", 1)[1])
        for line in manifest["guest_log"]
        if '"op":"scale"' in line
    ]
    debug = [str(examples.decompressed(examples.kernel_dir("luo") / "vmlinux.debug.xz"))]
    return fixture / "vmcore", summary, debug


def _run(*argv: str) -> tuple[int, str]:
    proc = subprocess.run(argv, cwd=TOP, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout


def test_scale_state_as_the_guest_logged_it(scale: tuple[Path, dict[str, Any], list[str]]) -> None:
    """Would catch: the scale core's report disagreeing with what its guest logged (sessions,
    tokens, holders)."""
    core, summary, debug = scale
    assert summary["failed"] == 0 and summary["preserved"] == FILES
    symbols = [a for d in debug for a in ("-s", d)]
    code, out = _run(
        sys.executable, "-m", "luo_drgn", "-c", str(core), *symbols, "--format", "json", "report"
    )
    report = json.loads(out)
    assert code == 0 and report["errors"] == []
    assert [f for f in report["findings"] if f["severity"] == "error"] == []
    sessions = report["sessions"]
    assert [s["name"] for s in sessions] == [f"vm-{i:05d}" for i in range(summary["sessions"])]
    procs = summary["procs"]
    for s in sessions:
        assert [f["token"] for f in s["files"]] == [
            0x1000 + i for i in range(summary["per_session"])
        ]
        for i, f in enumerate(s["files"]):
            # Every process holds the memfd's fd (the agent forked after
            # opening them all); LUO holds one more.
            assert f["refcount"] == procs + 1 == f["explained_refs"]
            # The JSON names a kind for kernel holders and LUO; an fd holder
            # is {pid, comm, fd}.
            fds = [h for h in f["holders"] if set(h) == {"pid", "comm", "fd"}]
            assert len(fds) == procs and len({h["pid"] for h in fds}) == procs
            assert f["holders"][-1] == {"kind": "luo"} and len(f["holders"]) == procs + 1
            assert f["path"] == f"/memfd:{s['name']}-mem{i:02d} (deleted)"
            assert f["memfd"] == {"size": 4096, "nr_folios": 1}
    # The floor reads the same counts.
    code, out = _run(
        sys.executable, str(TOP / "tests" / "support" / "scale_floor.py"), str(core), *debug
    )
    floor = json.loads(out)
    assert code == 0
    assert (floor["sessions"], floor["files"], floor["references"]) == (
        summary["sessions"],
        FILES,
        FILES * (procs + 1),
    )
    code, out = _run(
        sys.executable, "-m", "luo_drgn", "-c", str(core), *symbols, "--format", "json", "check"
    )
    assert code == 0 and json.loads(out)["errors"] == []
