# SPDX-License-Identifier: LGPL-2.1-or-later
"""Each check's edge cases, on hand-made snapshots (plain dataclasses)."""

from __future__ import annotations

from typing import Any

import pytest

from luo_drgn.analysis import inspect
from luo_drgn.checks import run_checks
from luo_drgn.findings import CODES
from luo_drgn.model import (
    Flb,
    Holder,
    LuoState,
    PreservedFile,
    SerializedFile,
    SerializedSession,
    Session,
    Snapshot,
    Target,
    WalkErrorRecord,
)

HANDLER = 0xFFFF0000


def pfile(token: int, file: int | None = 0x1000, **kw: Any) -> PreservedFile:
    base: dict[str, Any] = dict(
        address=0x5000 + token,
        token=token,
        handler="memfd-v2",
        handler_address=HANDLER,
        handler_registered=True,
        file=file,
        serialized_data=0x9000 + token,
    )
    if file is not None:
        base.update(
            refcount=2,
            explained_refs=2,
            holders=[Holder("fd", pid=1, comm="a", fd=3), Holder("luo")],
        )
    base.update(kw)
    return PreservedFile(**base)


def session(
    name: str, files: list[PreservedFile], direction: str = "outgoing", **kw: Any
) -> Session:
    base: dict[str, Any] = dict(
        address=0x7000 + len(name),
        name=name,
        direction=direction,
        retrieved=False,
        finished=None,
        file_count=len(files),
        files=files,
    )
    base.update(kw)
    return Session(**base)


def snap(*sessions: Session, **kw: Any) -> Snapshot:
    s = Snapshot(Target("vmcore", "x", "7.2.13", []))
    s.luo = LuoState("enabled", liveupdate_num=0, frozen=False)
    s.sessions = list(sessions)
    for d in ("outgoing", "incoming"):
        getattr(s.luo, d).session_count = sum(1 for x in sessions if x.direction == d)
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def codes(s: Snapshot, severity: str | None = None) -> list[tuple[Any, ...]]:
    """(code, severity, session, token) of every finding, sorted."""
    findings, _ = run_checks(s)
    return sorted(
        (f.code, f.severity, f.session, f.token)
        for f in findings
        if severity is None or f.severity == severity
    )


def test_healthy_is_silent() -> None:
    """Would catch: a false alarm on a healthy outgoing session."""
    assert codes(snap(session("a", [pfile(1), pfile(2, file=0x2000)]))) == []


def test_same_token_in_two_sessions_is_legal() -> None:
    """Would catch: a token reused by another session reported, though tokens are per session."""
    assert codes(snap(session("a", [pfile(1)]), session("b", [pfile(1, file=0x2000)]))) == []


def test_duplicate_token_in_one_session() -> None:
    """Would catch: a duplicate token in one session missed, or reported without its token and
    session."""
    s = snap(session("a", [pfile(1), pfile(1, file=0x2000), pfile(2, file=0x3000)]))
    assert codes(s) == [("duplicate-token", "error", "a", 1)]
    (f,) = run_checks(s)[0]
    assert f.severity == "error" and "0x1" in f.message and "'a'" in f.message


def test_duplicate_session_name_per_direction() -> None:
    """Would catch: duplicate session names missed, or an outgoing and an incoming session of one
    name reported."""
    assert codes(snap(session("a", []), session("a", []))) == [
        ("duplicate-session-name", "error", "a", None)
    ]
    # One outgoing and one incoming session may share a name.
    assert (
        codes(
            snap(
                session("a", []),
                session("a", [], direction="incoming", retrieved=True, finished=False),
            )
        )
        == []
    )


def test_count_mismatches() -> None:
    """Would catch: a session or file count that disagrees with the list walked, not reported."""
    s = snap(session("a", [pfile(1)], file_count=2))
    s.luo.outgoing.session_count = 3
    assert codes(s) == [
        ("file-count-mismatch", "error", "a", None),
        ("session-count-mismatch", "error", None, None),
    ]


