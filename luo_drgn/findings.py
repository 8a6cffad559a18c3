# SPDX-License-Identifier: LGPL-2.1-or-later
"""The finding codes: one table, from which the code lists, the JSON
schema's enum and the README's table of findings are made (tests hold the
schema and the README equal to it; ``python -m luo_drgn.findings`` prints
the README's table).

Each code has one severity, says which side of a live update it is about,
whether it decides preflight's verdict, and what it means.  ``direction``
is ``"incoming"`` for a finding about what the previous kernel handed this
one: what was handed to this kernel is not handed on, so it does not decide
the next handover; ``"any"`` otherwise.  ``decides`` is False for an error
that neither the freeze nor the next kernel's restore acts on (a struct
file's reference count: ``luo_file_freeze()``, ``memfd_luo_freeze()`` and
the next kernel's ``luo_file_deserialize()`` never read ``f_ref``); preflight
lists those apart, and they do not flip its verdict.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from .model import Finding, PreservedFile, Session

__all__ = (
    "CODES",
    "DECIDING_CODES",
    "ERROR",
    "INCOMING_CODES",
    "LOSING_CODES",
    "INFO",
    "REGISTRY",
    "SEVERITIES",
    "WARNING",
    "Code",
    "errno_name",
    "file_finding",
    "finding",
    "readme_table",
    "session_finding",
)

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)


@dataclass(frozen=True)
class Code:
    """A finding code: its severity, its side, its one-line meaning
    (Markdown, as the README shows it)."""

    code: str
    severity: str
    direction: str  # "incoming" | "any"
    meaning: str
    decides: bool = True  # outgoing: whether it decides preflight's verdict
    # Preflight lists it among what this kexec loses (exit 1 from a warning).
    loses: bool = False


REGISTRY: tuple[Code, ...] = (
    Code(
        "duplicate-token",
        ERROR,
        "any",
        "two luo_files with one token in one session (across sessions is legal)",
    ),
    Code(
        "duplicate-session-name",
        ERROR,
        "any",
        "two sessions with one name in one direction",
    ),
    Code(
        "file-count-mismatch",
        ERROR,
        "any",
        "a count disagrees with its list",
    ),
    Code(
        "session-count-mismatch",
        ERROR,
        "any",
        "a count disagrees with its list",
    ),
    Code(
        "leaked-file-reference",
        ERROR,
        "any",
        "a struct file has more references than its holders explain (fds, mappings, executables, "
        "kernel objects, LUO); the message lists the holder kinds that were not scanned",
        decides=False,
    ),
    Code(
        "transient-file-reference",
        INFO,
        "any",
        "live: a reference beyond the holders that was gone when the count was read again a moment"
        " later (a system call using the file), not a leak",
        decides=False,
    ),
    Code(
        "not-in-dump",
        INFO,
        "any",
        "a filtered dump lacks pages (`makedumpfile -d`): said once, naming what could not be "
        "read; a verdict that needs that memory (a possible leak when tasks are missing) becomes "
        '"cannot verify", never an error',
        decides=False,
    ),
    Code(
        "missing-file-reference",
        ERROR,
        "any",
        "fewer references than holders: underflow, use-after-free risk",
        decides=False,
    ),
    Code(
        "retrieve-inconsistent",
        ERROR,
        "incoming",
        "retrieved without a file, or a file without a retrieve",
    ),
    Code(
        "retrieve-failed",
        WARNING,
        "incoming",
        "a failed retrieve kept its errno",
    ),
    Code(
        "retrieve-in-progress",
        INFO,
        "incoming",
        "a dump inside `luo_retrieve_file()` (file set, `retrieve_status` not yet, the luo_file's "
        "mutex held): not an inconsistency; its reference and index entry are in flight",
    ),
    Code(
        "preserve-in-progress",
        INFO,
        "any",
        "a dump inside `luo_preserve_file()` (`LIVEUPDATE_SESSION_PRESERVE_FD`, the session's "
        "mutex held): its file block set grown for one more file and the file indexed in "
        "`luo_preserved_files`, not yet listed; not an inconsistency, and the freeze waits for "
        "that mutex",
        decides=False,
    ),
    Code(
        "finish-discards",
        WARNING,
        "incoming",
        "a retrieved incoming session still has files never retrieved: "
        "`LIVEUPDATE_SESSION_FINISH`, or closing its fd (`luo_session_release()`, also when the "
        "agent dies), discards them: `luo_file_finish()` calls `.finish()` with retrieve_status 0 "
        "and `memfd_luo_finish()` frees their folios",
    ),
    Code(
        "not-retrieved",
        INFO,
        "incoming",
        "incoming sessions and files still waiting",
    ),
    Code(
        "serialization-mismatch",
        ERROR,
        "any",
        "frozen: the serialized entries disagree with memory",
    ),
    Code(
        "preserved-index-mismatch",
        ERROR,
        "any",
        "`luo_preserved_files` (7.1+) and the lists disagree",
        decides=False,
    ),
    Code(
        "unknown-handler",
        ERROR,
        "any",
        "a luo_file's handler is not registered",
    ),
    Code(
        "flb-count-mismatch",
        ERROR,
        "any",
        "an FLB counts fewer users than the files that depend on it (outgoing: preserved files of "
        "its handlers; incoming, once retrieved: files not yet finished): its `.unpreserve()` or "
        "`.finish()` would run while files still need it. A count above them is not an error: "
        "`liveupdate_flb_get_outgoing()`/`_get_incoming()` hold references (a note says how many)."
        " An FLB whose `.retrieve()` failed is `retrieve-failed`; frozen, the serialized FLB array"
        " is compared with memory (`serialization-mismatch`)",
    ),
    Code(
        "flb-in-progress",
        INFO,
        "any",
        "a dump taken while an FLB's lock is held (inside `liveupdate_flb_put_incoming()` and its "
        "`.finish()`, `liveupdate_flb_put_outgoing()` and its `.unpreserve()`, or a preserve): its"
        " count is in flight and is not compared (not a `flb-count-mismatch`)",
        decides=False,
    ),
    Code(
        "finished-still-held",
        WARNING,
        "incoming",
        "a finished session still holds files",
    ),
    Code(
        "luo-disabled",
        INFO,
        "any",
        "with the reason",
    ),
    Code(
        "luo-absent",
        INFO,
        "any",
        "with the reason",
    ),
    Code(
        "corrupt-structure",
        ERROR,
        "any",
        "a cycle, a fault, an impossible value, with its address",
    ),
    Code(
        "next-kernel-panic",
        ERROR,
        "any",
        "the next kernel will panic at boot: `luo_early_startup()` refuses the ABI string, or "
        "`kho_block_set_restore()` the session chain (a cycle, more than 10000 blocks, a block "
        "count of 0 or above what a block holds)",
    ),
    Code(
        "next-kernel-eio",
        ERROR,
        "any",
        "the next kernel's `luo_session_deserialize()` will stop (a duplicate session name, a bad "
        "file chain, a file handler it lacks, a file count that disagrees) and every open of "
        "`/dev/liveupdate` returns EIO for the rest of the boot",
    ),
    Code(
        "next-kernel-drops",
        ERROR,
        "any",
        "data the next kernel will skip silently: entries past a block's count, a file set with a "
        "count but no blocks",
    ),
    Code(
        "next-kernel-no-luo",
        ERROR,
        "any",
        "the next kernel has no LUO, or its command line lacks `liveupdate=on`",
    ),
    Code(
        "next-kernel-abi",
        ERROR,
        "any",
        "the next kernel lays out a serialized structure differently under the same ABI string",
    ),
    Code(
        "next-kernel-kho-abi",
        ERROR,
        "any",
        "the next kernel's KHO ABI (`KHO_FDT_COMPATIBLE`) is not the one this kernel hands over: "
        "its `kho_populate()` disables KHO revival, LUO comes up with no incoming session and "
        "every retrieve fails with ENOENT (no panic)",
    ),
    Code(
        "next-kernel-unknown",
        ERROR,
        "any",
        "what could decide a loss could not be read of the next kernel (its KHO ABI, its KHO "
        "default with no `kho=` given, its built-in command line): without its debug info, "
        "preflight cannot say it will accept",
    ),
    Code(
        "kexec-image-no-handover",
        ERROR,
        "any",
        "the image loaded for `kexec -e` hands nothing over: loaded by `kexec_load()` (only "
        "`kexec_file_load()` gives an image KHO data, `kho_fill_kimage()`), with "
        "`KEXEC_PRESERVE_CONTEXT` (`kernel_kexec()` then skips `liveupdate_reboot()`), or without "
        "a KHO FDT",
    ),
    Code(
        "lost-at-kexec",
        WARNING,
        "incoming",
        "preflight: an incoming file this kernel never retrieved (or a session never deserialized)"
        ": `luo_session_serialize()` hands over outgoing sessions only, so it is gone after this "
        "kexec (`check` lists the same as `not-retrieved`)",
    ),
    Code(
        "not-preserved-again",
        WARNING,
        "incoming",
        "preflight: an incoming file retrieved and not finished: `luo_preserve_file()` refuses to "
        "preserve it again (`xa_insert()` into `luo_preserved_files` returns EBUSY) until its "
        "session is finished, so a kexec now does not hand its data over; preflight counts it as "
        "a loss",
    ),
    Code(
        "not-handed-on",
        INFO,
        "incoming",
        "preflight: an empty incoming session: the next kernel will not have it (nothing in it "
        "is lost)",
    ),
    Code(
        "seals-not-handed-over",
        WARNING,
        "any",
        "an outgoing memfd sealed after it was preserved (`F_ADD_SEALS`): `memfd_luo_preserve()` "
        "recorded its seals once and `memfd_luo_freeze()` updates only the position, so the next "
        "kernel's memfd lacks the seals added since; preflight counts it as a loss",
        decides=False,
        loses=True,
    ),
    Code(
        "kexec-will-fail",
        ERROR,
        "any",
        "the freeze will fail, so the kexec is refused: fewer session slots than sessions "
        "(ENOSPC), or a memfd with no serialized state (`memfd_luo_freeze()`, EINVAL)",
    ),
    Code(
        "deserialize-will-fail",
        ERROR,
        "incoming",
        "the same, for data handed to this kernel and not yet deserialized: at the first open of "
        "`/dev/liveupdate`",
    ),
    Code(
        "deserialize-drops",
        ERROR,
        "incoming",
        "the same, for data handed to this kernel and not yet deserialized: at the first open of "
        "`/dev/liveupdate`",
    ),
    Code(
        "retrieve-will-fail",
        ERROR,
        "any",
        "a preserved memfd whose serialized state `memfd_luo_retrieve()` will refuse (seals it "
        "does not know): that file's retrieve fails with EOPNOTSUPP, the others are not affected",
    ),
    Code(
        "freeze-in-progress",
        INFO,
        "any",
        "the dump was taken inside the freeze (`luo_session_serialize()` holds its lock, "
        "`sessions_pa` not set yet): how many sessions are written and which is being frozen; the "
        "serialized data is not compared until the freeze ends",
    ),
    Code(
        "freeze-failed",
        WARNING,
        "any",
        "a freeze failed and was rolled back (`err_undo`: entries reserved, names cleared, lock "
        "released): the kexec was refused; the kernel's message",
    ),
    Code(
        "deserialize-failed",
        ERROR,
        "incoming",
        "this kernel's deserialization failed (the errno `luo_session_deserialize()` keeps in "
        "`saved_err`): every open of `/dev/liveupdate` returns EIO for the rest of the boot; where"
        " it stopped and the kernel's messages",
    ),
    Code(
        "restore-failed",
        ERROR,
        "any",
        "this kernel's LUO restore failed at boot and it panicked: the kernel's own messages, "
        "quoted from its log buffer",
    ),
)
_BY_CODE = {c.code: c for c in REGISTRY}
CODES = tuple(_BY_CODE)
INCOMING_CODES = frozenset(c.code for c in REGISTRY if c.direction == "incoming")
# The codes that decide whether the next kernel accepts the handover.
DECIDING_CODES = frozenset(c.code for c in REGISTRY if c.direction != "incoming" and c.decides)
# What preflight lists as lost at this kexec beside its own losses
# (restore.left_behind()).
LOSING_CODES = frozenset(c.code for c in REGISTRY if c.loses)


# Where Python's errno names differ from the kernel's (both 95 on Linux).
_KERNEL_ERRNO_NAMES = {errno.EOPNOTSUPP: "EOPNOTSUPP"}


def errno_name(status: int) -> str:
    """The kernel's name for a negative errno (the one table of them)."""
    return _KERNEL_ERRNO_NAMES.get(-status) or errno.errorcode.get(-status, f"errno {-status}")


