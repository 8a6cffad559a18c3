# SPDX-License-Identifier: LGPL-2.1-or-later
"""Across the kexec: what one kernel handed over and what the next made of
it, as a pure function of two snapshots.

Each sent session and file is matched by name and token (names are unique
per direction, tokens per session) with what the next kernel holds, and gets
one state from its lifecycle there (kernel/liveupdate/ in 7.2):

- ``pending``: handed over, not deserialized yet (``/dev/liveupdate`` not
  opened since the update);
- ``arrived``: deserialized, not retrieved;
- ``retrieved``: ``luo_retrieve_file()`` succeeded (the holder is named);
- ``retrieve-failed``: it failed and the luo_file keeps the errno;
- ``finished``: ``LIVEUPDATE_SESSION_FINISH`` (or closing the session fd)
  took the files, retrieved or discarded (memory cannot tell); a session that
  was also closed is freed, so after a successful deserialization an absent
  session reads ``finished`` too, and the row says memory cannot tell it
  from one lost without trace;
- ``lost``: never arrived, with the reason memory gives (the restore failed
  at boot, deserialization stopped, the next kernel skipped it), or was
  left behind: an incoming file of the kernel before that it never
  retrieved (``luo_session_serialize()`` hands over outgoing sessions only);
- ``unreachable``: deserialized before a deserialization that then failed:
  every open of ``/dev/liveupdate`` returns EIO for the rest of the boot;
- ``not-handed-on``: an incoming file the kernel before retrieved and could
  not preserve again until its session was finished (``luo_preserve_file()``
  refuses it with EBUSY): not handed over, a loss as preflight counts it;
- ``not-sent``: in the next kernel but not in what was handed over (a stale
  or foreign handover).

A memfd's size and folio count are compared where both sides show them
(the serialized state before a retrieve, the inode after), so a silent
truncation shows; a size that changed after the retrieve is the
application's (a retrieved file is not frozen), shown, not a loss.  Two
sides with no session in common are said to be unrelated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .findings import errno_name
from .model import Finding, PreservedFile, Session, Snapshot
from .restore import incoming_not_handed_over

__all__ = ("LOSSES", "Diff", "DiffRow", "diff")

# A finished session's file: LIVEUPDATE_SESSION_FINISH (or the session fd's
# release, luo_session_release()) took it, retrieved or not.
FINISHED = (
    "finished: retrieved or discarded (LIVEUPDATE_SESSION_FINISH or closing the session fd "
    "discards a file never retrieved); memory cannot tell"
)

# States that make luo-inspect diff exit 1: as preflight counts losses, a
# file retrieved and not handed on (luo_preserve_file() refused it) is one.
LOSSES = frozenset(("lost", "retrieve-failed", "unreachable", "not-handed-on"))


@dataclass
class DiffRow:
    session: str
    token: int | None  # None: a session with no file
    state: str
    detail: str = ""
    before_size: int | None = None
    after_size: int | None = None
    before_folios: int | None = None
    after_folios: int | None = None

    @property
    def resized(self) -> bool:
        return (
            self.before_size is not None
            and self.after_size is not None
            and self.after_size != self.before_size
        )

    @property
    def truncated(self) -> bool:
        """A size that differs at arrival: after a retrieve the file is the
        application's to resize."""
        return self.resized and self.state != "retrieved"


@dataclass
class Diff:
    before: Snapshot
    after: Snapshot
    rows: list[DiffRow] = field(default_factory=list)
    # Why everything sent is gone, when one reason covers it all, or why
    # the two sides are not one handover.
    verdict: str | None = None
    unrelated: bool = False

    @property
    def lost(self) -> bool:
        return self.unrelated or any(r.state in LOSSES or r.truncated for r in self.rows)


def _sent(before: Snapshot) -> list[Session]:
    return [s for s in before.sessions if s.direction == "outgoing"]


def _size(f: PreservedFile, after: bool) -> tuple[int | None, int | None]:
    """(size, folios): the serialized memfd state while there is one; after
    a retrieve, the new inode's size."""
    if f.memfd is not None:
        return f.memfd.get("size"), f.memfd.get("nr_folios")
    if after and f.size is not None:
        return f.size, None
    return None, None


