# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fixtures hold what their manifests say: facts read straight from
memory with plain drgn (not luo_drgn), against the ground truth the guest
logged."""

from __future__ import annotations

from typing import Any

import drgn
import pytest

from luo_drgn import examples
from tests.support.fixtures import once_per_kernel, only
from tests.support.plain import (
    expected_sessions,
    files,
    has_sessions,
    is_fault,
    name_bytes,
    sessions,
)
from vmcores import faults, manifest
from vmcores.scenarios import WHOLE_FAULTS


def test_manifest_is_complete(manifest: dict[str, Any]) -> None:
    """Would catch: a fixture made without its guest log, release, or (for a fault) its writes and
    expected findings."""
    # The release the kernel that made it was built as (vmcores/data/kernel).
    kernel = manifest["made"]["kernel"]
    assert (
        manifest["made"]["release"] == (examples.kernel_dir(kernel) / "release").read_text().strip()
    )
    assert manifest["guest_log"][0].startswith('@@LUO {"op":"start"')
    assert manifest["expected"]["luo_state"] in ("enabled", "disabled", "absent")
    if is_fault(manifest["name"]):
        assert manifest["expected"]["fault"]["writes"]
        assert manifest["expected"]["fault"]["expected_findings"]


@once_per_kernel()
def test_kernel_release(prog: drgn.Program, manifest: dict[str, Any]) -> None:
    """Would catch: a fixture opened with another kernel's debug info."""
    release = (examples.kernel_dir(manifest["made"]["kernel"]) / "release").read_text().strip()
    assert prog["init_uts_ns"].name.release.string_() == release.encode()


