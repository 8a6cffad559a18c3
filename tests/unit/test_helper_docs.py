# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every public helper is documented as drgn documents its own: a summary,
``:param:`` for each argument and ``:return:``."""

from __future__ import annotations

import inspect

import pytest

from luo_drgn import helpers


def _problems(name: str) -> list[str]:
    fn = getattr(helpers, name)
    doc = inspect.getdoc(fn) or ""
    problems = []
    if not doc.strip() or not doc.strip().splitlines()[0].strip():
        problems.append("no summary")
    for param in inspect.signature(fn).parameters:
        # drgn documents the program a helper takes only where it is not
        # simply the program to read (3 of its 160 helpers that take one).
        if param != "prog" and f":param {param}:" not in doc:
            problems.append(f"no :param {param}:")
    if ":return:" not in doc:
        problems.append("no :return:")
    return problems


@pytest.mark.parametrize("name", helpers.__all__)
def test_every_helper_has_a_summary_params_and_return(name: str) -> None:
    """Would catch: a helper whose reference page (docs/helpers.rst) would
    not say what it takes or gives."""
    assert _problems(name) == []
