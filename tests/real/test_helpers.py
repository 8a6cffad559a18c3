# SPDX-License-Identifier: LGPL-2.1-or-later
"""One test per public helper, on the real 7.2 fixtures, in the manner of
drgn's ``tests/linux_kernel/helpers``: each helper's result is compared with
the guest's log (the manifest) or with the same value reached by plain drgn
(``prog[...]``, ``list_for_each_entry``), never with luo_drgn's own output.

About 750 lines: one test per public helper, as drgn's own helper tests
are laid out, plus the drgn layer's isolation and the block readers'
equality with the helpers."""

from __future__ import annotations

import ast
import errno
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import drgn
import pytest
from drgn.helpers.linux.list import list_for_each_entry

from luo_drgn import examples
from luo_drgn import helpers as h
from luo_drgn.helpers import liveupdate_state
from luo_drgn.helpers.bounded import WalkError
from luo_drgn.helpers.liveupdate import LUO_DIRECTIONS
from tests.support.fixtures import once_per_kernel, only
from tests.support.plain import (
    expected_sessions,
    has_sessions,
    name_bytes,
    session_named,
    sessions_handed_over,
)
from tests.support.plain import files as plain_files
from tests.support.plain import sessions as plain_sessions


def all_luo_files(prog: drgn.Program) -> list[drgn.Object]:
    return [f for d in LUO_DIRECTIONS for s in plain_sessions(prog, d) for f in plain_files(s)]


LAYER = Path(h.__file__).parent
LAYER_MODULES = tuple(p.stem for p in sorted(LAYER.glob("*.py")) if p.stem != "__init__")
# What each module's helpers are named after: the kernel objects they walk,
# so none collides in drgn's CLI globals.
PREFIXES = {
    "_words": (),
    "bounded": ("list_", "xa_"),
    "cmdline": ("cmdline_",),
    "file_holders": ("file_", "files_", "io_", "iommufd_", "loop_", "sock_", "unix_"),
    "kexec": ("kexec_", "kimage_"),
    "kho": ("kho_",),
    "vfs": ("file_",),
}
LUO_PREFIXES = ("luo_", "memfd_luo_")


@pytest.mark.parametrize("module", LAYER_MODULES)
def test_all_lists_every_helper_and_only_helpers(module: str) -> None:
    """Would catch: a public helper missing from __all__, an unsorted __all__,
    a constant, class or internal function exported (drgn's CLI would import
    it into every session's globals), or a helper name without the object
    it walks as its prefix."""
    import inspect

    mod = importlib.import_module(f"luo_drgn.helpers.{module}")
    assert list(mod.__all__) == sorted(mod.__all__)
    public = {
        n
        for n, v in vars(mod).items()
        if not n.startswith("_") and inspect.isfunction(v) and v.__module__ == mod.__name__
    }
    assert public <= set(mod.__all__)
    for name in mod.__all__:
        assert inspect.isfunction(getattr(mod, name)), name
        # A validating iterator is its plain name with validate_ before it.
        plain = name[len("validate_") :] if name.startswith("validate_") else name
        assert plain.startswith(PREFIXES.get(module, LUO_PREFIXES)), name
    assert set(mod.__all__) <= set(h.__all__)


