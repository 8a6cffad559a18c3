# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fixture set: which guest runs make which vmcores.

A *run* boots one kernel with one guest scenario and captures one base
state.  Fault-injected fixtures are made in the same run, from that base
state: the guest is stopped over the gdbstub, the writes are made in guest
memory (and read back), the dump is taken when the fixture is kept whole,
and the old bytes are written back before the next fault.

Close to a thousand lines: every run of the fixture set is declared here,
beside the machinery that captures each kind (a dump when ready, a stop in
machine_kexec, a panic, a kdump) and writes its manifest; the guest's
scenarios are vmcores/guest/luo-scenario.c, the faults vmcores/faults.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import drgn

from luo_drgn import examples
from luo_drgn.examples import copy_sparse, decompressed

from . import elfnote, faults, initramfs, manifest, paths
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
    # Handover runs: where a fixture is dumped, as (fixture, stop) with stop
    # "ready" (@@LUO-READY, then the guest goes on), "machine_kexec" or
    # "panic".  After the last stop the run goes on until the next kernel
    # panics or its driver is ready, and what it did is recorded.
    stops: tuple[tuple[str, str], ...] = ()
    # A serialized-data fault (faults.kexec_faults()) written at machine_kexec,
    # computed from a dump of that moment, before the kexec goes on.  A stop
    # "next-ready" dumps the next kernel once its driver is ready; a stop
    # whose fixture is "" dumps nothing kept.
    ser_fault: str | None = None
    # Dump at machine_kexec after the fault is written, not before: the
    # state the next kernel reads.
    dump_after_fault: bool = False
    # (from, into): the JSON report of fixture ``from`` saved as before.json
    # in fixture ``into``, as an operator saves one before kexec -e.
    saves: tuple[str, str] | None = None
    # Added to the kernel command line.
    cmdline_extra: str = ""
    # kdump runs: the fixtures made of one state, dumped by QEMU at
    # @@LUO-READY (``name``), then by the crash kernel the guest panics into:
    # its /proc/vmcore as it is (``name``-kdump) and through makedumpfile
    # -c -d 31 (``name``-kdump-filtered).
    kdump: bool = False
    # kdump runs: a WARN_ON() to force, as (function, struct, member): at the
    # function's entry, its first argument's member is set to 1, where the
    # kernel's own check then fires (with panic_on_warn, a panic).
    force_warn: tuple[str, str, str] | None = None
    # Live updates the run makes: how deep its initrds nest.
    kexecs: int = 1
    # The first boot loads its next kernel with kexec-tools (/sbin/kexec).
    kexec_tools: bool = False
    # A console line to wait for after the last stop, the guest running on
    # (what its driver does after the dump is recorded with the rest).
    tail: str | None = None
    # The kernel the live update boots (a committed kernel's name), when it
    # is not ``kernel``: a move to another release.  Its fixtures dumped at
    # "next-ready" are made by it.
    next_kernel: str | None = None