def _predicted_loss(before: Snapshot) -> dict[str, Finding]:
    """What the before side's restore model said the next kernel will drop
    or refuse, by session."""
    out: dict[str, Finding] = {}
    for f in before.findings:
        if f.code.startswith("next-kernel-") and f.session is not None:
            out.setdefault(f.session, f)
    return out


def _whole_loss(after: Snapshot) -> str | None:
    """A reason that covers every sent session, from the next kernel."""
    for f in after.findings:
        if f.code == "restore-failed":
            return f.message
    if after.luo.state == "absent":
        return "the next kernel has no LUO: it never read the handover"
    if after.luo.state == "disabled":
        return (
            f"LUO is disabled in the next kernel ({after.luo.reason}): it never read the handover"
        )
    if after.luo.incoming_present is False:
        return (
            "the next kernel received no handover (no LUO data from KHO: was the kexec done "
            "with LUO frozen, and KHO on in both kernels?)"
        )
    return None


def _holder(f: PreservedFile) -> str:
    who = [
        f"{h.pid}/{h.comm} fd {h.fd}" if h.kind == "fd" else f"{h.pid}/{h.comm} map"
        for h in f.holders
        if h.kind != "luo"
    ]
    return "held by " + ", ".join(who) if who else "held by LUO only"


def diff(before: Snapshot, after: Snapshot) -> Diff:
    """
    Match what ``before`` handed over (its outgoing sessions) with what
    ``after`` (the kernel the live update booted) holds.
    """
    out = Diff(before, after)
    sent = _sent(before)
    predicted = _predicted_loss(before)
    whole = _whole_loss(after)
    out.verdict = whole
    arrived = {s.name: s for s in after.sessions if s.direction == "incoming"}
    pending = {p.name: p for p in after.pending_incoming}
    failed = after.luo.deserialize_error
    stopped_at = next((f.session for f in after.findings if f.code == "deserialize-failed"), None)
    deserialized_ok = bool(after.luo.incoming_deserialized) and failed is None

    def lost_reason(name: str) -> str:
        if whole is not None:
            return whole
        if name in predicted:
            return predicted[name].message
        if failed is not None:
            return (
                f"deserialization failed with {errno_name(failed)} before reaching it"
                + (f" (it stopped at {stopped_at!r})" if stopped_at else "")
                + ": the rest of the handover was freed"
            )
        return "not among the sessions the next kernel received"

    for s in sent:
        files: list[PreservedFile | None] = list(s.files) or [None]
        if s.name in pending:
            p = pending[s.name]
            tokens = {f.token for f in p.files}
            for f in files:
                row = DiffRow(
                    s.name,
                    f.token if f else None,
                    "pending",
                    "handed over, not deserialized yet (/dev/liveupdate not opened)",
                )
                if f is not None and f.token not in tokens:
                    row.state, row.detail = "lost", "not among the files of its serialized entry"
                if f is not None:
                    row.before_size, row.before_folios = _size(f, after=False)
                out.rows.append(row)
            continue
        a = arrived.get(s.name)
        if a is None:
            for f in files:
                row = DiffRow(s.name, f.token if f else None, "lost", lost_reason(s.name))
                if deserialized_ok and whole is None and s.name not in predicted:
                    row.state = "finished"
                    row.detail = (
                        "absent after a successful deserialization: a session finished and "
                        "closed is freed (retrieved or discarded); memory cannot tell it from "
                        "one lost without trace"
                    )
                if f is not None:
                    row.before_size, row.before_folios = _size(f, after=False)
                out.rows.append(row)
            continue
        by_token = {f.token: f for f in a.files}
        for f in files:
            token = f.token if f else None
            row = DiffRow(s.name, token, "arrived")
            if f is not None:
                row.before_size, row.before_folios = _size(f, after=False)
            g = by_token.pop(token, None) if token is not None else None
            if token is None:
                row.state = "finished" if a.finished else "arrived"
                row.detail = "a session without files" + (
                    ", retrieved" if a.retrieved else ", not retrieved"
                )
            elif g is None:
                if a.finished or (a.retrieved and not a.files and a.file_count == 0):
                    # luo_file_finish() frees every luo_file; one never
                    # retrieved goes to .finish() with retrieve_status 0, and
                    # memfd_luo_finish() frees its folios: gone either way.
                    row.state, row.detail = "finished", FINISHED
                elif failed is not None and s.name == stopped_at:
                    row.state = "lost"
                    row.detail = (
                        f"its session's files failed to deserialize ({errno_name(failed)}): "
                        "luo_file_deserialize() freed them"
                    )
                else:
                    row.state, row.detail = "lost", "its session arrived without it"
            elif g.retrieve_status > 0:
                row.state, row.detail = "retrieved", _holder(g)
            elif failed is not None:
                # luo_session_deserialize() keeps its error: every open of
                # /dev/liveupdate returns it as EIO, nothing is retrieved.
                row.state = "unreachable"
                row.detail = (
                    f"deserialized before deserialization failed ({errno_name(failed)}): every "
                    "open of /dev/liveupdate returns EIO for the rest of the boot, so it can "
                    "never be retrieved"
                )
            elif g.retrieve_status < 0:
                row.state = "retrieve-failed"
                row.detail = (
                    f"retrieve failed with {errno_name(g.retrieve_status)} (kept: every later "
                    "retrieve returns it)"
                )
            else:
                row.detail = "waiting to be retrieved" + (
                    "" if a.retrieved else " (its session too)"
                )
            if g is not None:
                row.after_size, row.after_folios = _size(g, after=True)
            if row.truncated:
                row.detail += f"; size {row.before_size} before, {row.after_size} after"
            elif row.resized:
                row.detail += (
                    f"; resized by the application since the retrieve ({row.before_size} "
                    f"handed over, {row.after_size} now)"
                )
            out.rows.append(row)
        for token in by_token:
            out.rows.append(DiffRow(s.name, token, "not-sent", "arrived but never handed over"))
    out.rows += _left_behind(before)
    sent_names = {s.name for s in sent}
    received = set(arrived) | set(pending)
    if whole is None and sent_names and received and not sent_names & received:
        out.unrelated = True
        out.verdict = (
            "these are not two sides of one handover: no session the before side sent is "
            "among the after side's (another host, another update, or a redacted side?)"
        )
    for name, a in arrived.items():
        if name not in sent_names:
            extra: list[PreservedFile | None] = list(a.files) or [None]
            for g in extra:
                out.rows.append(
                    DiffRow(
                        name,
                        g.token if g else None,
                        "not-sent",
                        "arrived but never handed over: a stale or foreign handover",
                    )
                )
    return out