def test_incomplete_walk_skips_counts_with_a_note() -> None:
    """Would catch: counts compared with a walk known to be incomplete (a false mismatch)."""
    s = snap(session("a", [pfile(1)], file_count=2, files_complete=False))
    findings, notes = run_checks(s)
    assert findings == [] and any("not checked" in n for n in notes)


@pytest.mark.parametrize(
    "refcount,want",
    [
        (2, []),  # every reference explained: nothing to verify
        (3, [("not-in-dump", "info", "a", 1)]),  # one more: maybe what the dump lacks
        (1, [("missing-file-reference", "error", "a", 1)]),  # fewer: wrong whatever is missing
    ],
)
def test_references_in_a_dump_that_lacks_holders(refcount: int, want: list[Any]) -> None:
    """Would catch: a filtered dump (makedumpfile -d, tasks or kernel objects
    missing) making a fully explained file unverifiable, or an unexplained
    reference a leak, though the missing memory may hold it."""
    s = snap(session("a", [pfile(1, refcount=refcount)]), holders_not_in_dump=["3 tasks"])
    assert codes(s) == want


@pytest.mark.parametrize(
    "refcount,code,extra",
    [
        (3, "leaked-file-reference", "1 unexplained"),
        (5, "leaked-file-reference", "3 unexplained"),
        (1, "missing-file-reference", "underflow"),
        (-1, "corrupt-structure", "released"),
        (-2, "corrupt-structure", "saturation zone"),
    ],
)
def test_reference_accounting(refcount: int, code: str, extra: str) -> None:
    """Would catch: a leaked, missing or dead reference misclassified, or reported below error."""
    s = snap(session("a", [pfile(1, refcount=refcount)]))
    (f,) = run_checks(s)[0]
    # Every one of these is an error: a leak pins memory, a missing
    # reference is a use-after-free risk, a dead file behind LUO is both.
    assert (f.code, f.severity, f.session, f.token, f.address) == (code, "error", "a", 1, 0x1000)
    assert extra in f.message


@pytest.mark.parametrize(
    "status,file,expected",
    [
        (1, None, [("retrieve-inconsistent", "error", "s", 1)]),
        (0, 0x1000, [("retrieve-inconsistent", "error", "s", 1)]),
        (-5, None, [("retrieve-failed", "warning", "s", 1)]),
        (-2, None, [("retrieve-failed", "warning", "s", 1)]),
        # Retrieved session, this file not: finishing would discard it
        # (luo_file_finish() -> memfd_luo_finish() with retrieve_status 0).
        (0, None, [("finish-discards", "warning", "s", None), ("not-retrieved", "info", "s", 1)]),
        (1, 0x1000, []),
    ],
)
def test_retrieve_states(status: int, file: int | None, expected: list[Any]) -> None:
    """Would catch: a retrieve state (done, failed, pending, freed) given the wrong finding."""
    f = pfile(1, file=file, retrieve_status=status)
    s = snap(session("s", [f], direction="incoming", retrieved=True, finished=False))
    assert codes(s) == expected


def test_failed_retrieve_names_errno() -> None:
    """Would catch: a failed retrieve not named by its errno, or reported as an error."""
    f = pfile(1, file=None, retrieve_status=-2)
    s = snap(session("s", [f], direction="incoming", retrieved=True, finished=False))
    (finding,) = run_checks(s)[0]
    assert finding.severity == "warning" and "ENOENT" in finding.message


def test_not_retrieved_session_and_pending() -> None:
    """Would catch: sessions waiting for retrieve or deserialization missed or above info."""
    s = snap(
        session("s", [pfile(1, file=None)], direction="incoming"),
        pending_incoming=[SerializedSession("p", 1, [SerializedFile(1, "memfd-v2", 5)])],
    )
    assert codes(s) == [("not-retrieved", "info", "p", None), ("not-retrieved", "info", "s", None)]
    assert all(f.severity == "info" for f in run_checks(s)[0])


