# SPDX-License-Identifier: LGPL-2.1-or-later
"""The collector's error plumbing (:mod:`luo_drgn.collector_base`): what bad
memory throws becomes a record of the snapshot; a bug in luo-drgn does not."""

from __future__ import annotations

import drgn
import pytest
from drgn.helpers import ValidationError

from luo_drgn.collector_base import CollectorBase
from luo_drgn.helpers.bounded import WalkError
from luo_drgn.model import Target, WalkErrorRecord


def _collector() -> CollectorBase:
    return CollectorBase(drgn.Program(), Target("vmcore", "core", "7.2.13", []), None, False, False)


def test_guard_records_what_memory_throws() -> None:
    """Would catch: a fault, a walk that stopped or a value drgn cannot use
    escaping the guard (the collection would end there), recorded without
    its place, address, session or token, or a page the dump lacks
    recorded as an error rather than as missing."""
    c = _collector()
    fault = drgn.FaultError("could not read memory", 0x1000)
    stopped = WalkError("files of session 'a'", 0x2000, "cycle (a node is reached twice)")
    excluded = WalkError("files of session 'b'", 0x3000, "fault")
    excluded.__cause__ = drgn.FaultError("Excluded page", 0x3000)
    for where, e in (
        ("struct file", fault),
        ("list", stopped),
        ("list b", excluded),
        ("value", ValidationError("bad value")),
        ("absent", drgn.ObjectAbsentError("object absent")),
    ):
        with c.guard(where, "a", 7):
            raise e
    assert c.snap.errors == [
        WalkErrorRecord(
            "struct file", "memory fault: could not read memory at 0x1000", 0x1000, "a", 7
        ),
        WalkErrorRecord("list", "cycle (a node is reached twice) at 0x2000", 0x2000, "a", 7),
        WalkErrorRecord("value", "ValidationError: bad value", None, "a", 7),
        WalkErrorRecord("absent", "ObjectAbsentError: object absent", None, "a", 7),
    ]
    assert c.snap.not_in_dump == [WalkErrorRecord("list b", "not in the dump", 0x3000, "a", 7)]


def test_guard_lets_a_bug_through() -> None:
    """Would catch: the guard swallowing a bug in luo-drgn (it would be
    reported as a fact about the kernel), or recording a read that worked."""
    c = _collector()
    with c.guard("fine"):
        pass
    with pytest.raises(TypeError), c.guard("struct file"):
        raise TypeError("a bug")
    with pytest.raises(KeyboardInterrupt), c.guard("struct file"):
        raise KeyboardInterrupt
    assert c.snap.errors == [] and c.snap.not_in_dump == []


def test_drain_says_whether_it_read_to_the_end() -> None:
    """Would catch: the entries read before a walk stopped dropped, or a
    complete walk said to be incomplete."""
    c = _collector()

    def walk() -> object:
        yield 1
        yield 2
        raise WalkError("list", 0x10, "more than 2 entries")

    assert c.drain(iter([1, 2, 3]), "whole") == ([1, 2, 3], True)
    assert c.drain(walk(), "list") == ([1, 2], False)  # type: ignore[arg-type]
    assert [e.where for e in c.snap.errors] == ["list"]
