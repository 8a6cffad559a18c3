# SPDX-License-Identifier: LGPL-2.1-or-later
"""The live-mode guest's console, split into each inspection's output."""

from __future__ import annotations

from vmcores.live import _parse


def test_a_driver_line_printed_meanwhile_is_not_the_inspectors() -> None:
    """Would catch: the churn driver's last event, printed on the shared
    console while luo-inspect's JSON was, read as part of that JSON (a CI
    run failed so: '@@LUO {"op":"churn",...}' before the '{')."""
    console = [
        "@@LIVE-BEGIN churn-1 rc=0",
        '@@LUO {"op":"churn","pid":33,"rounds":10000}',
        "{",
        '  "findings": []',
        "}",
        "@@LIVE-STDERR",
        "@@LIVE-END churn-1",
    ]
    assert _parse(console) == {"churn-1": (0, '{\n  "findings": []\n}', "")}
