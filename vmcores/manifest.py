# SPDX-License-Identifier: LGPL-2.1-or-later
"""Expected state of a fixture, replayed from the guest's own log.

The guest driver prints every step it takes (``@@LUO {json}``) and the kernel
prints what LUO did at boot.  :func:`expected_state` replays those lines
through a small model of processes, fd tables, mappings and LUO sessions and
returns what an inspector must find in memory.  Nothing here reads the
vmcore: the expectations are what the guest did, not what a tool saw.
"""

from __future__ import annotations

import copy
import errno
import json
import re
from dataclasses import dataclass, field
from typing import Any

MEMFD_COMPATIBLE = "memfd-v2"
ERRNO = {"EEXIST": 17, "EBUSY": 16, "ENOENT": 2, "EINVAL": 22, "EIO": 5}


@dataclass
class _Object:
    """Something an fd can point at: a memfd, a session file, /dev/liveupdate."""

    kind: str
    name: str
    ino: int | None = None
    size: int | None = None


@dataclass
class _Process:
    fds: dict[int, _Object] = field(default_factory=dict)
    maps: list[tuple[_Object, int]] = field(default_factory=list)  # (object, start)


@dataclass
class _File:
    token: int
    obj: _Object | None
    size: int | None
    retrieve_status: int = 0


@dataclass
class _Session:
    name: str
    direction: str
    obj: _Object
    files: list[_File] = field(default_factory=list)
    retrieved: bool = False
    finished: bool = False


def guest_events(console: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line[len("@@LUO ") :]) for line in console if line.startswith("@@LUO {")]


# "liveupdate test:": LUO's test module (CONFIG_LIVEUPDATE_TEST), which logs
# each callback of its FLBs.
# What names a panic's cause (lib/bug.c, the oops and BUG() reports).
PANIC_CAUSES = ("WARNING: ", "BUG: ", "Oops: ", "kernel BUG at ")
KERNEL_PREFIXES = (
    "luo:",
    "KHO:",
    "Command line:",
    "Kernel panic",
    "liveupdate test:",
    *PANIC_CAUSES,
)
# lib/tests/liveupdate.c: LIVEUPDATE_TEST_FLB_COMPATIBLE(i) for i < n.
FLB_REGISTERED = re.compile(r"liveupdate test: Registered (\d+) FLBs with file handler: \[(.*)\]")
DESERIALIZE_FAILED = re.compile(
    r"luo: Failed to (deserialize files for|insert) session \[(.*?)\] (-?\d+)"
)


def kernel_lines(console: list[str]) -> list[str]:
    """The console lines a manifest keeps of the kernel's own output."""
    return [line for line in console if line.startswith(KERNEL_PREFIXES)]


def kernel_facts(console: list[str]) -> dict[str, Any]:
    """What the last booted kernel said about LUO on its console."""
    facts: dict[str, Any] = {
        "liveupdate_num": None,
        "disabled_reason": None,
        "restore_failed": None,
        "deserialize_failed": None,
        "luo_messages": [],
        "flbs": {},  # compatible -> handlers, as the test module registered them
        "flbs_retrieved": [],  # the test FLBs' .retrieve() found the handed-over data
        "flbs_finished": [],  # their .finish() ran
    }
    for line in console:
        if m := re.search(r"liveupdate test: (\S+): found flb data from the previous boot", line):
            facts["flbs_retrieved"].append(m.group(1))
        if m := re.search(r"liveupdate test: (\S+): finish was triggered", line):
            facts["flbs_finished"].append(m.group(1))
        if m := FLB_REGISTERED.search(line):
            for i in range(int(m.group(1))):
                facts["flbs"].setdefault(f"liveupdate-test-flb-v{i}", []).append(m.group(2))
        if line.startswith("luo:"):
            facts["luo_messages"].append(line)
        # luo_session_deserialize_one(): the session whose files failed was
        # inserted (it stays, emptied); one refused by luo_session_insert()
        # was not.  Either way the rest of the chain never becomes sessions.
        if m := re.search(
            r"luo: Failed to (deserialize files for|insert) session \[(.*?)\] (-?\d+)", line
        ):
            facts["deserialize_failed"] = {
                "session": m.group(2),
                "listed": m.group(1) != "insert",
                "errno": errno.errorcode.get(-int(m.group(3)), m.group(3)),
            }
        # liveupdate_early_init(): luo_restore_fail() is a panic.
        if m := re.search(r"Kernel panic - not syncing: (The incoming tree failed.*)", line):
            facts["restore_failed"] = m.group(1).strip()
        if m := re.search(r"luo: Retrieved live update data, liveupdate number: (\d+)", line):
            facts["liveupdate_num"] = int(m.group(1))
        if m := re.search(r"luo: (Disabling liveupdate because .*)", line):
            facts["disabled_reason"] = m.group(1).strip()
    return facts


