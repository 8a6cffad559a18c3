# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fixture set: which guest runs make which vmcores.

A *run* boots one kernel with one guest scenario and captures one base
state.  Fault-injected fixtures are made in the same run, from that base
state: the guest is stopped over the gdbstub, the writes are made in guest
memory (and read back), the dump is taken when the fixture is kept whole,
and the old bytes are written back before the next fault.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from luo_drgn.examples import decompressed

from . import faults, initramfs, manifest, paths
from .qemu import Guest, GuestError, luo_cmdline


@dataclass(frozen=True)
class Run:
    """One QEMU run and the base fixture it captures."""

    name: str
    scenario: str
    kernel: str = "luo"
    memory_mb: int = 256
    # "ready": the guest printed @@LUO-READY; "machine_kexec": stopped at
    # a breakpoint there, after LUO serialized everything for the kexec.
    capture: str = "ready"
    faults: tuple[str, ...] = ()
    description: str = ""


RUNS = [
    Run(
        "outgoing",
        "outgoing",
        faults=(
            "fault-duplicate-token",
            "fault-leaked-reference",
            "fault-file-count",
            "fault-cyclic-list",
            "fault-bad-file-pointer",
            "fault-unknown-handler",
        ),
        description="sessions preserved, before any kexec",
    ),
    Run(
        "frozen",
        "frozen",
        capture="machine_kexec",
        description="the outgoing state serialized by LUO, caught inside machine_kexec",
    ),
    Run(
        "incoming",
        "incoming",
        faults=("fault-negative-retrieve",),
        description="after a live update: some sessions and files retrieved, one finished",
    ),
    Run(
        "incoming-pending",
        "incoming-pending",
        description="after a live update, before /dev/liveupdate was opened",
    ),
    Run(
        "disabled",
        "disabled",
        memory_mb=128,
        description="LUO built in but disabled: KHO cannot reserve scratch in 128 MiB",
    ),
    Run(
        "no-luo",
        "no-luo",
        kernel="no-luo",
        memory_mb=128,
        description="a kernel built without LIVEUPDATE",
    ),
]

# Faults whose vmcore is committed whole, so the CLI is tested on a plain
# file; the others are stored as their base plus the recorded writes.
WHOLE_FAULTS = {"fault-duplicate-token", "fault-leaked-reference"}


def run_by_name(name: str) -> Run:
    for r in RUNS:
        if r.name == name:
            return r
    raise KeyError(name)


# ---------------------------------------------------------------------------
# Guest images


def build_driver(out: Path) -> Path:
    """Compile the static scenario driver."""
    src = paths.VMCORES / "guest" / "luo-scenario.c"
    binary = out / "luo-scenario"
    if not binary.exists() or binary.stat().st_mtime < src.stat().st_mtime:
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "gcc",
                "-static",
                "-O2",
                "-Wall",
                "-I",
                paths.VMCORES / "guest" / "include",
                "-o",
                binary,
                src,
            ],
            check=True,
        )
    return binary


def build_initramfs(driver: Path, kernel: Path, out: Path) -> Path:
    """/init is the driver; /kernel and /initrd.img are what it kexecs into."""
    base = [
        initramfs.directory("dev"),
        initramfs.char_device("dev/console", 5, 1),
        initramfs.directory("proc"),
        initramfs.regular("init", driver.read_bytes(), executable=True),
    ]
    inner = initramfs.build(base)
    outer = initramfs.build(
        base
        + [
            initramfs.regular("kernel", kernel.read_bytes()),
            initramfs.regular("initrd.img", inner),
        ]
    )
    path = out / "initramfs.cpio"
    path.write_bytes(outer)
    return path


def kernel_files(name: str) -> tuple[Path, Path, str]:
    """(bzImage, decompressed debug info, release) of a committed kernel."""
    kdir = paths.kernel_dir(name)
    bzimage = kdir / "bzImage"
    debug = decompressed(kdir / "vmlinux.debug.xz")
    return bzimage, debug, (kdir / "release").read_text().strip()


