"""One run at a time per pipeline and target.

`flock` locks die with their process, so a run killed with SIGKILL never leaves a lock that
blocks the next one; the file keeps the holder's pid for the message.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from framework.errors import FrameworkError


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
