# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers and collector on the layouts no kernel here has: synthetic drgn
programs of the v6 series, 6.19.0, 6.19.y/7.0 and 7.1, populated with the
state in :mod:`synthetic` (its ground truth)."""

from __future__ import annotations

import pytest

from luo_drgn import helpers as h
from luo_drgn.analysis import inspect
from luo_drgn.collector import collect
from luo_drgn.helpers.liveupdate_layout import luo_layout
from luo_drgn.model import Snapshot, Target
from tests.support.synthetic import (
    FLB_NAME,
    GLOBALS,
    INCOMING,
    LAYOUTS,
    MEMFD,
    OUTGOING,
    TASKS,
    Kernel,
    populate,
)

ALL = sorted(LAYOUTS)
INT_STATUS = {"7.0", "7.1"}  # layouts that can keep a failed retrieve's errno

# The members, in order, of each layout's LUO structures as the kernels
# define them: transcribed from the project's reference (shared/reference/
# luo-layouts.md, gathered from mainline commits and the v6 series' review
# thread), not from luo_drgn/helpers/liveupdate_layout.py, which describes the same kernels and
# could be wrong with the synthetic programs built after it.
_FILE_70 = ["fh", "file", "serialized_data", "private_data", "retrieve_status"]
_SESSION_619 = ["name", "ser", "list", "retrieved", "file_set", "mutex"]
_HEADER = ["count", "list", "rwsem", "header_ser", "ser", "active"]
KERNEL_MEMBERS: dict[str, dict[str, list[str]]] = {
    "v6": {
        "luo_file": ["fh", "file", "serialized_data", "retrieved", "mutex", "list", "token"],
        "luo_session": [
            *("name", "files_list", "ser", "count", "list", "retrieved", "mutex"),
            *("files", "pgcnt"),
        ],
        "luo_session_header": _HEADER,
        "luo_session_global": ["incoming", "outgoing", "deserialized"],
        "luo_global_t": ["enabled", "fdt_out", "fdt_in", "liveupdate_num"],
        "luo_session_header_ser!": ["pgcnt", "count"],
        "luo_session_ser!": ["name", "files", "pgcnt", "count"],
        "luo_file_ser!": ["compatible", "data", "token"],
    },
    "6.19": {
        "luo_file": [*_FILE_70[:4], "retrieved", "mutex", "list", "token"],
        "luo_file_set": ["files_list", "files", "count"],
        "luo_session": _SESSION_619,
        "luo_session_header": _HEADER,
        "luo_session_global": ["incoming", "outgoing"],
        "luo_global_t": ["enabled", "fdt_out", "fdt_in", "liveupdate_num"],
        "luo_session_header_ser!": ["count"],
        "luo_session_ser!": ["name", "file_set_ser"],
        "luo_file_set_ser!": ["files", "count"],
        "luo_file_ser!": ["compatible", "data", "token"],
    },
    "7.0": {
        "luo_file": [*_FILE_70, "mutex", "list", "token"],
        "luo_file_set": ["files_list", "files", "count"],
        "luo_session": _SESSION_619,
        "liveupdate_file_handler": ["ops", "compatible", "list", "flb_list"],
        "luo_flb_private": ["list", "outgoing", "incoming", "users", "initialized"],
    },
    "7.1": {
        "luo_file": [*_FILE_70, "mutex", "list", "token"],
        "luo_session": _SESSION_619,
        "luo_flb_private": ["list", "outgoing", "incoming", "users", "initialized"],
    },
}
# The kernels' member types where the layouts differ in type, not name.
KERNEL_TYPES = {
    ("v6", "luo_file", "retrieved"): "bool",
    ("6.19", "luo_file", "retrieved"): "bool",
    ("7.0", "luo_file", "retrieve_status"): "int",
    ("7.0", "luo_flb_private_state", "count"): "long",
    ("7.0", "luo_flb_private_state", "retrieved"): "bool",
    ("7.1", "luo_flb_private_state", "count"): "refcount_struct",  # refcount_t
    ("7.1", "luo_flb_private_state", "retrieved"): "bool",
}
# Which layouts have FLBs and the luo_preserved_files xarray.
KERNEL_HAS = {"flb": {"7.0", "7.1"}, "luo_preserved_files": {"7.1"}}


def test_synthetic_layouts_are_the_kernels() -> None:
    """Would catch: a synthetic layout built with a member the kernel of that
    version does not have, in another order or of another type, so that
    every test on it checks luo-drgn against its own mistake."""
    for layout, structs in KERNEL_MEMBERS.items():
        for name, members in structs.items():
            assert [m for m, _ in LAYOUTS[layout][name]] == members, (layout, name)
    for (layout, name, member), type_name in KERNEL_TYPES.items():
        assert dict(LAYOUTS[layout][name])[member] == type_name, (layout, name, member)
    for layout in LAYOUTS:
        assert ("luo_flb_private" in LAYOUTS[layout]) == (layout in KERNEL_HAS["flb"])
        assert ("luo_preserved_files" in GLOBALS[layout]) == (
            layout in KERNEL_HAS["luo_preserved_files"]
        )


def expected_status(layout: str, status: int) -> int:
    # A bool "retrieved" cannot keep a failure: it reads as never attempted.
    return status if layout in INT_STATUS or status >= 0 else 0


def snapshot_of(k: Kernel) -> Snapshot:
    return inspect(collect(k.prog, Target("vmcore", None, None, []), accounting=False))


@pytest.fixture(params=ALL)
def layout(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def kernel(layout: str) -> Kernel:
    return populate(layout)


def test_layout_detected(kernel: Kernel, layout: str) -> None:
    """Would catch: an older layout (v6 to 7.1) misdetected, or its fields read as another's."""
    got = luo_layout(kernel.prog)
    assert got.present and got.generation == layout and got.differences == ()
    assert got.file_set == (layout != "v6")
    assert got.retrieve_field == ("retrieve_status" if layout in INT_STATUS else "retrieved")
    assert got.preserved_xarray == (layout == "7.1")
    assert got.flb == (layout in INT_STATUS)
    assert not got.block_sets


