# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Kernel Command Line
-------------------

The ``luo_drgn.helpers.cmdline`` module reads the kernel command line as
the kernel itself parses it: ``parse_args()`` of ``kernel/params.c``
(quotes, the last value of a repeated parameter wins, ``--`` ends the
kernel's part) and ``kstrtobool()`` of ``lib/kstrtox.c``; the command line
the kernel booted with (``saved_command_line``) and the one built into it
(x86's ``builtin_cmdline``, ``CONFIG_CMDLINE``).

These helpers are not LUO's: they are meant for drgn itself, and kept here
until drgn has them.
"""

from __future__ import annotations

from drgn import FaultError, Program
from drgn.helpers.common.prog import takes_program_or_default

__all__ = (
    "cmdline_args",
    "cmdline_bool",
    "cmdline_builtin",
    "cmdline_param",
    "cmdline_saved",
)


@takes_program_or_default
def cmdline_saved(prog: Program) -> bytes | None:
    """
    Get the command line the kernel booted with (``saved_command_line``).

    :return: the command line, or None where the debug info lacks it
    """
    try:
        return bytes(prog["saved_command_line"].string_())
    except LookupError:
        return None


@takes_program_or_default
def cmdline_builtin(prog: Program) -> bytes | None:
    """
    Get the command line built into an x86 kernel (``builtin_cmdline``,
    ``arch/x86/kernel/setup.c``, ``CONFIG_CMDLINE_BOOL``), as its image
    holds it: this reads a kernel's data, so it works on a vmlinux alone.

    :return: the built-in command line, ``b""`` for a kernel built without
        one, or None for a kernel that has no such variable (or whose data
        cannot be read)
    """
    try:
        return bytes(prog["builtin_cmdline"].string_())
    except (LookupError, FaultError):
        return None


def cmdline_args(cmdline: bytes) -> list[tuple[bytes, bytes | None]]:
    """
    Split a kernel command line as the kernel does: ``parse_args()`` with
    ``next_arg()`` (kernel/params.c), which keeps a quoted value's spaces and
    drops its quotes, and stops at ``--`` (what follows is for init).

    :param cmdline: the command line
    :return: (parameter, value) pairs in order; the value is None for a
        parameter without ``=``
    """
    out: list[tuple[bytes, bytes | None]] = []
    args = cmdline.lstrip()
    while args:
        quoted = args[:1] == b'"'
        if quoted:
            args = args[1:]
        # next_arg() (lib/cmdline.c): equals is 0 until an '=' is found, so
        # an '=' in the first place does not count ("=a=b" is "=a", "b").
        in_quote, equals, i = quoted, 0, 0
        while i < len(args):
            c = args[i : i + 1]
            if c.isspace() and not in_quote:
                break
            if not equals and c == b"=":
                equals = i
            if c == b'"':
                in_quote = not in_quote
            i += 1
        word, args = args[:i], args[i + 1 :].lstrip()
        if quoted and word.endswith(b'"'):
            word = word[:-1]
        if not equals or equals >= len(word):
            param, value = word, None
        else:
            param, value = word[:equals], word[equals + 1 :]
            # Don't include quotes in value.
            if value.startswith(b'"'):
                value = value[1:]
                if value.endswith(b'"'):
                    value = value[:-1]
        if value is None and param == b"--":
            break
        out.append((param, value))
    return out


def cmdline_bool(cmdline: bytes, name: str) -> tuple[bool | None, bytes | None]:
    """
    Get what a boolean ``early_param()`` leaves from a kernel command line,
    as ``liveupdate=`` (``early_liveupdate_param()``) and ``kho=``
    (``kho_parse_enable()``) are parsed: ``do_early_param()`` calls the
    handler for each occurrence, in order, and ``kstrtobool()`` sets the
    variable only for a value it accepts (y/t/1/e/on, n/f/0/d/off, any case;
    another is "Malformed early option" and changes nothing), so the last
    accepted value wins.

    :param name: the parameter, e.g. ``"liveupdate"``
    :return: (value, the ``name=value`` word that set it), or (None, None)
        when no occurrence sets it: the variable keeps its default
    :param cmdline: the command line, as bytes
    """
    result: tuple[bool | None, bytes | None] = (None, None)
    key = name.encode()
    for param, value in cmdline_args(cmdline):
        if param == key and value is not None:
            parsed = _kstrtobool(value)
            if parsed is not None:
                result = (parsed, param + b"=" + value)
    return result


@takes_program_or_default
def cmdline_param(prog: Program, name: str = "liveupdate") -> bytes | None:
    """
    Return the value of a ``name=value`` parameter on the kernel command line
    (``saved_command_line``), the last one if repeated, or None if absent.

    :param name: the parameter's name, ``liveupdate`` by default
    :return: the value, as bytes, or None
    """
    value = None
    for param, v in cmdline_args(prog["saved_command_line"].string_()):
        if param == name.encode() and v is not None:
            value = v
    return value


def _kstrtobool(value: bytes) -> bool | None:
    """lib/kstrtox.c's kstrtobool(): e/y/t/1/on true, d/n/f/0/off false,
    by the first letters only, any case; None where it returns -EINVAL."""
    if not value:
        return None
    first, second = value[:1].lower(), value[1:2].lower()
    if first in (b"e", b"y", b"t", b"1"):
        return True
    if first in (b"d", b"n", b"f", b"0"):
        return False
    if first == b"o":
        return {b"n": True, b"f": False}.get(second)
    return None
