# SPDX-License-Identifier: LGPL-2.1-or-later
"""JSON written as it is made: a host's report is tens of megabytes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from .document import _Lazy

# Containers this deep (a session's file, a finding's fields...) are written
# on one line: json.dumps() with an indent runs its pure-Python encoder, five
# times slower than everything else a 10,000-file report does.
_JSON_ONE_LINE_DEPTH = 4


def _one_line_encoder() -> Callable[[Any], str]:
    """json.dumps() with its default options, made once: json.dumps() makes
    its C encoder again at each call, which takes longer than encoding a
    file's one line (a report encodes tens of thousands)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the C accelerator
        return json.dumps
    # What json.JSONEncoder.iterencode() passes for json.dumps(value), but
    # for the markers with which json.dumps() checks for cycles (a document
    # has none).
    encode = make(
        None,  # markers
        json.JSONEncoder().default,
        json.encoder.encode_basestring_ascii,
        None,  # indent
        ": ",
        ", ",
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )
    return lambda value: "".join(encode(value, 0))


_dumps = _one_line_encoder()


def _json_chunks(value: Any, depth: int = 0) -> Iterator[str]:
    """``value`` as json.dumps(indent=2) writes it, down to
    ``_JSON_ONE_LINE_DEPTH``; deeper containers on one line (C encoder)."""
    if isinstance(value, _Lazy) and not value:
        value = []
    if depth >= _JSON_ONE_LINE_DEPTH or not value or not isinstance(value, (dict, list, _Lazy)):
        yield _dumps(value)
        return
    pad, end = "  " * (depth + 1), "  " * depth
    if isinstance(value, dict):
        opening, separator = "{\n", ",\n"
        for k, v in value.items():
            yield f"{opening}{pad}{_dumps(k)}: "
            opening = separator
            yield from _json_chunks(v, depth + 1)
        yield f"\n{end}}}"
        return
    if depth + 1 >= _JSON_ONE_LINE_DEPTH:
        # Its items each on one line (a session's files): one piece.
        yield f"[\n{pad}" + f",\n{pad}".join(map(_dumps, value)) + f"\n{end}]"
        return
    opening = "[\n"
    for v in value:
        yield opening + pad
        opening = ",\n"
        yield from _json_chunks(v, depth + 1)
    yield f"\n{end}]"


# A pipe's capacity: the pieces a writer gets, whatever their number.
_PIECE = 1 << 16


def _in_pieces(chunks: Iterator[str], size: int = _PIECE) -> Iterator[str]:
    """``chunks`` joined into pieces of at least ``size`` characters (the
    last may be shorter): a report is thousands of small chunks, and an
    unbuffered stdout (``python -u``, ``PYTHONUNBUFFERED``) makes each
    write a system call."""
    pending: list[str] = []
    length = 0
    for chunk in chunks:
        pending.append(chunk)
        length += len(chunk)
        if length >= size:
            yield "".join(pending)
            pending, length = [], 0
    if pending:
        yield "".join(pending)
