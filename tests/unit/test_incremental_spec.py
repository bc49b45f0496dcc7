"""Cursor settings that would load a row twice, or mean nothing for the cursor, are refused
by validation in one exact line; the rest are accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_spec_errors import FILE, problems, project, y

__all__ = ["project"]  # the fixture, shared with the spec error cases


def spec(incremental: str, disposition: str = "merge", columns: str = "") -> str:
    return y(f"""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
          incremental:
            cursor: updated_at
        {incremental}
        lake:
          path: orders
        warehouse:
          write_disposition: {disposition}
        """) + columns


DECLARED = "columns:\n  - {{name: order_id, type: string}}\n  - {{name: updated_at, type: {}}}\n"


@pytest.mark.parametrize(("incremental", "disposition", "columns", "expected"), [
    ("    lag: 10m", "append", "",
     (f"{FILE}:8:10: source.incremental.lag: a look-back window reads rows already loaded "
     "again, and 'append' would add them twice; set warehouse.write_disposition: merge, or "
     "remove lag")),
    ("    on_null: include", "append", "",
     (f"{FILE}:8:14: source.incremental.on_null: 'include' reads every NULL-cursor row again on "
     "every run, and 'append' would add it each time; set warehouse.write_disposition: merge, "
     "or on_null: exclude")),
    ("    lag: 10m", "merge", DECLARED.format("bigint"),
     (f"{FILE}:8:10: source.incremental.lag: '10m' is a duration but cursor 'updated_at' is "
     "declared bigint; give the look-back in cursor units (lag: 100)")),
    ("    lag: 10", "merge", DECLARED.format("string"),
     (f"{FILE}:8:10: source.incremental.lag: a look-back window has no meaning for cursor "
     "'updated_at' (declared string); remove lag")),
    ("", "append", "deletes:\n  reconcile: remove\n",
     (f"{FILE}:14:14: deletes.reconcile: after reconciled deletes the next run reads the rows "
      "at the cursor's last value again, and 'append' would add them twice; set "
      "warehouse.write_disposition: merge, or remove deletes.reconcile")),
], ids=["lag-append", "include-nulls-append", "duration-on-integer", "lag-on-text",
        "reconcile-append"])
def test_a_cursor_setting_that_would_duplicate_or_mean_nothing_is_one_line(
        project: Path, incremental: str, disposition: str, columns: str, expected: str) -> None:
    assert problems(project, spec(incremental, disposition, columns)) == [expected]


@pytest.mark.parametrize(("incremental", "disposition", "columns"), [
    ("    lag: 10m", "merge", ""),
    ("    on_null: include", "merge", ""),
    ("    on_null: exclude", "append", ""),
    ("    lag: 0", "append", ""),
    ("    lag: 100", "merge", DECLARED.format("bigint")),
    ("    lag: 2d", "merge", DECLARED.format("date")),
])
def test_safe_cursor_settings_are_accepted(project: Path, incremental: str, disposition: str,
                                           columns: str) -> None:
    assert problems(project, spec(incremental, disposition, columns)) == []


@pytest.mark.parametrize("sql_type", ["Integer", "Double", "Float", "REAL"])
def test_lag_on_a_number_cursor_is_in_its_units_floats_included(sql_type: str) -> None:
    """SQLAlchemy 2.1's Float is no longer a Numeric: a float cursor's lag was refused."""
    from types import SimpleNamespace

    import sqlalchemy as sa

    from framework.sources.sql.cursor import lag_in_cursor_units

    incremental = SimpleNamespace(lag=100, lag_seconds=100.0, cursor="version")
    ctx = SimpleNamespace(spec=SimpleNamespace(name="events",
                                               source=SimpleNamespace(incremental=incremental)))
    assert lag_in_cursor_units(ctx, getattr(sa, sql_type)()) == 100.0  # type: ignore[arg-type]
