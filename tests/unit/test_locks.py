"""Locks: a second process waits its turn on the DuckDB warehouse instead of failing."""

from __future__ import annotations

import fcntl
import multiprocessing
import multiprocessing.queues
import os
import signal
import time
from pathlib import Path

import pytest

from framework import logs
from framework.errors import FrameworkError
from framework.locks import waiting_lock


def _hold(path: str, seconds: float, ready: multiprocessing.synchronize.Event) -> None:
    with waiting_lock(Path(path), "warehouse x", wait=30):
        ready.set()
        time.sleep(seconds)


def test_a_second_process_waits_for_the_lock_then_takes_it(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    logs.configure("console")  # as the CLI's default; a test before may have left json
    path = tmp_path / "warehouse.duckdb.lock"
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(str(path), 1.0, ready))
    holder.start()
    assert ready.wait(30)
    started = time.monotonic()

    with waiting_lock(path, "warehouse x", wait=30):
        waited = time.monotonic() - started
        with waiting_lock(path, "warehouse x", wait=0):  # re-entrant in one process
            pass

    holder.join(30)
    assert 0.5 < waited < 20
    said = capfd.readouterr().err
    assert said == (f"warehouse x: busy with pid {holder.pid}; waiting for its turn (up to 30 s, "
                    "FRAMEWORK_WAREHOUSE_WAIT)\n")


def test_a_lock_held_too_long_is_one_line_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb.lock"
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(str(path), 3.0, ready))
    holder.start()
    assert ready.wait(30)
    busy = rf"^warehouse x: still busy with pid {holder.pid} after 0 s \(lock {path}\)$"
    try:
        with pytest.raises(FrameworkError, match=busy), waiting_lock(path, "warehouse x", wait=0.3):
            pass
    finally:
        holder.join(30)


def _try(path: str, result: multiprocessing.queues.Queue[str]) -> None:
    try:
        with waiting_lock(Path(path), "warehouse x", wait=0.3):
            result.put("entered")
    except FrameworkError as exc:
        result.put(str(exc))


def test_a_child_forked_while_the_lock_is_held_waits_like_any_other_process(
        tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb.lock"
    context = multiprocessing.get_context("fork")
    result = context.Queue()
    with waiting_lock(path, "warehouse x", wait=1):
        child = context.Process(target=_try, args=(str(path), result))
        child.start()
        child.join(30)
        answer = result.get(timeout=5)

    assert answer.startswith("warehouse x: still busy with pid "), answer


def test_a_holder_killed_with_sigkill_leaves_no_lock_behind(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb.lock"
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(str(path), 60.0, ready))
    holder.start()
    assert ready.wait(30)
    os.kill(holder.pid or 0, signal.SIGKILL)
    holder.join(30)

    started = time.monotonic()
    with waiting_lock(path, "warehouse x", wait=5):
        assert path.read_text() == str(os.getpid())  # the stale pid is replaced by ours
    assert time.monotonic() - started < 5


def test_a_warehouse_that_fails_to_set_up_lets_its_file_go(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.errors import ServiceError
    from framework.settings.targets import build_target
    from framework.stages.load.duckdb import DuckDBWarehouse

    path = tmp_path / "warehouse.duckdb"
    target = build_target("local", {"lake": {"url": str(tmp_path / "lake")},
                                    "warehouse": {"type": "duckdb", "path": str(path)}})
    # A size DuckDB itself refuses once the file is open (the framework's own check lets a
    # well-formed size through): the setup fails after the turn was taken.
    monkeypatch.setenv("FRAMEWORK_DUCKDB_MEMORY", "99999999TB")

    with pytest.raises(ServiceError, match=f"^warehouse {path}: "):
        DuckDBWarehouse(target)

    with open(f"{path}.lock") as handle:  # a fresh handle: it conflicts unless released
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_threads_of_one_process_share_its_turn_without_waiting_on_each_other(
        tmp_path: Path) -> None:
    """`run --threads N`: every thread that opens the warehouse at once gets the process's
    turn; none waits for a sibling's flock (which would last until the whole run ends)."""
    import threading

    path = tmp_path / "warehouse.duckdb.lock"
    start = threading.Barrier(8)
    inside = threading.Barrier(8, timeout=10)  # all eight hold the turn at the same time
    errors: list[BaseException] = []

    def enter() -> None:
        try:
            start.wait()
            with waiting_lock(path, "warehouse x", wait=5, poll=0.01):
                inside.wait()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=enter) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    with open(path) as handle:  # released: another process could take it now
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
