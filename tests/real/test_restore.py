# SPDX-License-Identifier: LGPL-2.1-or-later
"""The restore model (luo_drgn.restore) on hand-made handovers: each rule of
7.2's restore path, the consequence it states, and the cases it must not
flag.  The real kernel's reactions are tested on the fixtures."""

from __future__ import annotations

import re
import subprocess
from typing import Any

from luo_drgn.analysis import inspect
from luo_drgn.model import (
    Finding,
    Handler,
    Handover,
    HandoverBlock,
    HandoverChain,
    HandoverSession,
    LuoState,
    NextKernel,
    PreservedFile,
    SerializedFile,
    Session,
    Snapshot,
    Target,
)
from luo_drgn.preflight import preflight, preflight_findings

SESSIONS_PER_BLOCK = 51  # struct luo_session_ser is 80 bytes: (4096 - 16) / 80
FILES_PER_BLOCK = 63  # struct luo_file_ser is 64 bytes


def next_kernel(**kw: Any) -> NextKernel:
    base: dict[str, Any] = dict(
        path="vmlinux-next", has_luo=True, abi="luo-v5", handlers=["memfd-v2"]
    )
    base.update(kw)
    return NextKernel(**base)


def chain(*counts: int, cpb: int = SESSIONS_PER_BLOCK, base: int = 0x10000) -> HandoverChain:
    pas = [base + 0x1000 * i for i in range(len(counts))]
    nexts = [*pas[1:], 0]
    return HandoverChain(
        pas[0], cpb, [HandoverBlock(pa, c, n) for pa, c, n in zip(pas, counts, nexts)]
    )


def hsession(name: str, ntokens: int = 1, handler: str = "memfd-v2", **kw: Any) -> HandoverSession:
    files = [SerializedFile(0x100 + i, handler, 0x9000 + i) for i in range(ntokens)]
    base: dict[str, Any] = dict(
        files_pa=0x80000 if ntokens else 0,
        file_count=ntokens,
        files=files,
        chain=chain(ntokens, cpb=FILES_PER_BLOCK, base=0x80000) if ntokens else None,
    )
    base.update(kw)
    return HandoverSession(name, **base)


def snapshot(handover: Handover, **kw: Any) -> Snapshot:
    s = Snapshot(Target("vmcore", "x", "7.2.13", []))
    # The restore rules read the handover itself; check_serialization, which
    # compares a frozen state with memory, has its own tests.
    s.luo = LuoState("enabled", liveupdate_num=0, frozen=False)
    s.handlers = [Handler(0xFFFF0000, "memfd-v2", 0xFFFF1000)]
    names = handover.listed or [x.name for x in handover.sessions]
    if handover.direction == "outgoing":
        s.sessions = [
            Session(0x7000 + i, n, "outgoing", False, None, 0) for i, n in enumerate(names)
        ]
        s.luo.outgoing.session_count = len(names)
        s.handover_out = handover
    else:
        s.handover_in = handover
        s.luo.incoming_present, s.luo.incoming_deserialized = True, False
    for k, v in kw.items():
        setattr(s, k, v)
    return inspect(s)


def outgoing(
    sessions: list[HandoverSession],
    source: str = "frozen",
    blocks: HandoverChain | None = None,
    **kw: Any,
) -> Snapshot:
    names = [x.name for x in sessions]
    ho = Handover(
        "outgoing",
        source,
        "luo-v5",
        0x10000,
        blocks or chain(*_fill(len(sessions))),
        sessions,
        names,
    )
    return snapshot(ho, **kw)


def _fill(n: int) -> list[int]:
    counts = []
    while n > 0:
        counts.append(min(n, SESSIONS_PER_BLOCK))
        n -= SESSIONS_PER_BLOCK
    return counts or [0]


def only(snap: Snapshot) -> list[Finding]:
    return [f for f in snap.findings if f.severity != "info"]


def test_healthy_handover_is_accepted() -> None:
    """Would catch: a false refusal of a handover the next kernel accepts."""
    snap = outgoing([hsession("a", 3), hsession("b", 0), hsession("c", 2)])
    assert only(snap) == [] and preflight(snap).accepted