def test_layout_probe_is_cached(kernel: Kernel) -> None:
    """Would catch: the layout probed again on every call instead of cached in prog.cache."""
    assert luo_layout(kernel.prog) is luo_layout(kernel.prog)


def test_sessions_and_files(kernel: Kernel, layout: str) -> None:
    """Would catch: an older layout's sessions and files walked or read wrong."""
    for direction, state in (("outgoing", OUTGOING), ("incoming", INCOMING)):
        sessions = list(h.luo_for_each_session(kernel.prog, direction))
        assert [bytes(s.name.string_()).decode() for s in sessions] == list(state)
        assert h.luo_session_header_count(kernel.prog, direction) == len(state)
        for s, files in zip(sessions, state.values()):
            got = list(h.luo_session_for_each_file(s))
            assert h.luo_session_file_count(s) == len(files)
            assert [f.token.value_() for f in got] == [x.token for x in files]
            for f, x in zip(got, files):
                assert h.luo_file_retrieve_status(f) == expected_status(layout, x.status)
                if x.refcount is None:
                    assert not f.file
                else:
                    assert h.file_refcount(f.file) == x.refcount


def test_serialized(kernel: Kernel) -> None:
    """Would catch: an older layout's serialized sessions read wrong."""
    assert h.luo_outgoing_frozen(kernel.prog) is True
    ser = list(h.validate_luo_for_each_serialized_session(kernel.prog, "outgoing"))
    assert [s.name.string_().decode() for s in ser] == list(OUTGOING)
    for s, files in zip(ser, OUTGOING.values()):
        entries = list(h.validate_luo_session_ser_for_each_file(s))
        assert [e.token.value_() for e in entries] == [x.token for x in files]
        assert {e.compatible.string_().decode() for e in entries} == {MEMFD}


def test_handlers(kernel: Kernel) -> None:
    """Would catch: an older layout's handler list walked wrong."""
    assert [
        bytes(x.compatible.string_()).decode() for x in h.luo_for_each_file_handler(kernel.prog)
    ] == [MEMFD]


@pytest.mark.parametrize("layout", sorted(INT_STATUS))
def test_flbs(layout: str) -> None:
    """Would catch: an older layout's FLBs or their counts read wrong."""
    kernel = populate(layout)
    (flb,) = h.luo_for_each_flb(kernel.prog)
    users = sum(len(v) for v in OUTGOING.values())
    assert flb.compatible.string_().decode() == FLB_NAME
    assert h.luo_flb_counts(flb) == (users, 0)


def test_preserved_index() -> None:
    """Would catch: 7.1's preserved-file index walked wrong."""
    kernel = populate("7.1")
    indexed = sorted(f.value_() for _, f in h.luo_for_each_preserved_file(kernel.prog))
    in_lists = sorted(
        f.file.value_()
        for d in ("outgoing", "incoming")
        for s in h.luo_for_each_session(kernel.prog, d)
        for f in h.luo_session_for_each_file(s)
        if f.file
    )
    assert indexed == in_lists and len(indexed) == sum(
        1 for st in (OUTGOING, INCOMING) for fs in st.values() for x in fs if x.refcount is not None
    )


