"""A run's progress on the console: one line per pipeline.

On a terminal the lines live in place (rich's live display) and each shows its pipeline's
current stage and time; elsewhere (CI logs, a pipe) each pipeline's start and end is one plain
line, printed as it happens. Stage and finish events may come from several threads at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from framework.settings.envvars import redact
from framework.tables import status_cell


class Progress:
    def __init__(self, console: Console, names: list[str]) -> None:
        self.console = console
        self.live = console.is_terminal
        self._lock = threading.Lock()
        # pipeline -> (state, when it entered it, done): `waiting` until its first stage
        self._lines: dict[str, tuple[str, float, bool]] = {
            name: ("waiting", time.monotonic(), False) for name in names}
        self._began: dict[str, float] = {}
        self._names = set(names)

    def stage(self, pipeline: str, stage: str) -> None:
        """A pipeline (or the shared `dbt` build) entered a stage."""
        now = time.monotonic()
        with self._lock:
            first = pipeline not in self._began
            self._began.setdefault(pipeline, now)
            self._lines[pipeline] = (stage, now, False)
        if first and not self.live:  # the shared dbt build is no pipeline of the list
            self._say(f"{escape(pipeline)}: started" if pipeline in self._names else
                      f"{escape(stage)}: started")

    def done(self, record: Any) -> None:
        """A pipeline's run record is final for its stages (success, failed, skipped, ...)."""
        now = time.monotonic()
        with self._lock:
            seconds = now - self._began.get(record.pipeline, now)
            self._lines[record.pipeline] = (record.status, seconds, True)
        if not self.live:
            detail = (f"{record.rows_loaded} rows loaded" if record.status == "success" else
                      _first_line(redact(record.error or "")))
            self._say(f"{escape(record.pipeline)}: {status_cell(record.status)} in "
                      f"{seconds:.1f}s" + (f" ({escape(detail)})" if detail else ""))

    def __rich__(self) -> Table:
        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        with self._lock:
            lines = list(self._lines.items())
        for name, (state, at, done) in lines:
            if done:
                table.add_row(escape(name), status_cell(state), f"{at:.1f}s")
            elif state == "waiting":
                table.add_row(escape(name), "[dim]waiting[/dim]", "")
            else:
                table.add_row(escape(name), f"[bold]{escape(state)}[/bold]", f"{now - at:.1f}s")
        return table

    def _say(self, line: str) -> None:
        self.console.print(line, soft_wrap=True, highlight=False)

    @contextmanager
    def shown(self) -> Iterator[Progress]:
        if not self.live:
            yield self
            return
        # transient: the final run table replaces the live lines
        with Live(self, console=self.console, refresh_per_second=4, transient=True):
            yield self


def _first_line(text: str, limit: int = 160) -> str:
    """The error's first line for the progress line, cut at a word with an ellipsis (the whole
    error follows on the run's `error:` line)."""
    lines = text.strip().splitlines()
    line = lines[0] if lines else ""
    if len(line) <= limit:
        return line
    cut = line[:limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"
