"""The CLI's tables (list, run, history), readable in an 80-column terminal.

Rich shortens a value that does not fit to `custome…`; here nothing is shortened. The tables
have no vertical rules, values wrap at spaces (or fold, never an ellipsis), and columns that say
nothing in this table (one target for every row, no quarantined rows, landing tables all named
after their pipeline) are left out and said once under the table instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from framework.spec.yaml_source import shorten

NARROW = 100  # below this width, the columns that repeat what every row says are dropped


@dataclass(frozen=True)
class Column:
    header: str
    justify: str = "left"
    keep: bool = True  # False: left out of this table


def compact_table(columns: Sequence[Column], rows: Sequence[Sequence[str]],
                  caption: str | None = None, gap: int = 2) -> Table:
    kept = [i for i, c in enumerate(columns) if c.keep]
    # The box's blank rule is one space; padding adds the rest of the gap between columns.
    table = Table(box=box.SIMPLE_HEAD, padding=(0, gap - 1, 0, 0), pad_edge=False,
                  show_edge=False,
                  caption=caption,
                  caption_justify="left")
    for i in kept:
        table.add_column(columns[i].header, justify=columns[i].justify,  # type: ignore[arg-type]
                         overflow="fold")
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    return table


def when(started_at: str | None) -> str:
    """`2026-12-01 14:36:15`: the date and the time wrap onto two lines when space is short."""
    return (started_at or "never")[:19].replace("T", " ")


def pipelines_table(rows: list[dict[str, Any]], width: int) -> Table:
    """`framework list`: pipeline, source, cursor, landing table, last run, status, rows loaded.

    Each row: name, source, cursor, landing, started_at, status, rows_loaded."""
    narrow = width < NARROW
    conventional = all(r["landing"] == f"landing.{r['name']}" for r in rows)
    columns = [Column("pipeline"), Column("source"), Column("cursor"),
               Column("landing table", keep=not (narrow and conventional)),
               Column("last run"), Column("status"), Column("rows loaded", "right")]
    cells = [[escape(str(r[k])) for k in ("name", "source", "cursor", "landing")]
             + [when(r["started_at"]), escape(r["status"]), r["rows_loaded"]] for r in rows]
    caption = ("landing table: landing.<pipeline>"
               if narrow and conventional and rows else None)
    return compact_table(columns, cells, caption)


def status_cell(status: str) -> str:
    colour = {"success": "green", "failed": "red", "models failed": "red"}.get(status, "yellow")
    return f"[{colour}]{escape(status)}[/{colour}]"


def runs_table(records: Sequence[Any], width: int) -> Table:
    """`framework run`/`replay`/`demo`: one row per pipeline run (RunRecord)."""
    narrow = width < NARROW
    quarantined = any(r.rows_quarantined for r in records)
    columns = [Column("pipeline"), Column("status"), Column("load id"),
               Column("extracted", "right"),
               Column("quarantined", "right", keep=quarantined or not narrow),
               Column("loaded", "right"), Column("seconds", "right")]
    cells = [[escape(r.pipeline), status_cell(r.status), r.load_id or "-",
              str(r.rows_extracted), str(r.rows_quarantined), str(r.rows_loaded),
              f"{sum(r.seconds.values()):.1f}"] for r in records]
    build = next((r.dbt for r in records if getattr(r, "dbt", None)), None)
    if build:  # the run's one dbt build, a row of its own rather than a cost of each pipeline
        status = "success" if build["status"] == "success" else "models failed"
        cells.append(["dbt build (shared)", status_cell(status), "-", "-", "-",
                      f"{build['models_built']} models", f"{build['seconds']:.1f}"])
    caption = "no rows quarantined" if narrow and not quarantined and records else None
    # With every column shown, one-space gaps keep a whole load id (it is typed into replay).
    return compact_table(columns, cells, caption, gap=1 if narrow and quarantined else 2)


def history_table(runs: list[dict[str, Any]], width: int) -> Table:
    """`framework history`: past runs, newest first, the error's first line wrapped (whole:
    200 characters cut off the way out a quarantine names at its end; bounded for a driver's
    page-long message)."""
    narrow = width < NARROW
    targets = {r["target"] for r in runs}
    columns = [Column("started"), Column("pipeline"),
               Column("target", keep=not (narrow and len(targets) == 1)), Column("status"),
               Column("extracted", "right"), Column("loaded", "right"),
               Column("seconds", "right"), Column("version"), Column("error")]
    # `version`: the compiled pipeline's fingerprint, short (the ledger keeps it per batch)
    cells = [[when(r["started_at"]), escape(r["pipeline"]), escape(r["target"]), r["status"],
              str(r["rows_extracted"]), str(r["rows_loaded"]),
              f"{sum(r['seconds'].values()):.1f}", (r.get("fingerprint") or "-")[:8],
              escape(shorten(_first_line(r.get("error")), 1000))]
             for r in runs]
    caption = f"target: {next(iter(targets))}" if narrow and len(targets) == 1 else None
    return compact_table(columns, cells, caption)


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""
