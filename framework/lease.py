"""The run lease: one worker at a time runs a pipeline on a target, whatever machine it is on.

The lease lives in the warehouse (framework/stages/load/state.py), so every worker sees it. It
expires `FRAMEWORK_LEASE_TTL` seconds (default 120) after its last heartbeat; a heartbeat thread
renews it while the run goes on, and the run releases it at the end. A dead worker's lease is
taken over once it expires, or at once when the holder was a process on this host that no
longer exists (a SIGKILLed run here need not make the next one wait; a pid now held by a process
started after the lease was taken is not the holder), with a warning naming the
old holder. A worker that finds the lease held waits up to `FRAMEWORK_LEASE_WAIT` seconds
(default 0), then stops with "pipeline X is being run by <holder> until <expiry>".

`FRAMEWORK_WORKER_ID` names the worker in leases and run records (default: the host name), so
one machine can stand in for two in tests.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

from framework import logs
from framework.errors import FrameworkError
from framework.runs import worker_id
from framework.settings.envvars import seconds
from framework.stages.load import Warehouse
from framework.stages.load.state import Lease, SharedState, utcnow


class PipelineLeased(FrameworkError):
    """Another worker holds the pipeline's lease."""


def lease_ttl() -> float:
    return seconds("FRAMEWORK_LEASE_TTL", 120)


def lease_wait() -> float:
    return seconds("FRAMEWORK_LEASE_WAIT", 0)


def describe(lease: Lease) -> str:
    return lease.holder or "another worker"


def _dead_here(lease: Lease) -> str | None:
    """Why the holder, a process on this host, is gone (pids are only comparable here); None
    when it may still run."""
    if lease.host != socket.gethostname() or not lease.pid:
        return None
    if lease.pid == os.getpid():
        return None  # this process: a lease of its own, not a dead one
    try:
        os.kill(lease.pid, 0)
    except ProcessLookupError:
        return f"process {lease.pid} is gone"
    except PermissionError:
        return None
    if _zombie(lease.pid):
        return f"process {lease.pid} is gone"
    started = _started_at(lease.pid)
    if started is not None and lease.acquired_at is not None and \
            started > lease.acquired_at + _CLOCK_SLACK:
        # The pid was handed to another process (a restarted container numbers from 1 again):
        # waiting for it, or telling the operator to stop it, would be about a stranger.
        return (f"process {lease.pid} is gone (that pid is now a process started at "
                f"{started:%H:%M:%S} UTC, after the lease was taken)")
    return None


# /proc's boot time is whole seconds, and the start a count of clock ticks since then.
_CLOCK_SLACK = timedelta(seconds=2)


def _started_at(pid: int) -> datetime | None:
    """When process `pid` started (naive UTC, as leases are stored); None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="utf-8") as machine:
            boot = next(int(line.split()[1]) for line in machine if line.startswith("btime "))
    except (OSError, IndexError, ValueError, StopIteration):
        return None
    seconds_since_boot = ticks / os.sysconf("SC_CLK_TCK")
    return datetime.fromtimestamp(boot + seconds_since_boot, UTC).replace(tzinfo=None)


def _zombie(pid: int) -> bool:
    """A killed process its parent has not reaped yet (a shell, a container's first process
    that never reaps): it answers signals until then, but holds nothing."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):  # no /proc (macOS): as before, a live process
        return False


def takeable(lease: Lease) -> str | None:
    """None when the lease is held by a live worker; else why it may be taken ('' if free)."""
    if not lease.held:
        return ""
    if lease.token and lease.token.startswith("?"):  # two workers raced for the first row
        if lease.expires_at is None or lease.expires_at <= utcnow():
            return ""  # and both are gone: settle the rows
        return None
    if lease.expires_at is not None and lease.expires_at <= utcnow():
        return f"its lease expired at {lease.expires_at:%Y-%m-%d %H:%M:%S} UTC"
    return _dead_here(lease)


