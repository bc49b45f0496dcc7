"""The engine's log records: the run's fields on every record, for any handler."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from framework import logs


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def host_handler() -> Iterator[Collect]:
    """A handler on the root logger, as Airflow's task log handler is."""
    handler = Collect()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)
    logs.configure("console")


def test_console_format_hands_records_with_their_fields_to_the_host(host_handler: Collect) -> None:
    logs.configure("console")
    token = logs.begin("orders", "local", "run1")
    logs.bind(load_id="1764601330.51")
    with logs.stage("load"):
        logs.logger.warning("2 rows late")
    logs.end(token)
    logs.logger.info("outside any run")

    seen = [(r.getMessage(), r.pipeline, r.target, r.load_id, r.stage)  # type: ignore[attr-defined]
            for r in host_handler.records if r.name == "framework"]
    assert seen[0] == ("pipeline orders started", "orders", "local", None, None)
    assert seen[1:4] == [
        ("load started", "orders", "local", "1764601330.51", "load"),
        ("2 rows late", "orders", "local", "1764601330.51", "load"),
        (seen[3][0], "orders", "local", "1764601330.51", "load")]
    assert seen[3][0].startswith("load finished in ")
    assert seen[4] == ("outside any run", None, None, None, None)


def test_json_format_writes_one_object_per_line_and_nothing_to_the_host(
        host_handler: Collect) -> None:
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    token = logs.begin("payments", "prod", "run2")
    with pytest.raises(RuntimeError), logs.stage("extract"):
        raise RuntimeError("boom")
    logs.finished({"pipeline": "payments", "status": "failed", "load_id": None,
                   "rows_extracted": 0, "error": "payments: extract: boom"})
    logs.end(token)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["level"], x["message"].split(" in ")[0], x["stage"]) for x in lines] == [
        ("info", "pipeline payments started", None), ("info", "extract started", "extract"),
        ("error", "extract failed", "extract"), ("error", "pipeline payments failed", None)]
    assert all(x["pipeline"] == "payments" and x["target"] == "prod" and x["run_id"] == "run2"
               for x in lines)
    assert lines[2]["seconds"] >= 0 and lines[2]["error"] == "boom"
    assert lines[3]["error"] == "payments: extract: boom"
    assert not [r for r in host_handler.records if r.name == "framework"]  # no second copy


def test_console_format_writes_a_dlt_warning_as_one_line_of_ours(host_handler: Collect) -> None:
    """dlt's own handler wrote `2026-12-04 16:46:24,360|[WARNING]|12522|1399...|dlt|
    schema_types.py|sqla_col_to_column_schema:179|A column ...` and the rest of a paragraph
    into the console's output (found by a trial on a MariaDB YEAR column)."""
    stream = io.StringIO()
    logs.configure("console", stream=stream)
    token = logs.begin("shipments", "local", "run3")
    dlt_logger = logging.getLogger("dlt")
    dlt_logger.warning("A column with name ship_year contains unknown data type YEAR\nwhich "
                       "cannot be mapped")
    try:
        raise ValueError("the real reason")
    except ValueError:
        dlt_logger.exception("Load job failed:\nin job x.parquet")
    logs.end(token)

    assert stream.getvalue().splitlines() == [
        "warning: shipments: dlt: A column with name ship_year contains unknown data type YEAR",
        "error: shipments: dlt: Load job failed:", "in job x.parquet",
        "ValueError: the real reason"]


def test_secrets_are_redacted_for_every_handler(host_handler: Collect) -> None:
    from framework.settings.envvars import register_secret

    register_secret("hunter2-pw")
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    logs.logger.warning("retrying: cannot connect to postgresql://loader:%s@db/shop",
                        "hunter2-pw")
    logs.finished({"pipeline": "orders", "status": "failed",
                   "error": "orders: extract: password hunter2-pw refused"})
    logs.configure("console")
    logs.logger.warning("again: hunter2-pw")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [x["message"] for x in lines] == [
        "retrying: cannot connect to postgresql://loader:***@db/shop", "pipeline orders failed"]
    assert lines[1]["error"] == "orders: extract: password *** refused"
    assert [r.getMessage() for r in host_handler.records if r.name == "framework"] == [
        "again: ***"]
