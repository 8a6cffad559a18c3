# SPDX-License-Identifier: LGPL-2.1-or-later
"""
LUO Layouts
-----------

The ``luo_drgn.helpers.liveupdate_layout`` module tells which layout a
kernel's Live Update Orchestrator has, from its types and symbols: each
member or symbol that changed is probed once per program and cached in
``prog.cache``, and the probes together name the nearest known generation.

LUO changed shape several times between the v6 patch series (November 2025)
and 7.2, and 6.19.y stable kernels took a ``struct luo_file`` change in a
backport, so the version string says nothing reliable.  This module is the
one place those facts are written: the other LUO helper modules ask it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from drgn import Program
from drgn.helpers.common.prog import takes_program_or_default

__all__ = ("luo_layout",)


GENERATIONS = ("v6", "6.19", "7.0", "7.1", "7.2")


@dataclass(frozen=True)
class Layout:
    """What this kernel's LUO looks like.

    ``generation`` is the nearest known layout; ``differences`` lists what
    this kernel has that the named generation does not, or lacks that it
    has, so an unexpected mix is visible instead of silently misread.
    """

    present: bool
    generation: str | None = None
    # struct luo_session has a struct luo_file_set (6.19 and later); before
    # that, files hang on session->files_list.
    file_set: bool = False
    # struct luo_file: "retrieved" (bool) or "retrieve_status" (int).
    retrieve_field: str | None = None
    # 7.2: sessions and files serialized in linked KHO blocks.
    block_sets: bool = False
    # 7.1: the luo_preserved_files xarray.
    preserved_xarray: bool = False
    # 6.19.y/7.0: File-Lifecycle-Bound global objects.
    flb: bool = False
    serialize_rwsem: bool = False
    # struct file: f_ref (file_ref_t, count - 1, 6.13+) or f_count.
    file_ref: bool = True
    differences: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        if not self.present:
            return "none"
        if self.differences:
            return f"{self.generation} (nearest; differs: {', '.join(self.differences)})"
        return str(self.generation)


# What each generation has: the kernel sources of each (the v6 series as
# posted, 6.19.0, the 6.19.y backport, 7.0, 7.1 and 7.2), member by member.
_EXPECTED = {
    "v6": dict(
        file_set=False,
        retrieve_field="retrieved",
        block_sets=False,
        preserved_xarray=False,
        flb=False,
    ),
    "6.19": dict(
        file_set=True,
        retrieve_field="retrieved",
        block_sets=False,
        preserved_xarray=False,
        flb=False,
    ),
    "7.0": dict(
        file_set=True,
        retrieve_field="retrieve_status",
        block_sets=False,
        preserved_xarray=False,
        flb=True,
    ),
    "7.1": dict(
        file_set=True,
        retrieve_field="retrieve_status",
        block_sets=False,
        preserved_xarray=True,
        flb=True,
    ),
    "7.2": dict(
        file_set=True,
        retrieve_field="retrieve_status",
        block_sets=True,
        preserved_xarray=True,
        flb=True,
    ),
}


def _probe(prog: Program, feature: str, probe: Callable[[], bool]) -> bool:
    key = "luo_has_" + feature
    try:
        found: bool = prog.cache[key]
    except KeyError:
        found = prog.cache[key] = probe()
    return found


def _has_member(prog: Program, type: str, member: str) -> bool:
    try:
        return bool(prog.type(type).has_member(member))
    except LookupError:
        return False


def _has_symbol(prog: Program, name: str) -> bool:
    try:
        prog[name]
    except LookupError:
        return False
    return True


def _has_file_set(prog: Program) -> bool:
    # Since Linux 6.19, a session's files are in a struct luo_file_set.
    # Before (the v6 series of November 2025), they hung on
    # session->files_list.
    return _probe(prog, "file_set", lambda: _has_member(prog, "struct luo_session", "file_set"))


def _retrieve_field(prog: Program) -> str | None:
    # Since Linux 7.0 (and the 6.19.y stable backport), struct luo_file has
    # "int retrieve_status", which keeps a failed retrieve's errno too.
    # Before, it had "bool retrieved".
    if _probe(
        prog,
        "retrieve_status",
        lambda: _has_member(prog, "struct luo_file", "retrieve_status"),
    ):
        return "retrieve_status"
    if _probe(prog, "retrieved", lambda: _has_member(prog, "struct luo_file", "retrieved")):
        return "retrieved"
    return None


def _has_block_sets(prog: Program) -> bool:
    # Since Linux 7.2, sessions and files are serialized in linked KHO block
    # sets.  Before, they were in contiguous arrays (and an FDT).
    return _probe(prog, "block_sets", lambda: _has_member(prog, "struct luo_file_set", "block_set"))


def _has_preserved_xarray(prog: Program) -> bool:
    # Since Linux 7.1, preserved files are indexed in the
    # luo_preserved_files xarray.
    return _probe(prog, "preserved_xarray", lambda: _has_symbol(prog, "luo_preserved_files"))


def _has_flbs(prog: Program) -> bool:
    # Since Linux 7.0 (and the 6.19.y stable backport), LUO has
    # File-Lifecycle-Bound objects.
    return _probe(prog, "flbs", lambda: _has_symbol(prog, "luo_flb_global"))


def _has_serialize_rwsem(prog: Program) -> bool:
    # Since Linux 7.2, the sessions are frozen under
    # luo_session_serialize_rwsem.
    return _probe(prog, "serialize_rwsem", lambda: _has_symbol(prog, "luo_session_serialize_rwsem"))


def _has_file_ref(prog: Program) -> bool:
    # Since Linux 6.13 ("fs: add file_ref"), struct file's count is a
    # file_ref_t.
    return _probe(prog, "file_ref", lambda: _has_member(prog, "struct file", "f_ref"))


def _probe_layout(prog: Program) -> Layout:
    # The drgn layer's probes: one copy of each fact, each citing the
    # release that changed it.
    if not _has_symbol(prog, "luo_session_global"):
        try:
            prog.type("struct luo_session")
        except LookupError:
            return Layout(present=False)
    features = dict(
        file_set=_has_file_set(prog),
        retrieve_field=_retrieve_field(prog),
        block_sets=_has_block_sets(prog),
        preserved_xarray=_has_preserved_xarray(prog),
        flb=_has_flbs(prog),
    )
    generation, differences = _nearest(features)
    return Layout(
        present=True,
        generation=generation,
        serialize_rwsem=_has_serialize_rwsem(prog),
        file_ref=_has_file_ref(prog),
        differences=differences,
        **features,  # type: ignore[arg-type]
    )


def _describe(feature: str, value: object) -> str:
    if isinstance(value, bool):
        return f"{'has' if value else 'no'} {feature}"
    return f"{feature}={value}"


def _nearest(features: Mapping[str, object]) -> tuple[str, tuple[str, ...]]:
    best, best_diff = "7.2", None
    for gen in GENERATIONS:
        diff = tuple(
            _describe(k, features[k]) for k, v in _EXPECTED[gen].items() if features[k] != v
        )
        # Later generations win ties: a kernel newer than we know most
        # resembles the newest layout.
        if best_diff is None or len(diff) <= len(best_diff):
            best, best_diff = gen, diff
    return best, best_diff or ()


@takes_program_or_default
def luo_layout(prog: Program) -> Layout:
    """
    Detect the LUO layout of the kernel in ``prog`` (cached).

    :return: the :class:`Layout`: present or not, the nearest generation, and how this kernel
        differs from it
    """
    try:
        cached: Layout = prog.cache["luo_layout"]
        return cached
    except KeyError:
        layout = prog.cache["luo_layout"] = _probe_layout(prog)
        return layout