def test_collector_reads_the_same(kernel: Kernel, layout: str) -> None:
    """Would catch: the collector reading an older layout otherwise than the helpers do."""
    snap = snapshot_of(kernel)
    assert snap.target.layout == layout
    assert snap.luo.state == "enabled" and snap.luo.liveupdate_num == 1
    assert snap.luo.frozen is True and snap.errors == []
    assert [(s.direction, s.name) for s in snap.sessions] == (
        [("outgoing", n) for n in OUTGOING] + [("incoming", n) for n in INCOMING]
    )
    for s in snap.sessions:
        truth = (OUTGOING if s.direction == "outgoing" else INCOMING)[s.name]
        assert s.retrieved == (s.direction == "incoming")
        assert [(f.token, f.retrieve_status, f.refcount) for f in s.files] == [
            (x.token, expected_status(layout, x.status), x.refcount) for x in truth
        ]
        assert all(f.handler == MEMFD and f.handler_registered for f in s.files)
        if s.direction == "outgoing":
            assert all(f.frozen for f in s.files)
    assert [x.name for x in snap.serialized_outgoing] == list(OUTGOING)
    assert (snap.preserved_index is None) == (layout != "7.1")
    assert len(snap.flbs) == (1 if layout in INT_STATUS else 0)


def test_checks_on_healthy_state(kernel: Kernel, layout: str) -> None:
    """Would catch: a false alarm on an older layout's healthy state."""
    snap = snapshot_of(kernel)
    serious = {
        (f.code, f.session, f.token) for f in snap.findings if f.severity in ("error", "warning")
    }
    # The failed retrieve, where the layout can record one; and gamma's
    # 0x71, never retrieved in a retrieved session, which finishing it
    # would discard (luo_file_finish() calls .finish() with it unretrieved).
    discards = {
        ("finish-discards", name, None)
        for name, specs in INCOMING.items()
        if any(x.status == 0 and x.refcount is None for x in specs)
    }
    assert discards == {("finish-discards", "gamma", None)}
    failed = {("retrieve-failed", "gamma", 0x72)} if layout in INT_STATUS else set()
    assert serious == failed | discards
    if layout != "7.1":
        assert any("no luo_preserved_files index" in n for n in snap.notes)


def test_cycle_in_v6_files_list_is_reported() -> None:
    """Would catch: a cycle in a v6 file list followed instead of reported."""
    k = populate("v6")
    s = next(iter(h.luo_for_each_session(k.prog, "outgoing")))
    first = next(iter(h.luo_session_for_each_file(s)))
    # Point the first file's next at itself: a walk that trusts it loops.
    k.set(first.list.address_, "list_head", "next", first.list.address_)
    snap = snapshot_of(k)
    alpha = snap.session("alpha")
    assert not alpha.files_complete and len(alpha.files) == 1
    assert [(f.code, f.session) for f in snap.findings if f.code == "corrupt-structure"] == [
        ("corrupt-structure", "alpha")
    ]


def test_flb_count_mismatch_on_7_0() -> None:
    """Would catch: 7.0's FLB counts misread, or a count above its files reported as an error."""
    # Fewer users counted than files using the FLB is an error
    # (luo_flb_file_preserve_one() counts each); more is not by itself:
    # liveupdate_flb_get_outgoing() holds references too.
    k = populate("7.0")
    (flb,) = h.luo_for_each_flb(k.prog)
    users = h.luo_flb_counts(flb)[0]
    k.set(flb.value_(), "liveupdate_flb", "private.outgoing.count", users - 1)
    snap = snapshot_of(k)
    assert [f.code for f in snap.findings if f.severity == "error"] == ["flb-count-mismatch"]
    k.set(flb.value_(), "liveupdate_flb", "private.outgoing.count", users + 2)
    snap = snapshot_of(k)
    assert [f.code for f in snap.findings if f.severity == "error"] == []
    assert any("2 outgoing reference(s) beyond its files" in n for n in snap.notes)


def test_no_flb_registered_before_7_2() -> None:
    """A 7.0 kernel whose FLB list is empty has no serialized FLB arrays to
    read (7.2's): nothing is reported, no walk error either."""
    k = populate("7.0")
    k.list_init(k.addr_of(k.glob("luo_flb_global"), "luo_flb_global", "list"))
    snap = snapshot_of(k)
    assert snap.flbs == [] and snap.serialized_flbs == {}
    assert snap.errors == []


def test_unexpected_mix_is_named() -> None:
    """Would catch: a layout mix matching no release named as one without saying what differs."""
    # A 7.0-like kernel whose FLB support was configured out.
    k = Kernel("7.0")
    del k.globals["luo_flb_global"]
    got = luo_layout(k.prog)
    # As near 6.19 (but for retrieve_status) as 7.0 (but for FLBs): the
    # newer wins, and the name says what differs.
    assert got.generation == "7.0" and got.differences == ("no flb",)
    assert got.name == "7.0 (nearest; differs: no flb)"