class _Model:
    def __init__(self) -> None:
        self.procs: dict[int, _Process] = {}
        # Keyed by (direction, name): luo_session_insert() refuses a name
        # only among its own list, so a second update may create an outgoing
        # session named as an incoming one.
        self.sessions: dict[tuple[str, str], _Session] = {}
        self.refusals: list[dict[str, Any]] = []
        self.failed_retrieves: list[dict[str, Any]] = []
        self.luo_device_opened = False
        self.kexec = False
        self.phase = 1
        self.kexec_failed: str | None = None
        self.luo_open_result: str | None = None
        # References the kernel holds for a process: (file, holder).
        self.kernel_holders: list[tuple[_Object, dict[str, Any]]] = []
        self.handed_files = 0

    def proc(self, pid: int) -> _Process:
        return self.procs.setdefault(pid, _Process())

    def apply(self, ev: dict[str, Any]) -> None:
        op = ev["op"]
        getattr(self, "op_" + op)(ev)

    def op_start(self, ev: dict[str, Any]) -> None:
        if ev["phase"] > self.phase:
            self.new_kernel()
        self.phase = ev["phase"]

    def new_kernel(self) -> None:
        # The live update: processes are gone, outgoing sessions arrive as
        # incoming ones whose files wait to be retrieved; incoming ones are
        # not handed over again (luo_session_serialize() writes the outgoing
        # list only).
        self.procs = {}
        self.luo_device_opened = False
        self.luo_open_result = None
        # luo_flb_serialize(): each FLB hands over its count, one per file.
        self.handed_files = sum(
            len(s.files) for s in self.sessions.values() if s.direction == "outgoing"
        )
        incoming = {}
        for s in self.sessions.values():
            if s.direction != "outgoing":
                continue
            incoming["incoming", s.name] = _Session(
                s.name,
                "incoming",
                _Object("session", s.name),
                [_File(f.token, None, f.size) for f in s.files],
            )
        self.sessions = incoming

    def op_open_luo(self, ev: dict[str, Any]) -> None:
        self.luo_open_result = ev["result"]
        if ev["result"] == "OK":
            self.luo_device_opened = True
            self.proc(ev["pid"]).fds[ev["fd"]] = _Object("luo", "/dev/liveupdate")

    def op_create_session(self, ev: dict[str, Any]) -> None:
        if ev["result"] != "OK":
            self.refusals.append(
                {"op": "create_session", "session": ev["session"], "errno": ev["result"]}
            )
            return
        obj = _Object("session", ev["session"])
        self.sessions["outgoing", ev["session"]] = _Session(ev["session"], "outgoing", obj)
        self.proc(ev["pid"]).fds[ev["fd"]] = obj

    def op_memfd(self, ev: dict[str, Any]) -> None:
        self.proc(ev["pid"]).fds[ev["fd"]] = _Object("memfd", ev["name"], ev["ino"], ev["size"])

    def op_preserve(self, ev: dict[str, Any]) -> None:
        if ev["result"] != "OK":
            self.refusals.append(
                {
                    "op": "preserve",
                    "session": ev["session"],
                    "token": ev["token"],
                    "errno": ev["result"],
                }
            )
            return
        obj = self.proc(ev["pid"]).fds[ev["fd"]]
        self.sessions["outgoing", ev["session"]].files.append(_File(ev["token"], obj, obj.size))

    def op_resize(self, ev: dict[str, Any]) -> None:
        if ev["result"] == "OK":
            self.proc(ev["pid"]).fds[ev["fd"]].size = ev["size"]

    def op_add_seals(self, ev: dict[str, Any]) -> None:
        pass  # the seals are not part of the expected state: the test reads the log

    def op_close(self, ev: dict[str, Any]) -> None:
        self.proc(ev["pid"]).fds.pop(ev["fd"], None)
        # A ring registered with IORING_REGISTER_RING_FDS outlives its fd:
        # its holders are no longer reached through one.
        for _, holder in self.kernel_holders:
            if (
                holder.get("registered")
                and holder.get("pid") == ev["pid"]
                and holder.get("fd") == ev["fd"]
            ):
                holder["fd"] = None

    def op_io_uring_register_ring(self, ev: dict[str, Any]) -> None:
        if ev["result"] == "OK":
            for _, holder in self.kernel_holders:
                if holder["kind"] == "io_uring" and holder.get("fd") == ev["ring_fd"]:
                    holder["registered"] = True

    def op_dup(self, ev: dict[str, Any]) -> None:
        fds = self.proc(ev["pid"]).fds
        fds[ev["new_fd"]] = fds[ev["fd"]]

    def op_mmap(self, ev: dict[str, Any]) -> None:
        if ev["result"] == "OK":
            p = self.proc(ev["pid"])
            p.maps.append((p.fds[ev["fd"]], ev["addr"]))

    def op_fork(self, ev: dict[str, Any]) -> None:
        parent = self.proc(ev["pid"])
        self.procs[ev["child"]] = _Process(dict(parent.fds), list(parent.maps))

    def op_kexec_load(self, ev: dict[str, Any]) -> None:
        pass

    def op_killed(self, ev: dict[str, Any]) -> None:
        self.procs.pop(ev["child"], None)

    def op_kexec_load_crash(self, ev: dict[str, Any]) -> None:
        pass

    def op_sysrq_crash(self, ev: dict[str, Any]) -> None:
        pass

    def op_close_session(self, ev: dict[str, Any]) -> None:
        # luo_session_release(): unpreserve every file, take the session off
        # its list, free it (the kernel removes it before it frees it).
        self.proc(ev["pid"]).fds.pop(ev["fd"], None)
        self.sessions.pop(("outgoing", ev["session"]), None)

    # The capture kernel's driver: what it saved, nothing of LUO.
    def op_capture_save(self, ev: dict[str, Any]) -> None:
        pass

    def op_makedumpfile(self, ev: dict[str, Any]) -> None:
        pass

    def op_capture(self, ev: dict[str, Any]) -> None:
        pass

    def _kernel_holder(self, ev: dict[str, Any], holder: dict[str, Any]) -> None:
        if ev["result"] == "OK":
            self.kernel_holders.append((self.proc(ev["pid"]).fds[ev["fd"]], holder))

    def op_scm_send(self, ev: dict[str, Any]) -> None:
        # The message waits in the receive queue of the peer socket, which
        # the sender holds at peer_fd.
        self._kernel_holder(ev, {"kind": "scm", "pid": ev["pid"], "fd": ev["peer_fd"]})

    def op_io_uring_register(self, ev: dict[str, Any]) -> None:
        self._kernel_holder(
            ev, {"kind": "io_uring", "pid": ev["pid"], "fd": ev["ring_fd"], "slot": ev["slot"]}
        )

    def op_loop_attach(self, ev: dict[str, Any]) -> None:
        self._kernel_holder(ev, {"kind": "loop", "loop": ev["loop"]})

    def op_ioas_map_file(self, ev: dict[str, Any]) -> None:
        self._kernel_holder(
            ev, {"kind": "iommufd", "pid": ev["pid"], "fd": ev["iommufd"], "ioas": ev["ioas"]}
        )

    def op_ioas_copy(self, ev: dict[str, Any]) -> None:
        pass  # the copy shares the source IOAS's iopt_pages: no new reference

    def op_kexec_reboot(self, ev: dict[str, Any]) -> None:
        self.kexec = "result" not in ev
        if "result" in ev:  # reboot() returned: the kexec was refused
            self.kexec_failed = ev["result"]

    def op_retrieve_session(self, ev: dict[str, Any]) -> None:
        if ev["result"] != "OK":
            self.refusals.append(
                {"op": "retrieve_session", "session": ev["session"], "errno": ev["result"]}
            )
            if ev["result"] == "ENOENT" and self.phase > 1:
                # Handed over but not among the incoming sessions: it never
                # arrived (the kernel may say nothing about it).
                self.sessions.pop(("incoming", ev["session"]), None)
            return
        s = self.sessions["incoming", ev["session"]]
        s.retrieved = True
        self.proc(ev["pid"]).fds[ev["fd"]] = s.obj

    def op_retrieve(self, ev: dict[str, Any]) -> None:
        s = self.sessions.get(("incoming", ev["session"]))
        if s is None:  # a session that never arrived
            self.failed_retrieves.append(
                {"session": ev["session"], "token": ev["token"], "errno": ev["result"]}
            )
            return
        if ev["result"] != "OK":
            self.failed_retrieves.append(
                {"session": ev["session"], "token": ev["token"], "errno": ev["result"]}
            )
            # luo_retrieve_file(): a handler's retrieve error is kept in the
            # luo_file (an unknown token has none to keep it in, and a call
            # on a session never retrieved reaches no luo_file).
            if s.retrieved and ev["result"] not in ("ENOENT", "EBADF"):
                for f in s.files:
                    if f.token == ev["token"] and hasattr(errno, ev["result"]):
                        f.retrieve_status = -getattr(errno, ev["result"])
            return
        f = next(f for f in s.files if f.token == ev["token"])
        f.obj = _Object("memfd", f"{s.name}:{f.token:#x}", ev["ino"], f.size)
        f.retrieve_status = 1
        self.proc(ev["pid"]).fds[ev["fd"]] = f.obj

    def op_finish(self, ev: dict[str, Any]) -> None:
        if ev["result"] == "OK":
            s = self.sessions["incoming", ev["session"]]
            s.finished = True
            s.files = []

    def holders(self, obj: _Object) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for pid in sorted(self.procs):
            p = self.procs[pid]
            out += [{"pid": pid, "fd": fd} for fd in sorted(p.fds) if p.fds[fd] is obj]
            out += [{"pid": pid, "vma": start} for m, start in p.maps if m is obj]
        out += [holder for held, holder in self.kernel_holders if held is obj]
        return out


