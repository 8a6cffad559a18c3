# SPDX-License-Identifier: LGPL-2.1-or-later
"""The dumps users attach: made by a real crash kernel, plain and filtered.

The ``holders`` run dumps one LUO state three ways: QEMU's memory dump while
the guest runs (``holders``), then, after sysrq c, the crash kernel's
``/proc/vmcore`` as it is (``holders-kdump``) and through Debian's
``makedumpfile -c -d 31`` (``holders-kdump-filtered``).  The expected facts
come from the guest log and the kernel's console (the manifests).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from luo_drgn import examples
from luo_drgn.analysis import inspect
from luo_drgn.collector import collect
from luo_drgn.model import Snapshot, Target
from luo_drgn.report import render
from tests.support.debugdirs import readelf_build_id
from tests.support.plain import expected_holder_keys, holder_keys
from vmcores.scenarios import QEMU_KDUMP

TOP = Path(__file__).resolve().parents[2]


def _inspect(root: Path, name: str) -> tuple[examples.Example, Snapshot]:
    ex = examples.load(name, root)
    target = Target("vmcore", str(ex.core), None, [str(p) for p in ex.debug])
    return ex, inspect(collect(ex.program(), target))


@pytest.fixture(scope="module")
def dumps(full_root: Path) -> dict[str, tuple[examples.Example, Snapshot]]:
    return {
        name: _inspect(full_root, name)
        for name in ("holders", "holders-kdump", "holders-kdump-filtered")
    }


def facts(snap: Snapshot) -> list[tuple[Any, ...]]:
    return [
        (s.direction, s.name, f.token, f.refcount, tuple(holder_keys(f.holders)))
        for s in snap.sessions
        for f in s.files
    ]


def test_kdump_reads_as_the_qemu_dump(dumps: dict[str, Any]) -> None:
    """The crash kernel's ELF copy gives the same sessions, tokens,
    refcounts and holders as QEMU's dump of the same state, and no error."""
    _, qemu = dumps["holders"]
    _, kdump = dumps["holders-kdump"]
    assert facts(kdump) == facts(qemu)
    assert [(f.code, f.severity) for f in kdump.findings] == []
    assert kdump.errors == [] and kdump.not_in_dump == []


def test_panic_header(dumps: dict[str, Any]) -> None:
    """The kdump says why and where the kernel panicked, as its console and
    the driver's log do; QEMU's dump of a running guest has no panic."""
    assert dumps["holders"][1].target.panic is None
    for name in ("holders-kdump", "holders-kdump-filtered"):
        ex, snap = dumps[name]
        want = ex.manifest["expected"]["panic"]
        panic = snap.target.panic
        assert panic is not None
        assert (panic.reason, panic.cause, panic.pid, panic.comm) == (
            want["reason"],
            want["cause"],
            want["pid"],
            want["comm"],
        )
        text = render(snap, "summary", "text")
        assert f"panic:      {want['reason']} in {want['pid']}/{want['comm']} on CPU 0" in text
        doc = json.loads(render(snap, "summary", "json"))
        assert doc["target"]["panic"]["reason"] == want["reason"]


def test_filtered_dump_missing_is_not_corrupt(dumps: dict[str, Any]) -> None:
    """makedumpfile -d 31 drops pages (Debian's 1.7.2 even the tail pages of
    multi-page slabs): what is missing is said once, no error, no leak."""
    ex, snap = dumps["holders-kdump-filtered"]
    assert [f for f in snap.findings if f.severity in ("error", "warning")] == []
    assert snap.errors == []
    assert snap.not_in_dump, "Debian's makedumpfile leaves pages out of this dump"
    summaries = [f for f in snap.findings if f.code == "not-in-dump" and f.token is None]
    assert len(summaries) == 1
    assert "the dump lacks" in summaries[0].message


def test_filtered_dump_same_facts_where_present(dumps: dict[str, Any]) -> None:
    """Wherever the memory is there, the filtered dump says what the plain
    one says; where holders are missing, the verdict is 'cannot verify'."""
    ex, snap = dumps["holders-kdump-filtered"]
    want = {
        (s["name"], f["token"]): f for s in ex.manifest["expected"]["sessions"] for f in s["files"]
    }
    assert {(s.name, f.token) for s in snap.sessions for f in s.files} == set(want)
    for s in snap.sessions:
        for f in s.files:
            w = want[(s.name, f.token)]
            if f.refcount is not None:
                assert f.refcount == w["refcount"]
            # Every holder found is one the guest made.
            assert set(holder_keys(f.holders)) <= set(expected_holder_keys(w["holders"]))
            if f.refcount is not None and f.refcount > (f.explained_refs or 0):
                (unverified,) = [
                    x for x in snap.findings if x.code == "not-in-dump" and x.token == f.token
                ]
                assert unverified.message.startswith("cannot verify")
                assert unverified.severity == "info"