def _left_behind(before: Snapshot) -> list[DiffRow]:
    """The files the kernel before received and did not hand on
    (:func:`~luo_drgn.restore.incoming_not_handed_over`)."""
    rows = []
    for s, f in incoming_not_handed_over(before):
        if f is None:
            continue
        retrieved = f.retrieve_status == 1
        row = DiffRow(
            s.name,
            f.token,
            "not-handed-on" if retrieved else "lost",
            "incoming in the kernel before, retrieved there and not preserved again: not "
            "handed over"
            if retrieved
            else "left behind: incoming in the kernel before and never retrieved there; "
            "luo_session_serialize() hands over outgoing sessions only, so it is gone",
        )
        # A retrieved file's size there is the application's since the
        # retrieve; one never retrieved has its serialized state's.
        row.before_size, row.before_folios = _size(f, after=retrieved)
        rows.append(row)
    for p in before.pending_incoming:
        # A kernel that never opened /dev/liveupdate never deserialized what
        # it received, and luo_session_serialize() does not hand it on.
        why = (
            "left behind: handed to the kernel before, which never deserialized it (nothing "
            "opened /dev/liveupdate there); luo_session_serialize() hands over outgoing sessions "
            "only, so it is gone"
        )
        rows += [DiffRow(p.name, f.token, "lost", why) for f in p.files]
    return rows
