# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Live Update Orchestrator
------------------------

The ``luo_drgn.helpers.liveupdate`` module provides helpers for the Linux
kernel's Live Update Orchestrator (LUO, ``kernel/liveupdate/``): the
registered file handlers, the sessions (``struct luo_session``) and their
preserved files (``struct luo_file``), what was serialized for the next
kernel through Kexec HandOver (KHO), the incoming data still waiting in KHO
memory, the ``luo_preserved_files`` index, File-Lifecycle-Bound objects
(FLBs), and the state of the ``struct file`` objects LUO holds.

LUO changed shape several times.  The v6 patch series (November 2025) hung a
session's files directly on ``session->files_list`` and serialized into a
flattened device tree.  Linux 6.19 grouped them in ``struct luo_file_set``.
The 6.19.y stable backport and Linux 7.0 replaced ``bool retrieved`` in
``struct luo_file`` with ``int retrieve_status``, which keeps a failed
retrieve's errno, and added FLBs.  Linux 7.1 added the ``luo_preserved_files``
xarray.  Since Linux 7.2 the FDT is gone: ``struct luo_ser`` points to linked
chains of KHO blocks (``struct kho_block_set``, :mod:`luo_drgn.helpers.kho`)
holding the serialized sessions and files, and
``luo_session_serialize_rwsem`` freezes the sessions for the kexec.  Each
difference is probed once per program from the debug info and cached in
``prog.cache``, never read from the version string.

Sessions have a direction: ``"outgoing"`` sessions are created in this kernel
to be handed over; ``"incoming"`` ones were handed over by the previous
kernel and deserialized here, lazily, at the first open of
``/dev/liveupdate``.

As drgn's list helpers do, each ``luo_*for_each*`` list iterator is plain and
fast, and has a ``validate_*`` twin for memory that may be corrupted: a
bounded walk (:mod:`luo_drgn.helpers.bounded`) that raises
:class:`~luo_drgn.helpers.bounded.WalkError` (a
:class:`drgn.helpers.ValidationError`) instead of looping.  Members a
structure has on every layout are read directly (``session.name``,
``luo_file.token``, ``luo_file.file``); helpers exist where the kernel's
layouts differ or a value has to be worked out.

This module is longer than most (about a thousand lines): it is one kernel
subsystem, ``kernel/liveupdate/``, and drgn keeps one helper module per
subsystem.  Its sections follow the kernel's files: ``luo_core.c`` (LUO-wide
state), ``luo_file.c`` (handlers, preserved files), ``luo_session.c``
(sessions, their serialization and the freeze), ``luo_flb.c`` (FLBs), and
``mm/memfd_luo.c``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from drgn import Object, Program
from drgn.helpers.common.prog import takes_program_or_default
from drgn.helpers.linux.list import list_empty, list_for_each_entry
from drgn.helpers.linux.locking import mutex_owner

from .bounded import (
    _fields,
    validate_list_for_each_entry_block,
    validate_list_for_each_entry_bounded,
)
from .liveupdate_layout import (
    _has_block_sets,
    _has_file_set,
    _retrieve_field,
)

__all__ = (
    "luo_file_handler_for_each_flb",
    "luo_file_mutex_owner",
    "luo_file_retrieve_status",
    "luo_for_each_file_handler",
    "luo_for_each_session",
    "luo_session_block_set",
    "luo_session_file_count",
    "luo_session_files_head",
    "luo_session_finished",
    "luo_session_for_each_file",
    "luo_session_header_count",
    "luo_session_mutex_owner",
    "luo_session_name_terminated",
    "validate_luo_file_handler_for_each_flb",
    "validate_luo_for_each_file_handler",
    "validate_luo_for_each_session",
    "validate_luo_session_for_each_file",
    "validate_luo_session_for_each_file_row",
)


LUO_DIRECTIONS = ("outgoing", "incoming")


def _bytes(char_array: Object) -> bytes:
    """A NUL-terminated ``char[]`` member, bounded by its array size."""
    return bytes(char_array.string_())


@takes_program_or_default
def luo_for_each_file_handler(prog: Program) -> Iterator[Object]:
    """
    Iterate over the registered LUO file handlers.

    :return: Iterator of ``struct liveupdate_file_handler *`` objects.
    """
    # Marked __private since 6.19; that is a sparse annotation, and the
    # member is still called "list" in the debug info.
    return list_for_each_entry(
        "struct liveupdate_file_handler", prog["luo_file_handler_list"].address_of_(), "list"
    )


@takes_program_or_default
def validate_luo_for_each_file_handler(prog: Program) -> Iterator[Object]:
    """
    Like :func:`luo_for_each_file_handler`, validating the list as it goes.

    :raises WalkError: on a corrupted list
    :return: Iterator of ``struct liveupdate_file_handler *`` objects.
    """
    return validate_list_for_each_entry_bounded(
        "struct liveupdate_file_handler",
        prog["luo_file_handler_list"].address_of_(),
        "list",
        "luo_file_handler_list",
    )


