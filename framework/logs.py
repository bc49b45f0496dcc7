"""The engine's log: standard `logging`, with the pipeline, target, load id and stage on every
record, so Airflow task logs, log shippers and `--log-format json` all get the same fields.

The fields live in a context variable the runner sets (`begin`/`end`, `stage`, `bind`); a
filter on the `framework` logger copies them onto each record, so any handler (Airflow's, a
JSON formatter, a shipper's) sees them as attributes. The rich console stays the default for
people: then this logger only feeds handlers others attach (Airflow's root handler).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

from framework.settings.envvars import redact

LOGGER_NAME = "framework"
FIELDS = ("pipeline", "target", "load_id", "stage", "run_id")
FORMATS = ("console", "json")
ENV_VAR = "FRAMEWORK_LOG_FORMAT"

# Never mutated: every change sets a new dict, so the empty default is safe to share.
_context: ContextVar[dict[str, str | None]] = ContextVar("framework_log_context",
                                                         default={})  # noqa: B039
_format: list[str] = ["console"]  # the format `configure` chose, for the CLI's own output
_dlt_handlers: list[list[logging.Handler]] = []  # dlt's logger's own, while json replaces them


class ContextFilter(logging.Filter):
    """Puts the run's fields on every record (None where not known yet) and redacts its text:
    a connection error or a warning can quote a password, and every handler (JSON, Airflow's,
    a shipper's) must get the redacted text, as the console and the run records do."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _context.get()
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, current.get(name))
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 (a malformed call: the handler reports it, as logging does)
            return True
        record.msg, record.args = redact(message), None
        data = getattr(record, "data", None)
        if isinstance(data, dict):
            record.data = {k: redact(v) if isinstance(v, str) else v for k, v in data.items()}
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the run's fields, then any
    `extra={"data": {...}}` the call gave."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name, None) for name in FIELDS})
        data = getattr(record, "data", None)
        if isinstance(data, dict):
            line.update(data)
        if record.exc_info and record.levelno >= logging.ERROR:
            line["exception"] = redact(self.formatException(record.exc_info).splitlines()[-1])
        return json.dumps(line, default=str)


logger = logging.getLogger(LOGGER_NAME)
logger.addFilter(ContextFilter())
logger.addHandler(logging.NullHandler())  # no stray "lastResort" lines under the rich console


class _KeepsItsFormat(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler whose formatter is set once: dlt sets its own text format on the first
    handler of its logger whenever a pipeline starts, and would turn our JSON back into text."""

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        if self.formatter is None:
            super().setFormatter(fmt)


class _OneLine(logging.Formatter):
    """A library's warning on the console as one line of ours, not its own
    `time|[WARNING]|pid|thread|dlt|file|function:line|...` text running on for a paragraph.
    An error keeps its whole text and its exception's last line: its detail is the point."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage().strip()
        if record.levelno < logging.ERROR:
            text = (text.splitlines() or [""])[0]
        elif record.exc_info:
            text += "\n" + self.formatException(record.exc_info).splitlines()[-1]
        pipeline = getattr(record, "pipeline", None)
        return (f"{record.levelname.lower()}: {f'{pipeline}: ' if pipeline else ''}"
                f"{record.name}: {text}")


class _ChosenConversions(logging.Filter):
    """dlt's warnings about Arrow conversions the framework chose: a JSON or array column is
    written as its JSON text, on purpose, and its Arrow type (string) differs from the hint
    dlt reflected (json). Said on every run of a PostgreSQL table with a jsonb or array
    column, they told the user nothing to do. The third, that dlt's column hints differ
    from the Arrow data, is dlt's for any such difference on any column: dropped too, as
    what lands is the Arrow data (the load reads the Parquet as written, typed by
    `columns:`), never dlt's hints. dlt's other warnings pass."""

    NOISE = ("Default conversion to `string` for `data_type=json` failed",
             "Received `data_type='json'`, Arrow nested values require serialization",
             "when merging arrow schema with dlt schema, several column hints were different")

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return record.levelno >= logging.ERROR or not any(n in text for n in self.NOISE)


def configure(log_format: str, stream: Any = None) -> None:
    """`json`: every engine record is one JSON line on stderr (INFO and above), and so is
    every warning of dlt's (its logger `dlt` writes text lines of its own otherwise).
    `console`: the CLI's rich output, and dlt's warnings as one line each."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    _format[0] = log_format
    dlt_logger = logging.getLogger("dlt")
    if not any(isinstance(f, _ChosenConversions) for f in dlt_logger.filters):
        dlt_logger.addFilter(_ChosenConversions())
    for owner in (logger, dlt_logger):
        for handler in [h for h in owner.handlers if getattr(h, "_framework", False)]:
            owner.removeHandler(handler)
    if _dlt_handlers:  # dlt's logger gets its handlers again
        dlt_logger.handlers = _dlt_handlers.pop()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True  # console: records reach whatever handlers the host set (Airflow's)
    handler = _KeepsItsFormat(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else _OneLine())
    handler.addFilter(ContextFilter())  # records of child loggers too
    handler._framework = True  # type: ignore[attr-defined]
    if log_format == "json":
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # the line is ours; a library's root handler would repeat it
    # dlt writes through the first handler its logger has (its text one, once a pipeline
    # started), creating one if none: ours, alone, until the format changes.
    _dlt_handlers.append(list(dlt_logger.handlers))
    dlt_logger.handlers = [handler]


def is_json() -> bool:
    return _format[0] == "json"


@contextmanager
def fields(**values: str | None) -> Iterator[None]:
    """These fields on every record inside the `with` (a run's target and run id, so the
    shared dbt build's records carry them as each pipeline's do)."""
    token = _context.set({**_context.get(), **values})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**values: str | None) -> None:
    """Add fields (a load id once known) to the current context, until its `with` ends."""
    _context.set({**_context.get(), **values})


def begin(pipeline: str, target: str, run_id: str) -> Token[dict[str, str | None]]:
    """A pipeline's run starts: its fields go on every record until `end(token)`."""
    token = _context.set({**_context.get(), "pipeline": pipeline, "target": target,
                          "run_id": run_id, "load_id": None, "stage": None})
    logger.info("pipeline %s started", pipeline)
    return token


def end(token: Token[dict[str, str | None]]) -> None:
    _context.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    started = time.perf_counter()
    with fields(stage=name):
        logger.info("%s started", name)
        error: str | None = None
        try:
            yield
        except BaseException as exc:  # the failure's first line goes on the stage's record
            text = str(exc).strip()
            error = text.splitlines()[0] if text else type(exc).__name__
            raise
        finally:
            seconds = round(time.perf_counter() - started, 3)
            data: dict[str, Any] = {"seconds": seconds}
            if error is not None:
                data["error"] = error
            logger.log(logging.INFO if error is None else logging.ERROR, "%s %s in %.2fs", name,
                       "finished" if error is None else "failed", seconds, extra={"data": data})


def finished(summary: dict[str, Any]) -> None:
    """The run's outcome: status, counts and error in one record."""
    counts = {k: summary.get(k) for k in ("status", "load_ids", "rows_extracted",
                                          "rows_processed", "rows_quarantined", "rows_loaded",
                                          "error")}
    bind(load_id=summary.get("load_id"))
    level = logging.INFO if summary.get("status") == "success" else logging.ERROR
    logger.log(level, "pipeline %s %s", summary.get("pipeline"), summary.get("status"),
               extra={"data": counts})
