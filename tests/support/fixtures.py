# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixture filters and loud skips, for the tests and tests/conftest.py."""

from __future__ import annotations

import os
import shutil

import pytest


def only(predicate):  # type: ignore[no-untyped-def]
    """Decorator: run a ``fixture_ref`` test only on fixtures whose name
    satisfies ``predicate``."""

    def deco(fn):  # type: ignore[no-untyped-def]
        fn.fixture_filter = predicate
        return fn

    return deco


# One dump of each fixture kernel (luo, no-luo, full), for what the kernel
# decides at boot and no later state changes: its release, layout, and the
# file handlers and FLBs it registers.  Asserting those on every dump would
# repeat one fact some sixty times.
ONE_PER_KERNEL = (
    "committed/incoming",
    "committed/no-luo",
    "full/flb-incoming",
    # 7.3.4 after the upgrade; 7.2.13 built without KHO's default.
    "fresh/upgrade-after",
    "fresh/loaded-kho-default-off",
)


def once_per_kernel(predicate=lambda name: True):  # type: ignore[no-untyped-def]
    """Decorator: run a ``fixture_ref`` test on one dump of each kernel
    (those of :data:`ONE_PER_KERNEL` whose name satisfies ``predicate``)."""

    def deco(fn):  # type: ignore[no-untyped-def]
        fn.fixture_filter = predicate
        fn.fixture_refs = ONE_PER_KERNEL
        return fn

    return deco


def require_qemu(what: str) -> None:
    """Skip loudly without QEMU; under CI, fail: QEMU is part of the set-up."""
    if shutil.which("qemu-system-x86_64") is None:
        skip_loudly(
            f"QEMU is not installed, so {what} did NOT run (apt-get install qemu-system-x86)"
        )


def skip_loudly(msg: str) -> None:
    """A fixture set that cannot be made: skipped with the reason, except
    under CI (``CI=true``), where that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)
