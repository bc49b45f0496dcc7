"""Transient faults are retried with back-off; permanent ones fail fast with the reason.

A loopback TCP proxy in front of PostgreSQL cuts the first connections it accepts (the
server "closes the connection unexpectedly"), then forwards faithfully.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from framework.demo.shop import create_shop
from framework.retry import is_transient, retrying
from tests.e2e.helpers import cli, run_json, source_versions, warehouse_versions
from tests.integration.test_server_sources import server_database


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL, dropping the first `cut` connections."""

    def __init__(self, cut: int) -> None:
        self.cut = cut
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            self.accepted += 1
            if self.accepted <= self.cut:
                client.close()  # the fault: the "server" hangs up at once
                continue
            upstream = socket.create_connection(("127.0.0.1", 5432))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        self.stopped = True
        self.listener.close()


@pytest.fixture
def pg_shop(project_dir: Path) -> Iterator[str]:
    with server_database("postgresql") as url:
        create_shop(url, scale=0.002, seed=4)
        yield url


@pytest.mark.integration
def test_a_dropped_connection_is_retried_and_the_run_succeeds(
        pg_shop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = CuttingProxy(cut=2)
    try:
        monkeypatch.setenv("SHOP_DB_URL", pg_shop.replace(":5432/", f":{proxy.port}/"))
        record = run_json("--pipeline", "customers", "--no-dbt")["customers"]
    finally:
        proxy.stop()

    assert record["status"] == "success", record["error"]
    retries = [w for w in record["warnings"] if "transient fault" in w]
    assert len(retries) == 2 and "attempt 1 of 4" in retries[0]
    assert warehouse_versions(tmp_path / "state" / "warehouse.duckdb", "customers") == \
        source_versions(pg_shop, "customers")


@pytest.mark.integration
def test_a_permanent_fault_fails_fast_with_its_reason(pg_shop: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_DB_URL", pg_shop.rsplit("/", 1)[0] + "/no_such_database")
    started = time.monotonic()

    result = cli("run", "--pipeline", "customers", "--no-dbt")

    assert result.exit_code == 1
    assert 'database "no_such_database" does not exist' in result.output
    assert "transient fault" not in result.output
    assert time.monotonic() - started < 10


def test_retrying_is_bounded_and_skips_permanent_faults() -> None:
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        raise ConnectionResetError("connection reset by peer")

    with pytest.raises(ConnectionResetError):
        retrying(flaky, attempts=3, sleep=lambda _: None)
    assert len(calls) == 3
    permanent = ValueError('password authentication failed for user "x"')
    assert not is_transient(permanent)
    with pytest.raises(ValueError):
        retrying(lambda: (_ for _ in ()).throw(permanent), sleep=lambda _: None)