def test_finished_still_held() -> None:
    """Would catch: a finished session whose files are still held, not warned about."""
    s = snap(
        session(
            "s", [pfile(1, retrieve_status=1)], direction="incoming", retrieved=True, finished=True
        )
    )
    assert codes(s, "warning") == [("finished-still-held", "warning", "s", None)]


def test_outgoing_file_without_struct_file() -> None:
    """Would catch: an outgoing file with no struct file, which LUO never leaves, not reported."""
    assert codes(snap(session("a", [pfile(1, file=None)]))) == [
        ("corrupt-structure", "error", "a", 1)
    ]


def frozen_snap(ser: list[SerializedSession]) -> Snapshot:
    s = snap(session("a", [pfile(1), pfile(2, file=0x2000)]), serialized_outgoing=ser)
    s.luo.frozen = True
    return s


def ser_a(*files: SerializedFile, count: int | None = None) -> SerializedSession:
    return SerializedSession("a", len(files) if count is None else count, list(files))


def test_serialization_matches() -> None:
    """Would catch: a false mismatch between sessions and their serialized copy."""
    ok = ser_a(SerializedFile(1, "memfd-v2", 0x9001), SerializedFile(2, "memfd-v2", 0x9002))
    assert codes(frozen_snap([ok])) == []


@pytest.mark.parametrize(
    "ser",
    [
        [],  # session missing
        [ser_a(SerializedFile(1, "memfd-v2", 0x9001))],  # file missing
        [
            ser_a(
                SerializedFile(1, "memfd-v2", 0x9001),
                SerializedFile(2, "memfd-v2", 0x9002),
                SerializedFile(3, "memfd-v2", 0x9003),
            )
        ],  # extra file
        [ser_a(SerializedFile(1, "memfd-v2", 0x9001), SerializedFile(2, "memfd-v2", 0xDEAD))],
        [ser_a(SerializedFile(1, "memfd-v2", 0x9001), SerializedFile(2, "other-v1", 0x9002))],
        [
            ser_a(
                SerializedFile(1, "memfd-v2", 0x9001),
                SerializedFile(2, "memfd-v2", 0x9002),
                count=3,
            )
        ],  # count disagrees
        [
            ser_a(SerializedFile(1, "memfd-v2", 0x9001), SerializedFile(2, "memfd-v2", 0x9002)),
            SerializedSession("ghost", 0),
        ],  # extra session
    ],
)
def test_serialization_mismatch(ser: list[SerializedSession]) -> None:
    """Would catch: a serialized copy that differs from the sessions in memory, not reported as an
    error."""
    found = codes(frozen_snap(ser))
    assert found and {(c, sev) for c, sev, _, _ in found} == {("serialization-mismatch", "error")}


def test_serialization_not_checked_when_not_frozen() -> None:
    """Would catch: the serialized copy compared before the freeze wrote it."""
    s = frozen_snap([])
    s.luo.frozen = False
    assert codes(s) == []


def test_preserved_index() -> None:
    """Would catch: an index entry missing or extra, not reported."""
    s = snap(session("a", [pfile(1), pfile(2, file=0x2000)]), preserved_index={1: 0x1000})
    assert codes(s) == [("preserved-index-mismatch", "error", "a", 2)]
    s = snap(session("a", [pfile(1)]), preserved_index={1: 0x1000, 7: 0x7777})
    assert codes(s) == [("preserved-index-mismatch", "error", None, None)]


def test_no_index_before_7_1_is_not_a_finding() -> None:
    """Would catch: a kernel that has no preserved-file index reported for lacking one."""
    s = snap(session("a", [pfile(1)]), preserved_index=None)
    assert codes(s) == []


def test_unknown_handler() -> None:
    """Would catch: a file whose handler is not registered, not reported."""
    s = snap(session("a", [pfile(1, handler=None, handler_registered=False)]))
    assert codes(s) == [("unknown-handler", "error", "a", 1)]


