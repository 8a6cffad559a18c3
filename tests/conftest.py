# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures: the real LUO vmcores.

Every test that takes ``fixture_ref`` runs on each committed fixture
(``vmcores/data/fixtures``) and on the ``fresh`` ones: the ``outgoing`` and
``incoming`` runs (and the faults made from them) regenerated with QEMU from
the committed kernel at the start of the session, so the generator cannot
rot.  Without QEMU the fresh ones are skipped with a loud reason, except
under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Before anything imports luo_drgn.helpers: the helper tests may run on
# drgn's copy of them (tests/support/helpers_from_drgn.py).
from tests.support.helpers_from_drgn import alias

alias()

from luo_drgn import examples  # noqa: E402
from luo_drgn.analysis import inspect  # noqa: E402
from luo_drgn.collector import collect  # noqa: E402
from luo_drgn.model import Snapshot, Target  # noqa: E402

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))

from tests.support.fixtures import require_qemu  # noqa: E402
from vmcores import scenarios  # noqa: E402

COMMITTED = examples.DATA / "fixtures"
# Regenerated at every test session: the live-update runs and their faults,
# and the handover runs whose next kernel accepts (crowded, not committed),
# panics (doomed), or is diffed with what was sent (journey, journey-drop:
# only journey-after is committed, with the report saved before it).
FRESH_RUNS = (
    "outgoing",
    "incoming",
    "crowded",
    "doomed",
    "journey",
    "journey-drop",
    "freezing",
    "freeze-failed",
    "retrieving",
    # Next kernels booted with kho=off, liveupdate=1, a later liveupdate=0.
    *scenarios.NEXT_CMDLINES,
    # The next kernel loaded (kexec_file_load) when dumped: healthy, kho=off.
    "loaded",
    "loaded-kho-off",
    # A host's second live update: boot 1, boot 2 (both directions), boot 3;
    # and through a middle kernel that never opens /dev/liveupdate.
    "second",
    "second-pending",
    # A memfd sealed after preserve.
    "sealed",
    # Moves to another release: 7.2.13 -> 7.3.4 and back, a kho-v5 next
    # kernel, a build whose KHO is off by default.
    "upgrade",
    "rollback",
    "loaded-kho-v5",
    "loaded-kho-default-off",
    # False alarms: a preserve caught in progress, no session at all.
    "preserving",
    "no-session",
    # Finishing a session with files never retrieved.
    "finish-early",
    # Session names that differ in a byte that is not UTF-8.
    "byte-names",
)


def _fixtures_of(run: scenarios.Run) -> tuple[str, ...]:
    if run.stops:
        return tuple(name for name, _ in run.stops if name)  # "": a stop only written at
    return (run.name, *run.faults)


FRESH_NAMES = tuple(name for run in FRESH_RUNS for name in _fixtures_of(scenarios.run_by_name(run)))

# Runs on the `full` kernel (committed like the others; the one with
# CONFIG_KEXEC, for loaded-legacy's kexec -l -c), regenerated at every test
# session like the fresh ones.  Their filtered kdump lacks memory
# by design: it is tested on its own (tests/real/test_kdump.py), not with the
# tests every fixture must pass.
FULL_RUNS = ("holders", "warn-panic", "flb", "flb-finished", "flb-finishing", "loaded-legacy")


def _full_fixtures(run: scenarios.Run) -> tuple[str, ...]:
    if run.kdump:
        return (run.name, *(run.name + suffix for suffix in scenarios.KDUMP_SUFFIXES))
    return _fixtures_of(run)


FULL_NAMES = tuple(name for run in FULL_RUNS for name in _full_fixtures(scenarios.run_by_name(run)))
FILTERED = tuple(n for n in FULL_NAMES if n.endswith("-filtered"))


@dataclass(frozen=True)
class FixtureRef:
    origin: str  # "committed" | "fresh" | "full"
    name: str

    def __str__(self) -> str:
        return f"{self.origin}/{self.name}"


# Set by tests/real/test_mutations.py for the pytest it runs in a copied tree: the
# copy shares this tree's cache, and regenerating a run there would delete the
# outer session's fixtures under it (and take longer than the copy's timeout).
COMMITTED_ONLY = bool(os.environ.get("LUO_DRGN_COMMITTED_ONLY"))


def all_refs() -> list[FixtureRef]:
    refs = [FixtureRef("committed", n) for n in examples.fixture_names(COMMITTED)]
    refs += [FixtureRef("fresh", n) for n in FRESH_NAMES]
    return refs + [FixtureRef("full", n) for n in FULL_NAMES if n not in FILTERED]


def _regenerated(item: pytest.Item) -> bool:
    """Whether ``item`` needs a run regenerated at this session."""
    names = getattr(item, "fixturenames", ())
    callspec = getattr(item, "callspec", None)
    ref = callspec.params.get("fixture_ref") if callspec else None
    regenerated = ("fresh_root", "full_root", "fleet_root")
    return any(n in names for n in regenerated) or (ref and ref.origin != "committed")


def pytest_report_header(config: pytest.Config) -> str:
    # The regenerated cores go to the cache: a disk that fills up shows as an
    # error in every fixture test, and this line, at the top, says why.
    cache = examples.cache_dir()
    free = shutil.disk_usage(cache).free
    return f"fixture cache: {cache} ({free / (1 << 30):.1f} GiB free)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if COMMITTED_ONLY:
        dropped = [item for item in items if _regenerated(item)]
        items[:] = [item for item in items if not _regenerated(item)]
        config.hook.pytest_deselected(items=dropped)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fixture_ref" in metafunc.fixturenames:
        refs = all_refs()
        marks = getattr(metafunc.function, "fixture_filter", None)
        if marks is not None:
            refs = [r for r in refs if marks(r.name)]
        chosen = getattr(metafunc.function, "fixture_refs", None)
        if chosen is not None:
            refs = [r for r in refs if str(r) in chosen]
        metafunc.parametrize("fixture_ref", refs, ids=str)


