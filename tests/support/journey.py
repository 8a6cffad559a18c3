# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the guest logs say happened to each file across a kexec: the oracle
of the diff tests (``tests/real/test_diff.py``) and the live ones
(``tests/real/test_live.py``)."""

from __future__ import annotations

from typing import Any


def story(before: dict[str, Any], after: dict[str, Any]) -> dict[tuple[str, int | None], str]:
    """The state of each sent (session, token) in the next kernel, from the
    two guest logs (token None: a session without files)."""
    arrived = {s["name"]: s for s in after["sessions"] if s["direction"] == "incoming"}
    out: dict[tuple[str, int | None], str] = {}
    for s in before["sessions"]:
        if s["direction"] != "outgoing":
            continue
        a = arrived.get(s["name"])
        for f in s["files"] or [None]:
            token = f["token"] if f else None
            if after.get("restore_failed") or a is None:
                state = "lost"
            elif a["finished"]:
                state = "finished"
            elif token is None:
                state = "arrived"
            else:
                g = next(x for x in a["files"] if x["token"] == token)
                status = g["retrieve_status"]
                state = (
                    "retrieved" if status > 0 else "retrieve-failed" if status < 0 else "arrived"
                )
            out[(s["name"], token)] = state
    # What the kernel before received and did not hand on: its incoming
    # files never retrieved are gone, the retrieved ones not handed over.
    for s in before["sessions"]:
        if s["direction"] == "incoming" and not s["finished"]:
            for f in s["files"]:
                out[(s["name"], f["token"])] = (
                    "not-handed-on" if f["retrieve_status"] == 1 else "lost"
                )
    return out