def test_flb_count() -> None:
    """Would catch: an FLB counted below its files not reported, or counted above them reported as
    an error."""
    flb = Flb(0xF1B, "x-flb-v1", 2, 0, ["memfd-v2"])
    assert codes(snap(session("a", [pfile(1), pfile(2, file=0x2000)]), flbs=[flb])) == []
    # Below its files: luo_flb_file_unpreserve() would run .unpreserve()
    # while a file still depends on it.
    flb.outgoing_count = 1
    assert codes(snap(session("a", [pfile(1), pfile(2, file=0x2000)]), flbs=[flb])) == [
        ("flb-count-mismatch", "error", None, None)
    ]
    # Above: references held through liveupdate_flb_get_outgoing(), a note.
    flb.outgoing_count = 3
    s = snap(session("a", [pfile(1), pfile(2, file=0x2000)]), flbs=[flb])
    assert codes(s) == []
    _, notes = run_checks(s)
    assert any("1 outgoing reference(s) beyond its files" in n for n in notes)


def test_luo_absent_and_disabled() -> None:
    """Would catch: LUO absent or disabled reported above info, or without why."""
    s = snap()
    s.luo = LuoState("absent", "no CONFIG_LIVEUPDATE")
    assert codes(s) == [("luo-absent", "info", None, None)]
    s.luo = LuoState("disabled", "KHO is disabled")
    (f,) = run_checks(s)[0]
    assert (f.code, f.severity) == ("luo-disabled", "info") and "KHO" in f.message


def test_walk_errors_become_corrupt_structure() -> None:
    """Would catch: a walk error that does not become a corrupt-structure finding with its session
    and address."""
    s = snap(errors=[WalkErrorRecord("files of 'a'", "cycle", 0xABC, "a", None)])
    (f,) = run_checks(s)[0]
    assert (f.code, f.severity, f.session, f.address) == ("corrupt-structure", "error", "a", 0xABC)


def test_errors_sort_first_and_codes_are_known() -> None:
    """Would catch: findings not sorted errors first, or a code missing from the registry."""
    s = snap(
        session("a", [pfile(1, refcount=9)]),
        session("s", [pfile(2, file=None)], direction="incoming"),
    )
    inspect(s)
    assert [f.severity for f in s.findings] == ["error", "info"]
    assert all(f.code in CODES for f in s.findings)


def test_failed_deserialization() -> None:
    """Would catch: a failed deserialization read as success, or its finding not saying EIO for
    every open and which sessions exist."""
    s = snap(
        session("a", [pfile(1, file=None)], direction="incoming"),
        session("b", [], direction="incoming"),
    )
    s.luo.deserialize_error = -22
    s.luo.kernel_log = [
        "luo: Retrieved live update data, liveupdate number: 1",
        "luo: File count mismatch: expected 3, found 2",
        "luo: Failed to deserialize files for session [b] -22",
    ]
    (f,) = [f for f in run_checks(s)[0] if f.severity == "error"]
    assert (f.code, f.severity, f.session) == ("deserialize-failed", "error", "b")
    assert "failed with EINVAL" in f.message and "returns EIO" in f.message
    assert "Sessions it created: 'a', 'b'." in f.message
    assert "'b', which stays listed with its files freed" in f.message
    assert '"luo: File count mismatch: expected 3, found 2"' in f.message
    assert "Retrieved live update" not in f.message


def test_retrieve_in_progress_only_on_incoming_files() -> None:
    """luo_retrieve_file()'s window (file set, status 0, mutex held) is a
    retrieve in progress on an incoming file; the freeze holds an outgoing
    file's mutex too, and that is nothing."""
    inc = pfile(1, mutex_owner=(1, "init"))
    s = snap(session("s", [inc], direction="incoming", retrieved=True, finished=False))
    assert codes(s) == [("retrieve-in-progress", "info", "s", 1)]
    out = pfile(1, mutex_owner=(1, "init"))
    assert codes(snap(session("a", [out]))) == []


# -- the image loaded for kexec -e (synthetic: see the docstring) ---------------------


