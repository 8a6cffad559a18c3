# SPDX-License-Identifier: LGPL-2.1-or-later
"""The snapshot's compact holder list (:class:`luo_drgn.model.HolderList`):
what it stores is what it gives back, in order, however it is read."""

from __future__ import annotations

import random

from luo_drgn.model import Holder, HolderList


def _mixed(seed: int) -> list[Holder]:
    """fd holders (kept as integers), with other kinds between them, and a
    pid too large for 32 bits (kept as an object)."""
    rnd = random.Random(seed)
    out = []
    for _ in range(rnd.randint(0, 20)):
        kind = rnd.choice(["fd", "fd", "fd", "vma", "luo", "scm"])
        if kind == "fd":
            pid = rnd.choice([1, 37, 1 << 40])
            out.append(Holder("fd", pid, rnd.choice(["init", "qemu"]), rnd.randint(0, 9)))
        else:
            out.append(Holder(kind, 5, "x", vma=0x1000 if kind == "vma" else None))
    return out


def test_a_holder_list_gives_back_what_it_was_given() -> None:
    """Would catch: holders reordered or altered by the compact storage
    (fd holders in an array, the others beside it by position)."""
    for seed in range(200):
        holders = _mixed(seed)
        assert list(HolderList(holders)) == holders
        assert HolderList(holders) == holders and len(HolderList(holders)) == len(holders)


def test_runs_are_the_holders_in_order() -> None:
    """Would catch: HolderList.runs(), which the JSON report writes fd
    holders from a run at a time, dropping, repeating or reordering a
    holder against plain iteration."""
    for seed in range(200):
        holders = _mixed(seed)
        flat: list[Holder] = []
        for run in HolderList(holders).runs():
            if isinstance(run, Holder):
                flat.append(run)
            else:
                flat.extend(Holder("fd", pid, comm, fd) for pid, comm, fd in run)
        assert flat == holders, seed
