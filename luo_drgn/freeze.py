# SPDX-License-Identifier: LGPL-2.1-or-later
"""The freeze, predicted on a snapshot of a 7.2 kernel not frozen yet: what
``luo_session_serialize()`` and ``luo_file_freeze()`` will write at reboot,
block by block, so that the next kernel's restore (:mod:`luo_drgn.restore`)
can be replayed on it before the kexec; and whether a session is caught
inside ``luo_preserve_file()``, which the freeze waits for."""

from __future__ import annotations

from .model import (
    BlockSetState,
    Handover,
    HandoverBlock,
    HandoverChain,
    HandoverSession,
    SerializedFile,
    Session,
    Snapshot,
)

__all__ = ("predict_freeze", "preserving")


def preserving(s: Session) -> bool:
    """Possibly inside ``luo_preserve_file()``: an outgoing session whose
    mutex is held (``luo_session_preserve_fd()`` holds it throughout), and
    whose file block set is grown for one file more than it lists, or is
    exactly as the listed files need (when one more fits)."""
    b = s.block_set
    if s.direction != "outgoing" or s.mutex_owner is None or b is None or not b.count_per_block:
        return False
    growing = -(-(s.file_count + 1) // b.count_per_block)
    return b.nblocks == growing


def _predict_chain(block_set: BlockSetState, count: int) -> HandoverChain:
    """A block set's chain once ``count`` entries are written in it:
    ``kho_block_set_it_reserve_entry()`` fills block after block."""
    pas = block_set.block_pas
    chain = HandoverChain(pas[0] if pas else 0, block_set.count_per_block)
    for i, pa in enumerate(pas):
        filled = min(block_set.count_per_block, max(0, count - i * block_set.count_per_block))
        chain.blocks.append(HandoverBlock(pa, filled, pas[i + 1] if i + 1 < len(pas) else 0))
    return chain


def predict_freeze(snap: Snapshot) -> Handover | None:
    """
    What ``luo_session_serialize()`` will write when LUO freezes (7.2, not
    frozen yet): each session and each of its files in the next free slot
    of its block set's blocks, in list order; ``sessions_pa`` stays 0 when
    there is no session.  None when the snapshot cannot tell (no luo_ser,
    or a block list the collector could not walk: a walk error says so).
    """
    bs = snap.session_block_set
    if snap.luo_ser_compatible is None or bs is None or not bs.complete:
        return None
    outgoing = [s for s in snap.sessions if s.direction == "outgoing"]
    chain = _predict_chain(bs, len(outgoing))
    sessions = []
    for s in outgoing:
        if not s.file_count or not s.files_complete:
            # luo_file_freeze() leaves an empty file set unwritten.  A list
            # that could not be walked is a walk error already: nothing is
            # predicted from it.
            sessions.append(HandoverSession(s.name, 0, 0))
            continue
        if s.block_set is None or not s.block_set.complete:
            return None
        # luo_file_freeze() writes one entry per file on the list, then
        # file_set->count as the count the next kernel checks them by.  A
        # preserve in progress finishes (listing its file in the block it
        # grew) or fails (shrinking it back) before the freeze takes the
        # session mutex: either way no block is left empty.
        fchain = _predict_chain(s.block_set, len(s.files))
        if preserving(s) and fchain.blocks and fchain.blocks[-1].count == 0:
            fchain.blocks.pop()
            if fchain.blocks:
                fchain.blocks[-1].next = 0
        files = [SerializedFile(f.token, f.handler, f.serialized_data) for f in s.files]
        sessions.append(HandoverSession(s.name, fchain.head_pa, s.file_count, files, fchain))
    return Handover(
        "outgoing",
        "predicted",
        snap.luo_ser_compatible,
        chain.head_pa if outgoing else 0,
        chain if outgoing else None,
        sessions,
        [s.name for s in outgoing],
    )
