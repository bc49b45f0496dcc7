"""Failure alerts: one JSON POST to a webhook when a task fails for good (after its retries).

Off unless `FRAMEWORK_ALERT_WEBHOOK_URL` is set. The body carries a Slack-compatible `text` plus
the fields a generic receiver wants (`dag`, `task`, `run_id`, `pipeline`, `error`, `log_url`).
Standard library only, a short timeout, and never an exception: an alert that cannot be sent is
logged (without the URL, which often embeds a token) and the task's own failure stands.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

WEBHOOK_ENV = "FRAMEWORK_ALERT_WEBHOOK_URL"
TIMEOUT_SECONDS = 5.0

log = logging.getLogger(__name__)

FailureCallback = Callable[[Mapping[str, Any]], None]


def failure_callback(pipeline: str, url: str | None = None) -> FailureCallback | None:
    """The callback posting alerts for `pipeline`, or None when no webhook is configured."""
    url = (url if url is not None else os.environ.get(WEBHOOK_ENV, "")).strip()
    if not url:
        return None
    if not url.lower().startswith(("http://", "https://")):
        log.error("%s must be an http(s) URL; failure alerts are off", WEBHOOK_ENV)
        return None
    return partial(send_failure_alert, url, pipeline)


def failure_payload(pipeline: str, context: Mapping[str, Any]) -> dict[str, str]:
    """What a failed task's Airflow context says, as the webhook's JSON body."""
    ti = context.get("task_instance") or context.get("ti")
    dag_id = _text(getattr(context.get("dag"), "dag_id", None) or getattr(ti, "dag_id", None))
    task_id = _text(getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", None))
    run_id = _text(context.get("run_id") or getattr(context.get("dag_run"), "run_id", None))
    error = _redact(describe_error(context.get("exception")))
    payload = {"dag": dag_id, "task": task_id, "run_id": run_id, "pipeline": pipeline,
               "error": error, "log_url": _text(getattr(ti, "log_url", None))}
    payload["text"] = (f"Pipeline {pipeline} failed: task {dag_id}.{task_id}, run {run_id}: "
                       f"{error or 'no error message'}")
    return payload


def send_failure_alert(url: str, pipeline: str, context: Mapping[str, Any]) -> None:
    """POST the alert; log and swallow any problem (a callback must never raise)."""
    try:
        body = json.dumps(failure_payload(pipeline, context)).encode("utf-8")
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            response.read(1024)
    except Exception as exc:  # noqa: BLE001 - an alert must not fail or hide the task's error
        log.warning("failure alert for %s not sent: %s: %s", pipeline, type(exc).__name__,
                    _redact(first_line(exc)).replace(url, "<webhook>"))


def describe_error(error: object) -> str:
    """The error's first line; unexpected exceptions keep their type (`KeyError: 'x'`)."""
    from framework.errors import FrameworkError

    line = first_line(error)
    if isinstance(error, BaseException) and not isinstance(error, FrameworkError):
        return f"{type(error).__name__}: {line}" if line else type(error).__name__
    return line


def first_line(error: object) -> str:
    text = str(error or "").strip()
    return text.splitlines()[0].strip() if text else ""


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _redact(text: str) -> str:
    """Registered secrets (connection passwords, keys) never reach the webhook."""
    from framework.settings.envvars import redact

    return redact(text)
