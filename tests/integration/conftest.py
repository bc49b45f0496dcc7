"""Services for integration tests, started on free loopback ports."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import service_unavailable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> str | None:
    """None once the port accepts connections, else why it never did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with code {process.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return None
        except OSError:
            time.sleep(0.1)
    return f"did not listen on port {port} within {timeout:.0f} s"


@dataclass(frozen=True)
class FakesnowServer:
    """A fakesnow server (Snowflake emulated on DuckDB) reached by the real, unpatched connector."""

    host: str
    port: int
    protocol: str = "http"
    account: str = "fakesnow"
    user: str = "fake"
    password: str = "fakesnow-password"  # any; not a substring of messages (secrets are redacted)
    extra: dict[str, Any] = field(default_factory=dict)

    def connect_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for `snowflake.connector.connect`."""
        return {"host": self.host, "port": self.port, "protocol": self.protocol,
                "account": self.account, "user": self.user, "password": self.password,
                **self.extra, **overrides}

    def warehouse_settings(self, **overrides: Any) -> dict[str, Any]:
        """A `warehouse:` mapping for `build_target` (type snowflake)."""
        return {"type": "snowflake", "host": self.host, "port": self.port,
                "protocol": self.protocol, "account": self.account, "user": self.user,
                "password": self.password, **overrides}


@pytest.fixture(scope="session")
def fakesnow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakesnowServer]:
    """`fakesnow -s` in a subprocess for the whole session; databases are in memory and are
    created on first connect, so tests isolate themselves with a database name of their own."""
    if importlib.util.find_spec("fakesnow") is None:  # not imported: it makes a temp folder
        service_unavailable("fakesnow is not installed; install fakesnow[server]")
    port = free_port()
    folder = tmp_path_factory.mktemp("fakesnow")
    log = folder / "server.log"
    # TMPDIR: fakesnow keeps internal stages in a temp folder it never removes; put it in ours.
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fakesnow", "-s", "--host", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(folder)})
    problem = _wait_for_port(port, process, timeout=45)
    if problem:
        _stop(process)
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        service_unavailable(f"fakesnow server {problem}: {' | '.join(tail) or 'no output'}")
    try:
        yield FakesnowServer(host="127.0.0.1", port=port)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # fakesnow shuts uvicorn down cleanly on SIGINT
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass(frozen=True)
class S3Server:
    """moto's S3 endpoint; any bucket name works once created (`create_bucket`)."""

    endpoint_url: str
    access_key_id: str = "testing"
    secret_access_key: str = "testing-secret"
    region: str = "us-east-1"

    def lake_settings(self, url: str) -> dict[str, Any]:
        """A `lake:` mapping for `build_target`."""
        return {"url": url, "endpoint_url": self.endpoint_url, "region": self.region,
                "access_key_id": self.access_key_id, "secret_access_key": self.secret_access_key}

    def create_bucket(self, name: str) -> None:
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                     aws_access_key_id=self.access_key_id,
                     aws_secret_access_key=self.secret_access_key).create_bucket(Bucket=name)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Server]:
    """An in-process moto S3 server on a free loopback port, for the whole session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        service_unavailable(f"moto[server] is not installed ({exc})")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - any start failure means no S3 here
        service_unavailable(f"moto S3 server did not start: {exc}")
    host, port = server.get_host_and_port()
    try:
        yield S3Server(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()