def test_fifty_sessions_fit_one_block() -> None:
    """Would catch: an off-by-one at the session block's capacity, on the side that fits."""
    # The healthy neighbour of the 7.2.13 bug: 50 sessions, one block.
    snap = outgoing([hsession(f"s{i:02d}", 0) for i in range(50)], source="predicted")
    assert only(snap) == [] and preflight(snap).accepted


def test_empty_trailing_session_block_panics_the_next_kernel() -> None:
    """51 sessions fill one block; a refused duplicate left a second, empty
    one linked (luo_session_insert() grows first): kho_block_set_restore()
    rejects it, luo_early_startup() fails, liveupdate_early_init() panics."""
    sessions = [hsession(f"s{i:02d}", 0) for i in range(51)]
    snap = outgoing(sessions, source="predicted", blocks=chain(51, 0))
    (f,) = only(snap)
    assert (f.code, f.severity, f.address) == ("next-kernel-panic", "error", 0x10000)
    assert f.message.startswith("once frozen, the next kernel will panic at boot")
    assert "rejects the session chain block 2 of 2 at 0x11000: its entry count is 0 (" in f.message
    assert '"luo: Block contains invalid entry count: 0"' in f.message
    assert "The incoming tree failed to initialize properly [-22]" in f.message
    assert "All 51 sessions are lost." in f.message
    assert "luo_session_insert() grows it before its duplicate-name check" in f.message
    assert not preflight(snap).accepted


def test_frozen_block_count_above_capacity() -> None:
    """Would catch: a block whose count exceeds its capacity accepted, though
    luo_session_deserialize() panics on it."""
    snap = outgoing([hsession("a", 1)], blocks=chain(52))
    (f,) = only(snap)
    assert f.code == "next-kernel-panic"
    assert "its entry count is 52, above the 51 a block holds" in f.message
    # Not the 7.2.13 bug's signature: no hint about it.
    assert "duplicate-name" not in f.message


def test_cyclic_session_chain() -> None:
    """Would catch: a cyclic block chain not predicted to panic the next kernel."""
    c = chain(1)
    c.fault, c.fault_address = "cycle in the block chain", 0x10000
    snap = outgoing([hsession("a", 1)], blocks=c)
    (f,) = only(snap)
    assert f.code == "next-kernel-panic" and '"luo: Block set is corrupted"' in f.message


def test_abi_mismatch_with_the_next_kernel() -> None:
    """Would catch: a next kernel expecting another LUO ABI accepted."""
    snap = outgoing([hsession("a", 1)], next_kernel=next_kernel(abi="luo-v6"))
    (f,) = only(snap)
    assert f.code == "next-kernel-panic"
    assert "expects LUO ABI 'luo-v6', this kernel writes 'luo-v5'" in f.message


def test_duplicate_session_names_fail_deserialization() -> None:
    """Would catch: duplicate names not predicted to fail the next kernel's deserialization with
    EEXIST, and which sessions it leaves."""
    snap = outgoing([hsession("a"), hsession("b"), hsession("a"), hsession("c")])
    dup, f = sorted(only(snap), key=lambda x: x.code)
    assert (dup.code, dup.session) == ("duplicate-session-name", "a")  # in memory already
    assert (f.code, f.session) == ("next-kernel-eio", "a")
    assert "(-EEXIST, " in f.message and "Failed to insert session [a] -17" in f.message
    assert "every open of /dev/liveupdate returns EIO" in f.message
    assert "Sessions it leaves listed: 'a', 'b'; never deserialized: 'c'." in f.message


def test_unknown_handler_in_the_next_kernel() -> None:
    """Would catch: a file whose handler the next kernel lacks not predicted to fail with ENOENT."""
    snap = outgoing([hsession("a"), hsession("b", handler="vfio-v1")])
    (f,) = only(snap)
    assert (f.code, f.session) == ("next-kernel-eio", "b")
    assert "-ENOENT" in f.message and "No registered handler for compatible 'vfio-v1'" in f.message
    # Its own session was inserted before the files failed: it stays, empty.
    assert "Sessions it leaves listed: 'a', 'b'; never deserialized: none." in f.message


