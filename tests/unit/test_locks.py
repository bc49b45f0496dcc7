"""Locks: a second process waits its turn on the DuckDB warehouse instead of failing."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from framework.errors import FrameworkError
from framework.locks import waiting_lock


def _hold(path: str, seconds: float, ready: multiprocessing.synchronize.Event) -> None:
    with waiting_lock(Path(path), "warehouse x", wait=30):
        ready.set()
        time.sleep(seconds)


def test_a_second_process_waits_for_the_lock_then_takes_it(tmp_path: Path) -> None:
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
