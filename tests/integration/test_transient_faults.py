"""Transient faults are retried with back-off; permanent ones fail fast with the reason.

A loopback TCP proxy in front of PostgreSQL cuts the first connections it accepts (the
server "closes the connection unexpectedly"), then forwards faithfully.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from framework.demo.shop import create_shop
from framework.retry import is_transient, retrying
from tests.e2e.helpers import assert_landing_equals_source, cli, run_json, source_versions
from tests.integration.conftest import S3Server
from tests.integration.test_server_sources import server_database


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL. The first `cut` connections are hung up at
    once; the next `hang` are accepted and never answered (a timeout); then, if `cut_read` is
    set, the first connection whose client sends a query naming `cut_read` is dropped once the
    server has sent `cut_after_bytes` of its answer (a table half read). Everything else is
    forwarded faithfully."""

    def __init__(self, cut: int = 0, hang: int = 0, cut_read: bytes | None = None,
                 cut_after_bytes: int = 20_000) -> None:
        self.cut, self.hang = cut, hang
        self.cut_read, self.cut_after_bytes = cut_read, cut_after_bytes
        self.accepted = 0
        self.cut_mid_read = 0
        self.held: list[socket.socket] = []
        self.lock = threading.Lock()
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
            if self.accepted <= self.cut + self.hang:
                self.held.append(client)  # the fault: a server that never answers
                continue
            upstream = socket.create_connection(("127.0.0.1", 5432))
            reading: list[int] = []  # bytes the server sent since the client asked for the table
            threading.Thread(target=self._pipe, args=(client, upstream, reading),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, reading, True),
                             daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, reading: list[int],
              from_server: bool = False) -> None:
        try:
            while data := source.recv(65536):
                if not from_server and self.cut_read and self.cut_read in data and not reading:
                    reading.append(0)
                sink.sendall(data)
                if from_server and reading:
                    reading[0] += len(data)
                    if self._cut_now(reading[0]):
                        break  # the fault: the connection drops in the middle of a result
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _cut_now(self, sent: int) -> bool:
        if sent < self.cut_after_bytes:
            return False
        with self.lock:
            if self.cut_mid_read:
                return False
            self.cut_mid_read += 1
            return True

    def stop(self) -> None:
        self.stopped = True
        self.listener.close()
        for held in self.held:
            held.close()


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
    assert_landing_equals_source(pg_shop, tmp_path / "state" / "warehouse.duckdb", ["customers"])


