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


def held_by(pid: int) -> Lease:
    return Lease(pipeline="orders", target="local", token="t", holder="w", host=socket.gethostname(),
                 pid=pid, run_id="r", expires_at=datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=2))


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