def _freeze(model: _Model, capture: str | None) -> dict[str, Any] | None:
    """Where the freeze stood when a handover run stopped inside it: the Nth
    call of memfd_luo_freeze() freezes the Nth preserved file, sessions in
    list order (each frozen file by file, then named); or the kexec the
    driver saw refused (the freeze was rolled back)."""
    if capture is not None and capture.startswith("freeze:"):
        calls = int(capture.split(":", 1)[1])
        done = 0
        outgoing = [s for s in model.sessions.values() if s.direction == "outgoing"]
        for i, s in enumerate(outgoing):
            if done + len(s.files) >= calls:
                return {"state": "freezing", "written": i, "freezing": s.name}
            done += len(s.files)
    if capture == "kexec-failed" and model.kexec_failed:
        return {"state": "rolled-back", "errno": model.kexec_failed}
    return None


def _in_flight(after: list[str], op: str = "retrieve") -> dict[str, Any] | None:
    """The retrieve (or preserve) a dump interrupted: the first one the driver
    logs after it (an ioctl is logged when it returns)."""
    for ev in guest_events(after):
        if ev["op"] == op:
            return {"session": ev["session"], "token": ev["token"], "result": ev["result"]}
    return None


def expected_state(
    console: list[str], frozen: bool, after: list[str] | None = None, capture: str | None = None
) -> dict[str, Any]:
    """The state an inspector must read from the dump taken after ``console``
    (and, with ``after``, what the next kernel then did)."""
    kdump = (capture or "").startswith("kdump")
    model = _Model()
    for ev in guest_events(console):
        model.apply(ev)
    if kdump and after:
        # What the driver did between the QEMU dump and the panic.
        until = next((i for i, x in enumerate(after) if "Kernel panic" in x), len(after))
        for ev in guest_events(after[:until]):
            model.apply(ev)
    kfacts = kernel_facts(console[_last_boot(console) :])
    failed = kfacts["deserialize_failed"]
    if failed is not None:
        kept: dict[tuple[str, str], _Session] = {}
        for key, session in model.sessions.items():
            if key == ("incoming", failed["session"]):
                if failed["listed"]:
                    session.files = []
                    kept[key] = session
                break
            kept[key] = session
        model.sessions = kept
    if _boots(console) > 1 and model.phase == 1:
        # Dumped in the kernel the live update booted, before its userspace.
        model.new_kernel()
        model.phase = 2
        if kfacts["restore_failed"]:
            # luo_early_startup() failed: nothing was restored.
            model.sessions = {}

    sessions = []
    # The kernel keeps one list per direction; outgoing first, as the
    # helpers' LUO_DIRECTIONS walk them (each list in its own order).
    in_order = sorted(model.sessions.values(), key=lambda s: s.direction != "outgoing")
    for s in in_order:
        files = []
        for f in s.files:
            holders = model.holders(f.obj) if f.obj is not None else []
            luo_ref = f.obj is not None  # preserve or retrieve took one
            files.append(
                {
                    "token": f.token,
                    "handler": MEMFD_COMPATIBLE,
                    "retrieve_status": f.retrieve_status,
                    "has_file": f.obj is not None,
                    "size": f.size,
                    "ino": f.obj.ino if f.obj is not None else None,
                    "holders": holders + ([{"kind": "luo"}] if luo_ref else []),
                    "refcount": len(holders) + int(luo_ref) if f.obj is not None else None,
                }
            )
        sessions.append(
            {
                "name": s.name,
                "direction": s.direction,
                "retrieved": s.retrieved,
                "finished": s.finished,
                "file_count": len(files),
                "files": files,
                "holders": model.holders(s.obj),
            }
        )

    luo_dev = [obj for p in model.procs.values() for obj in p.fds.values() if obj.kind == "luo"]
    flbs = _flbs(model, kfacts, frozen)
    return {
        "luo_state": _luo_state(model, kfacts),
        "disabled_reason": kfacts["disabled_reason"],
        "liveupdate_num": kfacts["liveupdate_num"] or 0,
        "phase": model.phase,
        "frozen": frozen,
        # It ran at the first open, which fails when it fails.
        "deserialized": model.phase > 1 and (model.luo_device_opened or failed is not None),
        "sessions": sessions,
        "luo_device_holders": model.holders(luo_dev[0]) if luo_dev else [],
        "refusals": model.refusals,
        "failed_retrieves": model.failed_retrieves,
        # Only a kernel with LUO's test module registers FLBs.
        **({"flbs": flbs} if flbs else {}),
        **({"next_kernel": next_kernel(after)} if after and not kdump else {}),
        # A kdump: the kernel panicked after the state, and the crash
        # kernel saved its memory.
        **({"panic": panic_facts(after)} if after and kdump else {}),
        **({"restore_failed": kfacts["restore_failed"]} if kfacts["restore_failed"] else {}),
        **({"deserialize_failed": failed} if failed is not None else {}),
        **({"freeze": freeze} if (freeze := _freeze(model, capture)) else {}),
        **(
            {"retrieving": _in_flight(after)}
            if capture == "retrieving" and after is not None
            else {}
        ),
        **(
            {"preserving": _in_flight(after, "preserve")}
            if capture == "preserving" and after is not None
            else {}
        ),
    }