def luo_file_handler_for_each_flb(handler: Object) -> Iterator[Object]:
    """
    Iterate over the FLBs a file handler depends on (6.19.y/7.0 and later).

    :param handler: ``struct liveupdate_file_handler *``
    :return: Iterator of ``struct liveupdate_flb *`` objects.
    """
    for link in list_for_each_entry("struct luo_flb_link", handler.flb_list.address_of_(), "list"):
        yield link.flb.read_()


def validate_luo_file_handler_for_each_flb(handler: Object) -> Iterator[Object]:
    """
    Like :func:`luo_file_handler_for_each_flb`, validating the list as it
    goes.

    :param handler: ``struct liveupdate_file_handler *``
    :raises WalkError: on a corrupted list
    :return: Iterator of ``struct liveupdate_flb *`` objects.
    """
    links = validate_list_for_each_entry_bounded(
        "struct luo_flb_link", handler.flb_list.address_of_(), "list", "handler flb_list"
    )
    for link in links:
        yield link.flb.read_()


def _session_header(prog: Program, direction: str) -> Object:
    if direction not in LUO_DIRECTIONS:
        raise ValueError(f"direction must be one of {LUO_DIRECTIONS}, not {direction!r}")
    return prog["luo_session_global"].member_(direction)


@takes_program_or_default
def luo_for_each_session(prog: Program, direction: str = "outgoing") -> Iterator[Object]:
    """
    Iterate over the outgoing sessions (created in this kernel, to be handed
    over) or the incoming ones (handed over by the previous kernel and
    deserialized).

    :param direction: ``"outgoing"`` or ``"incoming"``
    :return: Iterator of ``struct luo_session *`` objects.
    """
    head = _session_header(prog, direction).list.address_of_()
    return list_for_each_entry("struct luo_session", head, "list")


@takes_program_or_default
def validate_luo_for_each_session(prog: Program, direction: str = "outgoing") -> Iterator[Object]:
    """
    Like :func:`luo_for_each_session`, validating the list as it goes.

    :param direction: ``"outgoing"`` or ``"incoming"``
    :raises WalkError: on a corrupted list
    :return: Iterator of ``struct luo_session *`` objects.
    """
    head = _session_header(prog, direction).list.address_of_()
    return validate_list_for_each_entry_bounded(
        "struct luo_session", head, "list", f"luo_session_global.{direction}.list"
    )


@takes_program_or_default
def luo_session_header_count(prog: Program, direction: str = "outgoing") -> int:
    """
    Get the number of sessions a ``struct luo_session_header`` claims (its
    list may disagree).

    :param direction: ``"outgoing"`` or ``"incoming"``
    :return: the count
    """
    return int(_session_header(prog, direction).count.value_())


def luo_session_name_terminated(session: Object) -> bool:
    """
    Return whether a session's name ends within its array, as
    ``luo_session_create()`` requires (a name is at most 63 bytes).

    :param session: ``struct luo_session *``
    :return: True or False
    """
    return b"\0" in session.name.to_bytes_()


def _mutex_owner(lock: Object) -> tuple[int, bytes] | None:
    task = mutex_owner(lock)
    if not task:
        return None
    return int(task.pid.value_()), bytes(task.comm.string_())


def luo_session_mutex_owner(session: Object) -> tuple[int, bytes] | None:
    """
    Get who holds a session's mutex (taken to preserve, retrieve, freeze or
    finish its files), or None when it is free.

    :param session: ``struct luo_session *``
    :return: (pid, comm) of the owning task
    """
    return _mutex_owner(session.mutex.address_of_())


def luo_file_mutex_owner(luo_file: Object) -> tuple[int, bytes] | None:
    """
    Get who holds a preserved file's mutex (``luo_retrieve_file()`` holds it
    while it sets ``file``, takes its reference, indexes it and only then
    sets ``retrieve_status``), or None when it is free.

    :param luo_file: ``struct luo_file *``
    :return: (pid, comm) of the owning task
    """
    return _mutex_owner(luo_file.mutex.address_of_())


def luo_session_files_head(session: Object) -> Object:
    """
    Get the head of a session's list of ``struct luo_file``.

    :param session: ``struct luo_session *``
    :return: ``struct list_head *``
    """
    # v6 series: session->files_list.  6.19 and later: session->file_set.
    if _has_file_set(session.prog_):
        return session.file_set.files_list.address_of_()
    return session.files_list.address_of_()


def luo_session_for_each_file(session: Object) -> Iterator[Object]:
    """
    Iterate over the preserved (outgoing) or deserialized (incoming) files
    of a session.

    :param session: ``struct luo_session *``
    :return: Iterator of ``struct luo_file *`` objects.
    """
    return list_for_each_entry("struct luo_file", luo_session_files_head(session), "list")


