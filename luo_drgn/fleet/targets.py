# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a scan inspects: targets found from the command line, and what each
one is (a vmcore, a saved JSON document, a bundled example), with
compressed dumps unwrapped sparse into scratch space."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable

from ..examples import copy_sparse

__all__ = (
    "EXAMPLE_PREFIX",
    "TargetKindError",
    "discover",
    "opened",
)

EXAMPLE_PREFIX = "example:"


class TargetKindError(Exception):
    """A target whose kind cannot be read; ``str(e)`` is its one line."""


def discover(specs: Iterable[str]) -> list[str]:
    """
    The targets named by ``specs``, in order: ``example:NAME`` as it is, a
    file as it is, every file under a directory (recursively, in path
    order, hidden files and directories left out).

    :raises TargetKindError: for a path that does not exist
    """
    targets: list[str] = []
    for spec in specs:
        if spec.startswith(EXAMPLE_PREFIX):
            targets.append(spec)
            continue
        path = Path(spec)
        if path.is_dir():
            targets.extend(str(p) for p in sorted(_walk(path)))
        elif path.exists():
            targets.append(spec)
        else:
            raise TargetKindError(f"{spec}: no such file or directory")
    return targets


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                yield Path(dirpath) / name


# Compressed wrappers a fleet's dumps come in, by their magic.  zstd needs
# the zstandard package (pip install 'luo-drgn[fleet]').
_WRAPPERS = (
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def _decompress_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (OSError, EOFError, ValueError, lzma.LZMAError)
    try:
        import zstandard
    except ImportError:
        return errors
    return (*errors, zstandard.ZstdError)


def _unwrap(path: Path, name: str, out: Path) -> None:
    """Decompress ``path`` (wrapped in ``name``) sparse into ``out``."""
    if name == "zstd":
        try:
            import zstandard
        except ImportError:
            raise TargetKindError(
                f"{path}: a zstd-compressed file, and the zstandard package is not installed "
                "(pip install 'luo-drgn[fleet]', or decompress it: zstd -d FILE)"
            ) from None
        with open(path, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as reader:
            copy_sparse(reader, out)
        return
    opener: Callable[[Path, str], IO[bytes]] = {
        "xz": lzma.open,
        "gzip": gzip.open,
        "bzip2": bz2.open,
    }[name]  # type: ignore[assignment]
    with opener(path, "rb") as source:
        copy_sparse(source, out)


def _head(path: Path, size: int = 64) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError as e:
        raise TargetKindError(f"{path}: cannot read: {e.strerror or e}") from None


def kind_of(path: Path) -> str:
    """``saved`` for a JSON document, else ``vmcore`` (drgn then says
    whether it is one)."""
    if path.suffix == ".json" or _head(path).lstrip()[:1] == b"{":
        return "saved"
    return "vmcore"


@contextmanager
def opened(target: str, scratch: str | None) -> Generator[tuple[str, Path | None], None, None]:
    """
    ``(kind, path)`` of a target, with a compressed file decompressed
    (sparse: a small guest's dump is mostly zero pages) into ``scratch``
    for as long as the context lasts; ``path`` is None for an example.

    :raises TargetKindError: for a file that cannot be read or unwrapped
    """
    if target.startswith(EXAMPLE_PREFIX):
        yield "example", None
        return
    path = Path(target)
    if path.is_dir():
        raise TargetKindError(f"{path}: is a directory")
    head = _head(path)
    wrapper = next((name for magic, name in _WRAPPERS if head.startswith(magic)), None)
    if wrapper is None:
        yield kind_of(path), path
        return
    root = Path(scratch) if scratch else path.parent
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    out = root / f"luo-scan-{os.getpid()}-{digest}"
    try:
        try:
            _unwrap(path, wrapper, out)
        except _decompress_errors() as e:
            raise TargetKindError(
                f"{path}: a {wrapper}-compressed file that does not decompress: {e}"
            ) from None
        yield kind_of(out), out
    finally:
        out.unlink(missing_ok=True)