def _last_boot(console: list[str]) -> int:
    # Each boot logs its command line once (kept in the manifests' logs).
    starts = [i for i, line in enumerate(console) if line.startswith("Command line:")]
    return starts[-1] if starts else 0


def _boots(console: list[str]) -> int:
    return sum(1 for line in console if line.startswith("Command line:"))


def next_kernel(after: list[str]) -> dict[str, Any]:
    """What the kernel booted by the live update did, from the console after
    the dump: whether it panicked (and why), what opening /dev/liveupdate
    returned each time, and each session retrieve's result."""
    # The kernel the dumped one kexecs into, not a third one it kexecs into
    # in turn (a second update).  A manifest keeps the driver's lines and
    # the kernel's apart, so each is cut at its own mark of a new boot: the
    # driver's start event, the kernel's "Command line:".
    events = guest_events(after)
    begins = [i for i, e in enumerate(events) if e["op"] == "start"]
    if len(begins) > 1:
        events = events[begins[0] : begins[1]]
    starts = [i for i, line in enumerate(after) if line.startswith("Command line:")]
    boot = after[starts[0] : starts[1]] if len(starts) > 1 else after[_last_boot(after) :]
    facts = kernel_facts(boot)
    return {
        "panicked": facts["restore_failed"],
        "luo_messages": facts["luo_messages"],
        "open_luo": [e["result"] for e in events if e["op"] == "open_luo"],
        "retrieve_session": {
            e["session"]: e["result"] for e in events if e["op"] == "retrieve_session"
        },
        "retrieve": [
            [e["session"], e["token"], e["result"]] for e in events if e["op"] == "retrieve"
        ],
    }


