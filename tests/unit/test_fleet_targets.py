# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a scan finds and how it opens each target: directories walked in
order, compressed dumps unwrapped sparse and removed after, saved documents
relayed with the command and exit status they hold."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import pytest
import zstandard

from luo_drgn.fleet.targets import TargetKindError, discover, opened
from luo_drgn.fleet.worker import inspect_job

SAVED = Path(__file__).resolve().parents[1] / "data" / "saved-reports"


def test_discover_walks_directories_in_order(tmp_path: Path) -> None:
    """Would catch: a walk whose order depends on the file system (records would not line up
    between two scans), hidden files taken as targets, or a missing path scanned as an error
    record instead of refused up front."""
    for name in ("b/2", "b/1", "a", ".hidden", "c/.git/x"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = discover([str(tmp_path), "example:incoming"])
    assert found == [str(tmp_path / p) for p in ("a", "b/1", "b/2")] + ["example:incoming"]
    with pytest.raises(TargetKindError, match="no such file"):
        discover([str(tmp_path / "missing")])


@pytest.mark.parametrize(
    "suffix,compress",
    [
        ("xz", lzma.compress),
        ("gz", gzip.compress),
        ("bz2", bz2.compress),
        ("zst", lambda data: zstandard.ZstdCompressor().compress(data)),
    ],
)
def test_wrapped_dump_unwrapped_sparse(tmp_path: Path, suffix: str, compress) -> None:  # type: ignore[no-untyped-def]
    """Would catch: a wrapper not recognized by its magic, bytes changed on the way out, zero
    pages written as data (a fleet's dumps are mostly zeros), or the copy left behind."""
    data = b"\x7fELF" + bytes(3 * 4096) + b"data" * 1024 + bytes(8192)
    wrapped = tmp_path / f"dump.{suffix}"
    wrapped.write_bytes(compress(data))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with opened(str(wrapped), str(scratch)) as (kind, path):
        assert kind == "vmcore" and path is not None and path.parent == scratch
        assert path.read_bytes() == data
        assert path.stat().st_blocks * 512 < len(data)  # holes for the zero pages
    assert list(scratch.iterdir()) == []


def test_corrupt_wrapper_is_one_line(tmp_path: Path) -> None:
    """Would catch: a truncated xz file raising out of the worker instead of becoming the
    target's error record."""
    wrapped = tmp_path / "dump.xz"
    wrapped.write_bytes(lzma.compress(bytes(1 << 16))[:40])
    rec = inspect_job({"target": str(wrapped), "command": "check", "scratch": str(tmp_path)})
    assert rec["exit_status"] == 2 and rec["verdict"] == "cannot-inspect"
    assert "xz-compressed file that does not decompress" in rec["error"]


def _saved(tmp_path: Path, doc: dict, name: str = "doc.json") -> str:  # type: ignore[type-arg]
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def test_saved_document_of_another_command(tmp_path: Path) -> None:
    """Would catch: a saved report relayed as a check (its findings are a report's), instead of
    an error record that names the command it holds."""
    doc = json.loads((SAVED / "outgoing.json").read_text())
    rec = inspect_job({"target": _saved(tmp_path, doc), "command": "check"})
    assert rec["exit_status"] == 2 and rec["kind"] == "saved"
    assert "written by report, not by check" in rec["error"]


def test_saved_document_relayed(tmp_path: Path) -> None:
    """Would catch: a saved document's exit status or findings recomputed instead of relayed,
    or its host and build ID dropped."""
    doc = {
        "schema": "luo-inspect/1",
        "command": "check",
        "exit_status": 1,
        "tool": {"name": "luo-inspect", "version": "0.2.0", "drgn": "0.3.0"},
        "target": {
            "kind": "vmcore",
            "path": "x",
            "kernel_release": "7.3.4",
            "hostname": "hv-9",
            "build_id": "abcd",
            "debuginfo": [],
            "layout": "7.2",
        },
        "findings": [
            {"code": "duplicate-token", "severity": "error", "message": "m"},
            {"code": "duplicate-token", "severity": "error", "message": "m"},
        ],
        "errors": [{"where": "sessions", "message": "a cycle"}],
        "not_in_dump": [],
    }
    rec = inspect_job({"target": _saved(tmp_path, doc), "command": "check"})
    assert (rec["host"], rec["kernel_release"], rec["build_id"]) == ("hv-9", "7.3.4", "abcd")
    assert (rec["verdict"], rec["exit_status"]) == ("errors", 1)
    assert rec["findings"] == [{"code": "duplicate-token", "severity": "error", "count": 2}]
    assert rec["walk_errors"] == [{"where": "sessions", "message": "a cycle"}]


def test_saved_documents_of_older_releases(tmp_path: Path) -> None:
    """Would catch: a report saved by luo-drgn 0.1.0 (no command, no exit status in it) refused,
    or given an exit status other than the one its findings meant then: the committed
    compatibility report has no error finding (exit 0)."""
    doc = json.loads((SAVED / "outgoing.json").read_text())
    assert "command" not in doc and "exit_status" not in doc
    rec = inspect_job({"target": _saved(tmp_path, doc), "command": "report"})
    errors = [f for f in doc["findings"] if f["severity"] == "error"]
    assert rec["exit_status"] == (1 if errors else 0) == 0
    assert rec["host"] is None and rec["kernel_release"] == doc["target"]["kernel_release"]
    # A 0.1.0 preflight document: accepted, and its only finding is an info loss.
    preflight = {
        "schema": "luo-inspect/1",
        "tool": doc["tool"],
        "target": doc["target"],
        "luo": doc["luo"],
        "preflight": {"accepted": True},
        "findings": [{"code": "not-handed-on", "severity": "info", "message": "m"}],
        "errors": [],
    }
    rec = inspect_job({"target": _saved(tmp_path, preflight, "p.json"), "command": "preflight"})
    assert (rec["verdict"], rec["exit_status"]) == ("accept", 0)
    preflight["findings"] = [{"code": "lost-at-kexec", "severity": "warning", "message": "m"}]
    rec = inspect_job({"target": _saved(tmp_path, preflight, "p.json"), "command": "preflight"})
    assert (rec["verdict"], rec["exit_status"]) == ("accept-losing-data", 1)


def test_json_that_is_not_a_report(tmp_path: Path) -> None:
    """Would catch: any JSON file (a manifest, a scan's own summary) relayed as a report."""
    rec = inspect_job({"target": _saved(tmp_path, {"schema": "other"}), "command": "check"})
    assert rec["exit_status"] == 2 and "not a luo-inspect/1 document" in rec["error"]
