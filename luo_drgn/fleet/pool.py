# SPDX-License-Identifier: LGPL-2.1-or-later
"""Many targets' records: each target in a process of its own, from a pool
on this machine or on Dask's distributed scheduler.

A process per target, because drgn's C code cannot be interrupted from a
thread: a target that hangs (a vmcore on a dead NFS mount, a walk drgn
loops in) is killed at ``timeout`` and gets an error record, and the scan
goes on.  On this machine the process is forked from a fork server that
has imported drgn and luo_drgn once (never from the scan itself: a process
that has used OpenMP, as drgn does to index debug info, cannot fork a child
that uses it again); on Dask, a task runs ``python -m
luo_drgn.fleet.worker``, a fresh interpreter, since forking a multi-threaded
Dask worker is not safe either.  Both run :func:`~luo_drgn.fleet.worker.inspect_job`,
so the records are the same whichever runs the scan.

drgn indexes debug info with OpenMP, one thread per CPU by default: each
target's process gets ``threads`` of them (``OMP_NUM_THREADS``), so that N
workers do not run N × CPUs threads; its memory is bounded with
``RLIMIT_AS``.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, Callable, cast

from .record import error_record
from .worker import Job, inspect_job

__all__ = ("default_jobs", "default_memory_mb", "run_isolated", "scan")

Progress = Callable[[int, int], None]


def default_jobs() -> int:
    """One worker per CPU this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_memory_mb(jobs: int) -> int:
    """The machine's memory shared among ``jobs`` workers, 1 GiB at least."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 4096
    return max(1024, total // max(1, jobs) >> 20)


def _omp_threads(jobs: int) -> int:
    """The OpenMP threads each worker gets: the user's OMP_NUM_THREADS, or
    the CPUs shared among the workers."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    return max(1, default_jobs() // max(1, jobs))


def _limit_memory(memory_mb: int | None) -> None:
    if memory_mb:
        import resource

        limit = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _set_openmp_threads(threads: int) -> None:
    """OMP_NUM_THREADS is read when libgomp loads, which in a forked child
    happened in the fork server: set the running libgomp's thread count too
    (it is the library drgn's wheel or distribution build loaded)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        with open("/proc/self/maps") as maps:
            libs = set(re.findall(r"\S*/libgomp[^/\s]*\.so[^/\s]*", maps.read()))
    except OSError:
        return
    for lib in libs:
        try:
            ctypes.CDLL(lib).omp_set_num_threads(threads)
        except (OSError, AttributeError):
            continue


def _child(job: Job, conn: Any, threads: int, memory_mb: int | None) -> None:
    try:
        _set_openmp_threads(threads)
        _limit_memory(memory_mb)
        conn.send(inspect_job(job))
    finally:
        conn.close()


def _timed_out(job: Job, timeout: float) -> dict[str, Any]:
    return error_record(
        job["target"],
        None,
        job["command"],
        f"killed after {timeout:g} s (--timeout): the target did not finish",
        timeout,
    )


def _died(job: Job, code: int | None, seconds: float) -> dict[str, Any]:
    how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
    return error_record(
        job["target"],
        None,
        job["command"],
        f"the process inspecting it ended without a record ({how})",
        seconds,
    )


def _run_forked(
    jobs: Sequence[Job],
    workers: int,
    timeout: float | None,
    memory_mb: int | None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, record)`` as each target finishes, ``workers`` at a time."""
    # Each child sets its libgomp's thread count (the fork server loaded it).
    threads = _omp_threads(workers)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["luo_drgn.fleet.worker"])
    waiting = list(enumerate(jobs))
    waiting.reverse()
    # connection -> (index, process, started)
    running: dict[multiprocessing.connection.Connection, tuple[int, Any, float]] = {}
    while waiting or running:
        while waiting and len(running) < workers:
            index, job = waiting.pop()
            receive, send = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_child, args=(job, send, threads, memory_mb))
            process.start()
            send.close()
            running[receive] = (index, process, time.monotonic())
        wait_for = None
        if timeout is not None:
            now = time.monotonic()
            wait_for = max(0.0, min(started + timeout - now for _, _, started in running.values()))
        for ready in multiprocessing.connection.wait(list(running), timeout=wait_for):
            conn = cast(multiprocessing.connection.Connection, ready)
            index, process, started = running.pop(conn)
            try:
                rec: dict[str, Any] | None = conn.recv()
            except EOFError:
                rec = None
            conn.close()
            process.join()
            yield index, rec or _died(jobs[index], process.exitcode, time.monotonic() - started)
        if timeout is not None:
            now = time.monotonic()
            for conn, (index, process, started) in list(running.items()):
                if now - started >= timeout:
                    process.kill()
                    process.join()
                    conn.close()
                    del running[conn]
                    yield index, _timed_out(jobs[index], timeout)


def run_isolated(
    job: Job, timeout: float | None = None, memory_mb: int | None = None, threads: int = 1
) -> dict[str, Any]:
    """One job in a fresh interpreter (``python -m luo_drgn.fleet.worker``):
    what a Dask task runs."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "luo_drgn.fleet.worker"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            preexec_fn=lambda: _limit_memory(memory_mb),
        )
    except subprocess.TimeoutExpired:
        return _timed_out(job, timeout or 0.0)
    try:
        rec: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        return _died(job, done.returncode, time.monotonic() - started)
    return rec


def _run_dask(
    jobs: Sequence[Job],
    scheduler: str,
    timeout: float | None,
    memory_mb: int | None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        from distributed import Client, as_completed  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise SchedulerError(
            "--scheduler needs Dask's distributed scheduler: pip install 'luo-drgn[fleet]' "
            "(Python 3.10 or later)"
        ) from None
    try:
        client = Client(scheduler, timeout=30)  # type: ignore[no-untyped-call,unused-ignore]
    except (OSError, TimeoutError) as e:
        raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    with client:
        futures = {
            client.submit(run_isolated, job, timeout, memory_mb, pure=False): index
            for index, job in enumerate(jobs)
        }
        for future in as_completed(futures):  # type: ignore[no-untyped-call,unused-ignore]
            index = futures[future]
            try:
                rec = future.result()
            except Exception as e:  # noqa: BLE001 - a lost worker is one target's error
                rec = error_record(
                    jobs[index]["target"],
                    None,
                    jobs[index]["command"],
                    f"the Dask task failed: {type(e).__name__}: {e}",
                )
            yield index, rec


class SchedulerError(Exception):
    """The scan cannot run where it was asked to; ``str(e)`` says why."""


def scan(
    jobs: Sequence[Job],
    *,
    workers: int = 1,
    timeout: float | None = None,
    memory_mb: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> Iterator[dict[str, Any]]:
    """
    The records of ``jobs``, in their order, each as soon as it and every
    one before it are done.

    :param workers: processes at once on this machine (ignored with a
        scheduler: Dask's workers decide)
    :param timeout: seconds a target may take before it is killed
    :param memory_mb: the address space a target's process may use
    :param scheduler: a Dask scheduler's address (``tcp://HOST:8786``)
    :param progress: called with (done, total) as targets finish
    :raises SchedulerError: when the Dask scheduler cannot be used
    """
    results = (
        _run_dask(jobs, scheduler, timeout, memory_mb)
        if scheduler
        else _run_forked(jobs, max(1, workers), timeout, memory_mb)
    )
    ready: dict[int, dict[str, Any]] = {}
    next_index = 0
    for done, (index, rec) in enumerate(results, 1):
        ready[index] = rec
        if progress is not None:
            progress(done, len(jobs))
        while next_index in ready:
            yield ready.pop(next_index)
            next_index += 1
