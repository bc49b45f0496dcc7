"""Named kill points for the fault-injection tests.

`FRAMEWORK_KILL_AT=<point>` makes the process SIGKILL itself when it reaches that point, so
tests can prove a crash anywhere leaves nothing lost or duplicated. Unset, it costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal

KILL_POINTS = (
    "extract", "after_extract", "after_lake_write", "transform", "validate", "load",
    "after_load", "dbt",
)


def checkpoint(point: str) -> None:
    if os.environ.get("FRAMEWORK_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
