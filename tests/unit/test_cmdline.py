# SPDX-License-Identifier: LGPL-2.1-or-later
"""The kernel command line as the kernel parses it: kernel/params.c's
parse_args() and next_arg(), init/main.c's do_early_param() (every
occurrence, in order) and lib/kstrtox.c's kstrtobool() (7.2.13)."""

from __future__ import annotations

import pytest

from luo_drgn.helpers import cmdline_args, cmdline_bool


def test_next_arg_quotes_and_double_dash() -> None:
    """next_arg(): a quoted value keeps its spaces and loses its quotes; a
    whole quoted word loses its quotes; parse_args() stops at "--"."""
    assert cmdline_args(b'  a x="b c" "d=e f" g -- liveupdate=on') == [
        (b"a", None),
        (b"x", b"b c"),
        (b"d", b"e f"),
        (b"g", None),
    ]


def test_next_arg_equals_in_the_first_place_does_not_count() -> None:
    """Would catch: a word starting with '=' split there: next_arg() keeps
    equals at 0 until an '=' past the first character, so "=a=b" is the
    parameter "=a" with the value "b", and "=a" has no value."""
    assert cmdline_args(b"=a=b =a liveupdate=on") == [
        (b"=a", b"b"),
        (b"=a", None),
        (b"liveupdate", b"on"),
    ]


def test_next_arg_strips_a_closing_quote_only_of_a_quoted_word() -> None:
    """Would catch: a trailing '"' dropped from a word that did not start
    quoted: next_arg() clears args[i-1] only when quoted, so 'a=b"' keeps
    its quote (the value is 'b"')."""
    assert cmdline_args(b'x=1 a=b"') == [(b"x", b"1"), (b"a", b'b"')]
    assert cmdline_args(b'"a=b"') == [(b"a", b"b")]


@pytest.mark.parametrize(
    "value,want",
    # kstrtobool() looks at the first letters only, in any case.
    [
        *[(v, True) for v in ("1", "y", "Y", "yes", "t", "true", "on", "ON", "On", "e", "enable")],
        *[(v, False) for v in ("0", "n", "no", "f", "false", "off", "OFF", "d", "disable", "foo")],
    ],
)
def test_kstrtobool_spellings(value: str, want: bool) -> None:
    """Would catch: a spelling of liveupdate= that kstrtobool() accepts, read otherwise."""
    assert cmdline_bool(f"liveupdate={value}".encode(), "liveupdate") == (
        want,
        f"liveupdate={value}".encode(),
    )


@pytest.mark.parametrize(
    "cmdline,want",
    [
        # do_early_param() runs the handler for each occurrence: the last
        # value kstrtobool() accepts wins ...
        (b"liveupdate=on liveupdate=0", (False, b"liveupdate=0")),
        (b"liveupdate=off liveupdate=1", (True, b"liveupdate=1")),
        # ... one it refuses (-EINVAL, "Malformed early option") changes nothing
        (b"liveupdate=on liveupdate=maybe", (True, b"liveupdate=on")),
        (b"liveupdate=on liveupdate=o", (True, b"liveupdate=on")),
        (b"liveupdate=on liveupdate", (True, b"liveupdate=on")),
        # absent: the variable keeps its initializer
        (b"console=ttyS0 liveupdatex=1", (None, None)),
        (b"", (None, None)),
    ],
)
def test_last_accepted_value_wins(cmdline: bytes, want: tuple[bool | None, bytes | None]) -> None:
    """Would catch: the first liveupdate= taken where the kernel takes the last one it accepts."""
    assert cmdline_bool(cmdline, "liveupdate") == want