def _regenerate(runs: tuple[str, ...], name: str) -> Path:
    """Run ``runs`` with QEMU into the cache directory ``name``.

    ``LUO_DRGN_REUSE_FRESH=DIR`` and ``LUO_DRGN_REUSE_FULL=DIR`` (a
    developer's loop and the mutation benchmark, refused under CI) take the
    fresh or full fixtures from DIR, made by ``python -m vmcores vmcores
    RUN... --dest DIR --no-compress``, instead of regenerating them."""
    variable = f"LUO_DRGN_REUSE_{name.upper()}"
    reuse = os.environ.get(variable)
    if reuse:
        if os.environ.get("CI"):
            pytest.fail(f"{variable} is for a developer's loop, not CI")
        return Path(reuse)
    root = examples.cache_dir() / name
    shutil.rmtree(root, ignore_errors=True)
    args = ["vmcores", "vmcores", *runs, "--dest", str(root), "--no-compress"]
    subprocess.run([sys.executable, "-m", *args], check=True, cwd=TOP)
    return root


@pytest.fixture(scope="session")
def fresh_root() -> Path:
    require_qemu("the fixtures were not regenerated and the fresh/* tests")
    return _regenerate(FRESH_RUNS, "fresh")


@pytest.fixture(scope="session")
def fleet_root() -> Path:
    """The fleet of hosts luo-inspect scan is tested on (scenarios.FLEET_RUNS),
    regenerated into the cache."""
    require_qemu("the fleet fixtures were not regenerated and the scan tests")
    return _regenerate(tuple(r.name for r in scenarios.FLEET_RUNS), "fleet")


@pytest.fixture(scope="session")
def full_root() -> Path:
    """The runs on the committed `full` kernel, regenerated into the cache."""
    require_qemu("the full-kernel fixtures were not regenerated and the full/* tests")
    return _regenerate(FULL_RUNS, "full")


def pytest_report_collectionfinish(
    config: pytest.Config, start_path: Path, items: list[pytest.Item]
) -> list[str]:
    """Under the header: what this machine will skip, counted, and why."""
    lines = []
    needs_qemu = [item for item in items if _regenerated(item) or "live" in item.nodeid]
    if shutil.which("qemu-system-x86_64") is None and needs_qemu:
        lines.append(
            f"QEMU is not installed: {len(needs_qemu)} tests will be SKIPPED "
            "(apt-get install qemu-system-x86)"
        )
    needs_gdb = [item for item in items if item.name == "test_userspace_core"]
    if shutil.which("gcore") is None and needs_gdb:
        lines.append("gdb is not installed: 1 test will be SKIPPED (apt-get install gdb)")
    return lines


_opened: dict[tuple[Any, ...], tuple[Any, Target]] = {}


@pytest.fixture(scope="session", autouse=True)
def _one_program_per_example() -> Any:
    """Door tests run a command on a bundled example or a committed core
    hundreds of times; opening it (a core, its debug info indexed) is most
    of each run.  In this process each is opened once: the doors get the
    same Program again, with a fresh Target (the collector writes into it).
    The open itself stays tested: the first run of each example, and
    every subprocess test, opens it as luo-inspect does."""
    from luo_drgn import engine

    real_open = engine.Source.open

    def open_once(self: engine.Source) -> tuple[Any, Target]:
        if self.prog is not None or (self.example is None and self.core is None):
            return real_open(self)  # a program already, or the running kernel
        if self.example is not None:
            key: tuple[Any, ...] = (str(examples.DATA), self.example, self.core, *self.symbols)
        else:
            # A core given by path (-c, -s): the same file, unchanged.
            paths = [Path(p) for p in (self.core, *self.symbols)]
            if not all(p.is_file() for p in paths):
                return real_open(self)
            key = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
        if key not in _opened:
            _opened[key] = real_open(self)
        prog, target = _opened[key]
        return prog, copy.deepcopy(target)

    engine.Source.open = open_once  # type: ignore[method-assign]
    yield
    engine.Source.open = real_open  # type: ignore[method-assign]


_examples: dict[FixtureRef, examples.Example] = {}
_programs: dict[FixtureRef, Any] = {}
_snapshots: dict[FixtureRef, Snapshot] = {}


@pytest.fixture
def example(fixture_ref: FixtureRef, request: pytest.FixtureRequest) -> examples.Example:
    if fixture_ref not in _examples:
        root = (
            COMMITTED
            if fixture_ref.origin == "committed"
            else request.getfixturevalue(f"{fixture_ref.origin}_root")
        )
        _examples[fixture_ref] = examples.load(fixture_ref.name, root)
    return _examples[fixture_ref]


@pytest.fixture
def manifest(example: examples.Example) -> dict[str, Any]:
    return example.manifest


@pytest.fixture
def expected(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["expected"]


@pytest.fixture
def prog(example: examples.Example, fixture_ref: FixtureRef):  # type: ignore[no-untyped-def]
    """One drgn Program per fixture per test session (loading costs ~0.3 s)."""
    if fixture_ref not in _programs:
        _programs[fixture_ref] = example.program()
    return _programs[fixture_ref]


@pytest.fixture
def snapshot(prog, example: examples.Example, fixture_ref: FixtureRef) -> Snapshot:  # type: ignore[no-untyped-def]
    if fixture_ref not in _snapshots:
        target = Target("vmcore", str(example.core), None, [str(p) for p in example.debug])
        _snapshots[fixture_ref] = inspect(collect(prog, target))
    return _snapshots[fixture_ref]
