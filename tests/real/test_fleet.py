# SPDX-License-Identifier: LGPL-2.1-or-later
"""luo-inspect scan over a fleet: dumps of five hosts on two kernel builds
(each booted with its own hostname=), wrapped in xz, gzip and zstd or not,
mixed with saved documents, a truncated vmcore, a file that is not one and a
FIFO that never answers, with the debug info found by build ID in one
directory.

Oracles: the guests' own logs and consoles (manifests: the state each host
was left in, what the next kernel did), binutils' readelf for the build IDs,
the kernel command line for the host names, and each dump's own luo-inspect
run for the records' findings and exit statuses."""

from __future__ import annotations

import gzip
import importlib
import json
import lzma
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import zstandard

from luo_drgn import engine, examples
from luo_drgn.engine import Source
from luo_drgn.fleet.record import TIMING_FIELDS
from luo_drgn.request import Request
from tests.support.debugdirs import build_id_dir, kernel_debug, readelf_build_id
from tests.support.fixtures import skip_loudly
from vmcores import scenarios

TOP = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((TOP / "luo_drgn" / "luo-inspect-scan-1.schema.json").read_text())
HOSTS = {r.name: r.cmdline_extra.split("hostname=", 1)[1] for r in scenarios.FLEET_RUNS}
# How each host's dump reaches the scan, as fleets keep them.
WRAPPED = {"fleet-hv-b": "xz", "fleet-hv-c": "gz", "fleet-hv-d": "zst"}


@dataclass
class Fleet:
    root: Path
    targets: Path
    debug: Path
    dumps: dict[str, Path]  # fixture -> its target (wrapped or not)
    plain: dict[str, Path]  # fixture -> its plain ELF vmcore
    kernels: dict[str, str]  # fixture -> the kernel that made it
    broken: dict[str, Path]


def _wrap(src: Path, dest: Path, how: str | None) -> Path:
    if how is None:
        shutil.copyfile(src, dest)
        return dest
    dest = dest.with_name(f"{dest.name}.{how}")
    with open(src, "rb") as fin, open(dest, "wb") as raw:
        if how == "zst":
            with zstandard.ZstdCompressor(level=1).stream_writer(raw) as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        elif how == "xz":
            with lzma.open(raw, "wb", preset=0) as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        else:
            with gzip.open(raw, "wb", compresslevel=1) as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
    return dest


