# SPDX-License-Identifier: LGPL-2.1-or-later
"""Boot a fixture guest under QEMU and talk to it: console, QMP, gdbstub.

QEMU runs with TCG (KVM guests hang on these machines).  The console is the
guest's serial port on QEMU's stdout, read line by line in a thread; QMP and
the gdbstub listen on Unix sockets in a private directory, so parallel runs
never fight over TCP ports.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path


class GuestError(RuntimeError):
    """The guest did not reach the state a scenario needed."""


def qemu_binary() -> str:
    path = shutil.which("qemu-system-x86_64")
    if path is None:
        raise GuestError("qemu-system-x86_64 not found (Debian package qemu-system-x86)")
    return path


def _die_with_parent() -> None:
    """In the QEMU child: be killed when the runner dies, killed or not, so
    no guest outlives an interrupted run."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class QMP:
    """A minimal QMP client: one command at a time, events skipped."""

    def __init__(self, path: str, timeout: float = 60.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")
        json.loads(self.reader.readline())  # greeting
        self.execute("qmp_capabilities")

    def execute(self, command: str, **arguments: object) -> object:
        msg: dict[str, object] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = json.loads(self.reader.readline())
            if "event" in reply:
                continue
            if "error" in reply:
                raise GuestError(f"QMP {command}: {reply['error']}")
            return reply["return"]

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class GdbStub:
    """Just enough of the GDB remote serial protocol to stop the guest at a
    breakpoint and to read and write its (virtual) memory.

    Connecting stops the guest; :meth:`detach` lets it run again.
    """

    def __init__(self, path: str, timeout: float = 60.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.command("?")

    def _read_byte(self) -> int:
        if not self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise GuestError("gdbstub closed the connection")
            self.buf = chunk
        b, self.buf = self.buf[0], self.buf[1:]
        return b

    def _read_packet(self) -> str:
        while self._read_byte() != ord("$"):
            pass
        data = bytearray()
        while (b := self._read_byte()) != ord("#"):
            data.append(b)
        self._read_byte(), self._read_byte()  # checksum
        self.sock.sendall(b"+")
        return data.decode()

    def command(self, payload: str, wait_reply: bool = True) -> str:
        checksum = sum(payload.encode()) % 256
        self.sock.sendall(b"$%s#%02x" % (payload.encode(), checksum))
        while (b := self._read_byte()) != ord("+"):
            if b == ord("-"):
                raise GuestError(f"gdbstub refused packet {payload[:20]!r}")
        return self._read_packet() if wait_reply else ""

    def read(self, address: int, size: int) -> bytes:
        reply = self.command(f"m{address:x},{size:x}")
        if reply.startswith("E"):
            raise GuestError(f"gdbstub cannot read {size} bytes at {address:#x}: {reply}")
        return bytes.fromhex(reply)

    def write(self, address: int, data: bytes) -> None:
        reply = self.command(f"M{address:x},{len(data):x}:{data.hex()}")
        if reply != "OK":
            raise GuestError(f"gdbstub cannot write at {address:#x}: {reply}")

    def break_at(self, address: int) -> None:
        reply = self.command(f"Z1,{address:x},1")
        if reply != "OK":
            raise GuestError(f"gdbstub refused a breakpoint at {address:#x}: {reply}")

    def remove_break(self, address: int) -> None:
        reply = self.command(f"z1,{address:x},1")
        if reply != "OK":
            raise GuestError(f"gdbstub refused to remove the breakpoint at {address:#x}: {reply}")

    def cont_until_stop(self, timeout: float) -> str:
        """Resume the guest and wait for the next stop reply."""
        self.command("c", wait_reply=False)
        self.sock.settimeout(timeout)
        try:
            return self._read_packet()
        except socket.timeout as e:
            raise GuestError(f"guest did not stop within {timeout:.0f} s") from e

    def step(self) -> str:
        """Execute one instruction (to step over a breakpoint)."""
        return self.command("s")

    def interrupt(self) -> str:
        """Stop the running guest (a ^C on the wire); return the stop reply."""
        self.sock.sendall(b"\x03")
        return self._read_packet()

    def pc(self) -> int:
        """The stopped vCPU's instruction pointer (x86-64: rip follows the 16
        general-purpose registers in the 'g' reply)."""
        return self.register(16)

    def register(self, n: int) -> int:
        """Register ``n`` of the stopped vCPU in gdb's x86-64 order (rax,
        rbx, rcx, rdx, rsi, rdi: the first argument is 5, ..., rip 16)."""
        regs = bytes.fromhex(self.command("g"))
        return int.from_bytes(regs[n * 8 : (n + 1) * 8], "little")

    def detach(self) -> None:
        self.command("D")
        self.sock.close()


class Guest:
    """One QEMU run of the fixture kernel."""

    def __init__(
        self,
        kernel: Path,
        initrd: Path | None,
        cmdline: str,
        memory_mb: int = 256,
        start_paused: bool = False,
        extra_args: list[str] | None = None,
        cpus: int = 1,
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="luo-guest-"))
        self.qmp_path = str(self.dir / "qmp.sock")
        self.gdb_path = str(self.dir / "gdb.sock")
        args = [
            qemu_binary(),
            "-accel",
            "tcg",
            "-m",
            f"{memory_mb}M",
            "-smp",
            str(cpus),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
            "-kernel",
            str(kernel),
            "-append",
            cmdline,
            # vmcoreinfo lets drgn read QEMU's ELF dumps.
            "-device",
            "vmcoreinfo",
            "-qmp",
            f"unix:{self.qmp_path},server=on,wait=off",
            "-chardev",
            f"socket,id=gdb0,path={self.gdb_path},server=on,wait=off",
            "-gdb",
            "chardev:gdb0",
        ]
        if initrd is not None:
            args += ["-initrd", str(initrd)]
        if start_paused:
            args.append("-S")
        args += extra_args or []
        self.console: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        self.qmp = self._connect(QMP, self.qmp_path)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            self.console.append(line)
            self._lines.put(line)
        self._lines.put(None)

    @staticmethod
    def _connect(cls, path: str, timeout: float = 20.0):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while True:
            try:
                return cls(path)
            except (FileNotFoundError, ConnectionRefusedError) as e:
                if time.monotonic() > deadline:
                    raise GuestError(f"QEMU did not open {path}") from e
                time.sleep(0.05)

    def gdb(self) -> GdbStub:
        return self._connect(GdbStub, self.gdb_path)

    def wait_for(self, marker: str, timeout: float = 120.0) -> str:
        """Wait for a console line starting with ``marker``; return it."""
        return self.wait_for_any((marker,), timeout)

    def wait_for_any(self, markers: tuple[str, ...], timeout: float = 120.0) -> str:
        """Wait for a console line starting with one of ``markers``."""
        return self.wait_for_line(lambda line: line.startswith(markers), str(markers), timeout)

    def wait_for_line(self, match: Callable[[str], bool], what: str, timeout: float = 120.0) -> str:
        """Wait for a console line ``match`` accepts; return it."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GuestError(f"no {what} on the console within {timeout:.0f} s")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise GuestError(f"QEMU exited before {what}:\n" + self.tail())
            if match(line):
                return line

    def wait_exit(self, timeout: float) -> None:
        """Wait for QEMU to exit (the guest panicked, with -no-reboot)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GuestError(f"the guest did not end within {timeout:.0f} s:\n" + self.tail())
            try:
                if self._lines.get(timeout=remaining) is None:
                    return
            except queue.Empty:
                continue

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.console[-n:])

    def dump(self, path: Path, fmt: str = "elf") -> None:
        """Write all guest RAM as an ELF core (with the vmcoreinfo note), or
        in another of QEMU's formats (``kdump-zlib``...)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.qmp.execute("dump-guest-memory", paging=False, protocol=f"file:{path}", format=fmt)

    def close(self) -> None:
        with contextlib.suppress(OSError, GuestError, ValueError):
            self.qmp.execute("quit")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Guest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def luo_cmdline(scenario: str, phase: int = 1, extra: str = "") -> str:
    """The kernel command line of a fixture guest."""
    parts = [
        "console=ttyS0",
        "panic=-1",
        "liveupdate=on",
        # Freed pages are zeroed: stale copies of the initramfs do not bloat
        # the dumps.
        "init_on_free=1",
        # Without ACPI the fw_cfg driver is not probed by itself; it fills
        # QEMU's vmcoreinfo device.
        "qemu_fw_cfg.ioport=0x0c@0x510:0:1:4",
        f"luo_scenario={scenario}",
        f"luo_phase={phase}",
    ]
    if extra:
        parts.append(extra)
    return " ".join(parts)
