"""Bounded retries with exponential back-off, for transient faults only.

A dropped connection or a timeout is worth another try; a wrong password, a missing table or a
refused connection is not, and fails at once with its reason. S3 (botocore, s3fs) and the
Snowflake connector retry their own 5xx answers; this covers the source database and whole
stage attempts, which are safe to repeat (dlt finishes a half-done package first; a warehouse
load is one transaction guarded by the ledger).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from framework.errors import chain

T = TypeVar("T")

TRANSIENT_MARKERS = (
    "connection reset", "server closed the connection", "lost connection", "timed out",
    "timeout expired", "terminating connection", "could not receive data", "broken pipe",
    "connection was killed", "temporarily unavailable", "too many connections",
    "deadlock detected", "ssl syscall error", "connection aborted", "eof detected",
    "server has gone away", "unexpected eof",
)
TRANSIENT_TYPES = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, TimeoutError)


def is_transient(exc: BaseException) -> bool:
    """True when `exc` (or anything in its cause chain) looks like a passing network fault."""
    return any(isinstance(cause, TRANSIENT_TYPES)
               or any(marker in str(cause).lower() for marker in TRANSIENT_MARKERS)
               for cause in chain(exc))


def retrying(action: Callable[[], T], *, attempts: int = 4, first_delay: float = 0.5,
             max_delay: float = 8.0, on_retry: Callable[[str], None] = lambda _: None,
             sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `action`; on a transient fault wait (doubling, with jitter) and try again."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = min(max_delay, first_delay * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
            first = str(exc).strip().splitlines()
            on_retry(f"transient fault (attempt {attempt} of {attempts}, retrying in "
                     f"{delay:.1f}s): {first[0] if first else type(exc).__name__}")
            sleep(delay)
    raise AssertionError("unreachable")
