# SPDX-License-Identifier: LGPL-2.1-or-later
"""Preflight on moves to another kernel release, the reason live update
exists: a real 7.2.13 guest with Debian's 7.3.4 loaded for kexec -e
(upgrade), the rollback, a 7.3.4 whose KHO ABI is kho-v5, and a 7.2.13
built without CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT that loads itself
without kho=on.  Each run went on into the next kernel; the oracle is what
that kernel did (its console, its driver's errnos), recorded in the
manifest, and binutils' readelf for the build IDs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from luo_drgn import examples
from tests.support.debugdirs import build_id_dir, kernel_debug, readelf_build_id

TOP = Path(__file__).resolve().parents[2]
# fixture -> the kernel loaded for kexec -e in it
MOVES = {
    "upgrade": "luo-7.3",
    "rollback": "luo",
    "loaded-kho-v5": "luo-7.3-kho-v5",
    "loaded-kho-default-off": "kho-default-off",
}


@pytest.fixture(scope="module")
def debug_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_id_dir(tmp_path_factory.mktemp("debug"))


def _preflight(
    fresh_root: Path, name: str, *args: Any, next_kernel: Path | None = None
) -> tuple[int, dict[str, Any], str]:
    ex = examples.load(name, fresh_root)
    given = ["--next-kernel", str(next_kernel)] if next_kernel else []
    done = subprocess.run(
        [sys.executable, "-m", "luo_drgn", "-c", ex.core, *map(str, args), "preflight",
         "--format", "json", *given],
        capture_output=True, text=True, cwd=TOP, timeout=300,
    )  # fmt: skip
    doc = json.loads(done.stdout) if done.stdout else {}
    return done.returncode, doc, done.stderr


def _accepted(reaction: dict[str, Any]) -> bool:
    """What the next kernel did with the handover: it retrieved the live
    update data ("luo: Retrieved live update data"), did not panic, opened
    /dev/liveupdate and retrieved every session its driver asked for."""
    return (
        reaction["panicked"] is None
        and any("Retrieved live update data" in m for m in reaction["luo_messages"])
        and reaction["open_luo"] == ["OK"]
        and bool(reaction["retrieve_session"])
        and all(r == "OK" for r in reaction["retrieve_session"].values())
    )


@pytest.mark.parametrize("name", MOVES)
def test_verdict_is_the_next_kernels_reaction(name: str, fresh_root: Path, debug_dir: Path) -> None:
    """Would catch: a preflight verdict other than what the real next kernel did with the
    handover, when the next kernel is another release or build: found by the loaded image's
    build ID in a -s directory, and given with --next-kernel (the same verdict both ways)."""
    manifest = examples.load(name, fresh_root).manifest
    reaction = manifest["expected"]["next_kernel"]
    want = 0 if _accepted(reaction) else 1
    own = kernel_debug(manifest["made"]["kernel"])
    code, doc, err = _preflight(fresh_root, name, "-s", own, "-s", debug_dir)
    assert code == want, (err, doc.get("findings"))
    image = examples.kernel_dir(MOVES[name]) / "bzImage"
    code, given, err = _preflight(fresh_root, name, "-s", own, "-s", debug_dir, next_kernel=image)
    assert code == want, (err, given.get("findings"))
    assert [f["code"] for f in given["findings"]] == [f["code"] for f in doc["findings"]]


@pytest.mark.parametrize("name", MOVES)
def test_names_the_release_and_build_that_will_boot(
    name: str, fresh_root: Path, debug_dir: Path
) -> None:
    """Would catch: preflight not naming the kernel the loaded image boots (another release and
    build than the running one in three of four moves), or naming this kernel instead."""
    loaded = MOVES[name]
    release = (examples.kernel_dir(loaded) / "release").read_text().strip()
    build_id = readelf_build_id(kernel_debug(loaded))
    own = kernel_debug(examples.load(name, fresh_root).manifest["made"]["kernel"])
    _, doc, _ = _preflight(fresh_root, name, "-s", own, "-s", debug_dir)
    identity = doc["preflight"]["next_kernel_identity"]
    assert (identity["source"], identity["release"], identity["build_id"]) == (
        "the loaded image",
        release,
        build_id,
    )
    assert identity["banner"].startswith(f"Linux version {release} ")
    assert identity["same_build"] == (build_id == doc["target"]["build_id"])
    assert identity["debug_file"] is not None and identity["unknown"] == []


def test_kho_abi_finding_quotes_the_next_kernel(fresh_root: Path, debug_dir: Path) -> None:
    """Would catch: the kho-v5 next kernel's refusal not named as a KHO ABI mismatch, or said to
    panic (it printed its incompatibility, disabled KHO revival, and every retrieve failed with
    ENOENT)."""
    manifest = examples.load("loaded-kho-v5", fresh_root).manifest
    reaction = manifest["expected"]["next_kernel"]
    # kho_populate()'s lines, on the next kernel's console after the dump.
    kho = [line for line in manifest["after_log"] if line.startswith("KHO:")]
    incompatible = next(m for m in kho if "is incompatible with" in m)
    assert "KHO: disabling KHO revival" in kho
    assert set(reaction["retrieve_session"].values()) == {"ENOENT"}
    _, doc, _ = _preflight(fresh_root, "loaded-kho-v5", "-s", debug_dir)
    (f,) = doc["findings"]
    assert f["code"] == "next-kernel-kho-abi"
    assert incompatible.split(" is incompatible with ", 1)[1].split(":")[0] in f["message"]
    assert "disabling KHO revival" in f["message"] and "ENOENT" in f["message"]
    assert "panic" not in f["message"]


def test_kho_default_off_names_kho(fresh_root: Path, debug_dir: Path) -> None:
    """Would catch: a next kernel whose KHO is off by default (the build lacks
    CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT, its command line has no kho=on) accepted because this
    kernel, booted with kho=on, has KHO on: the real next kernel disabled LUO and every open of
    /dev/liveupdate failed with ENOENT."""
    reaction = examples.load("loaded-kho-default-off", fresh_root).manifest["expected"]
    reaction = reaction["next_kernel"]
    (said,) = [m for m in reaction["luo_messages"] if "Disabling liveupdate" in m]
    assert set(reaction["open_luo"]) == {"ENOENT"}
    _, doc, _ = _preflight(fresh_root, "loaded-kho-default-off", "-s", debug_dir)
    (f,) = doc["findings"]
    assert f["code"] == "next-kernel-no-luo"
    assert "CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT is not set" in f["message"]
    assert said in f["message"] and "ENOENT" in f["message"]


def test_next_kernel_that_is_not_loaded_is_refused(fresh_root: Path, debug_dir: Path) -> None:
    """Would catch: a --next-kernel believed although another kernel is loaded for kexec -e (a
    build without LUO would make preflight say all sessions are lost while the loaded 7.3.4
    accepts them): exit 2, one line naming the loaded kernel."""
    code, _, err = _preflight(
        fresh_root,
        "upgrade",
        "-s",
        debug_dir,
        next_kernel=examples.kernel_dir("no-luo") / "bzImage",
    )
    release = (examples.kernel_dir("luo-7.3") / "release").read_text().strip()
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "is not the kernel loaded for kexec -e" in line
    assert f"Linux {release}, build ID {readelf_build_id(kernel_debug('luo-7.3'))}" in line


def test_unknown_next_kernel_is_not_an_accept(fresh_root: Path, monkeypatch: Any) -> None:
    """Would catch: another build loaded whose debug info is not found (no -s directory has it)
    taken as an accept: its built-in command line and KHO default stay unknown and either can
    lose every file; preflight says what is unknown and exits 1, and still names the kernel."""
    own = kernel_debug("luo")
    monkeypatch.setenv("DEBUGINFOD_URLS", "")
    code, doc, _ = _preflight(fresh_root, "upgrade", "-s", own)
    assert code == 1
    (f,) = doc["findings"]
    assert f["code"] == "next-kernel-unknown"
    assert "KHO default" in f["message"] and "built-in command line" in f["message"]
    assert doc["preflight"]["next_kernel_identity"]["release"] == "7.3.4"


def test_scan_preflight_finds_the_next_kernels_debug_info(
    fresh_root: Path, debug_dir: Path, tmp_path: Path
) -> None:
    """Would catch: luo-inspect scan --command preflight not searching its -s directories for
    the loaded kernel's debug info (it would answer "cannot verify" where luo-inspect preflight,
    given the same -s, answers what the real 7.3.4 did: accept)."""
    ex = examples.load("upgrade", fresh_root)
    assert _accepted(ex.manifest["expected"]["next_kernel"])
    out = tmp_path / "records.jsonl"
    subprocess.run(
        [sys.executable, "-m", "luo_drgn", "scan", str(ex.core), "-s", str(debug_dir),
         "--command", "preflight", "-o", str(out), "--summary", "none"],
        cwd=TOP, timeout=300, check=False,
    )  # fmt: skip
    (rec,) = (json.loads(line) for line in out.read_text().splitlines())
    assert (rec["verdict"], rec["exit_status"], rec["findings"]) == ("accept", 0, [])