def test_next_kernel_without_the_handler() -> None:
    """Would catch: a next kernel without the memfd handler accepted, or its loss pinned on the
    wrong file."""
    snap = outgoing([hsession("a", 2)], next_kernel=next_kernel(handlers=[]))
    (f,) = only(snap)
    # Lost with its session and token: the first file whose handler is missing.
    assert (f.code, f.session, f.token) == ("next-kernel-eio", "a", 0x100)


def test_next_kernel_without_luo() -> None:
    """Would catch: a next kernel built without LUO accepted."""
    snap = outgoing([hsession("a")], next_kernel=next_kernel(has_luo=False))
    (f,) = only(snap)
    assert f.code == "next-kernel-no-luo" and "built without CONFIG_LIVEUPDATE" in f.message


def test_next_kernel_with_another_layout() -> None:
    """Would catch: a next kernel that lays out luo_file_ser differently accepted (and the same
    layout refused)."""
    layout = (64, (("compatible", 0, 48), ("data", 384, 8), ("token", 448, 8)))
    other = (72, (("compatible", 0, 56), ("data", 448, 8), ("token", 512, 8)))
    snap = outgoing(
        [hsession("a")],
        ser_layouts={"struct luo_file_ser": layout},
        next_kernel=next_kernel(layouts={"struct luo_file_ser": other}),
    )
    (f,) = only(snap)
    assert (
        f.code == "next-kernel-abi"
        and "struct luo_file_ser differently (size 72, here 64)" in f.message
    )
    same = outgoing(
        [hsession("a")],
        ser_layouts={"struct luo_file_ser": layout},
        next_kernel=next_kernel(layouts={"struct luo_file_ser": layout}),
    )
    assert only(same) == []


def test_bad_file_block_count() -> None:
    """Would catch: a file block with a bad count not predicted to fail with EINVAL."""
    s = hsession("a", 2)
    assert s.chain is not None
    s.chain.blocks[0].count = 0
    s.files = []
    (f,) = only(outgoing([s]))
    assert f.code == "next-kernel-eio" and "-EINVAL" in f.message
    assert "the file chain of session 'a' block 1 of 1" in f.message


def test_file_count_disagrees_with_entries() -> None:
    """Would catch: a file count that disagrees with the entries not predicted to fail
    deserialization."""
    (f,) = only(outgoing([hsession("a", 2, file_count=3)]))
    assert f.code == "next-kernel-eio"
    assert "File count mismatch: expected 3, found 2" in f.message


def test_files_without_blocks_only_warn_and_are_lost() -> None:
    """Would catch: files counted without blocks reported as a failure instead of the kernel's WARN
    and silent loss."""
    s = hsession("a", 0, file_count=2)
    (f,) = only(outgoing([s]))
    assert (f.code, f.session) == ("next-kernel-drops", "a")
    assert "loses its 2 files" in f.message and "only WARNs" in f.message


def test_uncounted_sessions_are_dropped_silently() -> None:
    """Would catch: sessions written past a block's count not reported as silently dropped by the
    next kernel."""
    c = chain(2)
    c.blocks[0].uncounted = ["c", "d"]
    snap = outgoing([hsession("a"), hsession("b")], blocks=c)
    c_, d_ = only(snap)
    assert [(f.code, f.session) for f in (c_, d_)] == [
        ("next-kernel-drops", "c"),
        ("next-kernel-drops", "d"),
    ]
    assert "silently skip session 'c': block 1 at 0x10000 has an entry count of 2" in c_.message
    assert "the 2 written past it ('c', 'd')" in d_.message


def test_freeze_with_every_slot_used_goes_ahead() -> None:
    """Would catch: an off-by-one in luo_session_serialize()'s room check:
    51 sessions fill one block's 51 slots exactly, and the freeze succeeds."""
    snap = outgoing([hsession(f"s{i}", 0) for i in range(51)], source="predicted", blocks=chain(51))
    assert only(snap) == [] and preflight(snap).accepted


