"""A Spark standalone cluster on loopback, from the jars pyspark ships (no download).

`standalone_cluster()` starts `org.apache.spark.deploy.master.Master` and N
`org.apache.spark.deploy.worker.Worker` processes with `bin/spark-class` (the pyspark package
is a full Spark home), on free ports, with a temporary work and log folder; it waits until every
worker has registered with the master and stops all of them (and their executors) on exit.
The tests and the Spark benchmark use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 120.0


@dataclass
class Cluster:
    master_url: str
    web_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_dir: Path = Path()

    def state(self) -> dict[str, object]:
        """The master's JSON status (workers, running and completed applications)."""
        with urllib.request.urlopen(f"{self.web_url}/json/", timeout=10) as answer:
            return dict(json.load(answer))

    def logs(self) -> str:
        """The tail of every daemon's log, to explain a failure."""
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.log_dir.glob("*.log")))


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def standalone_cluster(work: Path, workers: int = 2, cores: int = 1,
                       memory: str = "768m") -> Iterator[Cluster]:
    """A master and `workers` workers (`cores` cores, `memory` for executors each)."""
    home = spark_home()
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOG_DIR": str(logs), "SPARK_DAEMON_MEMORY": "256m",
           "SPARK_NO_DAEMONIZE": "1"}
    port, web = free_port(), free_port()
    cluster = Cluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web}", log_dir=logs)

    def launch(name: str, *args: str) -> None:
        log = (logs / f"{name}.log").open("wb")
        # A session of its own: the worker's executors are its children, stopped with it.
        cluster.processes.append(subprocess.Popen(
            [str(home / "bin" / "spark-class"), *args], env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, cwd=work))
        log.close()

    try:
        launch("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
               "--port", str(port), "--webui-port", str(web))
        _wait(lambda: _answers(cluster), cluster, "the master to answer")
        for index in range(workers):
            folder = work / f"worker-{index}"
            folder.mkdir(exist_ok=True)
            launch(f"worker-{index}", "org.apache.spark.deploy.worker.Worker", "--host",
                   "127.0.0.1", "--webui-port", str(free_port()), "--cores", str(cores),
                   "--memory", memory, "--work-dir", str(folder), cluster.master_url)
        _wait(lambda: _alive_workers(cluster) == workers, cluster, f"{workers} worker(s)")
        yield cluster
    finally:
        stop(cluster)


def stop(cluster: Cluster) -> None:
    """Workers first (each stops its executors), then the master; SIGKILL what lingers."""
    for process in reversed(cluster.processes):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in reversed(cluster.processes):
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # executors left in the worker's group
            os.killpg(process.pid, signal.SIGKILL)


def _answers(cluster: Cluster) -> bool:
    try:
        cluster.state()
    except OSError:
        return False
    return True


def _alive_workers(cluster: Cluster) -> int:
    workers = cluster.state().get("workers")
    return sum(1 for w in workers or [] if isinstance(w, dict) and w.get("state") == "ALIVE") \
        if isinstance(workers, list) else 0


def _wait(ready: Callable[[], bool], cluster: Cluster, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in cluster.processes):
            raise RuntimeError(f"a Spark daemon exited while waiting for {what}:\n"
                               f"{cluster.logs()}")
        if ready():
            return
        time.sleep(0.5)
    raise RuntimeError(f"timed out after {START_TIMEOUT:.0f}s waiting for {what}:\n{cluster.logs()}")
