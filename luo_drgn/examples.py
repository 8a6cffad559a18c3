# SPDX-License-Identifier: LGPL-2.1-or-later
"""The bundled examples: the project's committed LUO fixtures.

``luo-inspect --example NAME`` and the test-suite open a fixture from
``vmcores/data`` of the source checkout: its vmcore (or its base vmcore plus
the recorded fault writes, applied as a drgn memory overlay) and the debug
info of the kernel that made it.  Compressed files are decompressed once into
the cache directory (``$LUO_DRGN_CACHE``, default ``.cache/`` in the
checkout), keyed by content so a regenerated fixture is never served stale.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from drgn import Program

_CHECKOUT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("LUO_DRGN_DATA", _CHECKOUT / "vmcores" / "data"))


class ExampleError(Exception):
    pass


def cache_dir() -> Path:
    path = Path(os.environ.get("LUO_DRGN_CACHE", _CHECKOUT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def decompressed(xz_path: Path) -> Path:
    """Decompress ``xz_path`` once into the cache and return the copy (a
    file not ending in .xz is returned as it is)."""
    if xz_path.suffix != ".xz":
        return xz_path
    h = hashlib.sha256()
    with open(xz_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    out = cache_dir() / "xz" / f"{xz_path.name[:-3]}-{h.hexdigest()[:16]}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        with lzma.open(xz_path) as fin:
            copy_sparse(fin, tmp)
        os.replace(tmp, out)
    return out


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


_BLOCK = 4096  # the file system's block: the unit a hole is made of
_ZERO_BLOCK = bytes(_BLOCK)


def copy_sparse(source: _Readable, dest: Path, size: int | None = None) -> int:
    """
    Copy ``source`` (to its end, or ``size`` bytes) into a new file ``dest``,
    leaving a hole for every 4 KiB block of zeroes; return the bytes copied.

    A vmcore of a small guest is about 90% zero pages: written whole, the
    test-suite's cores take some 10 GiB of disk, written sparse under 1 GiB.
    """
    copied = 0
    with open(dest, "wb") as out:
        while size is None or copied < size:
            want = 1 << 20 if size is None else min(1 << 20, size - copied)
            chunk = source.read(want)
            if not chunk:
                break
            view = memoryview(chunk)
            start = 0  # of the run of data not yet written
            for at in range(0, len(chunk), _BLOCK):
                block = view[at : at + _BLOCK]
                if block == _ZERO_BLOCK[: len(block)]:
                    if start < at:
                        out.write(view[start:at])
                    out.seek(copied + at + _BLOCK)
                    start = at + _BLOCK
            if start < len(chunk):
                out.write(view[start:])
            copied += len(chunk)
        out.truncate(copied)  # a trailing hole still counts in the length
    return copied


def kernel_dir(name: str) -> Path:
    """Where the fixture kernel ``name`` is committed (``vmcores/data/kernel``;
    rebuilt by ``python -m vmcores build --kernel NAME``)."""
    return DATA / "kernel" / name


@dataclass
class Example:
    """One fixture, ready to open."""

    name: str
    root: Path
    manifest: dict[str, Any]
    core: Path
    debug: list[Path]
    writes: list[dict[str, Any]] = field(default_factory=list)
    # The committed files, as a report names them (not the cache copies).
    sources: list[str] = field(default_factory=list)

    def program(self) -> Program:
        """A drgn Program on this fixture, fault writes applied."""
        prog = Program()
        prog.set_core_dump(str(self.core))
        prog.load_debug_info([str(p) for p in self.debug])
        apply_writes(prog, self.writes)
        return prog


def fixture_names(root: Path | None = None) -> list[str]:
    root = root or DATA / "fixtures"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file())


def load(name: str, root: Path | None = None) -> Example:
    """Locate fixture ``name`` (under ``root``, default the committed set)."""
    root = root or DATA / "fixtures"
    mpath = root / name / "manifest.json"
    if not mpath.is_file():
        known = fixture_names(root)
        if not known:
            # An installed luo-drgn (pip install .) has no vmcores/data.
            raise ExampleError(
                f"no example {name!r}: the examples are the fixtures of luo-drgn's "
                f"source checkout, and there are none at {root}; clone the "
                "repository and run luo-inspect from it (pip install -e .), or set "
                "LUO_DRGN_DATA to a checkout's vmcores/data"
            )
        raise ExampleError(f"no example {name!r} (known: {', '.join(known)})")
    manifest = json.loads(mpath.read_text())
    writes: list[dict[str, Any]] = []
    if manifest.get("vmcore"):
        core_src = root / name / manifest["vmcore"]
    else:
        # Stored as the base state plus the writes made in the guest.
        base = json.loads((root / manifest["base"] / "manifest.json").read_text())
        core_src = root / manifest["base"] / base["vmcore"]
        writes = manifest["expected"]["fault"]["writes"]
    debug_src = kernel_dir(manifest["made"]["kernel"]) / "vmlinux.debug.xz"
    return Example(
        name,
        root / name,
        manifest,
        decompressed(core_src),
        [decompressed(debug_src)],
        writes,
        [_shown(core_src) + (" + recorded writes" if writes else ""), _shown(debug_src)],
    )


def _shown(path: Path) -> str:
    """A committed file's path relative to the checkout, where it is in one."""
    try:
        return str(path.relative_to(_CHECKOUT))
    except ValueError:
        return str(path)


def apply_writes(prog: Program, writes: list[dict[str, Any]]) -> None:
    """
    Overlay recorded guest-memory writes on a core.

    A segment added after ``set_core_dump`` takes precedence over the core
    for reads of its range; virtual and physical reads each need their own.
    """
    for w in writes:
        data = bytes.fromhex(w["new"])
        for address, physical in ((w["address"], False), (w["phys"], True)):
            prog.add_memory_segment(
                address,
                len(data),
                lambda addr, count, offset, phys, data=data: data[offset : offset + count],
                physical,
            )