def test_cli_exit_codes_on_kdumps(full_root: Path) -> None:
    """Exit 0 on both kdumps: nothing is wrong with this kernel."""
    for name in ("holders-kdump", "holders-kdump-filtered"):
        ex = examples.load(name, full_root)
        out = _cli("-c", str(ex.core), "-s", str(ex.debug[0]), "check")
        assert out.returncode == 0, out.stdout + out.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "luo_drgn", *args], capture_output=True, text=True, cwd=TOP
    )


def _one_line_exit_2(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr and "internal error" not in out.stderr
    return lines[0]


def test_qemu_kdump_zlib_one_line(full_root: Path) -> None:
    """QEMU's kdump-zlib dump of the same state: drgn cannot read it; the
    user is told what it is and to dump in ELF instead."""
    debug = examples.load("holders", full_root).debug[0]
    line = _one_line_exit_2(_cli("-c", str(full_root / "holders" / QEMU_KDUMP), "-s", str(debug)))
    assert "written by QEMU" in line and "ELF format" in line


def test_compressed_and_archived_files_one_line(tmp_path: Path) -> None:
    """vmcore.xz as attached to a bug, a gzip and a tar of it: each named,
    with what to do."""
    xz = examples.DATA / "fixtures" / "outgoing" / "vmcore.xz"
    assert "an xz-compressed file, not a vmcore: decompress it first" in _one_line_exit_2(
        _cli("-c", str(xz))
    )
    gz = tmp_path / "vmcore.gz"
    gz.write_bytes(gzip.compress(b"\x7fELF" + bytes(100)))
    assert "a gzip-compressed file" in _one_line_exit_2(_cli("-c", str(gz)))
    tar = tmp_path / "dump.tar"
    subprocess.run(["tar", "-cf", str(tar), "-C", str(tmp_path), "vmcore.gz"], check=True)
    assert "a tar archive" in _one_line_exit_2(_cli("-c", str(tar)))
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a dump at all" * 100)
    assert "not a kernel vmcore" in _one_line_exit_2(_cli("-c", str(junk)))


def test_debug_info_directory(full_root: Path, tmp_path: Path) -> None:
    """-s DIR finds the kernel's debug info where a distro debug package
    puts it, unpacked into DIR; a directory without it is one line, exit 2."""
    ex = examples.load("holders-kdump", full_root)
    debug = ex.debug[0]
    build_id = (
        subprocess.run(["readelf", "-n", str(debug)], capture_output=True, text=True, check=True)
        .stdout.split("Build ID: ")[1]
        .split()[0]
    )
    layouts = {
        "debian": f"usr/lib/debug/boot/vmlinux-{ex.manifest['made']['release']}",
        "build-id": f"usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug",
        "fedora": f"lib/modules/{ex.manifest['made']['release']}/vmlinux",
    }
    for name, rel in layouts.items():
        path = tmp_path / name / rel
        path.parent.mkdir(parents=True)
        shutil.copyfile(debug, path)
        out = _cli("-c", str(ex.core), "-s", str(tmp_path / name), "summary")
        assert out.returncode == 0, (name, out.stderr)
        assert str(path) in out.stdout
    (tmp_path / "empty").mkdir()
    line = _one_line_exit_2(_cli("-c", str(ex.core), "-s", str(tmp_path / "empty"), "summary"))
    # The dump names its build: readelf's build ID of the kernel's debug file.
    build_id = readelf_build_id(debug)
    assert line.startswith(f"luo-inspect: no debug info for this kernel (build ID {build_id}) in ")


def test_redacted_kdump_report(dumps: dict[str, Any]) -> None:
    """The panic header's task name is redacted like every process name."""
    _, snap = dumps["holders-kdump"]
    text = render(snap, "report", "text", redact=True)
    assert re.search(r"panic:\s+sysrq triggered crash in 1/<comm-\d+>", text)
    assert not re.search(r"(?<![\w.-])(init|vm-delta|delta-scm)(?![\w-])", text)


def test_panic_inside_luo(full_root: Path) -> None:
    """A WARN_ON() in kernel/liveupdate/ with panic_on_warn (the real one in
    luo_file_set_destroy(), reached by closing a session's fd, made to fire
    over the gdbstub): the header names the warning, and the dump shows LUO
    as the kernel left it, the closing session already off its list."""
    ex, snap = _inspect(full_root, "warn-panic-kdump")
    want = ex.manifest["expected"]
    panic = snap.target.panic
    assert panic is not None
    assert (panic.reason, panic.cause, panic.pid, panic.comm) == (
        want["panic"]["reason"],
        want["panic"]["cause"],
        want["panic"]["pid"],
        want["panic"]["comm"],
    )
    assert "kernel/liveupdate/luo_file.c" in panic.cause and "luo_file_set_destroy" in panic.cause
    assert [s.name for s in snap.sessions] == [s["name"] for s in want["sessions"]] == ["vm-zeta"]
    assert [f for f in snap.findings if f.severity in ("error", "warning")] == []
    text = render(snap, "summary", "text")
    assert f"after:      {panic.cause}" in text