@pytest.mark.parametrize(
    "file_mode,preserve_context,kho_fdt,said",
    [
        # The legacy syscall: its real dump is fixture loaded-legacy (kernel
        # `full`); this one pins the wording without a QEMU run.
        (False, False, 0, "kexec_load() (kexec -l without -s)"),
        # kexec_load(KEXEC_PRESERVE_CONTEXT) needs CONFIG_KEXEC_JUMP, which
        # no fixture kernel has: no guest makes this state.
        (False, True, 0, "kernel_kexec() skips liveupdate_reboot()"),
        # kho_fill_kimage() leaves no FDT only with KHO off, and then LUO is
        # disabled too: no guest makes an enabled LUO with this image.
        (True, False, 0, "carries no KHO FDT"),
    ],
)
def test_loaded_image_without_handover(
    file_mode: bool, preserve_context: bool, kho_fdt: int, said: str
) -> None:
    """Synthetic snapshots of a loaded image that hands nothing over
    (kernel_kexec(), kimage_file_prepare_segments() -> kho_fill_kimage()):
    an error that decides preflight.  Would catch: such an image read as a
    healthy next kernel."""
    from luo_drgn.model import Handover, KexecImage
    from luo_drgn.preflight import preflight

    s = snap(session("a", [pfile(1)]))
    s.handover_out = Handover("outgoing", "frozen", "luo-v2", 0, None)
    s.kexec_image = KexecImage(0xFFFF1000, file_mode, preserve_context, kho_fdt)
    inspect(s)
    (f,) = [f for f in s.findings if f.code == "kexec-image-no-handover"]
    assert said in f.message and f.severity == "error"
    assert f in preflight(s).findings and preflight(s).status == 1
    s = snap(session("a", [pfile(1)]))
    s.handover_out = Handover("outgoing", "frozen", "luo-v2", 0, None)
    s.kexec_image = KexecImage(0xFFFF1000, True, False, 0x23B000)
    inspect(s)
    assert not [f for f in s.findings if f.code == "kexec-image-no-handover"]


def test_panic_text_follows_symbolic_errname() -> None:
    """luo_restore_fail()'s %pe: "-22" without CONFIG_SYMBOLIC_ERRNAME (the
    fixture kernels, whose doomed-panic console shows it), "-EINVAL" with
    it, which no fixture kernel is built with (synthetic); --next-kernel's
    config wins over this kernel's."""
    from luo_drgn.model import NextKernel
    from luo_drgn.restore import _panic

    s = snap()
    s.symbolic_errname = False
    assert "[-22]" in _panic(s)
    s.symbolic_errname = True
    assert "properly [-EINVAL], disabling" in _panic(s)
    s.next_kernel = NextKernel("vmlinux-new", True, "luo-v2", [], symbolic_errname=False)
    assert "[-22]" in _panic(s)


def test_session_names_compare_as_the_kernel_compares_them() -> None:
    """luo_session_insert() compares names with strncmp(): as bytes.  Two
    names that differ only in bytes that are not UTF-8 are two sessions,
    not a duplicate (nor, in the next kernel, an EEXIST that stops
    luo_session_deserialize()).  Synthetic: the fixture guests log each
    name as JSON text, which cannot carry these bytes."""
    from luo_drgn.collector_base import kernel_name as _name
    from luo_drgn.model import Handover, HandoverSession
    from luo_drgn.restore import deserialize

    raw = [b"vm-\xff", b"vm-\xfe", b"vm-\\xff", b"vm-\\\\xff", "vm-\u00fc".encode()]
    names = [_name(n) for n in raw]
    assert len(set(names)) == len(raw)
    assert _name(b"vm-alpha") == "vm-alpha" and names[-1] == "vm-\u00fc"
    s = snap(session(names[0], [pfile(1)]), session(names[1], [pfile(2)]))
    assert not [f for f in codes(s) if f[0] == "duplicate-session-name"]
    handover = Handover(
        "outgoing",
        "frozen",
        "luo-v2",
        0x1000,
        None,
        [HandoverSession(n, 0, 0) for n in names],
        names,
    )
    arrival = deserialize(handover, ["memfd-v2"])
    assert arrival.failure is None and arrival.arrived == names
