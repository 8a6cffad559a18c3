# SPDX-License-Identifier: LGPL-2.1-or-later
"""Benchmark: reference accounting stays one pass over the fds.

Not a test (nothing here asserts a time): it prints ratios.  It takes the
real ``outgoing`` fixture and, through drgn memory overlays, gives PID 1 an
fd table of a million slots pointing at 100,000 distinct struct files, then
times the holder scan with few and with many files to account for, and
against scanning once per file as a naive inspector would.

    python tests/bench_holders.py [--fds N] [--files N]
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drgn.helpers.linux.pid import find_task  # noqa: E402

from luo_drgn import examples  # noqa: E402
from luo_drgn.holders import scan_holders  # noqa: E402

FD_ARRAY = 0xFFFFC90100000000  # unused vmalloc addresses in the fixture
FILES = 0xFFFFC90200000000
FILE_STRIDE = 256


def build(n_fds: int, n_files: int):  # type: ignore[no-untyped-def]
    ex = examples.load("outgoing")
    prog = ex.program()
    fdt = find_task(prog, 1).files.fdt
    # Slot i points at fake struct file i % n_files (all zero: no f_op).
    table = b"".join(struct.pack("<Q", FILES + (i % n_files) * FILE_STRIDE) for i in range(n_fds))
    prog.add_memory_segment(
        FD_ARRAY, len(table), lambda a, n, off, phys: table[off : off + n], False
    )
    prog.add_memory_segment(FILES, n_files * FILE_STRIDE, lambda a, n, off, phys: bytes(n), False)
    examples.apply_writes(
        prog,
        [
            {"address": fdt.max_fds.address_, "phys": 0, "new": struct.pack("<I", n_fds).hex()},
            {"address": fdt.fd.address_, "phys": 0, "new": struct.pack("<Q", FD_ARRAY).hex()},
        ],
    )
    return prog


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fds", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=100_000)
    args = parser.parse_args()
    prog = build(args.fds, args.files)
    few = {FILES + i * FILE_STRIDE for i in range(10)}
    many = {FILES + i * FILE_STRIDE for i in range(min(args.files, 50_000))}

    one_pass_few = timed(lambda: scan_holders(prog, few))
    scan = scan_holders(prog, many)
    one_pass_many = timed(lambda: scan_holders(prog, many))
    per_file = timed(lambda: [scan_holders(prog, {f}) for f in sorted(few)])

    print(f"fd slots scanned: {scan.fds:,} in {scan.tasks} tasks; distinct files: {args.files:,}")
    print(
        f"one pass, 10 files accounted:      {one_pass_few:.2f} s "
        f"({scan.fds / one_pass_few / 1e6:.2f} M fds/s)"
    )
    print(
        f"one pass, {len(many):,} files accounted: {one_pass_many:.2f} s "
        f"(ratio to 10 files: {one_pass_many / one_pass_few:.2f})"
    )
    print(
        f"one scan per file, 10 files:       {per_file:.2f} s "
        f"(ratio to one pass: {per_file / one_pass_few:.1f}; "
        f"extrapolated to {len(many):,} files: {per_file / 10 * len(many) / 3600:.1f} h)"
    )


if __name__ == "__main__":
    main()