def _flbs(model: _Model, kfacts: dict[str, Any], frozen: bool) -> list[dict[str, Any]]:
    """The test FLBs: luo_flb_file_preserve() counts every preserved file of
    a handler an FLB is registered with (the test module keeps no object of
    its own); the next kernel restores the handed-over count at retrieve,
    luo_flb_file_finish() takes one per file finished, .finish() runs at 0."""
    outgoing = sum(len(s.files) for s in model.sessions.values() if s.direction == "outgoing")
    incoming = sum(len(s.files) for s in model.sessions.values() if s.direction == "incoming")
    out = []
    for name, handlers in kfacts["flbs"].items():
        retrieved = name in kfacts["flbs_retrieved"]
        finished = name in kfacts["flbs_finished"]
        flb: dict[str, Any] = {
            "compatible": name,
            "handlers": handlers,
            "outgoing_count": outgoing,
            "incoming_count": incoming if retrieved and not finished else 0,
            "retrieve_status": 1 if retrieved else 0,
            "finished": finished,
        }
        if frozen:
            flb["serialized_count"] = outgoing  # luo_flb_serialize() at reboot
        if model.phase > 1:
            flb["handed_over_count"] = model.handed_files
        out.append(flb)
    return out


def panic_facts(console: list[str]) -> dict[str, Any] | None:
    """Why the kernel panicked (its console's first panic message and the
    warning, oops or BUG before it) and which task made it panic (the
    driver logs itself, with its name, before the step that panics)."""
    facts: dict[str, Any] = {"cause": None}
    for line in console:
        if line.startswith(PANIC_CAUSES):
            facts["cause"] = line.strip()
        if m := re.search(r"Kernel panic - not syncing: (.*)", line):
            facts["reason"] = m.group(1).strip()
            break
    for ev in guest_events(console):
        if ev["op"] in PANICKING_OPS and "result" not in ev:
            facts.update(pid=ev["pid"], comm=ev["comm"])
            break
    return facts if "reason" in facts else None


# Steps the driver logs just before the kernel panics in them.
PANICKING_OPS = ("sysrq_crash", "close_session")


def _luo_state(model: _Model, kfacts: dict[str, Any]) -> str:
    if kfacts["disabled_reason"] or kfacts["restore_failed"]:
        return "disabled"
    if model.luo_open_result == "ENOENT":
        return "absent"
    return "enabled"


def with_fault(expected: dict[str, Any], fault: dict[str, Any]) -> dict[str, Any]:
    """The base state plus the fault's record (writes, expected findings)."""
    out = copy.deepcopy(expected)
    out["fault"] = fault
    return out