@pytest.fixture(scope="module")
def fleet(fleet_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    root = tmp_path_factory.mktemp("fleet")
    targets, debug = root / "targets", root / "debug"
    dumps, plain, kernels = {}, {}, {}
    for run in scenarios.FLEET_RUNS:
        ex = examples.load(run.name, fleet_root)
        kernels[run.name] = ex.manifest["made"]["kernel"]
        host_dir = targets / HOSTS[run.name]
        host_dir.mkdir(parents=True)
        plain[run.name] = ex.core
        dumps[run.name] = _wrap(ex.core, host_dir / "vmcore", WRAPPED.get(run.name))
    build_id_dir(debug, tuple(sorted(set(kernels.values()))))
    broken = {"truncated": targets / "broken" / "truncated.vmcore", "text": targets / "notes.txt"}
    broken["truncated"].parent.mkdir()
    with open(plain["fleet-hv-a"], "rb") as f:
        broken["truncated"].write_bytes(f.read(1 << 20))
    broken["text"].write_text("not a vmcore\n")
    # What hosts hv-a and hv-c saved themselves (luo-inspect ... -o FILE).
    saved = targets / "saved"
    saved.mkdir()
    for name, command in (("fleet-hv-a", "check"), ("fleet-hv-c", "report")):
        _luo_inspect(
            "-c", plain[name], "-s", debug, command, "--format", "json",
            "-o", saved / f"{HOSTS[name]}-{command}.json",
        )  # fmt: skip
    return Fleet(root, targets, debug, dumps, plain, kernels, broken)


def _luo_inspect(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "luo_drgn", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=TOP,
        timeout=600,
    )


def _scan(fleet: Fleet, *args: Any) -> tuple[int, list[dict[str, Any]], str]:
    out = fleet.root / "records.jsonl"
    done = _luo_inspect("scan", fleet.targets, "-s", fleet.debug, "-o", out, *args)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return done.returncode, records, done.stdout + done.stderr


def _untimed(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        ({k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records),
        key=lambda r: r["target"],
    )


@pytest.fixture(scope="module")
def serial(fleet: Fleet) -> tuple[int, list[dict[str, Any]], str]:
    return _scan(fleet, "--jobs", "1")


def _required(module: str) -> Any:
    """A module of the test extras (Python 3.10 and later): skipped loudly
    without it, a failure under CI."""
    try:
        return importlib.import_module(module)
    except ImportError:
        skip_loudly(f"{module} is not installed (pip install -e '.[test]' on Python 3.10+)")


def _by_target(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["target"]: r for r in records}


def test_records_one_per_target_and_schema(fleet: Fleet, serial: Any) -> None:
    """Would catch: a target skipped or scanned twice, a record outside the published schema,
    or a scan's exit status other than its worst target's (the broken files: 2)."""
    status, records, _ = serial
    every = [str(p) for p in sorted(fleet.targets.rglob("*")) if p.is_file()]
    assert [r["target"] for r in records] == every
    for rec in records:
        jsonschema.validate(rec, SCHEMA)
    assert status == 2


def test_broken_files_get_error_records(fleet: Fleet, serial: Any) -> None:
    """Would catch: a truncated vmcore or a text file ending the scan, or read as a healthy host."""
    _, records, _ = serial
    recs = _by_target(records)
    truncated = recs[str(fleet.broken["truncated"])]
    assert (truncated["exit_status"], truncated["verdict"]) == (2, "cannot-inspect")
    assert "truncated or damaged vmcore" in truncated["error"]
    text = recs[str(fleet.broken["text"])]
    assert text["exit_status"] == 2 and "not a kernel vmcore" in text["error"]


def test_hosts_releases_and_build_ids(fleet: Fleet, serial: Any) -> None:
    """Would catch: a host name not read from the dump (the guests were booted with
    hostname=), or a build ID other than the one readelf reads from the kernel's debug file
    (which is how the scan found that file among two builds)."""
    recs = _by_target(serial[1])
    for name, target in fleet.dumps.items():
        rec = recs[str(target)]
        kdir = examples.kernel_dir(fleet.kernels[name])
        assert rec["host"] == HOSTS[name], name
        assert rec["kernel_release"] == (kdir / "release").read_text().strip()
        assert rec["build_id"] == readelf_build_id(kernel_debug(fleet.kernels[name]))
        assert rec["kind"] == "vmcore"
    assert len({recs[str(t)]["build_id"] for t in fleet.dumps.values()}) == 2


def test_each_record_is_that_dumps_own_run(fleet: Fleet, serial: Any) -> None:
    """Would catch: a scan that answers otherwise than luo-inspect on the same dump (a finding
    lost or miscounted, another exit status): each dump is inspected again here through the
    engine, as `luo-inspect -c DUMP -s DIR check --format json` does."""
    recs = _by_target(serial[1])
    for name, target in fleet.dumps.items():
        outcome = engine.run(
            Request("check", fmt="json"),
            Source(core=str(fleet.plain[name]), symbols=[str(fleet.debug)]),
        )
        doc = json.loads("".join(outcome.chunks))
        counts: dict[tuple[str, str], int] = {}
        for f in doc["findings"]:
            counts[(f["code"], f["severity"])] = counts.get((f["code"], f["severity"]), 0) + 1
        rec = recs[str(target)]
        assert rec["exit_status"] == outcome.status == doc["exit_status"], name
        assert {(f["code"], f["severity"]): f["count"] for f in rec["findings"]} == counts, name
        assert rec["walk_errors"] == doc["errors"] == [], name


def _expected_class(manifest: dict[str, Any]) -> tuple[str, dict[str, int]]:
    """A host's verdict and finding codes under check, from what its guest did: a next kernel
    that panicked on the handover is an error; a disabled LUO says so; each incoming session
    not retrieved, and each file of a retrieved one not retrieved, waits (and that session
    would discard them if finished now)."""
    expected = manifest["expected"]
    if (expected.get("next_kernel") or {}).get("panicked"):
        return "errors", {"next-kernel-panic": 1}
    if expected["luo_state"] == "disabled":
        return "no-errors", {"luo-disabled": 1}
    waiting = discarding = 0
    for s in expected["sessions"]:
        if s["direction"] == "incoming":
            if not s["retrieved"]:
                waiting += 1
            else:
                never = sum(1 for f in s["files"] if f["retrieve_status"] == 0)
                waiting += never
                # Retrieved with files never retrieved: finishing it (or
                # closing its fd) discards them, a warning per session.
                discarding += bool(never and not s["finished"])
    codes = {"not-retrieved": waiting} if waiting else {}
    return "no-errors", codes | ({"finish-discards": discarding} if discarding else {})


def test_summary_classes_match_the_hosts_states(
    fleet: Fleet, fleet_root: Path, serial: Any
) -> None:
    """Would catch: a host put in a class its guest's log contradicts (hv-d's next kernel
    panicked at boot, hv-e's LUO disabled itself, hv-c left three things waiting), or a
    summary class without its hosts."""
    _, records, output = serial
    recs = _by_target(records)
    by_verdict: dict[str, set[str]] = {}
    by_code: dict[str, set[str]] = {}
    for name, target in fleet.dumps.items():
        verdict, codes = _expected_class(examples.load(name, fleet_root).manifest)
        rec = recs[str(target)]
        assert rec["verdict"] == verdict, name
        assert {f["code"]: f["count"] for f in rec["findings"]} == codes, name
        by_verdict.setdefault(verdict, set()).add(HOSTS[name])
        for code in codes:
            by_code.setdefault(code, set()).add(HOSTS[name])
    summary = json.loads(
        _luo_inspect(
            "scan", fleet.targets, "-s", fleet.debug, "-o", fleet.root / "again.jsonl",
            "--summary", "json", "--jobs", "2",
        ).stdout
    )  # fmt: skip
    classes = {v["verdict"]: set(v["hosts"]) for v in summary["verdicts"]}
    # hv-a's saved check is a second record of host hv-a; hv-c's saved
    # report is refused under --command check: a third cannot-inspect.
    assert classes["errors"] == by_verdict["errors"] == {"hv-d"}
    assert classes["no-errors"] == by_verdict["no-errors"]
    assert classes["cannot-inspect"] == {
        str(fleet.broken["truncated"]),
        str(fleet.broken["text"]),
        str(fleet.targets / "saved" / "hv-c-report.json"),
    }
    codes = {f["code"]: set(f["hosts"]) for f in summary["findings"]}
    assert codes == by_code
    assert "luo-inspect scan:" in output


def test_saved_document_relays_its_hosts_answer(fleet: Fleet, serial: Any) -> None:
    """Would catch: a saved check relayed with findings, exit status, host or build other than
    those of the dump it was written from."""
    recs = _by_target(serial[1])
    saved = recs[str(fleet.targets / "saved" / "hv-a-check.json")]
    dump = recs[str(fleet.dumps["fleet-hv-a"])]
    assert saved["kind"] == "saved"
    keys = ("host", "kernel_release", "build_id", "command", "verdict", "exit_status", "findings")
    assert {k: saved[k] for k in keys} == {k: dump[k] for k in keys}
    refused = recs[str(fleet.targets / "saved" / "hv-c-report.json")]
    assert "written by report, not by check" in refused["error"]


def test_jobs_and_dask_give_the_same_records(fleet: Fleet, serial: Any) -> None:
    """Would catch: records that depend on how the scan ran (one worker, two, or Dask's
    distributed scheduler with two worker processes): timing fields and order aside, they
    must be the same."""
    distributed = _required("distributed")
    _, two, _ = _scan(fleet, "--jobs", "2")
    assert _untimed(two) == _untimed(serial[1])
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        status, on_dask, _ = _scan(fleet, "--scheduler", cluster.scheduler_address)
    assert status == serial[0]
    assert _untimed(on_dask) == _untimed(serial[1])


def test_a_target_that_hangs_is_killed(fleet: Fleet, tmp_path: Path) -> None:
    """Would catch: a scan that waits forever on one target (a FIFO nobody writes blocks its
    first read, as a dump on a dead mount would), instead of killing it at --timeout and
    going on with the next."""
    fifo = tmp_path / "hung.vmcore"
    os.mkfifo(fifo)
    out = tmp_path / "records.jsonl"
    done = _luo_inspect(
        "scan", fifo, fleet.dumps["fleet-hv-a"], "-s", fleet.debug, "-o", out, "--timeout", "20",
        "--summary", "none",
    )  # fmt: skip
    hung, healthy = (json.loads(line) for line in out.read_text().splitlines())
    assert (hung["target"], hung["exit_status"]) == (str(fifo), 2)
    assert "killed after 20 s" in hung["error"]
    assert healthy["host"] == "hv-a" and healthy["exit_status"] == 0
    assert done.returncode == 2


def test_preflight_scan_rejects_the_doomed_host(fleet: Fleet, fleet_root: Path) -> None:
    """Would catch: --command preflight not reaching each target (hv-d's real next kernel
    panicked at boot on its handover: its record must be a reject)."""
    assert examples.load("fleet-hv-d", fleet_root).manifest["expected"]["next_kernel"]["panicked"]
    out = fleet.root / "preflight.jsonl"
    _luo_inspect(
        "scan", fleet.dumps["fleet-hv-d"], "-s", fleet.debug, "-o", out, "--command", "preflight",
    )  # fmt: skip
    (rec,) = (json.loads(line) for line in out.read_text().splitlines())
    assert (rec["command"], rec["verdict"], rec["exit_status"]) == ("preflight", "reject", 1)
    assert {f["code"] for f in rec["findings"]} == {"next-kernel-panic"}


def test_readme_query_runs_on_the_records(fleet: Fleet, serial: Any) -> None:
    """Would catch: records DuckDB cannot load as they are, or a README query that no longer
    runs on them: hosts per finding code."""
    duckdb = _required("duckdb")
    readme = (TOP / "README.md").read_text()
    query = readme.split("<!-- scan-query:begin -->", 1)[1].split("<!-- scan-query:end -->")[0]
    sql = query.strip().strip("`").strip().removeprefix("sql").strip()
    records = fleet.root / "records.jsonl"
    _scan(fleet, "--jobs", "2")
    rows = duckdb.sql(sql.replace("records.jsonl", str(records))).fetchall()
    hosts_by_code = {code: set(hosts) for code, _, hosts in rows}
    assert hosts_by_code["next-kernel-panic"] == {"hv-d"}
    assert hosts_by_code["not-retrieved"] == {"hv-c"}
