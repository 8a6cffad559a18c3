# SPDX-License-Identifier: LGPL-2.1-or-later
"""python -m vmcores: regenerate the LUO fixture set.

python -m vmcores build [--kernel-src PATH]   kernels, then every fixture
python -m vmcores vmcores [RUN ...] [--dest DIR]
                                             fixtures only, from the
                                             committed kernels
python -m vmcores scale [--files N] [--kernel K] [--dest DIR]
                                             the benchmark's scale core,
                                             made on demand, not committed
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from . import kernel, paths, scenarios


def _vmcores(names: list[str], dest: Path, compress: bool = True) -> None:
    with tempfile.TemporaryDirectory(prefix="luo-vmcores-", dir=paths.cache_dir()) as work:
        scenarios.generate(names, dest, Path(work), compress=compress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vmcores",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the kernels, then regenerate every fixture")
    b.add_argument(
        "--kernel-src",
        type=Path,
        help="an unpacked Linux 7.2 tree (default: Debian's linux-source-7.2, fetched)",
    )
    b.add_argument("--jobs", type=int, default=(os.cpu_count() or 1) + 1)
    b.add_argument("--no-vmcores", action="store_true", help="build the kernels only")
    b.add_argument(
        "--kernel",
        action="append",
        choices=list(kernel.KERNELS),
        help="build only this kernel (repeatable; default: all)",
    )
    v = sub.add_parser("vmcores", help="regenerate fixtures from the committed kernels")
    v.add_argument(
        "runs",
        nargs="*",
        metavar="RUN",
        help="runs to make (default: all): " + ", ".join(r.name for r in scenarios.RUNS),
    )
    v.add_argument(
        "--dest",
        type=Path,
        default=paths.FIXTURES,
        help="where to write fixtures (default: the committed set)",
    )
    v.add_argument(
        "--no-compress",
        action="store_true",
        help="leave the vmcores uncompressed (for a quick check, not to commit)",
    )
    sc = sub.add_parser("scale", help="make the benchmark's scale core (not committed)")
    sc.add_argument("--files", type=int, default=10_000, help="preserved memfds (default 10000)")
    sc.add_argument("--kernel", choices=list(kernel.KERNELS), default="full")
    sc.add_argument("--dest", type=Path, default=paths.cache_dir() / "scale")
    args = parser.parse_args(argv)

    if args.cmd == "scale":
        run = scenarios.scale_run(args.files, args.kernel)
        with tempfile.TemporaryDirectory(prefix="luo-scale-", dir=paths.cache_dir()) as work:
            print(scenarios.generate_scale(run, args.dest, Path(work)))
        return 0

    if args.cmd == "build":
        kernel.build_all(args.kernel_src, args.jobs, args.kernel)
        if not args.no_vmcores:
            _vmcores([r.name for r in scenarios.RUNS], paths.FIXTURES)
        return 0
    names = args.runs or [r.name for r in scenarios.RUNS]
    unknown = [n for n in names if n not in {r.name for r in scenarios.RUNS}]
    if unknown:
        parser.error(f"unknown run(s): {', '.join(unknown)}")
    if args.dest.resolve() == paths.FIXTURES.resolve() and not args.runs:
        shutil.rmtree(paths.FIXTURES, ignore_errors=True)
    _vmcores(names, args.dest, compress=not args.no_compress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
