# SPDX-License-Identifier: LGPL-2.1-or-later
"""Benchmark: corrupted memory never becomes an internal error.

A corrupted vmcore is a debugging tool's normal input.  For each run this
takes a committed fixture's real dump, picks one of its LUO structures (the
session headers, each session, each luo_file, its file set's blocks, the
struct file and inode of each preserved file, the image loaded for
``kexec -e``), found by a plain drgn walk, and writes one word in it, as a
drgn memory overlay: zeros, all-ones, a wild kernel pointer, or a random
value.  Then it runs ``report`` and ``preflight`` through the engine, as
every door does.  Each must answer with exit status 0 or 1: an exit 2 with
"internal error", or any exception, is a bug, printed with its write.

Not in the suite's time budget; fixed seed and run count, so a failure
reproduces:

    python tests/bench/bench_corruption.py [--runs 300] [--seed 27]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import drgn
from drgn.helpers.linux.list import list_for_each_entry
from drgn.helpers.linux.mm import virt_to_phys

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP))

from luo_drgn import engine, examples  # noqa: E402
from luo_drgn.engine import Source  # noqa: E402
from luo_drgn.request import Request  # noqa: E402

FIXTURES = ("outgoing", "frozen", "incoming", "incoming-pending", "journey-after", "doomed")
COMMANDS = ("report", "preflight")


def _objects(prog: drgn.Program) -> Iterator[tuple[str, int, int]]:
    """(what, address, size) of the LUO structures of a dump, by plain drgn."""
    glob = prog["luo_session_global"]
    for direction in ("outgoing", "incoming"):
        header = glob.member_(direction)
        yield f"{direction} session header", header.address_, drgn.sizeof(header)
        for s in list_for_each_entry("struct luo_session", header.list.address_of_(), "list"):
            yield f"{direction} session", s.value_(), drgn.sizeof(s[0])
            fs = s.file_set
            yield f"{direction} file set", fs.address_, drgn.sizeof(fs)
            for f in list_for_each_entry("struct luo_file", fs.files_list.address_of_(), "list"):
                yield "luo_file", f.value_(), drgn.sizeof(f[0])
                if f.file:
                    yield "struct file", f.file.value_(), drgn.sizeof(f.file[0])
                    yield "struct inode", f.file.f_inode.value_(), drgn.sizeof(f.file.f_inode[0])
    image = prog["kexec_image"]
    if image:
        yield "kexec image", image.value_(), drgn.sizeof(image[0])


def _value(rng: random.Random) -> tuple[str, int]:
    kind = rng.choice(("zeros", "all-ones", "wild pointer", "random"))
    value = {
        "zeros": 0,
        "all-ones": (1 << 64) - 1,
        "wild pointer": 0xFFFF888000000000 | rng.randrange(1 << 32) & ~7,
        "random": rng.randrange(1 << 64),
    }[kind]
    return kind, value


def _overlay(prog: drgn.Program, address: int, data: bytes) -> None:
    """Write ``data`` at ``address`` for every later read, virtual and (for
    the direct map) physical, as examples.apply_writes() does."""
    places = [(address, False)]
    with contextlib.suppress(drgn.FaultError, ValueError):
        places.append((virt_to_phys(prog, address).value_(), True))
    for at, physical in places:
        prog.add_memory_segment(
            at, len(data), lambda a, n, o, p, data=data: data[o : o + n], physical
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=27)
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    loaded = {name: examples.load(name) for name in FIXTURES}
    targets = {}
    for name, ex in loaded.items():
        targets[name] = [o for o in _objects(ex.program()) if o[2] >= 8]
    statuses: dict[int, int] = {}
    bad = []
    for run in range(opts.runs):
        name = rng.choice(FIXTURES)
        what, address, size = rng.choice(targets[name])
        offset = rng.randrange(size // 8) * 8
        kind, value = _value(rng)
        command = COMMANDS[run % len(COMMANDS)]
        ex = loaded[name]
        prog = ex.program()
        _overlay(prog, address + offset, value.to_bytes(8, "little"))
        where = f"run {run}: {name} {command}, {what} +{offset:#x} <- {kind} {value:#x}"
        try:
            outcome = engine.run(Request(command, fmt="json"), Source(prog=prog))
            "".join(outcome.chunks)
            status = outcome.status
        except engine.INSPECT_ERRORS as e:
            status = 2
            if "internal error" in str(e):
                bad.append(f"{where}: {e}")
        except Exception:  # noqa: BLE001 - the bug this benchmark is for
            status = 2
            bad.append(f"{where}: {traceback.format_exc()}")
        statuses[status] = statuses.get(status, 0) + 1
    print(f"{opts.runs} runs, seed {opts.seed}: exit statuses {dict(sorted(statuses.items()))}")
    for line in bad:
        print("INTERNAL ERROR", line)
    print(f"internal errors: {len(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
