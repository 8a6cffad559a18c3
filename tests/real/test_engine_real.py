# SPDX-License-Identifier: LGPL-2.1-or-later
"""The engine on real fixtures (:mod:`luo_drgn.engine`): what it reads once
for many targets."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from luo_drgn import engine
from luo_drgn.request import Request

# Fault fixtures made from one frozen guest: one kernel loaded for kexec -e.
SAME_IMAGE = ("fault-ser-file-count", "fault-ser-session-cycle", "fault-ser-memfd-seals")


def test_a_loaded_kernel_is_read_once_for_the_targets_that_load_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Would catch: each target of a fleet worker, or each side of a diff,
    that loaded the same kernel unpacking and reading it again (most of a
    second each), targets sharing one reading that a snapshot can change
    (each gets a copy), or more readings kept than the bound."""
    read: list[str] = []
    real = engine.read_loaded_kernel

    def counted(payload: bytes, *args: Any) -> Any:
        read.append(hashlib.sha256(payload).hexdigest())
        return real(payload, *args)

    monkeypatch.setattr(engine, "read_loaded_kernel", counted)
    monkeypatch.setattr(engine, "_LOADED_KERNELS", {})
    snaps = [
        engine.inspect_source(engine.Source(example=name), Request("check")) for name in SAME_IMAGE
    ]
    assert len(read) == 1
    first = snaps[0].next_kernel
    assert first is not None and first.release == "7.2.13"
    assert all(s.next_kernel == first and s.next_kernel is not first for s in snaps[1:])
    # Others read since: the bound holds, the most recent kept.
    for n in range(engine.LOADED_KERNELS_KEPT):
        engine._LOADED_KERNELS[(n,)] = "another kernel"
    assert len(engine._LOADED_KERNELS) == engine.LOADED_KERNELS_KEPT + 1
    engine.inspect_source(engine.Source(example=SAME_IMAGE[0]), Request("check"))
    assert len(read) == 1
    assert len(engine._LOADED_KERNELS) == engine.LOADED_KERNELS_KEPT
    assert (0,) not in engine._LOADED_KERNELS