def test_freeze_without_room_refuses_the_kexec() -> None:
    """Would catch: a freeze with no room for its sessions not predicted to fail the kexec with
    ENOSPC."""
    snap = outgoing([hsession(f"s{i}", 0) for i in range(52)], source="predicted", blocks=chain(51))
    (f,) = only(snap)
    assert f.code == "kexec-will-fail" and "ENOSPC" in f.message


def test_next_command_line() -> None:
    """Would catch: a next command line without liveupdate=on accepted (this kernel's KHO
    default, kho_enable's initial value, is on, as in every fixture kernel but one)."""
    snap = outgoing([hsession("a")], next_cmdline="console=ttyS0 quiet", kho_default=True)
    assert [f.code for f in only(snap)] == ["next-kernel-no-luo"]
    snap = outgoing([hsession("a")], next_cmdline="console=ttyS0 liveupdate=on", kho_default=True)
    assert only(snap) == []


def test_unknown_kho_default_is_not_an_accept() -> None:
    """Would catch: a next command line without kho= accepted while the KHO default it falls back
    on is unknown (kho_enable = IS_ENABLED(CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT): off on a build
    without the option, and luo_early_startup() then disables LUO); with kho=on it decides
    nothing."""
    snap = outgoing([hsession("a")], next_cmdline="console=ttyS0 liveupdate=on")
    (f,) = only(snap)
    assert f.code == "next-kernel-unknown" and "KHO default" in f.message
    snap = outgoing([hsession("a")], next_cmdline="console=ttyS0 liveupdate=on kho=on")
    assert only(snap) == []


def test_kho_abi_refused_before_anything_is_read() -> None:
    """Would catch: a next kernel with another KHO_FDT_COMPATIBLE accepted, reported as a panic, or
    reported with the LUO checks that never run once kho_populate() disabled KHO revival (the
    kho-v5 fixture's next kernel: no panic, every retrieve ENOENT)."""
    snap = outgoing(
        [hsession("a")],
        blocks=chain(0),  # a block the restore would reject
        kho_abi="kho-v4",
        next_kernel=next_kernel(kho_abi="kho-v5", abi="luo-v9", kho_default=True),
    )
    (f,) = only(snap)
    assert f.code == "next-kernel-kho-abi"
    assert "incompatible with 'kho-v5'" in f.message and "panic" not in f.message


def test_kho_off_stops_before_the_abi() -> None:
    """Would catch: item 11 of issue #28: a next kernel with KHO off and another LUO ABI reported
    as a panic, though luo_early_startup() returns before reading anything when KHO is off.
    Synthetic: no committed kernel has another LUO ABI than luo-v5 (the kho-v5 kernel changes
    KHO's, which kho_populate() checks even before KHO's on/off matters)."""
    snap = outgoing(
        [hsession("a")],
        next_cmdline="liveupdate=on kho=off",
        next_kernel=next_kernel(abi="luo-v9", kho_default=True),
    )
    (f,) = only(snap)
    assert f.code == "next-kernel-no-luo" and "kho=off turns KHO off" in f.message


def test_builtin_command_line() -> None:
    """Would catch: a built-in command line (x86 CONFIG_CMDLINE) ignored: with
    CONFIG_CMDLINE_OVERRIDE it replaces the one given (here: no liveupdate=on, LUO stays off);
    appended, the given words come last and win; unknown, both are weighed and a difference is
    not an accept."""
    given = "console=ttyS0 liveupdate=on"
    for override, codes in ((True, ["next-kernel-no-luo"]), (False, [])):
        nk = next_kernel(kho_default=True, builtin_cmdline="quiet", cmdline_override=override)
        snap = outgoing([hsession("a")], next_cmdline=given, next_kernel=nk)
        assert [f.code for f in only(snap)] == codes, override
    nk = next_kernel(kho_default=True, builtin_cmdline="quiet liveupdate=off")
    snap = outgoing([hsession("a")], next_cmdline=given, next_kernel=nk)
    (f,) = only(snap)
    assert f.code == "next-kernel-unknown" and "CONFIG_CMDLINE_OVERRIDE" in f.message
    assert "liveupdate=off turns LUO off" in f.message
    # Unknown whether it replaces, as the reader records it without a .config,
    # but both ways boot with LUO and KHO on: nothing to verify.
    nk = next_kernel(
        kho_default=True,
        builtin_cmdline="quiet liveupdate=on",
        unknown={"cmdline_override": "whether its built-in command line replaces the one given"},
    )
    snap = outgoing([hsession("a")], next_cmdline=given, next_kernel=nk)
    assert only(snap) == []


