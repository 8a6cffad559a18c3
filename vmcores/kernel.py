# SPDX-License-Identifier: LGPL-2.1-or-later
"""Build the fixture kernels and reduce their debug info for drgn.

The kernels are built from Debian's source packages with out-of-tree build
directories.  From linux-source-7.2 (7.2.13): ``luo`` (``kernel/base.config``
and ``kernel/live.config`` over tinyconfig), ``no-luo`` (``base.config`` and
``no-luo.config``), ``full`` (``luo`` plus ``full.config``: LUO's test FLBs,
io_uring, loop, iommufd and kdump) and ``kho-default-off`` (``luo`` without
``CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT``: KHO only with ``kho=on``).  From
linux-source-7.3 (7.3.4), the release a host moves to: ``luo-7.3`` (the
``luo`` config) and ``luo-7.3-kho-v5`` (the same with KHO's FDT compatible
bumped to "kho-v5", as a future KHO ABI change will, so the next kernel
refuses a 7.2.13 handover).  What is committed of each is the bzImage and
the reduced, xz'd debug info, so vmcores can be regenerated without a
kernel build.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import paths

# Debian's source packages: linux-source-VERSION from SUITE.
SOURCES = {"7.2": "sid", "7.3": "trixie-backports"}


@dataclass(frozen=True)
class SourceEdit:
    """One literal replacement in one source file, made in a private copy of
    the tree (hard links for every other file) so the shared tree and the
    kernels built from it are untouched."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Kernel:
    fragments: tuple[str, ...]
    source: str = "7.2"
    edit: SourceEdit | None = None


KERNELS = {
    "luo": Kernel(("base.config", "live.config")),
    "no-luo": Kernel(("base.config", "no-luo.config")),
    "full": Kernel(("base.config", "live.config", "full.config")),
    "kho-default-off": Kernel(("base.config", "live.config", "kho-default-off.config")),
    "luo-7.3": Kernel(("base.config", "live.config"), source="7.3"),
    # kho_populate() compares the handover FDT with KHO_FDT_COMPATIBLE: a
    # kernel with another KHO ABI refuses the handover ("disabling KHO
    # revival") and LUO comes up empty.
    "luo-7.3-kho-v5": Kernel(
        ("base.config", "live.config"),
        source="7.3",
        edit=SourceEdit(
            "include/linux/kho/abi/kexec_handover.h",
            '#define KHO_FDT_COMPATIBLE "kho-v4"',
            '#define KHO_FDT_COMPATIBLE "kho-v5"',
        ),
    ),
}

# Sections drgn does not need to read types, variables and symbols: line
# tables and location lists are for stack-frame variables and source lines.
DROPPED_SECTIONS = (".debug_line", ".debug_line_str", ".debug_loclists")


def run(args: list[str], **kw: object) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, **kw)  # type: ignore[arg-type]


def fetch_source(dest: Path, version: str = "7.2") -> Path:
    """Return the kernel tree, fetching Debian's linux-source-VERSION if needed."""
    run(["bash", paths.VMCORES / "fetch-kernel-source.sh", dest, SOURCES[version], version])
    return dest / f"linux-source-{version}"


def edited_tree(src: Path, edit: SourceEdit, dest: Path) -> Path:
    """A copy of ``src`` (hard links) with ``edit`` made in a file of its own."""
    if not (dest / "Makefile").exists():
        run(["cp", "-al", src, dest])
    target = dest / edit.path
    text = target.read_text()
    if edit.new not in text:
        if edit.old not in text:
            raise RuntimeError(f"{edit.path}: {edit.old!r} not found")
        target.unlink()  # break the hard link: the shared tree stays as it is
        target.write_text(text.replace(edit.old, edit.new))
    return dest


def configure(src: Path, out: Path, fragments: tuple[str, ...]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    make = ["make", "-s", f"O={out}", "ARCH=x86_64"]
    run(make + ["tinyconfig"], cwd=src, stdout=subprocess.DEVNULL)
    frags = [paths.VMCORES / "kernel" / f for f in fragments]
    run(
        [src / "scripts/kconfig/merge_config.sh", "-m", "-O", out, out / ".config", *frags],
        cwd=src,
        stdout=subprocess.DEVNULL,
    )
    run(make + ["olddefconfig"], cwd=src)
    # merge_config only warns when a symbol did not stick; a fixture kernel
    # silently built without LUO would be worse than a failed build.
    wanted: dict[str, str] = {}
    for frag in frags:
        for line in frag.read_text().splitlines():
            if m := re.match(r"(CONFIG_\w+)=|# (CONFIG_\w+) is not set", line):
                wanted[m.group(1) or m.group(2)] = line
    config = set((out / ".config").read_text().splitlines())
    for symbol, line in wanted.items():
        if line not in config and not (
            line.endswith("is not set") and not any(c.startswith(symbol + "=") for c in config)
        ):
            raise RuntimeError(f"{line} did not survive olddefconfig")


def build(src: Path, out: Path, jobs: int) -> None:
    run(["make", "-s", f"-j{jobs}", f"O={out}", "ARCH=x86_64", "bzImage", "vmlinux"], cwd=src)


def reduce_debuginfo(vmlinux: Path, dest_xz: Path, work: Path) -> None:
    """vmlinux → debug-only ELF → dwz → without line tables → xz."""
    debug = work / "vmlinux.debug"
    run(["objcopy", "--only-keep-debug", vmlinux, debug])
    run(["dwz", "-q", debug])
    run(["objcopy", *[f"--remove-section={s}" for s in DROPPED_SECTIONS], debug])
    compress(debug, dest_xz)


def compress(src: Path, dest_xz: Path, preset: int = 6) -> None:
    """xz ``src`` into ``dest_xz``, with every core when xz(1) is there."""
    dest_xz.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest_xz.with_suffix(".tmp")
    if shutil.which("xz"):
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            subprocess.run(["xz", f"-{preset}", "-T0", "-c"], stdin=fin, stdout=fout, check=True)
    else:
        with open(src, "rb") as fin, lzma.open(tmp, "wb", preset=preset) as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    os.replace(tmp, dest_xz)


def release_of(out: Path) -> str:
    return (out / "include/config/kernel.release").read_text().strip()


def build_all(kernel_src: Path | None, jobs: int, names: list[str] | None = None) -> None:
    """Build the kernels and commit-ready artifacts into vmcores/data/kernel.

    ``kernel_src`` is an unpacked 7.2 tree; the 7.3 kernels always use
    Debian's linux-source-7.3.
    """
    work = paths.work_dir()
    for name in names or list(KERNELS):
        spec = KERNELS[name]
        if spec.source == "7.2" and kernel_src is not None:
            src = kernel_src
        else:
            src = fetch_source(work / "src", spec.source)
        if spec.edit is not None:
            src = edited_tree(src, spec.edit, work / "src" / f"linux-source-{name}")
        out = work / f"out-{name}"
        configure(src, out, spec.fragments)
        build(src, out, jobs)
        dest = paths.kernel_dir(name)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "arch/x86/boot/bzImage", dest / "bzImage")
        reduce_debuginfo(out / "vmlinux", dest / "vmlinux.debug.xz", out)
        (dest / "release").write_text(release_of(out) + "\n")
        compress(out / ".config", dest / "config.xz")
