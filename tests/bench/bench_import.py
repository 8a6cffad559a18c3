# SPDX-License-Identifier: LGPL-2.1-or-later
"""Benchmark: what installing luo-drgn adds to every ``drgn`` start.

drgn imports every installed plugin when it sets a program, whether or not
``%luo`` is ever typed, so ``import luo_drgn.plugin`` is paid by every user
of a drgn with luo-drgn installed.  Not a test (nothing here asserts a
time): it times ``import drgn`` and ``import drgn, luo_drgn.plugin``, each
in a fresh interpreter, interleaved over N rounds, and prints the medians
and their difference.

    python tests/bench/bench_import.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
PROBE = """
import time
t = time.perf_counter()
import {modules}
print(time.perf_counter() - t)
"""
CASES = {"import drgn": "drgn", "import drgn, luo_drgn.plugin": "drgn, luo_drgn.plugin"}


def once(modules: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(modules=modules)],
        check=True,
        capture_output=True,
        text=True,
        cwd=TOP,
    ).stdout
    return float(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    times: dict[str, list[float]] = {case: [] for case in CASES}
    for _ in range(rounds):
        for case, modules in CASES.items():
            times[case].append(once(modules))
    medians = {case: statistics.median(t) for case, t in times.items()}
    for case, median in medians.items():
        print(f"{case:<32} median of {rounds}: {median * 1000:7.1f} ms")
    base, plugin = medians.values()
    print(f"{'added by luo_drgn.plugin':<32} {(plugin - base) * 1000:+21.1f} ms")


if __name__ == "__main__":
    main()
