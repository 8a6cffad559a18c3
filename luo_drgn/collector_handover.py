# SPDX-License-Identifier: LGPL-2.1-or-later
"""The collector's reads of what crosses the kexec: the serialized sessions
and files, the outgoing handover (7.2: as frozen, or the block sets the
freeze will fill), the incoming one still pending, and FLBs, each read as
the next kernel's ``kho_block_set_restore()`` will read it."""

from __future__ import annotations

from collections.abc import Iterator

from drgn import Object

from . import helpers as h
from .collector_base import CollectorBase, kernel_name, kernel_text
from .helpers.bounded import WalkError
from .model import (
    BlockSetState,
    Flb,
    Handover,
    HandoverBlock,
    HandoverChain,
    HandoverSession,
    SerializedFile,
    SerializedFlb,
    SerializedSession,
)


class HandoverReads(CollectorBase):
    """Reads of the handover, for :class:`~luo_drgn.collector._Collector`."""

    def block_set_state(
        self, bs: Object, where: str, session: str | None, pas: bool
    ) -> BlockSetState:
        """A ``struct kho_block_set *``: its counts, its listed blocks, and
        (``pas``) where each block's header is."""
        blocks, complete = self.drain(h.validate_kho_block_set_for_each_block(bs), where, session)
        state = BlockSetState(
            int(bs.nblocks.value_()),
            len(blocks),
            int(bs.count_per_block.value_()),
            complete=complete,
        )
        if pas:
            state.block_pas = [h.kho_block_pa(b) for b in blocks]
        return state

    def collect_serialized(self, sessions_it: Iterator[Object]) -> list[SerializedSession]:
        out = []
        sessions, _ = self.drain(sessions_it, "serialized sessions")
        for ser in sessions:
            name = kernel_name(ser.name.string_())
            _, count = h.luo_session_ser_file_set(ser)
            entries, _ = self.drain(
                h.validate_luo_session_ser_for_each_file(ser), f"serialized files of {name!r}"
            )
            out.append(SerializedSession(name, count, [serialized_file(e) for e in entries]))
        return out

    # -- the handover, as the next kernel will read it (7.2) -----------------

    def collect_handover_out(self) -> Handover | None:
        prog, snap = self.prog, self.snap
        luo_ser = h.luo_outgoing_ser(prog)
        if not luo_ser:
            return None
        outgoing = [s for s in snap.sessions if s.direction == "outgoing"]
        listed = [s.name for s in outgoing]
        compatible = kernel_text(luo_ser.compatible.string_())
        if snap.luo.frozen:
            sessions_pa = int(luo_ser.sessions_pa.value_())
            chain, sessions = self.read_handover(sessions_pa, uncounted=True)
            return Handover("outgoing", "frozen", compatible, sessions_pa, chain, sessions, listed)
        # Not frozen yet: what the freeze will write is predicted from these
        # by the analysis (luo_drgn.freeze.predict_freeze()).
        snap.luo_ser_compatible = compatible
        snap.session_block_set = self.block_set_state(
            h.luo_session_block_set(prog, "outgoing"), "outgoing handover", None, pas=True
        )
        return None

    def collect_handover_in(self) -> Handover:
        bs = h.luo_session_block_set(self.prog, "incoming")
        head_pa = int(bs.head_pa.value_())
        chain, sessions = self.read_handover(head_pa, uncounted=False)
        return Handover("incoming", "pending", None, head_pa, chain, sessions)

    def read_chain(
        self, head_pa: int, entry_type: str, uncounted: bool = False
    ) -> tuple[HandoverChain, list[Object]]:
        """A serialized chain and the entries its counts admit, read as
        kho_block_set_restore() and kho_block_set_it_read_entry() will."""
        prog = self.prog
        cpb = h.kho_block_count_per_block(prog, entry_type)
        chain = HandoverChain(head_pa, cpb)
        entries: list[Object] = []
        try:
            for pa, header in h.validate_kho_block_chain_for_each_header(prog, head_pa):
                block = HandoverBlock(pa, int(header.count.value_()), int(header.next.value_()))
                chain.blocks.append(block)
                if 0 < block.count <= cpb:
                    entries += h.kho_block_entries(prog, entry_type, pa, block.count)
                if uncounted and block.count < cpb:
                    rest = h.kho_block_entries(prog, entry_type, pa, cpb)[max(block.count, 0) :]
                    names = (e.name.string_() for e in rest)
                    block.uncounted = [kernel_name(n) for n in names if n]
        except WalkError as e:
            chain.fault, chain.fault_address = e.reason, e.address
        return chain, entries

    def read_handover(
        self, sessions_pa: int, uncounted: bool
    ) -> tuple[HandoverChain | None, list[HandoverSession]]:
        if not sessions_pa:
            return None, []
        chain, entries = self.read_chain(sessions_pa, "struct luo_session_ser", uncounted)
        sessions = []
        for ser in entries:
            files_pa, count = h.luo_session_ser_file_set(ser)
            session = HandoverSession(kernel_name(ser.name.string_()), files_pa, count)
            if files_pa:
                session.chain, files = self.read_chain(files_pa, "struct luo_file_ser")
                session.files = [serialized_file(e) for e in files]
            sessions.append(session)
        return chain, sessions

    def collect_flbs(self) -> None:
        flbs, _ = self.drain(h.validate_luo_for_each_flb(self.prog), "luo_flb_global.list")
        users: dict[int, list[str]] = {}
        for fh in self.handler_objects:
            for flb in h.validate_luo_file_handler_for_each_flb(fh):
                users.setdefault(flb.value_(), []).append(kernel_text(fh.compatible.string_()))
        for flb in flbs:
            out, inc = h.luo_flb_counts(flb)
            status = h.luo_flb_incoming_status(flb)
            self.snap.flbs.append(
                Flb(
                    flb.value_(),
                    kernel_name(flb.compatible.string_()),
                    out,
                    inc,
                    users.get(flb.value_(), []),
                    h.luo_flb_data(flb, "outgoing"),
                    h.luo_flb_data(flb, "incoming"),
                    status[0] if status else None,
                    status[1] if status else None,
                    *(
                        (owner[0], kernel_text(owner[1])) if owner else None
                        for owner in (
                            h.luo_flb_lock_owner(flb, "outgoing"),
                            h.luo_flb_lock_owner(flb, "incoming"),
                        )
                    ),
                )
            )
        if not h.luo_layout(self.prog).block_sets:
            return  # before 7.2: no serialized FLB arrays to read
        # luo_flb_serialize() writes the outgoing array at reboot, after the
        # sessions' freeze: before that it holds nothing meaningful.
        directions = ("outgoing", "incoming") if self.snap.luo.frozen else ("incoming",)
        for direction in directions:
            with self.guard(f"serialized {direction} FLBs"):
                self.snap.serialized_flbs[direction] = [
                    SerializedFlb(
                        kernel_name(x.name.string_()),
                        int(x.data.value_()),
                        int(x.count.value_()),
                    )
                    for x in h.validate_luo_for_each_serialized_flb(self.prog, direction)
                ]


def serialized_file(file_ser: Object) -> SerializedFile:
    """A ``struct luo_file_ser`` as plain data."""
    return SerializedFile(
        int(file_ser.token.value_()),
        kernel_text(file_ser.compatible.string_()),
        int(file_ser.data.value_()),
    )