def symbol_address(debug: Path, name: str) -> int:
    out = subprocess.run(["nm", debug], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise GuestError(f"{name} not in {debug}")


# ---------------------------------------------------------------------------
# Running


@dataclass
class Captured:
    run: Run
    vmcore: Path
    console: list[str]
    made: dict[str, Any]
    fault_records: dict[str, dict[str, Any]] = field(default_factory=dict)
    fault_vmcores: dict[str, Path] = field(default_factory=dict)


def qemu_version() -> str:
    from .qemu import qemu_binary

    out = subprocess.run([qemu_binary(), "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


def capture(run: Run, out: Path, timeout: float = 180.0) -> Captured:
    """Boot the guest for ``run`` and dump its memory into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    bzimage, debug, release = kernel_files(run.kernel)
    driver = build_driver(paths.cache_dir() / "guest")
    initrd = build_initramfs(driver, bzimage, out)
    cmdline = luo_cmdline(run.scenario)
    vmcore = out / "vmcore"
    started = time.monotonic()
    with Guest(
        bzimage, initrd, cmdline, run.memory_mb, start_paused=run.capture == "machine_kexec"
    ) as guest:
        try:
            fault_records, fault_vmcores = _capture_in(guest, run, debug, vmcore, out, timeout)
        except GuestError as e:
            raise GuestError(f"{run.name}: {e}\n--- console ---\n{guest.tail()}") from e
        console = list(guest.console)
    made = {
        "kernel": run.kernel,
        "release": release,
        "qemu": qemu_version(),
        "memory_mb": run.memory_mb,
        "cmdline": cmdline,
        "capture": run.capture,
        "seconds": round(time.monotonic() - started, 1),
    }
    return Captured(run, vmcore, console, made, fault_records, fault_vmcores)


def _capture_in(
    guest: Guest, run: Run, debug: Path, vmcore: Path, out: Path, timeout: float
) -> tuple[dict[str, dict[str, Any]], dict[str, Path]]:
    if run.capture == "machine_kexec":
        gdb = guest.gdb()
        gdb.break_at(symbol_address(debug, "machine_kexec"))
        gdb.cont_until_stop(timeout)
        guest.dump(vmcore)
        gdb.detach()
        return {}, {}
    guest.wait_for(f"@@LUO-READY {run.scenario}", timeout)
    if not run.faults:
        guest.dump(vmcore)
        return {}, {}
    gdb = guest.gdb()  # stops the guest: every dump and write below sees one state
    guest.dump(vmcore)
    records, whole = {}, {}
    for name in run.faults:
        writes, findings = faults.FAULTS[name](vmcore, debug)
        for w in writes:
            gdb.write(w["address"], bytes.fromhex(w["new"]))
            if gdb.read(w["address"], len(w["new"]) // 2).hex() != w["new"]:
                raise GuestError(f"{name}: write at {w['address']:#x} did not stick")
        if name in WHOLE_FAULTS:
            whole[name] = out / f"{name}.vmcore"
            guest.dump(whole[name])
        for w in reversed(writes):
            gdb.write(w["address"], bytes.fromhex(w["old"]))
        records[name] = {"base": run.name, "writes": writes, "expected_findings": findings}
    gdb.detach()
    return records, whole


# ---------------------------------------------------------------------------
# Writing fixtures


def write_fixture(
    dest: Path,
    name: str,
    description: str,
    made: dict[str, Any],
    console: list[str],
    expected: dict[str, Any],
    vmcore: Path | None,
    base: str | None = None,
    compress: bool = True,
) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    stored = None
    if vmcore is not None:
        if compress:
            from .kernel import compress as xz

            stored = "vmcore.xz"
            # -3: a vmcore is mostly zero pages and kernel text; -6 saves
            # 5% for four times the time.
            xz(vmcore, dest / stored, preset=3)
        else:
            stored = "vmcore"
            shutil.move(vmcore, dest / stored)
    doc = {
        "name": name,
        "description": description,
        "made": made,
        "vmcore": stored,
        "base": base,
        "expected": expected,
        "guest_log": [line for line in console if line.startswith("@@LUO")],
        "kernel_log": [
            line for line in console if line.startswith(("luo:", "KHO:", "Command line:"))
        ],
    }
    (dest / "manifest.json").write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


def generate(
    names: list[str],
    dest_root: Path,
    work: Path,
    log: Callable[[str], None] = print,
    compress: bool = True,
) -> None:
    """Run the named runs and write their fixtures under ``dest_root``
    (vmcores xz'd for committing, or left as they are for a quick check)."""
    for name in names:
        run = run_by_name(name)
        log(f"== {run.name}: {run.description}")
        cap = capture(run, work / run.name)
        expected = manifest.expected_state(cap.console, frozen=run.capture == "machine_kexec")
        write_fixture(
            dest_root / run.name,
            run.name,
            run.description,
            cap.made,
            cap.console,
            expected,
            cap.vmcore,
            compress=compress,
        )
        for fname, record in cap.fault_records.items():
            write_fixture(
                dest_root / fname,
                fname,
                faults.DESCRIPTIONS[fname],
                cap.made,
                cap.console,
                manifest.with_fault(expected, record),
                cap.fault_vmcores.get(fname),
                base=run.name,
                compress=compress,
            )
        log(f"   {run.name}: {cap.made['seconds']} s")