class RunLease:
    """A held lease and its heartbeat; `lost` says a renewal found another holder."""

    def __init__(self, state: SharedState, pipeline: str, target: str, token: str,
                 ttl: float) -> None:
        self.state, self.pipeline, self.target, self.token, self.ttl = \
            state, pipeline, target, token, ttl
        self.lost: str | None = None
        self.took_over: Lease | None = None  # the dead holder's lease, when taken over
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_heartbeat(self, session: SharedState) -> None:
        def beat() -> None:
            try:
                while not self._stop.wait(self.ttl / 4):
                    try:
                        if not session.renew_lease(self.pipeline, self.target, self.token,
                                                   self.ttl):
                            now = session.lease(self.pipeline, self.target)
                            self.lost = describe(now)
                            logs.logger.warning(f"{self.pipeline}: lease taken over by "
                                                f"{self.lost}")
                            return
                    except Exception as exc:  # noqa: BLE001 - a blip: the next beat tries again
                        logs.logger.warning(f"{self.pipeline}: lease heartbeat failed: {exc}")
            finally:
                with suppress(Exception):
                    session.close()

        self._thread = threading.Thread(target=beat, daemon=True,
                                        name=f"lease-{self.pipeline}")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def acquire(state: SharedState, pipeline: str, target: str, run_id: str,
            warn: Callable[[str], None], wait: float | None = None,
            poll: float = 1.0) -> RunLease:
    """Take the lease, waiting up to `wait` seconds for a live holder to finish."""
    ttl = lease_ttl()
    wait = lease_wait() if wait is None else wait
    me = worker_id()
    host = socket.gethostname()
    holder = f"{me} (pid {os.getpid()}, run {run_id})" if me == host else \
        f"{me} on {host} (pid {os.getpid()}, run {run_id})"
    deadline = time.monotonic() + wait
    said = False
    while True:
        seen = state.lease(pipeline, target)
        why = takeable(seen)
        if why is not None:
            token = uuid.uuid4().hex
            if state.swap_lease(seen, token, holder, host, os.getpid(), run_id, ttl):
                lease = RunLease(state, pipeline, target, token, ttl)
                if why:
                    warn(f"took over the lease of {describe(seen)}: {why}")
                    lease.took_over = seen
                return lease
            continue  # another worker won the swap: look again
        if time.monotonic() >= deadline:
            until = f"{seen.expires_at:%Y-%m-%d %H:%M:%S} UTC" if seen.expires_at else "?"
            raise PipelineLeased(f"pipeline {pipeline} is being run by {describe(seen)} until "
                                 f"{until} (target '{target}'); wait for it or stop it")
        if not said:
            warn(f"waiting for {describe(seen)} to finish (up to {wait:.0f} s, "
                 "FRAMEWORK_LEASE_WAIT)")
            said = True
        time.sleep(poll)


# The lease the current pipeline runs under (each `--threads` worker has its own context).
_HELD: ContextVar[RunLease | None] = ContextVar("framework_lease", default=None)


def still_held(pipeline: str) -> None:
    """Stop before a write when the heartbeat found this run's lease taken over (it lapsed
    while the warehouse was unreachable, and another worker runs the pipeline now)."""
    lease = _HELD.get()
    if lease is not None and lease.pipeline == pipeline and lease.lost:
        raise FrameworkError(f"pipeline {pipeline}: the lease was taken over by {lease.lost}; "
                             "this run stopped before loading (the other worker loads the "
                             "batch)")


@contextmanager
def leased(warehouse: Warehouse, pipeline: str, target: str, run_id: str,
           warn: Callable[[str], None]) -> Iterator[RunLease]:
    """Hold the pipeline's lease while the body runs, renewed by a heartbeat thread."""
    state = warehouse.shared_state()
    lease = acquire(state, pipeline, target, run_id, warn)
    held = _HELD.set(lease)
    try:
        lease.start_heartbeat(warehouse.shared_state(own_session=True))
        yield lease
    finally:
        _HELD.reset(held)
        lease.stop()
        with suppress(Exception):  # a dead warehouse: the lease lapses on its own
            state.release_lease(pipeline, target, lease.token)
    if lease.lost:
        warn(f"the lease was taken over by {lease.lost} while this run held it")