# -- states beyond the frozen/retrieved default ------------------------------------


def test_not_frozen(layout: str) -> None:
    """Before the kexec nothing was serialized: no entry count, no names."""
    k = populate(layout, frozen=False)
    assert h.luo_outgoing_frozen(k.prog) is False
    snap = snapshot_of(k)
    assert snap.luo.frozen is False and snap.serialized_outgoing == []
    outgoing = [f for s in snap.sessions if s.direction == "outgoing" for f in s.files]
    assert len(outgoing) == 3 and all(f.frozen is False for f in outgoing)
    assert not any(f.code == "serialization-mismatch" for f in snap.findings)


def test_pending_incoming(layout: str) -> None:
    """Handed over, /dev/liveupdate not opened yet: only the serialized
    entries exist, and they say what deserialization will create."""
    k = populate(layout, pending=True)
    assert h.luo_incoming_deserialized(k.prog) is False
    pending = list(h.luo_for_each_pending_incoming_session(k.prog))
    assert [bytes(p.name.string_()).decode() for p in pending] == list(INCOMING)
    for p, files in zip(pending, INCOMING.values()):
        assert [e.token.value_() for e in h.validate_luo_session_ser_for_each_file(p)] == [
            x.token for x in files
        ]
    snap = snapshot_of(k)
    assert [s.direction for s in snap.sessions] == ["outgoing"] * len(OUTGOING)
    assert snap.luo.incoming_deserialized is False and snap.errors == []
    assert [(p.name, [f.token for f in p.files]) for p in snap.pending_incoming] == [
        (name, [x.token for x in files]) for name, files in INCOMING.items()
    ]
    assert {(f.code, f.severity, f.session) for f in snap.findings} == {
        ("not-retrieved", "info", name) for name in INCOMING
    }


def accounted(k: Kernel) -> Snapshot:
    return inspect(collect(k.prog, Target("vmcore", None, None, [])))


def test_reference_accounting(layout: str) -> None:
    """The one-pass holder scan on every layout: each struct file's holders
    are its fd slots and LUO, and they explain its whole count."""
    snap = accounted(populate(layout))
    assert snap.holders_scanned and snap.errors == []
    for s in snap.sessions:
        truth = (OUTGOING if s.direction == "outgoing" else INCOMING)[s.name]
        for f, x in zip(s.files, truth):
            if x.refcount is None:
                assert f.holders == [] and f.explained_refs is None
                continue
            fds = sorted((h_.pid, h_.fd, h_.comm) for h_ in f.holders if h_.kind == "fd")
            assert fds == sorted((pid, fd, TASKS[pid]) for pid, fd in x.fds)
            assert [h_.kind for h_ in f.holders].count("luo") == 1
            assert f.refcount == f.explained_refs == x.refcount
    assert not any("reference" in f.code for f in snap.findings)


def test_reference_leak_and_underflow(layout: str) -> None:
    """Would catch: an older layout's reference leak or underflow missed."""
    k = populate(layout)
    alpha = next(iter(h.luo_for_each_session(k.prog, "outgoing")))
    first, second = list(h.luo_session_for_each_file(alpha))[:2]
    # f_ref stores count - 1.  0x10 has 3 holders: 2 references are one too
    # few.  0x11 has only LUO: 2 references are one too many.
    k.set(first.file.value_(), "file", "f_ref.refcnt.counter", 1)
    k.set(second.file.value_(), "file", "f_ref.refcnt.counter", 1)
    errors = {
        (f.code, f.severity, f.session, f.token)
        for f in accounted(k).findings
        if f.severity == "error"
    }
    assert errors == {
        ("missing-file-reference", "error", "alpha", 0x10),
        ("leaked-file-reference", "error", "alpha", 0x11),
    }


def test_serialized_sessions_need_both_pointers() -> None:
    """Would catch: a pre-7.2 serialized array read while one of its two
    pointers (header_ser, ser) is NULL: a half-set header has nothing
    serialized yet, and is not read through NULL."""
    k = populate("7.1")
    assert [
        s.name.string_().decode() for s in h.validate_luo_for_each_serialized_session(k.prog)
    ] == list(OUTGOING)
    header = k.prog["luo_session_global"].outgoing
    k.set(k.prog["luo_session_global"].address_, "luo_session_global", "outgoing.ser", 0)
    assert header.header_ser and not header.ser
    assert list(h.validate_luo_for_each_serialized_session(k.prog)) == []