@pytest.mark.integration
def test_a_connection_that_times_out_is_retried_and_the_run_succeeds(
        pg_shop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = CuttingProxy(hang=1)  # the first connection is accepted and never answered
    try:
        url = pg_shop.replace(":5432/", f":{proxy.port}/") + "?connect_timeout=2"
        monkeypatch.setenv("SHOP_DB_URL", url)
        record = run_json("--pipeline", "customers", "--no-dbt")["customers"]
    finally:
        proxy.stop()

    assert record["status"] == "success", record["error"]
    retries = [w for w in record["warnings"] if "transient fault" in w]
    assert len(retries) == 1 and "timeout expired" in retries[0], record["warnings"]
    assert_landing_equals_source(pg_shop, tmp_path / "state" / "warehouse.duckdb", ["customers"])


@pytest.fixture
def bigger_pg_shop(project_dir: Path) -> Iterator[str]:
    with server_database("postgresql") as url:
        create_shop(url, scale=0.01, seed=4)  # ~1,000 customers: a read of ~100 kB
        yield url


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["pyarrow", "auto"])
def test_a_connection_dropped_in_the_middle_of_a_read_is_retried_and_nothing_is_doubled(
        backend: str, bigger_pg_shop: str, project_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`pyarrow` (rows through SQLAlchemy): the extract fails mid-read and is retried. `auto`
    (ADBC, whose first batch is the whole table here): the reader falls back to `pyarrow`
    before yielding a row. Either way the batch holds every row once."""
    with (project_dir / "sources" / "shop.yml").open("a") as spec:
        spec.write(f"backend: {backend}\n")
    proxy = CuttingProxy(cut_read=b"customer_unique_id", cut_after_bytes=20_000)
    try:
        monkeypatch.setenv("SHOP_DB_URL", bigger_pg_shop.replace(":5432/", f":{proxy.port}/"))
        record = run_json("--pipeline", "customers", "--no-dbt")["customers"]
    finally:
        proxy.stop()

    assert proxy.cut_mid_read == 1
    assert record["status"] == "success", record["error"]
    if backend == "pyarrow":
        assert any("transient fault" in w for w in record["warnings"]), record["warnings"]
    source = len(source_versions(bigger_pg_shop, "customers"))
    assert record["rows_extracted"] == record["rows_loaded"] == source
    assert_landing_equals_source(bigger_pg_shop, tmp_path / "state" / "warehouse.duckdb",
                                 ["customers"])


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


class S3FaultProxy:
    """An HTTP proxy in front of moto's S3: the first `faults` requests whose method is in
    `methods` are answered `503 SlowDown` (as S3 says it), every other is forwarded."""

    def __init__(self, upstream: str, faults: int, methods: tuple[str, ...] = ("PUT",)) -> None:
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        host, port = upstream.removeprefix("http://").split(":")
        proxy = self
        self.faults, self.methods = faults, methods
        self.answered_503 = 0
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and Expect: 100-continue answered

            def log_message(self, *_: object) -> None:
                pass

            def _any(self) -> None:
                body = self._body()
                if proxy._fault(self.command):
                    message = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown"
                               b"</Code><Message>Please reduce your request rate.</Message></Error>")
                    self.send_response(503, "Slow Down")
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(message)))
                    self.end_headers()
                    self.wfile.write(message)
                    return
                upstream_con = http.client.HTTPConnection(host, int(port), timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in ("expect", "transfer-encoding")}
                    if body is not None:
                        headers["Content-Length"] = str(len(body))
                    upstream_con.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream_con.getresponse()
                    data = answer.read()
                    self.send_response(answer.status, answer.reason)
                    head = self.command == "HEAD"  # its Content-Length is the object's size
                    for key, value in answer.getheaders():
                        if key.lower() not in ("transfer-encoding", "connection") and (
                                head or key.lower() != "content-length"):
                            self.send_header(key, value)
                    if not head:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    upstream_con.close()

            def _body(self) -> bytes | None:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    parts = []
                    while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline().strip():  # trailers, up to the blank line
                        pass
                    return b"".join(parts)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else None

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _fault(self, method: str) -> bool:
        with self.lock:
            if method in self.methods and self.answered_503 < self.faults:
                self.answered_503 += 1
                return True
            return False

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


S3_TARGET = """\
  s3lake:
    lake:
      url: ${LAKE_URL}
      endpoint_url: ${AWS_ENDPOINT_URL:-}
      region: ${AWS_REGION:-}
      access_key_id: ${AWS_ACCESS_KEY_ID:-}
      secret_access_key: ${AWS_SECRET_ACCESS_KEY:-}
    warehouse:
      type: duckdb
      path: ${FRAMEWORK_STATE_DIR}/warehouse.duckdb
"""


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_s3_5xx_answers_are_retried_and_the_run_succeeds(
        project_dir: Path, tmp_path: Path, moto_s3: S3Server,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    create_shop(url, scale=0.002, seed=4)
    config = project_dir / "framework.yml"
    config.write_text(config.read_text().replace("targets:\n", "targets:\n" + S3_TARGET, 1))
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    moto_s3.create_bucket(bucket)
    proxy = S3FaultProxy(moto_s3.endpoint_url, faults=3)
    for name, value in {"LAKE_URL": f"s3://{bucket}/lake", "AWS_ENDPOINT_URL": proxy.endpoint_url,
                        "AWS_ACCESS_KEY_ID": moto_s3.access_key_id, "AWS_REGION": moto_s3.region,
                        "AWS_SECRET_ACCESS_KEY": moto_s3.secret_access_key,
                        "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    try:
        record = run_json("--pipeline", "customers", "--no-dbt", "--target", "s3lake")["customers"]
    finally:
        proxy.stop()

    assert proxy.answered_503 == 3  # the lake's writes met three 5xx answers
    assert record["status"] == "success", record["error"]
    assert_landing_equals_source(url, tmp_path / "state" / "warehouse.duckdb", ["customers"])