RUNS = [
    Run(
        "outgoing",
        "outgoing",
        faults=faults.state_faults("outgoing"),
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
        faults=faults.state_faults("incoming"),
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

# The 7.2.13 bug issue #9 reproduces, its healthy neighbour, and faults in
# the serialized data: each lets the real next kernel react.
HANDOVER_RUNS = [
    Run(
        "doomed",
        "doomed",
        stops=(("doomed", "ready"), ("doomed-frozen", "machine_kexec"), ("doomed-panic", "panic")),
        description="51 sessions and a refused duplicate name: an empty session block stays "
        "linked, and the next kernel panics at boot",
    ),
    Run(
        "crowded",
        "crowded",
        stops=(("crowded", "ready"),),
        description="50 sessions and a refused duplicate name: one full block, the next "
        "kernel accepts the handover",
    ),
    *(
        Run(
            f.name,
            f.base,
            stops=((f.name, "machine_kexec"),),
            ser_fault=f.name,
            description=f.description,
        )
        for f in faults.kexec_faults()
    ),
]
HANDOVER_RUNS.append(
    Run(
        "deserialize-failed",
        "frozen",
        stops=(("", "machine_kexec"), ("deserialize-failed", "next-ready")),
        ser_fault="fault-ser-file-count",
        description="the next kernel of fault-ser-file-count once its driver is ready: "
        "deserialization failed (File count mismatch), every open returned EIO",
    )
)
HANDOVER_RUNS += [
    Run(
        "journey",
        "journey",
        stops=(
            ("journey-before", "ready"),
            ("", "machine_kexec"),
            ("journey-after", "next-ready"),
        ),
        ser_fault="fault-ser-memfd-seals",
        saves=("journey-before", "journey-after"),
        description="a live update from the state saved before kexec -e to the next kernel "
        "once its driver is ready; vm-alpha 0x101's memfd state carries a seal the next "
        "kernel refuses, so that retrieve fails for real",
    ),
    Run(
        "journey-drop",
        "journey-drop",
        stops=(("journey-drop-before", "machine_kexec"), ("journey-drop-after", "next-ready")),
        ser_fault="fault-ser-session-drop",
        dump_after_fault=True,
        description="a live update whose session block count was lowered at machine_kexec: "
        "the next kernel silently skips vm-gamma and empty",
    ),
]
# The next kernel's command line, as preflight is asked about it: the journey
# scenario, its next kernel booted with luo_next='s words for its own
# liveupdate= and kho= (luo-scenario.c's kexec_next()). Its console says what
# it booted with and what opening /dev/liveupdate gave its driver.
NEXT_CMDLINES = {
    "next-kho-off": "liveupdate=on,kho=off",
    "next-liveupdate-1": "liveupdate=1",
    "next-liveupdate-last": "liveupdate=on,liveupdate=0",
}
HANDOVER_RUNS += [
    Run(
        name,
        "journey",
        stops=((name, "ready"),),
        cmdline_extra=f"luo_next={words}",
        description=f"the journey's sessions, handed to a next kernel booted with "
        f"{words.replace(',', ' ')} instead of this kernel's liveupdate= and kho=",
    )
    for name, words in NEXT_CMDLINES.items()
]
# The next kernel already loaded when the state is dumped (kexec_file_load
# done, kexec -e not yet): preflight reads the image's own command line.
HANDOVER_RUNS += [
    Run(
        "loaded",
        "loaded",
        stops=(("loaded", "ready"),),
        description="the outgoing state with the next kernel loaded by kexec_file_load, "
        "before kexec -e; the next kernel accepts the handover",
    ),
    Run(
        "loaded-legacy",
        "loaded-legacy",
        # The `full` kernel has CONFIG_KEXEC, the legacy syscall.
        kernel="full",
        kexec_tools=True,
        stops=(("loaded-legacy", "ready"),),
        description="the outgoing state with the next kernel loaded by kexec-tools' kexec -l -c "
        "(the legacy kexec_load()): the image carries no KHO data",
    ),
    Run(
        "loaded-kho-off",
        "loaded",
        stops=(("loaded-kho-off", "ready"),),
        cmdline_extra="luo_next=liveupdate=on,kho=off",
        description="the outgoing state with the next kernel loaded by kexec_file_load "
        "with kho=off on its command line; that kernel disables LUO",
    ),
]
# Moves to another release, the reason live update exists: the next kernel
# loaded (kexec_file_load) when the state is dumped, then the update goes on
# and the next kernel's console and its driver's errnos are recorded.
# A host's second update through a middle kernel that never opened
# /dev/liveupdate: what it received was never deserialized, and is lost at
# its own kexec (boot 3's driver asks for it and logs ENOENT).
HANDOVER_RUNS.append(
    Run(
        "second-pending",
        "second-pending",
        memory_mb=512,
        kexecs=2,
        stops=(("second-pending-before", "next-ready"), ("second-pending-after", "next-ready")),
        description="a host's second live update through a middle kernel that never opens "
        "/dev/liveupdate: boot 2 is dumped with the handover still pending before its own "
        "kexec; boot 3 logs what arrived",
    )
)
HANDOVER_RUNS += [
    Run(
        "upgrade",
        "loaded",
        next_kernel="luo-7.3",
        stops=(("upgrade", "ready"), ("upgrade-after", "next-ready")),
        description="7.2.13 with 7.3.4 loaded for kexec -e (upgrade), then 7.3.4 after the "
        "update, once its driver retrieved: the next kernel accepts the handover",
    ),
    Run(
        "rollback",
        "loaded",
        kernel="luo-7.3",
        next_kernel="luo",
        stops=(("rollback", "ready"), ("rollback-after", "next-ready")),
        description="7.3.4 with 7.2.13 loaded for kexec -e (rollback), then 7.2.13 after the "
        "update, once its driver retrieved: the next kernel accepts the handover",
    ),
    Run(
        "loaded-kho-v5",
        "loaded",
        next_kernel="luo-7.3-kho-v5",
        stops=(("loaded-kho-v5", "ready"),),
        description="7.2.13 with a 7.3.4 whose KHO ABI is kho-v5 loaded for kexec -e: the next "
        "kernel's kho_populate() refuses the handover, LUO comes up empty",
    ),
    Run(
        "loaded-kho-default-off",
        "loaded",
        kernel="kho-default-off",
        cmdline_extra="kho=on luo_next=liveupdate=on",
        stops=(("loaded-kho-default-off", "ready"),),
        description="a 7.2.13 built without CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT, booted with "
        "kho=on, with itself loaded for kexec -e without kho=on: the next kernel disables LUO",
    ),
]
# False alarms preflight must not raise (issue #28): a preserve caught in
# progress (a VM-sized memfd's preserve takes seconds, and a freeze waits
# for the session mutex), and no session at all with a next kernel that
# has LUO off (nothing preserved, nothing lost).
HANDOVER_RUNS += [
    Run(
        "preserving",
        "journey",
        stops=(("preserving", "preserving"),),
        description="the journey's first LIVEUPDATE_SESSION_PRESERVE_FD caught inside "
        "memfd_luo_preserve(): the file block set grown, the file indexed, not listed yet; then "
        "the update goes on and the next kernel retrieves",
    ),
    Run(
        "no-session",
        "no-session",
        cmdline_extra="luo_next=liveupdate=off",
        stops=(("no-session", "ready"),),
        description="/dev/liveupdate open, no session created, the next kernel loaded with "
        "liveupdate=off: nothing is preserved, so nothing can be lost",
    ),
    Run(
        "finish-early",
        "finish-early",
        stops=(("finish-early", "next-ready"),),
        tail="@@LUO-DONE finish-early",
        description="after a live update, vm-alpha retrieved with only 0x100 (dumped); then its "
        "FINISH with 0x101 and 0x102 never retrieved, and an agent killed with vm-beta's "
        "session fd open",
    ),
]
# Session names the kernel compares as bytes (strncmp()), not as text.
HANDOVER_RUNS.append(
    Run(
        "byte-names",
        "byte-names",
        stops=(("byte-names", "ready"),),
        description="the outgoing state plus sessions named vm-\\xff and vm-\\xfe (bytes "
        "that are not UTF-8), each with a memfd: two sessions, both arrive",
    )
)
# A seal added after preserve: memfd_luo_preserve() recorded the seals then.
HANDOVER_RUNS.append(
    Run(
        "sealed",
        "sealed",
        stops=(("sealed", "ready"),),
        description="the outgoing state with vm-alpha 0x100's memfd sealed (F_SEAL_SHRINK | "
        "F_SEAL_GROW) after it was preserved; the next kernel retrieves it without them",
    )
)
# A host's second live update: boot 1 preserves, boot 2 retrieves part,
# finishes vm-gamma and preserves its files again with a new one, resizes a
# retrieved memfd, leaves the rest unretrieved; boot 3 logs what arrived.
HANDOVER_RUNS.append(
    Run(
        "second",
        "second",
        memory_mb=512,
        kexecs=2,
        stops=(
            ("second-first", "ready"),
            ("second-before", "next-ready"),
            ("second-after", "next-ready"),
        ),
        description="a host's second live update: boot 2 holds incoming sessions never "
        "retrieved beside new outgoing ones, and is dumped before its own kexec; boot 3 "
        "retrieves what arrived",
    )
)
HANDOVER_RUNS += [
    Run(
        "retrieving",
        "incoming",
        stops=(("retrieving", "retrieving"),),
        description="after a live update, inside the first retrieve: luo_retrieve_file() "
        "has set the file and not yet retrieve_status",
    ),
    Run(
        "freezing",
        "frozen",
        # vm-alpha's three files are frozen, vm-beta's first is being frozen.
        stops=(("freezing", "freeze:4"),),
        description="a dump inside the freeze: memfd_luo_freeze() of vm-beta's first file",
    ),
    Run(
        "freeze-failed",
        "frozen",
        stops=(("", "serialize"), ("freeze-failed", "kexec-failed")),
        ser_fault="pre-freeze-serialized-data",
        description="a freeze that failed and rolled back: vm-beta 0x200's serialized_data "
        "zeroed before luo_session_serialize(), memfd_luo_freeze() refuses it, the kexec "
        "is refused",
    ),
]
# LUO's test FLBs (kernel `full`) through a live update: with users before
# it, serialized at the freeze, retrieved and then finished after it.
HANDOVER_RUNS += [
    Run(
        "flb",
        "flb",
        kernel="full",
        stops=(
            ("flb-outgoing", "ready"),
            ("flb-frozen", "machine_kexec"),
            ("flb-incoming", "next-ready"),
        ),
        description="the test FLBs (CONFIG_LIVEUPDATE_TEST) of the outgoing state's seven "
        "memfds: counted, serialized at the freeze, retrieved by the next kernel, which "
        "retrieves and finishes vm-gamma",
    ),
    Run(
        "flb-finishing",
        "flb-finished",
        kernel="full",
        stops=(("flb-finishing", "flb-finishing"),),
        description="the next kernel of flb-finished inside the first test FLB's .finish(): "
        "liveupdate_flb_put_incoming() holds its lock, its count is 0, the last file is being "
        "finished",
    ),
    Run(
        "flb-finished",
        "flb-finished",
        kernel="full",
        stops=(("", "machine_kexec"), ("flb-finished", "next-ready")),
        description="the next kernel retrieves and finishes every session: each test FLB's "
        "last file is finished and its .finish() runs",
    ),
]
RUNS += HANDOVER_RUNS

# Dumps as users attach them: kdump's, of a panicked kernel.
KDUMP_RUNS = [
    Run(
        "holders",
        "holders",
        kernel="full",
        # crashkernel= reserves the capture kernel's memory; KHO sizes its
        # scratch at 200% of the kernel's reservations, crash area included,
        # and cannot reserve that much beside 160M: kho_scratch=50% can.
        memory_mb=768,
        cmdline_extra="crashkernel=160M kho_scratch=50%",
        kdump=True,
        description="memfds held by the kernel besides LUO (an SCM_RIGHTS message in flight, "
        "an io_uring fixed file of a ring kept only by IORING_REGISTER_RING_FDS, a loop device, "
        "an IOAS mapping copied into a second IOAS), "
        "then a sysrq crash into a kdump kernel that saves /proc/vmcore as ELF and through "
        "makedumpfile -c -d 31",
    ),
]
KDUMP_RUNS.append(
    Run(
        "warn-panic",
        "warn",
        kernel="full",
        memory_mb=768,
        cmdline_extra="crashkernel=160M kho_scratch=50% panic_on_warn=1",
        kdump=True,
        force_warn=("luo_file_set_destroy", "struct luo_file_set", "count"),
        description="a panic inside LUO: closing vm-epsilon's fd frees the session, "
        "luo_file_set_destroy() is made to find a file count left (written over the gdbstub "
        "at its entry), its WARN_ON() panics with panic_on_warn, and the crash kernel saves "
        "/proc/vmcore",
    )
)
RUNS += KDUMP_RUNS

# A fleet for luo-inspect scan (tests/real/test_fleet.py): hosts named with
# hostname=, on two kernel builds (luo, full), in states whose class is
# known: healthy (outgoing, on either kernel), after a live update with
# files left waiting (incoming), doomed (the next kernel panics at boot),
# and LUO disabled (128 MiB).  Regenerated by the tests, not committed.
FLEET_RUNS = [
    Run(
        "fleet-hv-a",
        "outgoing",
        cmdline_extra="hostname=hv-a",
        description="host hv-a: sessions preserved, before any kexec (kernel luo)",
    ),
    Run(
        "fleet-hv-b",
        "outgoing",
        kernel="full",
        cmdline_extra="hostname=hv-b",
        description="host hv-b: sessions preserved, before any kexec (kernel full)",
    ),
    Run(
        "fleet-hv-c",
        "incoming",
        cmdline_extra="hostname=hv-c",
        description="host hv-c: "
        "after a live update, vm-alpha 0x102, vm-beta and empty left waiting",
    ),
    Run(
        "fleet-hv-d",
        "doomed",
        stops=(("fleet-hv-d", "ready"),),
        cmdline_extra="hostname=hv-d",
        description="host hv-d: 51 sessions and a refused "
        "duplicate name; the next kernel panics at boot",
    ),
    Run(
        "fleet-hv-e",
        "disabled",
        memory_mb=128,
        cmdline_extra="hostname=hv-e",
        description="host hv-e: KHO cannot reserve scratch in 128 MiB, LUO disabled",
    ),
]
RUNS += FLEET_RUNS
KDUMP_SUFFIXES = {"-kdump": "vmcore.elf", "-kdump-filtered": "vmcore.kdump"}
# Kept beside the QEMU dump of a kdump run's state.
QEMU_KDUMP = "qemu-kdump-zlib"


def _description(fixture: str, run: Run) -> str:
    """A fixture's description: its fault's, or its run's."""
    fault = faults.FAULTS.get(fixture)
    return fault.description if fault is not None else run.description


# Faults whose vmcore is committed whole, so the CLI is tested on a plain
# file; the others are stored as their base plus the recorded writes.
WHOLE_FAULTS = {f.name for f in faults.FAULTS.values() if f.whole}


# The benchmark's scale scenario (tests/bench/bench_scale.py): generated on demand,
# never committed (a 100,000-file dump is 3 GB), in runs of 25 memfds a
# session as on a hypervisor host, the agent forked into 9 processes.
SCALE_FILES_PER_SESSION = 25
SCALE_PROCS = 9


def scale_run(files: int, kernel: str = "full", memory_mb: int | None = None) -> Run:
    """The scale run with ``files`` preserved memfds (rounded up to whole
    sessions).  Each preserved one-page memfd pins about 14 KiB of guest
    memory (its folio, its serialized header, its folio array and the
    kernel's objects): 1 GiB holds 10,000, 3 GiB 100,000."""
    sessions = -(-files // SCALE_FILES_PER_SESSION)
    shape = f"{sessions},{SCALE_FILES_PER_SESSION},{SCALE_PROCS}"
    return Run(
        f"scale-{sessions * SCALE_FILES_PER_SESSION}",
        "scale",
        kernel=kernel,
        memory_mb=memory_mb or max(1024, min(3072, files * 30 // 1000)),
        cmdline_extra=f"luo_scale={shape}",
        description=f"{sessions} sessions of {SCALE_FILES_PER_SESSION} one-page memfds, "
        f"every fd open in {SCALE_PROCS} processes",
    )


def generate_scale(run: Run, dest: Path, work: Path) -> Path:
    """Boot the scale guest, dump it at @@LUO-READY into ``dest/run.name``
    (uncompressed) and return that directory.  Its manifest records the
    guest's own summary line, which the benchmark checks its counts against."""
    cap = capture(run, work / run.name, timeout=600.0 + run.memory_mb / 4)
    write_fixture(
        dest / run.name,
        run.name,
        run.description,
        cap.made,
        cap.console,
        {},
        cap.vmcore,
        compress=False,
    )
    return dest / run.name


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


def build_initramfs(
    driver: Path,
    kernel: Path,
    out: Path,
    dumper: bool = False,
    kexecs: int = 1,
    kexec_tools: bool = False,
) -> Path:
    """/init is the driver; /kernel and /initrd.img are what it kexecs into
    (with ``dumper``, the inner image also holds makedumpfile, for the
    capture kernel), nested ``kexecs`` deep: each boot's initrd carries the
    next one's.  With ``kexec_tools``, the first boot's has /sbin/kexec."""
    base = [
        initramfs.directory("dev"),
        initramfs.char_device("dev/console", 5, 1),
        initramfs.directory("proc"),
        initramfs.regular("init", driver.read_bytes(), executable=True),
    ]
    image = initramfs.build(
        base + (host_binary_entries("makedumpfile", "makedumpfile") if dumper else [])
    )
    for i in range(kexecs):
        image = initramfs.build(
            base
            + [
                initramfs.regular("kernel", kernel.read_bytes()),
                initramfs.regular("initrd.img", image),
            ]
            # The first boot's loader, where it is kexec-tools.
            + (
                host_binary_entries("kexec", "kexec-tools")
                if kexec_tools and i == kexecs - 1
                else []
            )
        )
    path = out / "initramfs.cpio"
    path.write_bytes(image)
    return path


def host_binary_entries(name: str, package: str) -> list[initramfs.Entry]:
    """This machine's ``name`` at /sbin/``name``, with the shared libraries
    and the loader it needs, at the paths ld.so looks in."""
    binary = shutil.which(name)
    if binary is None:
        raise GuestError(f"{name} is not installed (apt-get install {package})")
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    libs = sorted({p for p in re.findall(r"(/\S+) \(0x", out)})
    entries: list[initramfs.Entry] = []
    dirs: set[str] = {"sbin"}
    for lib in libs:
        parts = Path(lib).parts[1:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    entries += [initramfs.directory(d) for d in sorted(dirs)]
    entries.append(initramfs.regular(f"sbin/{name}", Path(binary).read_bytes(), executable=True))
    entries += [
        initramfs.regular(lib.lstrip("/"), Path(lib).resolve().read_bytes(), executable=True)
        for lib in libs
    ]
    return entries


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


def _made(run: Run, release: str, cmdline: str, started: float) -> dict[str, Any]:
    """How a fixture was made, for its manifest."""
    return {
        "kernel": run.kernel,
        "release": release,
        "qemu": qemu_version(),
        "memory_mb": run.memory_mb,
        "cmdline": cmdline,
        "seconds": round(time.monotonic() - started, 1),
    }


@dataclass
class Stop:
    """One fixture of a handover run: dumped at a stop, with the console up
    to that moment and after it (the rest of the run)."""

    fixture: str
    point: str
    vmcore: Path | None
    console: list[str]
    after: list[str] = field(default_factory=list)
    fault_record: dict[str, Any] | None = None
    # Writes made earlier in the run (a fault at machine_kexec) that this
    # state follows from.
    writes: list[dict[str, Any]] = field(default_factory=list)


def capture_handover(
    run: Run, out: Path, timeout: float = 240.0
) -> tuple[list[Stop], dict[str, Any]]:
    """Boot the guest for a handover run, dump at each stop, let the kexec
    and the next kernel go on, and record the whole console."""
    out.mkdir(parents=True, exist_ok=True)
    bzimage, debug, release = kernel_files(run.kernel)
    driver = build_driver(paths.cache_dir() / "guest")
    next_bzimage = kernel_files(run.next_kernel)[0] if run.next_kernel else bzimage
    initrd = build_initramfs(
        driver, next_bzimage, out, kexecs=run.kexecs, kexec_tools=run.kexec_tools
    )
    cmdline = luo_cmdline(run.scenario, extra=run.cmdline_extra)
    started = time.monotonic()
    stops: list[Stop] = []
    first = run.stops[0][1]
    with Guest(bzimage, initrd, cmdline, run.memory_mb, start_paused=first != "ready") as guest:
        try:
            if first == "ready":
                guest.wait_for(f"@@LUO-READY {run.scenario}", timeout)
            gdb = guest.gdb()  # stops the guest
            where = {
                symbol_address(debug, "machine_kexec"): "machine_kexec",
                # Where a kdump would take over: vpanic() calls it once the
                # panic message and stack dump are in the printk buffer.
                symbol_address(debug, "__crash_kexec"): "panic",
            }
            armed = set(where)
            for address in armed:
                gdb.break_at(address)
            point = "ready" if first == "ready" else None
            written: list[dict[str, Any]] = []
            phase = 1  # the guest driver's luo_phase at the last stop
            for fixture, stop in run.stops:
                if stop.startswith("freeze:"):
                    # The Nth call of the memfd handler's freeze, inside
                    # luo_session_serialize(): a dump taken mid-freeze.
                    for call in range(int(stop.split(":", 1)[1])):
                        _run_to(gdb, debug, "memfd_luo_freeze", timeout, step_over=call > 0)
                    point = stop
                elif stop == "retrieving":
                    # Inside luo_retrieve_file(): past the handler's retrieve,
                    # at its xa_insert() (__xa_insert()), file set and
                    # retrieve_status not yet.
                    _disarm(gdb, armed)
                    _run_to(gdb, debug, "memfd_luo_retrieve", timeout)
                    _run_to(gdb, debug, "__xa_insert", timeout)
                    point = stop
                elif stop == "flb-finishing":
                    # Inside the first test FLB's .finish(), called by
                    # liveupdate_flb_put_incoming() with its lock held, for
                    # the last memfd luo_file_finish() finishes.
                    _disarm(gdb, armed)
                    _run_to(gdb, debug, "test_flb_finish", timeout)
                    point = stop
                elif stop == "serialize":
                    _run_to(gdb, debug, "luo_session_serialize", timeout)
                    point = stop
                elif stop == "preserving":
                    # Inside the first LIVEUPDATE_SESSION_PRESERVE_FD's
                    # handler preserve: luo_preserve_file() has grown the
                    # file block set, indexed the file and counted its FLBs,
                    # and not listed it yet (the session mutex is held).
                    _disarm(gdb, armed)
                    _run_to(gdb, debug, "memfd_luo_preserve", timeout)
                    point = stop
                elif stop == "kexec-failed":
                    # The freeze failed: reboot() returned and the driver
                    # logged it; stop the guest there.
                    _disarm(gdb, armed)
                    gdb.command("c", wait_reply=False)
                    guest.wait_for_line(
                        lambda line: '"op":"kexec_reboot","result"' in line,
                        "the driver's failed kexec",
                        timeout,
                    )
                    time.sleep(0.5)
                    gdb.interrupt()
                    point = stop
                elif stop == "next-ready":
                    # The next kernel's driver got ready: stop it there.
                    _disarm(gdb, armed)
                    gdb.command("c", wait_reply=False)
                    # The previous phase may have printed its ready marker
                    # already.
                    phase += 1
                    mark = f'"phase":{phase}'
                    guest.wait_for_line(
                        lambda line, mark=mark: (
                            line.startswith('@@LUO {"op":"start"') and mark in line
                        ),
                        "the next kernel's driver",
                        timeout,
                    )
                    line = guest.wait_for_any(("@@LUO-READY", "Kernel panic"), timeout)
                    if line.startswith("Kernel panic"):
                        raise GuestError(f"{run.name}: the next kernel panicked")
                    gdb.interrupt()
                    point = stop
                elif point != stop:
                    gdb.cont_until_stop(timeout)
                    pc = gdb.pc()
                    point = where.get(pc)
                    if point != stop:
                        raise GuestError(f"{run.name}: stopped at {point}, expected {stop}")
                    # Each stop is met once: going on must not stop here again.
                    gdb.remove_break(pc)
                    armed.discard(pc)
                # A stop with no fixture is only where the fault is written.
                vmcore = out / f"{fixture or stop}.vmcore"
                guest.dump(vmcore)
                if stop == "panic":
                    if not stops:
                        raise GuestError(f"{run.name}: a panic stop needs an earlier dump")
                    fix_vmcoreinfo(vmcore, gdb, debug, stops[0].vmcore)
                record = None
                if run.ser_fault is not None and stop in ("machine_kexec", "serialize"):
                    record = _write_ser_fault(gdb, run.ser_fault, vmcore, debug)
                    written = record["run_writes"]
                    if run.dump_after_fault:
                        guest.dump(vmcore)
                        record = None  # the dump holds the fault itself
                if fixture:
                    stops.append(
                        Stop(
                            fixture,
                            stop,
                            vmcore,
                            list(guest.console),
                            fault_record=record,
                            writes=written,
                        )
                    )
                point = stop if stop in ("next-ready", "kexec-failed") else None
            if run.tail is not None:
                _disarm(gdb, armed)
                gdb.detach()
                guest.wait_for(run.tail, timeout)
            # The rest of the run: the next kernel panics (a stop at panic)
            # or its driver gets ready.
            if point not in ("panic", "next-ready", "kexec-failed") and not any(
                s.point == "panic" for s in stops
            ):
                _disarm(gdb, armed)
                gdb.detach()  # the guest runs on
                if run.stops[-1][1] == "preserving":
                    # Stopped before the driver's first ready marker: the
                    # next kernel's is the one after it.
                    guest.wait_for(f"@@LUO-READY {run.scenario}", timeout)
                if run.stops[-1][1] == "flb-finishing":
                    # Stopped in the next kernel: phase 1's ready marker
                    # is not the end.
                    guest.wait_for_line(
                        lambda line: line.startswith('@@LUO {"op":"start"') and '"phase":2' in line,
                        "the next kernel's driver",
                        timeout,
                    )
                line = guest.wait_for_any(("@@LUO-READY", "Kernel panic"), timeout)
                if line.startswith("Kernel panic"):
                    time.sleep(1)  # the rest of the panic message
        except GuestError as e:
            raise GuestError(f"{run.name}: {e}\n--- console ---\n{guest.tail()}") from e
        console = list(guest.console)
    for stop in stops:
        stop.after = console[len(stop.console) :]
    return stops, _made(run, release, cmdline, started)


def capture_kdump(
    run: Run, out: Path, timeout: float = 600.0
) -> tuple[dict[str, Path], list[str], list[str], dict[str, Any]]:
    """Boot the guest of a kdump run, dump its state with QEMU at
    @@LUO-READY, let it panic into the crash kernel and read back what that
    kernel saved.  Returns the dumps by fixture, the console up to the
    QEMU dump and after it, and how they were made."""
    out.mkdir(parents=True, exist_ok=True)
    bzimage, debug, release = kernel_files(run.kernel)
    driver = build_driver(paths.cache_dir() / "guest")
    initrd = build_initramfs(driver, bzimage, out, dumper=True)
    cmdline = luo_cmdline(run.scenario, extra=run.cmdline_extra)
    disk = out / "capture.img"
    with open(disk, "wb") as f:  # sparse: the ELF copy is as large as RAM
        f.truncate((run.memory_mb + 256) << 20)
    started = time.monotonic()
    drive = [
        "-drive",
        f"file={disk},format=raw,if=none,id=capture",
        "-device",
        "virtio-blk-pci,drive=capture",
    ]
    dumps = {run.name: out / f"{run.name}.vmcore"}
    with Guest(bzimage, initrd, cmdline, run.memory_mb, extra_args=drive) as guest:
        try:
            guest.wait_for(f"@@LUO-READY {run.scenario}", timeout)
            gdb = guest.gdb()  # stops the guest
            guest.dump(dumps[run.name])
            # The same state in QEMU's kdump-zlib format, which drgn cannot
            # read: what luo-inspect says of it is tested.
            guest.dump(out / QEMU_KDUMP, fmt="kdump-zlib")
            before = list(guest.console)
            if run.force_warn is not None:
                _force_warn(gdb, debug, dumps[run.name], run.force_warn, timeout)
            gdb.detach()
            # The driver panics the kernel; the crash kernel saves the dump
            # and its PID 1 exits, which ends QEMU (-no-reboot).
            guest.wait_exit(timeout)
        except GuestError as e:
            raise GuestError(f"{run.name}: {e}\n--- console ---\n{guest.tail()}") from e
        console = list(guest.console)
    saved = read_capture_disk(disk, out)
    for suffix, name in KDUMP_SUFFIXES.items():
        if name not in saved:
            raise GuestError(
                f"{run.name}: the crash kernel saved no {name}:\n" + "\n".join(console[-30:])
            )
        dumps[run.name + suffix] = saved[name]
    disk.unlink()
    return dumps, before, console[len(before) :], _made(run, release, cmdline, started)


def _force_warn(
    gdb: Any, debug: Path, vmcore: Path, warn: tuple[str, str, str], timeout: float
) -> None:
    """At ``function``'s entry, set ``member`` of the struct its first
    argument points to to 1: a state its own WARN_ON() rejects (the member's
    offset read with plain drgn from the dump just taken)."""
    function, struct_name, member = warn
    types = drgn.Program()
    types.set_core_dump(str(vmcore))
    types.load_debug_info([str(debug)])
    field = types.type(struct_name).member(member)
    _run_to(gdb, debug, function, timeout)
    address = gdb.register(5) + field.offset  # rdi
    value = (1).to_bytes(drgn.sizeof(field.type), "little")
    gdb.write(address, value)
    if gdb.read(address, len(value)) != value:
        raise GuestError(f"{function}: the write at {address:#x} did not stick")


def read_capture_disk(disk: Path, out: Path) -> dict[str, Path]:
    """The files the capture kernel's driver wrote to its disk (see
    save_file() in guest/luo-scenario.c)."""
    saved: dict[str, Path] = {}
    with open(disk, "rb") as f:
        while True:
            header = f.read(512)
            if len(header) < 512 or not header.startswith(b"LUOCAP1"):
                break
            name = header[8:72].split(b"\0", 1)[0].decode()
            if not name:
                break
            size = int.from_bytes(header[72:80], "little")
            path = out / name
            if copy_sparse(f, path, size) < size:
                raise GuestError(f"{disk}: {name} is cut short")
            f.seek((512 - size % 512) % 512, 1)
            saved[name] = path
    return saved


def generate_kdump(
    run: Run, dest_root: Path, work: Path, log: Callable[[str], None], compress: bool
) -> None:
    dumps, before, after, made = capture_kdump(run, work / run.name)
    for fixture, vmcore in dumps.items():
        how = {run.name: "ready", run.name + "-kdump": "kdump-elf"}.get(fixture, "kdump-filtered")
        # The QEMU dump is of the state alone; a kdump's is that state after
        # the panic (its after_log: the panic and the crash kernel).
        then = after if how != "ready" else None
        write_fixture(
            dest_root / fixture,
            fixture,
            run.description,
            {**made, "capture": how},
            before,
            manifest.expected_state(before, frozen=False, after=then, capture=how),
            vmcore,
            # A kdump-compressed file is compressed already.
            compress=compress and how != "kdump-filtered",
            after=then,
        )
    shutil.move(work / run.name / QEMU_KDUMP, dest_root / run.name / QEMU_KDUMP)
    log(f"   {run.name}: {made['seconds']} s")


def _disarm(gdb: Any, armed: set[int]) -> None:
    """Remove the breakpoints still set, so the guest runs on past them."""
    for address in armed:
        gdb.remove_break(address)
    armed.clear()


def _run_to(gdb: Any, debug: Path, symbol: str, timeout: float, step_over: bool = False) -> None:
    """Let the guest run to the next call of ``symbol`` (a hardware
    breakpoint, removed once hit); ``step_over``: the guest stands on that
    breakpoint's address already, step past it first."""
    address = symbol_address(debug, symbol)
    if step_over:
        gdb.step()
    gdb.break_at(address)
    gdb.cont_until_stop(timeout)
    if gdb.pc() != address:
        raise GuestError(f"stopped outside {symbol}")
    gdb.remove_break(address)


def _write_ser_fault(gdb: Any, name: str, vmcore: Path, debug: Path) -> dict[str, Any]:
    writes, findings = faults.FAULTS[name].make(vmcore, debug)
    for w in writes:
        gdb.write(w["address"], bytes.fromhex(w["new"]))
        if gdb.read(w["address"], len(w["new"]) // 2).hex() != w["new"]:
            raise GuestError(f"{name}: write at {w['address']:#x} did not stick")
    return {"base": "frozen", "run_writes": writes, "expected_findings": findings}


def fix_vmcoreinfo(vmcore: Path, gdb: Any, debug: Path, template: Path) -> None:
    """Give a dump of the kernel a live update booted, taken before its
    fw_cfg driver filled QEMU's vmcoreinfo device, the VMCOREINFO note of
    ``template`` (a dump of the same build) with this boot's phys_base."""
    if elfnote.read_vmcoreinfo(vmcore) is not None:
        return
    text = elfnote.read_vmcoreinfo(template)
    if text is None:
        raise GuestError(f"{template}: no VMCOREINFO note to start from")
    phys_base = int.from_bytes(gdb.read(symbol_address(debug, "phys_base"), 8), "little")
    elfnote.add_vmcoreinfo(vmcore, elfnote.with_phys_base(text, phys_base))


def capture(run: Run, out: Path, timeout: float = 180.0) -> Captured:
    """Boot the guest for ``run`` and dump its memory into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    bzimage, debug, release = kernel_files(run.kernel)
    driver = build_driver(paths.cache_dir() / "guest")
    initrd = build_initramfs(driver, bzimage, out)
    cmdline = luo_cmdline(run.scenario, extra=run.cmdline_extra)
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
    made = {**_made(run, release, cmdline, started), "capture": run.capture}
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
        writes, findings = faults.FAULTS[name].make(vmcore, debug)
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
    after: list[str] | None = None,
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
            # QEMU writes every page; most are zero (a copy with holes).
            with open(vmcore, "rb") as fin:
                copy_sparse(fin, dest / stored)
            vmcore.unlink()
    doc = {
        "name": name,
        "description": description,
        "made": made,
        "vmcore": stored,
        "base": base,
        "expected": expected,
        "guest_log": [line for line in console if line.startswith("@@LUO")],
        "kernel_log": manifest.kernel_lines(console),
    }
    if after is not None:
        # The rest of the run after the dump: what the next kernel did.
        doc["after_log"] = [
            line for line in after if line.startswith("@@LUO")
        ] + manifest.kernel_lines(after)
    (dest / "manifest.json").write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


def generate_handover(
    run: Run, dest_root: Path, work: Path, log: Callable[[str], None], compress: bool
) -> None:
    stops, made = capture_handover(run, work / run.name)
    for st in stops:
        expected = manifest.expected_state(
            st.console, frozen=st.point == "machine_kexec", after=st.after, capture=st.point
        )
        vmcore: Path | None = st.vmcore
        base = None
        made_here = {**made, "capture": st.point}
        if run.next_kernel is not None:
            made_here["next_kernel"] = run.next_kernel
            if st.point == "next-ready":
                # Dumped in the kernel the update booted: its debug info.
                made_here["kernel"] = run.next_kernel
                made_here["release"] = kernel_files(run.next_kernel)[2]
        if st.writes and st.fault_record is None:
            # A state after a fault was written (the next kernel's): what
            # was written, in this run's memory.
            made_here["writes_at_machine_kexec"] = st.writes
        if st.fault_record is not None:
            # Stored as the committed frozen state plus the same fault,
            # derived by the same function from that base; the run's own
            # writes (another boot, other addresses) are kept beside.
            base = "frozen"
            frozen = decompressed(paths.FIXTURES / "frozen" / "vmcore.xz")
            kdebug = decompressed(paths.kernel_dir(run.kernel) / "vmlinux.debug.xz")
            writes, findings = faults.FAULTS[st.fixture].make(frozen, kdebug)
            expected = manifest.with_fault(
                expected,
                {
                    "base": base,
                    "writes": writes,
                    "expected_findings": findings,
                    "run_writes": st.fault_record["run_writes"],
                },
            )
            vmcore = None
        write_fixture(
            dest_root / st.fixture,
            st.fixture,
            _description(st.fixture, run),
            made_here,
            st.console,
            expected,
            vmcore,
            base=base,
            compress=compress,
            after=st.after,
        )
    if run.saves is not None:
        _save_report(run, dest_root)
    log(f"   {run.name}: {made['seconds']} s")


def _save_report(run: Run, dest_root: Path) -> None:
    """luo-inspect's JSON report of one state, saved beside another fixture
    as an operator saves it before kexec -e (the diff's "before")."""
    from luo_drgn.analysis import inspect
    from luo_drgn.collector import collect
    from luo_drgn.model import Target
    from luo_drgn.report import render

    assert run.saves is not None
    source, into = run.saves
    written = examples.load(source, dest_root)  # moved or compressed there
    prog = drgn.Program()
    prog.set_core_dump(str(written.core))
    prog.load_debug_info([str(p) for p in written.debug])
    target = Target("vmcore", f"{source} (before kexec -e)", "7.2.13", [])
    snap = inspect(collect(prog, target))
    (dest_root / into / "before.json").write_text(render(snap, "report", "json"))


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
        if run.stops:
            generate_handover(run, dest_root, work, log, compress)
            continue
        if run.kdump:
            generate_kdump(run, dest_root, work, log, compress)
            continue
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
                faults.FAULTS[fname].description,
                cap.made,
                cap.console,
                manifest.with_fault(expected, record),
                cap.fault_vmcores.get(fname),
                base=run.name,
                compress=compress,
            )
        log(f"   {run.name}: {cap.made['seconds']} s")