def validate_luo_session_for_each_file(session: Object) -> Iterator[Object]:
    """
    Like :func:`luo_session_for_each_file`, validating the list as it goes.

    :param session: ``struct luo_session *``
    :raises WalkError: on a corrupted list
    :return: Iterator of ``struct luo_file *`` objects.
    """
    return validate_list_for_each_entry_bounded(
        "struct luo_file",
        luo_session_files_head(session),
        "list",
        f"files of session {_bytes(session.name)!r}",
    )


def luo_session_file_count(session: Object) -> int:
    """
    Get the number of files a session claims (its list may disagree).

    :param session: ``struct luo_session *``
    :return: the count
    """
    if _has_file_set(session.prog_):
        return int(session.file_set.count.value_())
    return int(session.count.value_())


def luo_session_finished(session: Object) -> bool | None:
    """
    Return whether an incoming session was finished
    (``LIVEUPDATE_SESSION_FINISH``, or closing a retrieved session), or None
    where memory cannot tell.

    Only a retrieved session can be finished.  On 7.2, ``luo_file_finish()``
    ends with ``kho_block_set_destroy()``: a file set restored from the
    previous kernel (``block_set.incoming``, which the destruction leaves
    set) with no block left was finished, whatever its list still holds.  A
    session handed over with no files never restored a block set, so
    whether it was finished cannot be told.  Before 7.2 a retrieved session
    with files left was not finished, and an empty one cannot be told.

    :param session: ``struct luo_session *`` (incoming)
    :return: True, False, or None where memory cannot tell
    """
    if not session.retrieved:
        return False
    if _has_block_sets(session.prog_):
        bs = session.file_set.block_set
        if not bs.incoming.value_():
            # Handed over with no files: nothing was restored to destroy.
            return None
        # kho_block_set_destroy() frees every block, then zeroes nblocks
        # (and head_pa, the line after): no block left means it ran.
        return not bs.nblocks.value_()
    if luo_session_file_count(session) or not list_empty(luo_session_files_head(session)):
        return False
    return None


def luo_file_retrieve_status(luo_file: Object) -> int:
    """
    Get the retrieve state of an incoming file, the same on every layout: 0
    never attempted, 1 retrieved, a negative errno for a failed retrieve.

    :param luo_file: ``struct luo_file *``
    :return: 0, 1 or a negative errno
    """
    field = _retrieve_field(luo_file.prog_) or "retrieve_status"
    return _retrieve_state(field, int(luo_file.member_(field).value_()))


def _retrieve_state(field: str, raw: int) -> int:
    """0 / 1 / -errno from the raw value of ``luo_file->field``."""
    # 6.19.y/7.0 replaced "bool retrieved" with "int retrieve_status", which
    # keeps the errno of a failed retrieve; any positive value means success.
    if field == "retrieve_status":
        return 1 if raw > 0 else raw
    return 1 if raw else 0


class LuoFileRow(NamedTuple):
    """A ``struct luo_file``, as the helpers read it."""

    address: int
    fh: int  # luo_file->fh
    file: int  # luo_file->file
    token: int  # luo_file->token
    retrieve_status: int  # luo_file_retrieve_status()
    serialized_data: int  # luo_file->serialized_data
    mutex_locked: bool  # luo_file_mutex_owner() is not None


# include/linux/mutex.h: the owner word's low bits are flags (MUTEX_FLAGS).
_MUTEX_FLAGS = 0x07


def validate_luo_session_for_each_file_row(session: Object) -> Iterator[LuoFileRow]:
    """
    Iterate over the files of a session as
    :func:`validate_luo_session_for_each_file` does, with the same checks,
    each ``struct luo_file`` read whole in one read: for hosts with tens of
    thousands of preserved files.

    :param session: ``struct luo_session *``
    :raises WalkError: see :func:`validate_luo_session_for_each_file`
    :return: Iterator of :class:`LuoFileRow`, one per ``struct luo_file``.
    """
    prog = session.prog_
    status = _retrieve_field(prog) or "retrieve_status"
    fields = _fields(
        prog,
        "struct luo_file",
        "fh",
        "file",
        "token",
        status,
        "serialized_data",
        "mutex.owner.counter",
    )
    what = f"files of session {bytes(session.name.string_())!r}"
    head = luo_session_files_head(session).value_()
    for address, raw in validate_list_for_each_entry_block(
        prog, "struct luo_file", head, "list", what
    ):
        fh, file, token, retrieve, data, owner = fields.unpack(raw)
        retrieve = _retrieve_state(status, retrieve)
        yield LuoFileRow(address, fh, file, token, retrieve, data, bool(owner & ~_MUTEX_FLAGS))


@takes_program_or_default
def luo_session_block_set(prog: Program, direction: str = "outgoing") -> Object:
    """
    Get the KHO block set holding a direction's serialized sessions (7.2).

    Outgoing, it is grown by ``luo_session_insert()`` before each session is
    added and filled by the freeze; incoming, it is what
    ``luo_session_setup_incoming()`` restored at boot, until deserialization
    destroys it.

    :param direction: ``"outgoing"`` or ``"incoming"``
    :return: ``struct kho_block_set *``
    """
    return _session_header(prog, direction).block_set.address_of_()
