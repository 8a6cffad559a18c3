# SPDX-License-Identifier: LGPL-2.1-or-later
"""The JSON writer (:mod:`luo_drgn.report.jsonstream`): what json.dumps
writes, indented as json.dumps(indent=2) down to a session's files, made
piece by piece."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from luo_drgn.report import jsonstream
from luo_drgn.report.document import _Lazy
from luo_drgn.report.jsonstream import _dumps, _json_chunks, _one_line_encoder


def test_json_is_indented_then_one_line_deep() -> None:
    """Would catch: the JSON writer (made session by session for large
    hosts) writing otherwise than json.dumps(indent=2) down to depth 4 (a
    session's file), or a deeper container on more than one line."""
    doc = {"a": [], "b": {}, "c": _Lazy([], str), "d": [{"e": [{"f": {"g": [1, 2]}}]}], "s": "é"}
    text = "".join(_json_chunks(doc))
    assert text == (
        "{\n"
        '  "a": [],\n'
        '  "b": {},\n'
        '  "c": [],\n'
        '  "d": [\n'
        "    {\n"
        '      "e": [\n'
        '        {"f": {"g": [1, 2]}}\n'
        "      ]\n"
        "    }\n"
        "  ],\n"
        '  "s": "\\u00e9"\n'
        "}"
    )
    shallow = {"x": [1, {"y": None}], "z": "w"}
    assert "".join(_json_chunks(shallow)) == json.dumps(shallow, indent=2)


def test_a_sessions_files_are_one_line_each() -> None:
    """Would catch: the files of a session (a list at depth 3, written as
    one piece) joined on one line, their separators or closing bracket
    misplaced, or a lazy list of them read otherwise than a list."""
    files = [
        {"token": i, "holders": [{"pid": 1, "fd": i}], "path": f"/memfd:{i}"} for i in range(3)
    ]
    for listed in (files, _Lazy(list(range(3)), files.__getitem__)):
        doc = {"sessions": [{"name": "a", "files": listed, "holders": []}]}
        text = "".join(_json_chunks(doc))
        assert json.loads(text) == {"sessions": [{"name": "a", "files": files, "holders": []}]}
        assert text.splitlines()[4:9] == [
            '      "files": [',
            *(f"        {json.dumps(f)}," for f in files[:2]),
            f"        {json.dumps(files[2])}",
            "      ],",
        ]


def _value(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.choice(
        ["int", "str", "none", "bool", "float", "list", "dict"][: 7 if depth < 4 else 5]
    )
    if kind == "int":
        return rnd.choice([0, -1, 7, 1 << 64, -(1 << 70)])
    if kind == "str":
        return rnd.choice(["", "vm-0", 'q"uote\\', "é\x00\n", "\udcff"])
    if kind == "none":
        return None
    if kind == "bool":
        return rnd.random() < 0.5
    if kind == "float":
        return rnd.choice([0.5, 1e300, float("inf"), -float("inf")])
    if kind == "list":
        return [_value(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]
    return {f"k{i}": _value(rnd, depth + 1) for i in range(rnd.randint(0, 3))}


def test_one_line_is_what_json_dumps_writes() -> None:
    """Would catch: the encoder made once (json.dumps makes one each call)
    spelling anything otherwise than json.dumps: escapes, non-ASCII, big
    integers, floats and their infinities, nesting."""
    rnd = random.Random(5)
    for _ in range(500):
        value = _value(rnd)
        assert _dumps(value) == json.dumps(value)


def test_without_the_c_accelerator_json_dumps_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Would catch: the writer failing on a Python built without _json's
    C encoder, instead of using json.dumps."""
    monkeypatch.setattr(jsonstream.json.encoder, "c_make_encoder", None)
    assert _one_line_encoder() is json.dumps


def test_pieces_are_the_chunks_joined() -> None:
    """Would catch: a chunk lost, repeated or reordered when small chunks are
    joined into pieces, a piece written before it is full (a system call
    each on an unbuffered stdout), or the last piece held back."""
    from luo_drgn.report.jsonstream import _in_pieces

    rnd = random.Random(3)
    chunks = ["x" * rnd.randint(0, 40) + str(i) for i in range(2000)]
    pieces = list(_in_pieces(iter(chunks), 1000))
    assert "".join(pieces) == "".join(chunks)
    assert all(len(p) >= 1000 for p in pieces[:-1]) and len(pieces[-1]) > 0
    assert all(len(p) < 1000 + 42 + 4 for p in pieces)  # written once full
    assert list(_in_pieces(iter([]))) == []