def finding(
    code: str,
    message: str,
    *,
    session: str | None = None,
    token: int | None = None,
    address: int | None = None,
    direction: str | None = None,
) -> Finding:
    """A finding of a registered code, with the code's severity.

    :raises KeyError: for a code the registry does not have
    """
    return Finding(code, _BY_CODE[code].severity, message, session, token, address, direction)


def file_finding(
    code: str,
    message: str,
    session: Session,
    file: PreservedFile,
    *,
    address: int | None = None,
) -> Finding:
    """A finding about one file of a session: :func:`finding`, placed at the
    session (its name and direction) and the file's token.

    :param address: what the finding points at (a struct file, a handler);
        default the luo_file (``file.address``)
    """
    if address is None:
        address = file.address
    return finding(
        code,
        message,
        session=session.name,
        direction=session.direction,
        token=file.token,
        address=address,
    )


def session_finding(code: str, message: str, session: Session) -> Finding:
    """A finding about a session as a whole: :func:`finding`, placed at the
    session (its name, direction and address)."""
    return finding(
        code,
        message,
        session=session.name,
        direction=session.direction,
        token=None,
        address=session.address,
    )


def readme_table() -> str:
    """The README's table of findings."""
    lines = ["| code | severity | decides preflight | meaning |", "|---|---|---|---|"]
    lines += [
        f"| `{c.code}` | {c.severity} | {'yes' if c.code in DECIDING_CODES else 'no'} "
        f"| {c.meaning} |"
        for c in REGISTRY
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(readme_table(), end="")
