# SPDX-License-Identifier: LGPL-2.1-or-later
"""The floor of tests/bench/bench_scale.py: the plain drgn walk any LUO inspector
pays, kept as written by a drgn user with no knowledge of luo-drgn.

It opens the target, walks every session and every luo_file with
``list_for_each_entry``, reads each preserved file's reference count, and
walks each distinct fd table once with ``for_each_file``.  It stays this
plain walk: whatever luo-inspect's ``check`` adds (holder kinds, next-kernel
checks, invariants) must fit inside the benchmark's ratio to it.

    python tests/support/scale_floor.py CORE|/proc/kcore DEBUG_INFO...

Prints one JSON line with what it counted (the benchmark compares it with
what luo-inspect reports).
"""

from __future__ import annotations

import json
import sys

import drgn
from drgn.helpers.linux.fs import for_each_file
from drgn.helpers.linux.list import list_for_each_entry
from drgn.helpers.linux.pid import for_each_task


def walk_fd_tables(prog: drgn.Program) -> tuple[int, int]:
    """Every distinct fd table once, slot by slot: (tables, open fds)."""
    tables, fds = set(), 0
    for task in for_each_task(prog):
        table = task.files.value_()
        if table and table not in tables:
            tables.add(table)
            fds += sum(1 for _ in for_each_file(task))
    return len(tables), fds


def main(argv: list[str]) -> int:
    prog = drgn.Program()
    if argv[0] == "/proc/kcore":
        prog.set_kernel()
    else:
        prog.set_core_dump(argv[0])
    prog.load_debug_info(argv[1:])

    sessions = files = references = 0
    for direction in ("outgoing", "incoming"):
        head = prog["luo_session_global"].member_(direction).list.address_of_()
        for session in list_for_each_entry("struct luo_session", head, "list"):
            sessions += 1
            for luo_file in list_for_each_entry(
                "struct luo_file", session.file_set.files_list.address_of_(), "list"
            ):
                files += 1
                # 7.2's file_ref_t stores the count minus one.
                references += luo_file.file.f_ref.refcnt.counter.value_() + 1

    tables, fds = walk_fd_tables(prog)
    print(
        json.dumps(
            {
                "sessions": sessions,
                "files": files,
                "references": references,
                "fd_tables": tables,
                "fds": fds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