def test_pending_incoming_checked_against_this_kernel() -> None:
    """Would catch: pending incoming data this kernel will fail to deserialize not reported before
    the first open."""
    ho = Handover(
        "incoming",
        "pending",
        None,
        0x10000,
        chain(2),
        [hsession("a"), hsession("b", handler="vfio-v1")],
    )
    snap = snapshot(ho)
    (f,) = only(snap)
    assert (f.code, f.session) == ("deserialize-will-fail", "b")
    assert f.message.startswith("the first open of /dev/liveupdate in this kernel will fail")


def test_preflight_ignores_incoming_only_sessions() -> None:
    """Would catch: preflight refusing a handover because of incoming sessions the kexec does not
    send."""
    snap = outgoing([hsession("a")])
    snap.findings.append(Finding("leaked-file-reference", "error", "x", "old", 1, 0x1))
    snap.sessions.append(Session(0x9000, "old", "incoming", True, False, 1))
    assert preflight_findings(snap) == [] and preflight(snap).accepted


def test_memfd_with_unknown_seals_fails_its_retrieve_only() -> None:
    """Would catch: a memfd with seals the next kernel refuses reported as failing the whole
    handover instead of its own retrieve."""
    snap = outgoing([hsession("a", 2)])
    snap.sessions[0].files = [
        PreservedFile(
            0x5000,
            0x100,
            "memfd-v2",
            0xFFFF0000,
            True,
            0x1000,
            serialized_data=0x9100,
            memfd={"size": 4096, "pos": 0, "nr_folios": 1, "seals": 0x40, "flags": 0},
        ),
        PreservedFile(
            0x5040,
            0x101,
            "memfd-v2",
            0xFFFF0000,
            True,
            0x2000,
            serialized_data=0x9101,
            memfd={"size": 4096, "pos": 0, "nr_folios": 1, "seals": 0x3F, "flags": 0},
        ),
    ]
    snap.sessions[0].file_count = 2
    (f,) = only(inspect(snap))
    assert (f.code, f.session, f.token, f.address) == ("retrieve-will-fail", "a", 0x100, 0x9100)
    assert "EOPNOTSUPP" in f.message and "seals 0x40" in f.message


def test_incoming_side_does_not_decide_preflight() -> None:
    """Data handed to this kernel is not handed on: its failures are
    findings, but not the next handover's."""
    ho = Handover(
        "incoming", "pending", None, 0x10000, chain(1), [hsession("old", handler="vfio-v1")]
    )
    snap = snapshot(ho)
    assert [f.code for f in only(snap)] == ["deserialize-will-fail"]
    assert preflight_findings(snap) == [] and preflight(snap).accepted


def test_preserve_context_names_kexec_tools_option() -> None:
    """Would catch: item 12 of issue #28: the preserve-context finding naming kexec-tools' -p,
    which is --load-panic; the option is --load-preserve-context (oracle: the installed
    kexec-tools' own --help)."""
    from luo_drgn.model import KexecImage

    usage = subprocess.run(["kexec", "--help"], capture_output=True, text=True).stdout
    assert re.search(r"^\s*-p, --load-panic\b", usage, re.M)
    assert re.search(r"^\s*--load-preserve-context\b", usage, re.M)
    image = KexecImage(0xFFFF0000, True, True, 0x1000)
    snap = outgoing([hsession("a")], kexec_image=image, kexec_read=True, kho_default=True)
    (f,) = only(snap)
    assert f.code == "kexec-image-no-handover"
    assert "kexec --load-preserve-context" in f.message and "-p" not in f.message.split()
