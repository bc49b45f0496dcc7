"""The failure webhook: off by default, a Slack-compatible JSON POST, never an exception."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from framework.errors import StageError
from framework.orchestration import alerts
from framework.orchestration.alerts import WEBHOOK_ENV, failure_callback, failure_payload
from tests.airflow.webhook import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def context(error: BaseException | None) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="framework_orders", task_id="load", log_url="http://airflow/log")
    return {"dag": SimpleNamespace(dag_id="framework_orders"), "task_instance": ti,
            "run_id": "scheduled__2026-01-01T00:15:00+00:00", "exception": error}


def test_no_webhook_no_callback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    assert failure_callback("orders") is None
    monkeypatch.setenv(WEBHOOK_ENV, "  ")
    assert failure_callback("orders") is None
    monkeypatch.setenv(WEBHOOK_ENV, "file:///etc/passwd")
    assert failure_callback("orders") is None


def test_payload_names_dag_task_run_pipeline_and_the_error_s_first_line() -> None:
    error = StageError("orders", "load", "batch 17 processed 5, loaded 4\ntraceback...")

    payload = failure_payload("orders", context(error))

    assert payload == {
        "dag": "framework_orders", "task": "load", "run_id": "scheduled__2026-01-01T00:15:00+00:00",
        "pipeline": "orders", "error": "orders: load: batch 17 processed 5, loaded 4",
        "log_url": "http://airflow/log",
        "text": "Pipeline orders failed: task framework_orders.load, run "
                "scheduled__2026-01-01T00:15:00+00:00: orders: load: batch 17 processed 5, loaded 4",
    }
    assert failure_payload("orders", context(KeyError("x")))["error"] == "KeyError: 'x'"
    assert failure_payload("orders", {})["text"] == \
        "Pipeline orders failed: task ., run : no error message"


def test_callback_posts_json_to_the_webhook(monkeypatch: pytest.MonkeyPatch,
                                            receiver: Receiver) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, receiver.url)
    callback = failure_callback("orders")
    assert callback is not None

    callback(context(StageError("orders", "extract", "shop: connection refused")))

    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["pipeline"] == "orders" and body["task"] == "load"
    assert body["error"] == "orders: extract: shop: connection refused"
    assert body["text"].startswith("Pipeline orders failed: ")


@pytest.mark.parametrize("status", [404, 500])
def test_a_refusing_webhook_does_not_raise(status: int) -> None:
    server = Receiver(status=status)
    try:
        alerts.send_failure_alert(server.url, "orders", context(RuntimeError("boom")))
        assert len(server.bodies) == 1
    finally:
        server.close()


def test_an_unreachable_or_slow_webhook_does_not_raise_or_hang(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    alerts.send_failure_alert(f"http://127.0.0.1:{closed_port}/x", "orders", context(None))

    monkeypatch.setattr(alerts, "TIMEOUT_SECONDS", 0.3)
    slow = Receiver(delay=1.5)
    try:
        started = time.perf_counter()
        alerts.send_failure_alert(slow.url, "orders", context(None))
        assert time.perf_counter() - started < 1.2
    finally:
        slow.close()
    assert "failure alert for orders not sent" in caplog.text
    assert "hooks/abc" not in caplog.text  # the URL (often a token) is never logged
