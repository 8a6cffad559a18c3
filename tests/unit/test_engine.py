# SPDX-License-Identifier: LGPL-2.1-or-later
"""The engine's one error-to-exit mapping, which every door uses."""

from __future__ import annotations

from luo_drgn.engine import EXIT_CANNOT_INSPECT, failure
from luo_drgn.request import RequestError
from luo_drgn.target import TargetError


def test_a_target_that_cannot_be_inspected_is_its_own_line() -> None:
    """Would catch: a known error shown as a bug, or with another status."""
    assert failure(TargetError("/tmp/x: not a vmcore")) == (2, "/tmp/x: not a vmcore", False)
    assert failure(RequestError("--before needs diff")) == (2, "--before needs diff", False)
    assert EXIT_CANNOT_INSPECT == 2


def test_a_bug_is_an_internal_error_naming_the_exception() -> None:
    """Would catch: a bug in luo-drgn shown as a fact about the target."""
    assert failure(TypeError("a bug")) == (2, "internal error: TypeError: a bug", True)


def test_a_doors_own_errors_are_shown_as_they_are() -> None:
    """A door's expected errors (a scan's, a target of no known kind) are
    not bugs."""

    class ScanError(Exception):
        pass

    assert failure(ScanError("no targets"), (ScanError,)) == (2, "no targets", False)
    assert failure(ScanError("no targets")) == (
        2,
        "internal error: ScanError: no targets",
        True,
    )