def test_luo_state(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a manifest whose LUO state (enabled, disabled, absent) differs from the dump's
    memory."""
    state = expected["luo_state"]
    if state == "absent":
        with pytest.raises(LookupError):
            prog["luo_session_global"]
        return
    assert bool(prog["luo_global"].enabled) == (state == "enabled")
    if state == "disabled" and expected.get("restore_failed"):
        # luo_early_startup() read luo_ser (liveupdate_num), then its
        # restore failed: liveupdate_early_init() cleared enabled, panicked.
        assert prog["kho_enable"]
        assert prog["luo_global"].liveupdate_num == expected["liveupdate_num"] == 1
        assert not prog["luo_global"].luo_ser_out
    elif state == "disabled":
        assert "KHO is disabled" in expected["disabled_reason"]
        assert not prog["kho_enable"]
    else:
        assert prog["luo_global"].liveupdate_num == expected["liveupdate_num"]


@only(has_sessions)
def test_sessions_in_memory(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a fixture whose manifest says other than its memory
    (the oracle the other tests trust), in either direction."""
    for direction in ("outgoing", "incoming"):
        want = expected_sessions(expected, direction)
        got = sessions(prog, direction)
        assert [s.name.string_() for s in got] == [name_bytes(s["name"]) for s in want]
        assert prog["luo_session_global"].member_(direction).count == len(want)
        for s, w in zip(got, want):
            assert bool(s.retrieved) == w["retrieved"]
            assert s.file_set.count == w["file_count"]
            fs = files(s)
            assert [f.token.value_() for f in fs] == [x["token"] for x in w["files"]]
            for f, x in zip(fs, w["files"]):
                assert f.retrieve_status == x["retrieve_status"]
                assert bool(f.file) == x["has_file"]
                assert f.fh.compatible.string_().decode() == x["handler"]
                if x["has_file"]:
                    # f_ref stores count - 1 (file_ref_t, 6.13+).
                    assert f.file.f_ref.refcnt.counter + 1 == x["refcount"]
                    assert f.file.f_inode.i_ino == x["ino"]


@only(lambda name: name == "frozen")
def test_frozen_state_in_memory(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a frozen fixture that was not dumped inside the freeze."""
    assert expected["frozen"]
    # Write-held by luo_session_serialize() and never released on success.
    assert prog["luo_session_serialize_rwsem"].count.counter & 1
    assert prog["luo_session_global"].outgoing.sessions_pa[0] != 0


@only(lambda name: name == "incoming-pending")
def test_pending_incoming_in_memory(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a pending fixture dumped after its data was deserialized."""
    inc = prog["luo_session_global"].incoming
    assert not expected["deserialized"]
    assert inc.active and inc.block_set.head_pa != 0
    assert sessions(prog, "incoming") == []


@only(lambda name: is_fault(name) and name in WHOLE_FAULTS)
def test_fault_writes_are_in_memory(
    prog: drgn.Program, example: examples.Example, expected: dict[str, Any]
) -> None:
    """A fault dumped whole: the guest's own memory holds the writes (for
    the others, the fixture is the base plus these writes, so reading them
    back would prove nothing; test_manifest_replays_from_its_log re-derives
    them instead)."""
    assert example.manifest["vmcore"] and not example.writes
    for w in expected["fault"]["writes"]:
        new = bytes.fromhex(w["new"])
        assert prog.read(w["address"], len(new)) == new
        assert prog.read(w["phys"], len(new), True) == new


def test_manifest_replays_from_its_log(fixture_ref: Any, example: examples.Example) -> None:
    """Every manifest's expected state is what its stored guest and kernel
    log replay to (nothing in it was edited by hand or read from a dump),
    and a fault's writes and findings are what faults.py derives from the
    base dump."""
    m = example.manifest
    replayed = manifest.expected_state(
        m["guest_log"] + m["kernel_log"],
        frozen=m["made"]["capture"] == "machine_kexec",
        after=m.get("after_log"),
        capture=m["made"]["capture"],
    )
    if "fault" in m["expected"]:
        fault = m["expected"]["fault"]
        base = examples.load(m["base"], example.root.parent)
        writes, findings = faults.FAULTS[m["name"]].make(base.core, base.debug[0])
        assert (fault["base"], fault["writes"], fault["expected_findings"]) == (
            m["base"],
            writes,
            findings,
        )
        replayed = manifest.with_fault(replayed, fault)
    assert replayed == m["expected"]


@only(is_fault)
def test_fault_writes_apply_to_their_base(
    example: examples.Example, expected: dict[str, Any]
) -> None:
    """Every fault was made over its base state: the old bytes are there."""
    base = examples.load(example.manifest["base"], example.root.parent).program()
    for w in expected["fault"]["writes"]:
        assert base.read(w["address"], len(w["old"]) // 2).hex() == w["old"]


@only(
    lambda name: (
        has_sessions(name)
        and not name.startswith(("crowded", "doomed", "holders", "warn-panic"))
        # Dumped inside the first preserve, before the refusals; or made
        # no session at all.
        and name not in ("preserving", "no-session")
    )
)
def test_guest_refusals_recorded(expected: dict[str, Any]) -> None:
    """Would catch: the guest's refused operations (EEXIST, EBUSY) missing from the manifest."""
    refusals = {(r["op"], r.get("token"), r["errno"]) for r in expected["refusals"]}
    assert ("create_session", None, "EEXIST") in refusals
    assert ("preserve", 0x101, "EEXIST") in refusals  # duplicate token, one session
    assert ("preserve", 0x201, "EBUSY") in refusals  # same memfd preserved twice


@only(lambda name: name == "incoming")
def test_incoming_ground_truth(expected: dict[str, Any]) -> None:
    """Would catch: the incoming fixture's manifest no longer saying what its guest did."""
    assert expected["failed_retrieves"] == [
        {"session": "vm-alpha", "token": 0x999, "errno": "ENOENT"}
    ]
    by_name = {s["name"]: s for s in expected["sessions"]}
    assert by_name["vm-gamma"]["finished"] and by_name["vm-gamma"]["file_count"] == 0
    assert [f["retrieve_status"] for f in by_name["vm-alpha"]["files"]] == [1, 1, 0]
    assert not by_name["vm-beta"]["retrieved"]


def test_copy_sparse_keeps_every_byte(tmp_path: Any) -> None:
    """Would catch: the sparse copy losing data at a block boundary or in a trailing hole."""
    import io

    block = 4096
    data = (
        bytes(block)  # a hole first
        + b"\x01" * 10
        + bytes(3 * block - 10)  # data ending inside a block, then holes
        + b"x" * (block + 7)  # data across a block boundary
        + bytes(2 * block + 100)  # a trailing hole that is not whole blocks
    )
    out = tmp_path / "copy"
    assert examples.copy_sparse(io.BytesIO(data), out) == len(data)
    assert out.read_bytes() == data
    cut = tmp_path / "cut"
    assert examples.copy_sparse(io.BytesIO(data), cut, size=block + 5) == block + 5
    assert cut.read_bytes() == data[: block + 5]


def test_decompressed_core_is_the_core_with_holes(tmp_path: Any, monkeypatch: Any) -> None:
    """The cache's copy of a committed core is byte for byte what xz holds,
    and takes a fraction of its length on disk (the suite's disk budget)."""
    import hashlib
    import lzma
    import os

    monkeypatch.setenv("LUO_DRGN_CACHE", str(tmp_path))  # a copy of its own
    xz = examples.DATA / "fixtures" / "frozen" / "vmcore.xz"
    copy = examples.decompressed(xz)

    def sha256(f: Any) -> str:
        # hashlib.file_digest() is Python 3.11's; the suite runs on 3.9 too.
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        return h.hexdigest()

    with lzma.open(xz) as f:
        want = sha256(f)
    with open(copy, "rb") as f:
        assert sha256(f) == want
    st = os.stat(copy)
    assert st.st_blocks * 512 < st.st_size // 4
