"""Named kill points for the fault-injection tests.

`FRAMEWORK_KILL_AT=<point>` makes the process SIGKILL itself when it reaches that point, so
tests can prove a crash anywhere leaves nothing lost or duplicated. Unset, it costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

# Points every run passes, each tested on the demo shop (tests/faults/test_crash_safety.py).
# Points only some runs reach are named where they are tested: `extract_partition` (a
# partitioned read, tests/integration/test_partitions.py).
KILL_POINTS = (
    "extract", "after_extract", "after_lake_write", "transform", "validate", "load",
    "after_load", "before_dbt", "dbt_build", "dbt",
)


def checkpoint(point: str) -> None:
    if os.environ.get("FRAMEWORK_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def kill_once(point: str, reached: Callable[[], bool], poll: float = 0.05) -> None:
    """A kill point inside work another process does (dbt's build): when `point` is armed, a
    watcher SIGKILLs this process as soon as `reached()` holds. Unarmed, it starts nothing."""
    if os.environ.get("FRAMEWORK_KILL_AT") != point:
        return

    def watch() -> None:
        while not reached():
            time.sleep(poll)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name=f"kill-at-{point}").start()
