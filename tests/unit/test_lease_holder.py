"""Whether a lease's holder on this host is gone: a killed process not reaped yet is."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from framework.lease import takeable
from framework.stages.load.state import Lease


def held_by(pid: int, acquired_ago: timedelta | None = None) -> Lease:
    now = datetime.now(UTC).replace(tzinfo=None)
    return Lease(pipeline="orders", target="local", token="t", holder="w", host=socket.gethostname(),
                 pid=pid, run_id="r", expires_at=now + timedelta(minutes=2),
                 acquired_at=None if acquired_ago is None else now - acquired_ago)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="no /proc on this system")
def test_a_killed_holder_its_parent_has_not_reaped_leaves_the_lease_takeable() -> None:
    """kill -9 leaves a zombie until its parent waits: it answers signal 0, so the run right
    after a killed one waited for the whole lease (two minutes), or failed."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert takeable(held_by(child.pid)) is None  # alive: held
        os.kill(child.pid, signal.SIGKILL)
        for _ in range(100):  # dead, not reaped: a zombie
            with open(f"/proc/{child.pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.02)

        assert takeable(held_by(child.pid)) == f"process {child.pid} is gone"
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="no /proc on this system")
def test_a_pid_handed_to_a_process_started_after_the_lease_was_taken_is_not_the_holder() -> None:
    """A worker killed and restarted (a container numbers its processes from 1 again) finds its
    old lease's pid alive in an unrelated process: the run waited the whole TTL, then told the
    operator to stop that stranger."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # Taken a minute before the process with this pid started: another process held it.
        why = takeable(held_by(child.pid, acquired_ago=timedelta(minutes=1)))
        assert why is not None and why.startswith(f"process {child.pid} is gone (that pid is now")
        # Taken after it started (this is how a live holder's lease looks): held.
        time.sleep(0.05)
        assert takeable(held_by(child.pid, acquired_ago=timedelta(0))) is None
        assert takeable(held_by(child.pid)) is None  # a lease stored before acquired_at was read
    finally:
        child.kill()
        child.wait()
