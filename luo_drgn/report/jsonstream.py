# SPDX-License-Identifier: LGPL-2.1-or-later
"""JSON written as it is made: a host's report is tens of megabytes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .document import _Lazy

# Containers this deep (a session's file, a finding's fields...) are written
# on one line: json.dumps() with an indent runs its pure-Python encoder, five
# times slower than everything else a 10,000-file report does.
_JSON_ONE_LINE_DEPTH = 4


def _json_chunks(value: Any, depth: int = 0) -> Iterator[str]:
    """``value`` as json.dumps(indent=2) writes it, down to
    ``_JSON_ONE_LINE_DEPTH``; deeper containers on one line (C encoder)."""
    if isinstance(value, _Lazy) and not value:
        value = []
    if depth >= _JSON_ONE_LINE_DEPTH or not value or not isinstance(value, (dict, list, _Lazy)):
        yield json.dumps(value)
        return
    pad, end = "  " * (depth + 1), "  " * depth
    if isinstance(value, dict):
        opening, separator = "{\n", ",\n"
        for k, v in value.items():
            yield f"{opening}{pad}{json.dumps(k)}: "
            opening = separator
            yield from _json_chunks(v, depth + 1)
        yield f"\n{end}}}"
        return
    opening = "[\n"
    for v in value:
        yield opening + pad
        opening = ",\n"
        yield from _json_chunks(v, depth + 1)
    yield f"\n{end}]"
