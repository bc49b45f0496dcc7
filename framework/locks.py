"""One run at a time per pipeline and target; one process at a time on a DuckDB warehouse.

`flock` locks die with their process, so a run killed with SIGKILL never leaves a lock that
blocks the next one; the file keeps the holder's pid for the message.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from framework.errors import FrameworkError
from framework.settings.targets import Target


class PipelineLocked(FrameworkError):
    pass


@contextmanager
def pipeline_lock(folder: Path, pipeline: str, target: str) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{pipeline}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise PipelineLocked(f"{pipeline}: already running on target '{target}' (pid "
                                 f"{holder}); wait for it or stop it") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Held:
    def __init__(self, handle: IO[str]) -> None:
        self.handle, self.count = handle, 1


_held: dict[str, _Held] = {}
_guard = threading.Lock()
# One gate per lock file: the threads of one process take the process's turn one at a time, so
# two of them never both open the file and wait on each other's flock (a `run --threads N`).
_gates: dict[str, threading.Lock] = {}


@contextmanager
def waiting_lock(path: Path, what: str, wait: float, poll: float = 0.2) -> Iterator[None]:
    """An exclusive `flock` on `path`, waited for up to `wait` seconds.

    Re-entrant within a process (a warehouse opened again while it is held, say); another
    process waits its turn. Like `pipeline_lock`, it dies with its process.
    """
    # By process too: a child forked while the lock is held inherits `_held`, yet holds no
    # turn of its own, and must wait like any other process.
    key = f"{os.getpid()}:{path.resolve()}"
    with _guard:
        gate = _gates.setdefault(key, threading.Lock())
    with gate:
        held = _held.get(key)
        if held is None:
            held = _held[key] = _Held(_acquire(path, what, wait, poll))
        else:
            held.count += 1
    try:
        yield
    finally:
        with gate:
            held.count -= 1
            if held.count == 0:
                del _held[key]
                fcntl.flock(held.handle, fcntl.LOCK_UN)
                held.handle.close()


def _acquire(path: Path, what: str, wait: float, poll: float) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held until the lock is released
    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if time.monotonic() >= deadline:
                handle.close()
                raise FrameworkError(f"{what}: still busy with pid {holder} after {wait:.0f} s "
                                     f"(lock {path})") from None
            if not said:  # a command that waits in silence looks hung
                _say(f"{what}: busy with pid {holder}; waiting for its turn (up to {wait:.0f} s, "
                     f"FRAMEWORK_WAREHOUSE_WAIT)")
                said = True
            time.sleep(poll)
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _say(message: str) -> None:
    """One line on stderr (stdout may carry `--json`), or a log record under --log-format json."""
    from framework import logs

    if logs.is_json():
        logs.logger.warning(message)
    else:
        print(message, file=sys.stderr, flush=True)


def warehouse_wait() -> float:
    """Seconds a run waits for the DuckDB warehouse file (`FRAMEWORK_WAREHOUSE_WAIT`)."""
    from framework.settings.envvars import seconds

    return seconds("FRAMEWORK_WAREHOUSE_WAIT", 3600)


@contextmanager
def warehouse_lock(target: Target, wait: float | None = None) -> Iterator[None]:
    """DuckDB lets one process write a database file: runs of several pipelines at once (as
    Airflow starts them) take turns on it instead of failing. Snowflake needs no turn."""
    path = target.warehouse.path
    if target.warehouse.type != "duckdb" or not path:
        yield
        return
    wait = warehouse_wait() if wait is None else wait
    with waiting_lock(Path(f"{path}.lock"), f"warehouse {path}", wait):
        yield