@pytest.mark.parametrize("module", LAYER_MODULES)
def test_the_drgn_layer_imports_only_drgn(module: str) -> None:
    """Would catch: a helper module importing the tool (layout, model, walk),
    which drgn's tree could not take."""
    tree = ast.parse((LAYER / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    outside = {
        name
        for name in imported
        if not name.startswith((".", "drgn"))
        and name.split(".")[0]
        not in ("__future__", "collections", "dataclasses", "struct", "typing")
    }
    assert not outside
    assert all(name.count(".") == 1 or not name.startswith(".") for name in imported)


def test_the_helpers_run_are_the_ones_asked_for() -> None:
    """Would catch: the run of these tests inside drgn
    (tests/real/test_helpers_in_drgn.py) testing luo-drgn's own helpers
    instead of drgn's copies, and so proving nothing."""
    from tests.support.helpers_from_drgn import VARIABLE

    where = "drgn.helpers.linux." if os.environ.get(VARIABLE) else "luo_drgn.helpers."
    assert h.luo_for_each_session.__module__.startswith(where)
    assert sys.modules["luo_drgn.helpers.kho"].__name__.startswith(where)


def test_luo_deserialize_status_reads_only_an_unambiguous_static() -> None:
    """Would catch: luo_session_deserialize()'s saved_err taken by a guess
    when the symbol table has two candidates: nearest by address, another
    function's saved_err.7 planted beside it read 0 (success) where the
    kernel kept -EINVAL.  With two, the status is unknown (None)."""
    prog = examples.load("deserialize-failed").program()
    assert h.luo_deserialize_status(prog) == (True, -errno.EINVAL)
    (real,) = [s for s in prog.symbols() if s.name.startswith("saved_err.")]
    prog = examples.load("deserialize-failed").program()

    def another(p: drgn.Program, name: Any, address: Any, one: bool) -> list[drgn.Symbol]:
        if name in (None, "saved_err.7") and address is None:
            kind, binding = drgn.SymbolKind.OBJECT, drgn.SymbolBinding.LOCAL
            return [drgn.Symbol("saved_err.7", real.address + 8, 4, binding, kind)]
        return []

    prog.register_symbol_finder("another", another, enable_index=0)
    assert h.luo_deserialize_status(prog) is None


def test_the_drgn_layer_runs_alone(tmp_path: Path) -> None:
    """The helpers copied out, with luo_drgn made unimportable, walk a real
    core: the drgn layer needs no other file of the tool."""
    shutil.copytree(LAYER, tmp_path / "luo_layer", ignore=shutil.ignore_patterns("__pycache__"))
    ex = examples.load("incoming")
    probe = f"""
import sys
sys.modules["luo_drgn"] = None  # any import of the tool now fails
sys.path.insert(0, {str(tmp_path)!r})
import drgn
from luo_layer import luo_for_each_session, validate_luo_session_for_each_file
prog = drgn.Program()
prog.set_core_dump({str(ex.core)!r})
prog.load_debug_info([{str(ex.debug[0])!r}])
for s in luo_for_each_session(prog, "incoming"):
    print(s.name.string_().decode(), len(list(validate_luo_session_for_each_file(s))))
"""
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    # incoming's guest retrieved vm-alpha's three files and left vm-beta's two
    # (the manifest), vm-gamma was finished, and empty had none.
    want = {s["name"]: len(s["files"]) for s in ex.manifest["expected"]["sessions"]}
    got = dict(line.rsplit(" ", 1) for line in proc.stdout.splitlines())
    assert {name: int(n) for name, n in got.items()} == want


# -- LUO-wide state --------------------------------------------------------------


@only(lambda name: name in ("outgoing", "disabled"))
def test_luo_kho_enabled(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: kho=off read as KHO enabled, or the reverse."""
    # The disabled fixture's kernel said why on its console.
    disabled = expected["disabled_reason"] or ""
    assert h.kho_is_enabled(prog) is ("KHO is disabled" not in disabled)


@only(lambda name: name in ("outgoing", "incoming", "disabled"))
def test_luo_cmdline_param(prog: drgn.Program, manifest: dict[str, Any]) -> None:
    """Would catch: the boot command line misparsed (a parameter missed, or a missing one found)."""
    (cmdline,) = [
        line.split("Command line: ", 1)[1]
        for line in manifest["kernel_log"]
        if line.startswith("Command line:")
    ][-1:]
    words = dict(w.split("=", 1) for w in cmdline.split() if "=" in w)
    assert h.cmdline_param(prog) == words["liveupdate"].encode() == b"on"
    assert h.cmdline_param(prog, "luo_scenario") == words["luo_scenario"].encode()
    assert h.cmdline_param(prog, "no_such_parameter") is None


@only(has_sessions)
def test_luo_outgoing_frozen(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: the freeze misread (a dump at machine_kexec not frozen, or the reverse)."""
    assert h.luo_outgoing_frozen(prog) is expected["frozen"]


@only(has_sessions)
def test_luo_incoming_present(prog: drgn.Program, manifest: dict[str, Any]) -> None:
    """Would catch: incoming LUO data reported in a first-boot kernel or after a kernel that
    handed no session over (second-pending's middle kernel), or missed after a kexec."""
    assert h.luo_incoming_present(prog) is sessions_handed_over(manifest)


@only(has_sessions)
def test_luo_incoming_deserialized(
    prog: drgn.Program, expected: dict[str, Any], manifest: dict[str, Any]
) -> None:
    """Would catch: the incoming data's deserialization state misread."""
    want = expected["deserialized"] if sessions_handed_over(manifest) else None
    assert h.luo_incoming_deserialized(prog) is want


# -- file handlers -----------------------------------------------------------------


@once_per_kernel(has_sessions)
def test_luo_for_each_file_handler(prog: drgn.Program) -> None:
    """Would catch: the handler list walked wrong, or returned as another type than drgn's object
    pointers."""
    handlers = list(h.luo_for_each_file_handler(prog))
    assert handlers == [prog["memfd_luo_handler"].address_of_()]
    assert handlers[0].type_.type_name() == "struct liveupdate_file_handler *"
    # What the collector reads of each: 7.2.13's memfd handler, its ops.
    assert bytes(handlers[0].compatible.string_()) == b"memfd-v2"
    assert handlers[0].ops == prog["memfd_luo_file_ops"].address_of_()


@once_per_kernel(has_sessions)
def test_luo_file_handler_for_each_flb(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a handler's FLB list walked wrong (none on 7.2.13, the test module's three on
    the full kernel)."""
    # 7.2.13's memfd handler registers no FLB of its own; the `full` kernel's
    # test module (CONFIG_LIVEUPDATE_TEST) registers three, as its console says.
    handler = prog["memfd_luo_handler"].address_of_()
    got = [bytes(f.compatible.string_()).decode() for f in h.luo_file_handler_for_each_flb(handler)]
    assert got == [x["compatible"] for x in expected.get("flbs", [])]


# -- sessions ------------------------------------------------------------------------


@only(has_sessions)
def test_luo_for_each_session(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a session walk that skips, repeats or reorders a
    session, or reads one direction's list for the other; and a header
    count that disagrees with the sessions the guest created."""
    for direction in LUO_DIRECTIONS:
        got = list(h.luo_for_each_session(prog, direction))
        want = [name_bytes(s["name"]) for s in expected_sessions(expected, direction)]
        assert got == plain_sessions(prog, direction)
        assert [s.name.string_() for s in got] == want
        assert h.luo_session_header_count(prog, direction) == len(want)


def test_direction_is_checked() -> None:
    """Would catch: a misspelt direction silently read as one of the two."""
    with pytest.raises(ValueError, match="direction must be one of"):
        list(h.luo_for_each_session(drgn.Program(), "sideways"))


@only(has_sessions)
def test_luo_session_for_each_file(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a session's file walk that skips, repeats or reorders files."""
    for d in LUO_DIRECTIONS:
        for s, want in zip(plain_sessions(prog, d), expected_sessions(expected, d)):
            got = list(h.luo_session_for_each_file(s))
            assert got == plain_files(s)
            assert [f.token.value_() for f in got] == [f["token"] for f in want["files"]]


@only(has_sessions)
def test_luo_session_file_count(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a session's file count read from the wrong field."""
    for d in LUO_DIRECTIONS:
        for s, want in zip(plain_sessions(prog, d), expected_sessions(expected, d)):
            assert h.luo_session_file_count(s) == want["file_count"]


@only(lambda name: name == "incoming")
def test_luo_session_finished(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a finished incoming session told from an unfinished one wrongly."""
    # The guest finished vm-gamma; it retrieved vm-alpha without finishing
    # it, and left vm-beta and empty alone.
    got = {
        s.name.string_().decode(): h.luo_session_finished(s)
        for s in plain_sessions(prog, "incoming")
    }
    assert got == {s["name"]: s["finished"] for s in expected["sessions"]}
    assert got == {"vm-alpha": False, "vm-beta": False, "vm-gamma": True, "empty": False}


def test_luo_session_finished_cannot_tell_an_empty_handover() -> None:
    """A session handed over with no files never restored a block set, so
    once retrieved, memory cannot tell whether it was finished: the kernel
    state after LIVEUPDATE_IOCTL_RETRIEVE_SESSION on the incoming fixture's
    'empty' session (luo_session_retrieve() sets only ->retrieved)."""
    from luo_drgn import examples

    prog = examples.load("incoming").program()
    empty = session_named(prog, "empty", "incoming")
    assert h.luo_session_finished(empty) is False  # not retrieved: not finished
    flag = empty.retrieved
    prog.add_memory_segment(flag.address_, 1, lambda a, n, off, phys: b"\x01"[off : off + n])
    assert bool(empty.retrieved) is True
    assert h.luo_session_finished(empty) is None


# -- preserved files (struct luo_file) ------------------------------------------------


def expected_files(expected: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for d in LUO_DIRECTIONS for s in expected_sessions(expected, d) for f in s["files"]]


@only(has_sessions)
def test_validate_luo_session_for_each_file_row(
    prog: drgn.Program, expected: dict[str, Any]
) -> None:
    """Would catch: the one-read rows the collector takes its files from
    misreading what the guest preserved: a token, the handler, whether the
    file is still there and its inode, or the memfd state the serialized
    handle points to (its size, as the guest wrote the memfd)."""
    handler = prog["memfd_luo_handler"].address_of_().value_()
    rows = [
        row
        for d in LUO_DIRECTIONS
        for s in h.luo_for_each_session(prog, d)
        for row in h.validate_luo_session_for_each_file_row(s)
    ]
    want = expected_files(expected)
    assert [r.token for r in rows] == [f["token"] for f in want]
    assert all(r.fh == handler for r in rows)
    assert [bool(r.file) for r in rows] == [f["has_file"] for f in want]
    assert [r.retrieve_status for r in rows] == [f["retrieve_status"] for f in want]
    for row, f in zip(rows, want):
        if f["has_file"]:
            assert h.file_row(prog, row.file).ino == f["ino"]
        if f["retrieve_status"] == 0:
            state = h.memfd_luo_ser_scalars(prog, row.serialized_data)
            assert state is not None and state["size"] == f["size"]


@only(has_sessions)
def test_luo_file_retrieve_status(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: retrieve statuses misread."""
    statuses = [h.luo_file_retrieve_status(f) for f in all_luo_files(prog)]
    assert statuses == [f["retrieve_status"] for f in expected_files(expected)]


@only(lambda name: name == "fault-negative-retrieve")
def test_luo_file_retrieve_status_keeps_errno(prog: drgn.Program) -> None:
    """Would catch: a negative retrieve status (an errno) flattened to a boolean."""
    f = next(
        f
        for f in plain_files(session_named(prog, "vm-alpha", "incoming"))
        if f.token.value_() == 0x102
    )
    assert h.luo_file_retrieve_status(f) == -5  # -EIO, as written


# -- serialized data --------------------------------------------------------------


@only(lambda name: name in ("outgoing", "frozen"))
def test_luo_read_ser(prog: drgn.Program) -> None:
    """Would catch: a physical read of a serialized structure unlike the bytes in memory."""
    f = plain_files(session_named(prog, "vm-alpha", "outgoing"))[0]
    pa = f.serialized_data.value_()
    ser = h.kho_read_phys(prog, "struct memfd_luo_ser", pa)
    assert ser.type_.type_name() == "struct memfd_luo_ser" and ser.address_ is None
    raw = prog.read(pa, ser.type_.size, True)
    assert ser.to_bytes_() == raw
    # The same through the direct map, where drgn can translate.
    virt = drgn.Object(prog, "struct memfd_luo_ser", address=pa + prog["page_offset_base"].value_())
    assert ser.size == virt.size and ser.nr_folios == virt.nr_folios


@only(lambda name: name in ("frozen", "outgoing"))
def test_luo_for_each_serialized_session(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: serialized sessions read before the freeze wrote any, or misread after it."""
    got = list(h.validate_luo_for_each_serialized_session(prog, "outgoing"))
    if not expected["frozen"]:
        # Before the freeze nothing was written: no block has a count.
        assert got == []
        return
    assert [bytes(s.name.string_()).decode() for s in got] == [
        s["name"] for s in expected["sessions"] if s["direction"] == "outgoing"
    ]
    assert all(s.type_.type_name() == "struct luo_session_ser" for s in got)


@only(lambda name: name == "frozen")
def test_luo_session_ser_name(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a serialized session's name misread."""
    names = [bytes(s.name.string_()) for s in h.validate_luo_for_each_serialized_session(prog)]
    assert names == [s["name"].encode() for s in expected["sessions"]]


@only(lambda name: name in ("frozen", "incoming-pending"))
def test_luo_session_ser_file_set(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a serialized session's file block address or count misread."""
    direction = "outgoing" if expected["frozen"] else "incoming"
    for ser, want in zip(
        h.validate_luo_for_each_serialized_session(prog, direction), expected["sessions"]
    ):
        pa, count = h.luo_session_ser_file_set(ser)
        assert count == len(want["files"])
        # The first block's header sits at pa: its count is this session's.
        assert (pa == 0) == (count == 0)
        if pa:
            assert int.from_bytes(prog.read(pa + 8, 8, True), "little") == count


@only(lambda name: name in ("frozen", "incoming-pending"))
def test_luo_session_ser_for_each_file(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a serialized session's file entries walked wrong."""
    direction = "outgoing" if expected["frozen"] else "incoming"
    for ser, want in zip(
        h.validate_luo_for_each_serialized_session(prog, direction), expected["sessions"]
    ):
        entries = list(h.validate_luo_session_ser_for_each_file(ser))
        assert [e.token.value_() for e in entries] == [f["token"] for f in want["files"]]


@only(lambda name: name in ("frozen", "incoming-pending"))
def test_luo_file_ser_token_compatible_data(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a serialized file entry's token, compatible or data handle misread."""
    direction = "outgoing" if expected["frozen"] else "incoming"
    live = {}
    if expected["frozen"]:
        live = {
            (s.name.string_(), f.token.value_()): f.serialized_data.value_()
            for s in plain_sessions(prog, "outgoing")
            for f in plain_files(s)
        }
    for ser, want in zip(
        h.validate_luo_for_each_serialized_session(prog, direction), expected["sessions"]
    ):
        for e, wf in zip(h.validate_luo_session_ser_for_each_file(ser), want["files"]):
            assert e.token.value_() == wf["token"]
            assert bytes(e.compatible.string_()) == wf["handler"].encode()
            data = e.data.value_()
            # The memfd state it points to has the memfd's size.
            assert int.from_bytes(prog.read(data + 8, 8, True), "little") == wf["size"]
            if live:
                assert data == live[(bytes(ser.name.string_()), wf["token"])]


@only(has_sessions)
def test_luo_for_each_pending_incoming_session(
    prog: drgn.Program, expected: dict[str, Any]
) -> None:
    """Would catch: pending incoming sessions listed after deserialization, or missed before it."""
    pending = list(h.luo_for_each_pending_incoming_session(prog))
    if expected["phase"] > 1 and not expected["deserialized"]:
        assert [bytes(s.name.string_()).decode() for s in pending] == [
            s["name"] for s in expected["sessions"]
        ]
    else:
        assert pending == []


# -- luo_preserved_files -----------------------------------------------------------


@only(has_sessions)
def test_luo_for_each_preserved_file(prog: drgn.Program) -> None:
    """Would catch: the preserved-file index walked wrong, or keyed by something other than the
    inode."""
    got = list(h.luo_for_each_preserved_file(prog))
    files = [f.file for f in all_luo_files(prog) if f.file]
    assert sorted(f.value_() for _, f in got) == sorted(f.value_() for f in files)
    for index, file in got:
        # memfd's get_id() is the inode: the index is the file's inode address.
        assert file.type_.type_name() == "struct file *"
        assert index == file.f_inode.value_()


@only(has_sessions)
def test_xa_for_each_block_is_drgns_walk(prog: drgn.Program) -> None:
    """Would catch: the block xarray reader disagreeing with drgn's own xa_for_each."""
    from drgn.helpers.linux.xarray import xa_for_each

    from luo_drgn.helpers.bounded import validate_xa_for_each_block

    xa = prog["luo_preserved_files"].address_of_()
    plain = [(i, e.value_()) for i, e in xa_for_each(xa)]
    assert list(validate_xa_for_each_block(prog, xa.value_(), "index")) == plain


def test_xa_for_each_block_skips_internal_entries() -> None:
    """Would catch: an xarray slot holding an internal entry that is not a
    node (a sibling of a multi-index entry, or the retry entry a concurrent
    deletion leaves for RCU readers) yielded as if it were a struct file.
    Planted in an empty slot of the outgoing fixture's real leaf node."""
    from drgn.helpers.linux.xarray import xa_for_each

    from luo_drgn.helpers.bounded import validate_xa_for_each_block

    prog = examples.load("outgoing").program()
    xa = prog["luo_preserved_files"].address_of_()
    plain = [(i, e.value_()) for i, e in xa_for_each(xa)]
    entry = xa.xa_head.value_()
    while True:  # down the first populated slots to a leaf
        node = drgn.Object(prog, "struct xa_node", address=entry - 2)
        slots = [x.value_() for x in node.slots]
        if node.shift.value_() == 0:
            break
        entry = next(x for x in slots if x)
    used = next(i for i, x in enumerate(slots) if x)
    empty = [i for i, x in enumerate(slots) if not x and i != used]
    retry, sibling = 0x402, (used << 2) | 2  # xa_mk_internal(256), xa_mk_sibling(used)
    for slot, value in ((empty[0], retry), (empty[1], sibling)):
        data = value.to_bytes(8, "little")
        at = node.slots[slot].address_
        prog.add_memory_segment(at, 8, lambda a, n, o, p, d=data: d[o : o + n], False)
    assert [x.value_() for x in node.slots][empty[0]] == retry
    assert list(validate_xa_for_each_block(prog, xa.value_(), "index")) == plain


# -- the collector's block readers against the public helpers ----------------------


@only(has_sessions)
def test_block_readers_read_what_the_helpers_read(prog: drgn.Program) -> None:
    """The collector reads each luo_file, struct file and inode in one read
    (h.validate_luo_session_for_each_file_row() and the rest); what it unpacks must be
    what the public helpers, the reference, read member by member."""
    from drgn import Object, TypeKind

    for direction in LUO_DIRECTIONS:
        for session in h.luo_for_each_session(prog, direction):
            rows = list(h.validate_luo_session_for_each_file_row(session))
            files = list(h.luo_session_for_each_file(session))
            assert [r.address for r in rows] == [f.value_() for f in files]
            for row, f in zip(rows, files):
                assert row == (
                    f.value_(),
                    f.fh.value_(),
                    f.file.value_(),
                    f.token.value_(),
                    h.luo_file_retrieve_status(f),
                    f.serialized_data.value_(),
                    h.luo_file_mutex_owner(f) is not None,
                )
                if row.serialized_data and row.retrieve_status == 0:
                    state = h.memfd_luo_serialized_state(f)
                    assert state is not None
                    assert h.memfd_luo_ser_scalars(prog, row.serialized_data) == {
                        m.name: state.member_(m.name).value_()
                        for m in state.type_.members or ()
                        if m.name is not None
                        and m.type.unaliased_kind() in (TypeKind.INT, TypeKind.BOOL, TypeKind.ENUM)
                    }
                if not row.file:
                    continue
                file = Object(prog, "struct file *", row.file)
                file_row = h.file_row(prog, row.file)
                assert file_row == (
                    h.file_refcount(file),
                    file.f_inode.i_ino.value_(),
                    file.f_inode.i_size.value_(),
                    file.f_op.value_(),
                    file.f_inode.value_(),
                    file.f_path.mnt.value_(),
                    file.f_path.dentry.value_(),
                    file.f_inode.i_nlink.value_(),
                    None,  # seals: not asked for
                )
                # With the seals, read with the inode from shmem_inode_info.
                sealed = h.file_row(prog, row.file, seals=True)
                assert sealed == (*file_row[:-1], h.memfd_luo_file_seals(file))
                assert sealed.seals is not None  # every preserved file is a memfd
                path = h.file_fd_path(file)
                assert h.file_fd_path(file, file_row) == path
                assert h.file_fd_path(file, None) == path


# -- FLBs -----------------------------------------------------------------------------


@once_per_kernel(has_sessions)
def test_luo_for_each_flb(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: the global FLB list walked wrong, or disagreeing with its count."""
    # 7.2.13 without CONFIG_LIVEUPDATE_TEST registers no FLB; with it, the
    # test module's three (compared with plain drgn's list walk too).
    want = [x["compatible"] for x in expected.get("flbs", [])]
    got = list(h.luo_for_each_flb(prog))
    assert [bytes(f.compatible.string_()).decode() for f in got] == want
    assert prog["luo_flb_global"].count.value_() == len(want)
    plain = list(
        list_for_each_entry(
            "struct liveupdate_flb", prog["luo_flb_global"].list.address_of_(), "private.list"
        )
    )
    assert got == plain


# lib/tests/liveupdate.c: each test FLB's .preserve() returns this base plus
# its index as the data handle, its .retrieve() makes that handle the object.
TEST_FLB_MAGIC_BASE = 0xFEEDF00DCAFEBEE0


@only(lambda name: name.startswith("flb"))
def test_luo_flb_state_helpers(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Handles, objects and the incoming lifecycle of the test FLBs, against
    what the test module's code sets and its console says."""
    for i, (flb, want) in enumerate(zip(h.luo_for_each_flb(prog), expected["flbs"])):
        magic = TEST_FLB_MAGIC_BASE + i
        # luo_flb_file_preserve_one() keeps .preserve()'s handle while the
        # FLB has users; liveupdate_flb_put_outgoing() clears it at 0.
        assert flb.member_("private").member_("outgoing").data.value_() == (
            magic if want["outgoing_count"] else 0
        )
        assert flb.member_("private").member_("outgoing").obj.value_() == 0  # the test sets none
        assert h.luo_flb_incoming_status(flb) == (want["retrieve_status"], want["finished"])
        # luo_flb_retrieve_one() takes the handed-over handle; .finish() ends
        # with data and obj cleared (liveupdate_flb_put_incoming()).
        live = want["retrieve_status"] == 1 and not want["finished"]
        assert flb.member_("private").member_("incoming").data.value_() == (magic if live else 0)
        assert flb.member_("private").member_("incoming").obj.value_() == (magic if live else 0)


@only(lambda name: name.startswith("flb"))
@pytest.mark.parametrize("direction", ["outgoing", "incoming"])
def test_luo_for_each_serialized_flb(
    prog: drgn.Program, expected: dict[str, Any], direction: str
) -> None:
    """The FLB array, against plain drgn reads of luo_flb_global's header."""
    header = prog["luo_flb_global"].member_(direction)
    got = list(h.validate_luo_for_each_serialized_flb(prog, direction))
    if not header.active:
        assert got == []
        return
    count = header.header_ser.count.value_()
    assert [x.value_() for x in got] == [(header.ser + i).value_() for i in range(count)]
    key = "serialized_count" if direction == "outgoing" else "handed_over_count"
    if any(key in x for x in expected["flbs"]):
        assert [
            (bytes(x.name.string_()).decode(), x.count.value_(), x.data.value_()) for x in got
        ] == [
            (w["compatible"], w[key], TEST_FLB_MAGIC_BASE + i)
            for i, w in enumerate(expected["flbs"])
        ]


@only(lambda name: name in ("incoming", "flb-incoming"))
def test_luo_kho_preserved(prog: drgn.Program) -> None:
    """An unretrieved file's state is on a page KHO marked ('KHOP' in the
    upper half of page->private, read here with plain drgn); a retrieve
    clears the mark (kho_restore_page())."""
    from drgn.helpers.linux.mm import phys_to_page

    seen = set()
    for f in all_luo_files(prog):
        pa = f.serialized_data.value_()
        if not pa:
            continue
        marked = phys_to_page(prog, pa).private.value_() >> 32 == 0x4B484F50
        assert h.kho_is_preserved(prog, pa) is marked
        assert marked is (f.retrieve_status.value_() == 0)
        seen.add(marked)
    assert seen == {True, False}
    assert h.kho_is_preserved(prog, 0x100000) is False  # kernel text


def test_luo_kho_preserved_range_ends() -> None:
    """Would catch: the pfn range check off by one at either end: page 0
    and the last page below max_pfn are looked at, max_pfn itself is past
    the memory map (each given KHO's mark here)."""
    from drgn.helpers.linux.mm import pfn_to_page

    prog = examples.load("incoming").program()
    max_pfn, shift = prog["max_pfn"].value_(), prog["PAGE_SHIFT"].value_()
    mark = (0x4B484F50 << 32).to_bytes(8, "little")  # 'KHOP' in the upper half
    for pfn in (0, max_pfn - 1):
        assert h.kho_is_preserved(prog, pfn << shift) is False
        at = pfn_to_page(prog, pfn).private.address_
        prog.add_memory_segment(at, 8, lambda a, n, o, p: mark[o : o + n], False)
        assert h.kho_is_preserved(prog, pfn << shift) is True
    at = pfn_to_page(prog, max_pfn).private.address_
    prog.add_memory_segment(at, 8, lambda a, n, o, p: mark[o : o + n], False)
    assert h.kho_is_preserved(prog, max_pfn << shift) is False  # marked, but past the map


def test_luo_flb_compatible_and_counts() -> None:
    """No real fixture kernel registers an FLB yet: the helpers are checked
    on the synthetic 7.0 and 7.1 layouts, which differ in the count's type."""
    from tests.support.synthetic import FLB_NAME, OUTGOING, populate

    users = sum(len(files) for files in OUTGOING.values())
    for layout in ("7.0", "7.1"):
        k = populate(layout)
        (flb,) = h.luo_for_each_flb(k.prog)
        assert bytes(flb.compatible.string_()) == FLB_NAME.encode()
        assert h.luo_flb_counts(flb) == (users, 0)


# -- struct file ----------------------------------------------------------------------


@only(has_sessions)
def test_luo_preserved_file_refcount(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a file's reference count read without file_ref_t's offset of one."""
    for f, want in zip(all_luo_files(prog), expected_files(expected)):
        if want["has_file"]:
            assert h.file_refcount(f.file) == want["refcount"]


def test_luo_preserved_file_refcount_dead_file() -> None:
    """Would catch: a file_ref value read in the wrong zone, at either side of
    each zone's edge (include/linux/file_ref.h's table of the zones):
    FILE_REF_RELEASED and above mean released."""
    from luo_drgn import examples

    prog = examples.load("outgoing").program()
    file = plain_files(session_named(prog, "vm-alpha", "outgoing"))[0].file
    assert h.file_refcount(file) == 5
    refcnt = file.f_ref.refcnt.counter.address_
    # include/linux/file_ref.h: the saturation zone is alive (pinned); the
    # dead zone and NOREF are released.
    for raw, want in (
        (0xA000000000000000, -2),
        (0xBFFFFFFFFFFFFFFF, -2),
        (0xC000000000000000, -1),
        (0xFFFFFFFFFFFFFFFF, -1),
        (0x7FFFFFFFFFFFFFFE, 0x7FFFFFFFFFFFFFFF),
        # Each zone's first value: FILE_REF_MAXREF is still a count.
        (0x7FFFFFFFFFFFFFFF, 0x8000000000000000),
        (0x8000000000000000, -2),
        (0x0000000000000000, 1),  # FILE_REF_ONEREF
    ):
        data = raw.to_bytes(8, "little")
        prog.add_memory_segment(refcnt, 8, lambda a, n, off, phys, d=data: d[off : off + n])
        assert h.file_refcount(file) == want, hex(raw)


@only(lambda name: name in ("outgoing", "incoming"))
def test_luo_preserved_file_path(prog: drgn.Program) -> None:
    """Would catch: a memfd's path shown otherwise than /proc/PID/fd shows it."""
    for f in all_luo_files(prog):
        if f.file:
            path = h.file_fd_path(f.file)
            name = f.file.f_path.dentry.d_name.name.string_()
            # As /proc/PID/fd shows a memfd: its dentry name, deleted.
            assert path == b"/" + name + b" (deleted)"
            assert name.startswith(b"memfd:") or name == b""


# -- memfd ------------------------------------------------------------------------------


@only(lambda name: name in ("outgoing", "incoming"))
def test_memfd_luo_serialized_state(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: a memfd's serialized state (size, folio count) misread."""
    for f, want in zip(all_luo_files(prog), expected_files(expected)):
        state = h.memfd_luo_serialized_state(f)
        if want["retrieve_status"] != 0:
            continue  # freed by the retrieve
        assert state is not None and state.type_.type_name() == "struct memfd_luo_ser"
        assert state.size.value_() == want["size"]
        # nr_folios counts folios: at least one for a non-empty memfd, at
        # most one per page.
        assert 1 <= state.nr_folios.value_() <= -(-want["size"] // 4096)


# -- validators ------------------------------------------------------------------------


def test_walk_error_is_a_validation_error_with_the_fault_chained() -> None:
    """Would catch: a walk fault that is not a drgn ValidationError, or loses the FaultError that
    caused it."""
    from drgn.helpers import ValidationError

    from luo_drgn import examples

    prog = examples.load("outgoing").program()
    alpha = session_named(prog, "vm-alpha", "outgoing")
    second = plain_files(alpha)[1].list.address_

    def fail(addr: int, count: int, offset: int, physical: bool) -> bytes:
        raise drgn.FaultError("planted fault", addr)

    prog.add_memory_segment(second, 16, fail, False)
    with pytest.raises(WalkError) as info:
        list(h.validate_luo_session_for_each_file(alpha))
    assert isinstance(info.value, ValidationError)
    assert isinstance(info.value.__cause__, drgn.FaultError)
    assert info.value.address == second


@only(lambda name: name in ("incoming", "incoming-pending", "deserialize-failed"))
def test_luo_deserialize_status(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """luo_session_deserialize()'s statics: whether the first open ran it,
    and the error it kept (the errno the kernel logged)."""
    ran, err = h.luo_deserialize_status(prog) or (None, None)
    failed = expected.get("deserialize_failed")
    assert ran is expected["deserialized"]
    assert err == (-errno.EINVAL if failed and failed["errno"] == "EINVAL" else 0)


@pytest.mark.parametrize(
    "rt,value,locked",
    [
        # PREEMPT_RT (include/linux/rwbase_rt.h): READER_BIAS free, WRITER_BIAS
        # write-locked, READER_BIAS + n read-locked.
        (True, 1 << 31, False),
        (True, 1 << 30, True),
        (True, (1 << 31) + 2, False),
        # Otherwise: count bit 0, RWSEM_WRITER_LOCKED.
        (False, 0, False),
        (False, 1, True),
        (False, 0x100, False),
    ],
)
def test_rwsem_write_locked_on_preempt_rt_too(rt: bool, value: int, locked: bool) -> None:
    """The freeze lock read on both rw_semaphore layouts (a synthetic program:
    no fixture kernel is PREEMPT_RT)."""
    from drgn import Architecture, Platform, PlatformFlags, TypeMember

    prog = drgn.Program(
        Platform(Architecture.UNKNOWN, PlatformFlags.IS_64_BIT | PlatformFlags.IS_LITTLE_ENDIAN)
    )
    prog.set_linux_kernel_custom(
        b"OSRELEASE=rt\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82000000\n", False
    )
    i32, i64 = prog.int_type("int", 4, True), prog.int_type("long", 8, True)
    atomic = prog.struct_type("atomic_t", 4, [TypeMember(i32, "counter", 0)])
    atomic64 = prog.struct_type("atomic_long_t", 8, [TypeMember(i64, "counter", 0)])
    if rt:
        rwbase = prog.struct_type("rwbase_rt", 8, [TypeMember(atomic, "readers", 0)])
        sem_t = prog.struct_type("rw_semaphore", 8, [TypeMember(rwbase, "rwbase", 0)])
    else:
        owner = prog.struct_type("atomic_long_t", 8, [TypeMember(i64, "counter", 0)])
        sem_t = prog.struct_type(
            "rw_semaphore", 16, [TypeMember(atomic64, "count", 0), TypeMember(owner, "owner", 64)]
        )

    def types(prog: drgn.Program, kinds: Any, name: str, filename: str | None) -> Any:
        return sem_t if name == "rw_semaphore" else None

    prog.register_type_finder("rt", types, enable_index=0)
    data = value.to_bytes(8, "little")
    prog.add_memory_segment(0xFFFF888000001000, 16, lambda a, n, o, p: (data + bytes(8))[o : o + n])
    sem = drgn.Object(prog, prog.pointer_type(sem_t), 0xFFFF888000001000)
    assert liveupdate_state._rwsem_write_locked(sem) is locked


@only(has_sessions)
def test_luo_device_in_use(prog: drgn.Program, expected: dict[str, Any]) -> None:
    """Would catch: /dev/liveupdate's in_use flag misread."""
    # luo_open() sets luo_dev.in_use for the one process that holds it.
    assert h.luo_device_in_use(prog) is bool(expected["luo_device_holders"])


def test_luo_session_mutex_owner() -> None:
    """Free on every fixture; owned as mutex_lock() leaves it (the owner
    task pointer in mutex.owner), planted on the real outgoing core."""
    from drgn.helpers.linux.pid import find_task

    from luo_drgn import examples

    prog = examples.load("outgoing").program()
    alpha = session_named(prog, "vm-alpha", "outgoing")
    assert h.luo_session_mutex_owner(alpha) is None
    task = find_task(prog, 1).value_()
    owner = alpha.mutex.owner.counter.address_
    data = task.to_bytes(8, "little")
    prog.add_memory_segment(owner, 8, lambda a, n, o, p: data[o : o + n])
    assert h.luo_session_mutex_owner(alpha) == (1, b"init")


def test_kimage_read_segment_prefers_cma(fresh_root: Path) -> None:
    """Would catch: a segment the kernel keeps in CMA (kimage->segment_cma,
    kimage_load_cma_segment(), 6.16+) read from the source-page list
    instead.  The loaded guest's kernel has no CMA, so its first segment's
    CMA page is planted: a page of known bytes, and segment_cma[0] set to
    its struct page; the read must return those bytes."""
    from drgn.helpers.linux.mm import pfn_to_page

    from luo_drgn.helpers.kexec import kimage_read_segment

    prog = examples.load("loaded", fresh_root).program()
    image = prog["kexec_image"]
    assert not image.segment_cma[0]  # kexec_file_load() found no CMA here
    source = kimage_read_segment(image, 0, 0, 16)
    planted, page_pa = b"CMA-PLANTED-PAGE" * 256, 0x2000
    prog.add_memory_segment(page_pa, 4096, lambda a, n, o, p: planted[o : o + n], True)
    pointer = pfn_to_page(prog, page_pa >> 12).value_().to_bytes(8, "little")
    at = image.segment_cma[0].address_
    prog.add_memory_segment(at, 8, lambda a, n, o, p: pointer[o : o + n], False)
    assert kimage_read_segment(image, 0, 0, 16) == planted[:16] != source


def test_luo_deserialize_status_refuses_an_ambiguous_static() -> None:
    """Would catch: luo_session_deserialize()'s statics taken from a guess
    when the symbols are ambiguous (a second is_deserialized.N, as another
    function's static would be named): the status is then unknown (None),
    not read from whichever came first.  deserialize-failed's kernel logged
    the real status (-22)."""
    prog = examples.load("deserialize-failed").program()
    assert h.luo_deserialize_status(prog) == (True, -22)
    prog = examples.load("deserialize-failed").program()
    other = drgn.Symbol(
        "is_deserialized.7", 0xFFFFFFFF81000000, 1, drgn.SymbolBinding.LOCAL, drgn.SymbolKind.OBJECT
    )

    def finder(prog: drgn.Program, name: str | None, address: int | None, one: bool) -> list:  # type: ignore[type-arg]
        return [other] if name in (None, other.name) and address is None else []

    prog.register_symbol_finder("another static", finder, enable_index=0)
    assert h.luo_deserialize_status(prog) is None
