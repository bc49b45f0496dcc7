"""The dashboard's data-quality panel: what the numbers leave out.

Rows per landing table with their newest cursor (marts.mart_table_freshness), orphans per
relationship with their share of money (marts.mart_orphans), quarantined batches (the load
ledger, landing._framework_batches) and the age of each pipeline's last successful run (the
run log). Every part is optional: a part that cannot be read says so instead of failing the page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

Row = dict[str, Any]

ORPHANS = ("relationship", "child_rows_name", "parent_name", "measure", "total_rows",
           "orphan_rows", "orphan_amount", "total_amount", "orphan_share")
FRESHNESS = ("table_name", "total_rows", "newest_cursor", "last_loaded_at")


class _Reader(Protocol):
    def query(self, sql: str) -> list[tuple[Any, ...]]: ...


@dataclass(frozen=True)
class DataQuality:
    tables: list[Row] = field(default_factory=list)
    orphans: list[Row] = field(default_factory=list)
    quarantined: list[Row] = field(default_factory=list)  # pipeline, batches, rows
    last_success: dict[str, str] = field(default_factory=dict)  # pipeline -> finished_at
    missing: list[str] = field(default_factory=list)  # parts that could not be read

    @property
    def orphan_lines(self) -> list[str]:
        return [orphan_line(r) for r in self.orphans if r["orphan_rows"]]


def orphan_line(row: Row) -> str:
    share = row.get("orphan_share")
    money = "" if share is None else f" ({float(share):.1%} of {row['measure']})"
    return (f"{int(row['orphan_rows']):,} {row['child_rows_name']}{money} have no "
            f"{row['parent_name']} row")


def load_quality(reader: _Reader, present: set[str], runs: Path | None,
                 target: str) -> DataQuality:
    missing: list[str] = []

    def read(mart: str, columns: tuple[str, ...], order: str) -> list[Row]:
        if mart not in present:
            missing.append(f"marts.{mart}")
            return []
        return [dict(zip(columns, r)) for r in reader.query(
            f"SELECT {', '.join(columns)} FROM marts.{mart} ORDER BY {order}")]

    tables = read("mart_table_freshness", FRESHNESS, "table_name")
    orphans = read("mart_orphans", ORPHANS, "relationship_order")
    try:
        quarantined = [{"pipeline": r[0], "batches": int(r[1]), "rows": int(r[2] or 0)}
                       for r in reader.query(
                           "SELECT pipeline, count(*), sum(row_count) FROM landing._framework_batches "
                           "WHERE status = 'quarantined' GROUP BY pipeline ORDER BY pipeline")]
    except Exception:  # noqa: BLE001 - no ledger yet (nothing loaded): nothing quarantined
        quarantined = []
    return DataQuality(tables, orphans, quarantined, _last_success(runs, target), missing)


def _last_success(runs: Path | None, target: str) -> dict[str, str]:
    """Pipeline -> when its last successful run finished (the run log of the state folder)."""
    if runs is None or not runs.is_file():
        return {}
    import sqlite3

    con = sqlite3.connect(runs)
    try:
        rows = con.execute("SELECT pipeline, max(finished_at) FROM runs WHERE target = ? AND "
                           "status = 'success' GROUP BY pipeline", (target,)).fetchall()
    except sqlite3.Error:
        return {}
    finally:
        con.close()
    return {str(p): str(f) for p, f in rows if f}


def age(finished_at: str, now: dt.datetime) -> str:
    """'3 min ago', '2 h ago', '5 days ago' from a run record's finished_at."""
    try:
        then = dt.datetime.strptime(finished_at, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return finished_at
    seconds = max(0.0, (now - then).total_seconds())
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400 * 2:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"
