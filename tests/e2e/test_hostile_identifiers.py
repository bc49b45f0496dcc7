"""Column names with quotes, spaces, semicolons and reserved words go through every stage.

A SQLite table whose key is `order` and cursor `end` (reserved words), with columns `my col`,
`a;b` and `x"y` (which dlt stores as `my_col`, `a_b`, `x_y`), is extracted, transformed back to
the hostile names with PII hashed, masked and dropped, validated with expectations on those
names, merged into the DuckDB warehouse twice and reconciled: the warehouse equals the source.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

from tests.e2e.helpers import cli, run_json

PIPELINE = """\
name: weird
source:
  connection: shop
  table: weird
  primary_key: [order]
  incremental: {cursor: end}
lake:
  path: weird
transform:
  sql: >-
    SELECT "order", "end", "select", my_col AS "my col", a_b AS "a;b", x_y AS "x""y",
    my_col AS "plain; copy" FROM batch
  pii:
    - {column: my col, action: hash}
    - {column: "a;b", action: mask}
    - {column: 'x"y', action: drop}
quality:
  expectations:
    - expect_column_values_to_not_be_null: {column: "a;b"}
    - expect_column_values_to_be_unique: {column: order}
    - expect_column_values_to_be_between: {column: order, min_value: 0, max_value: .inf}
    - expect_column_values_to_match_regex: {column: my col, regex: "^[0-9a-f]{64}$"}
    - expect_column_value_lengths_to_be_between: {column: "plain; copy", min_value: 1}
"""

CREATE = ('CREATE TABLE weird ("order" INTEGER PRIMARY KEY, "my col" TEXT, "a;b" TEXT, '
          '"x""y" TEXT, "select" TEXT, "end" TIMESTAMP NOT NULL)')
INSERT = 'INSERT INTO weird VALUES (:k, :m, :a, :x, :s, :e)'


def execute(url: str, sql: str, rows: list[dict[str, Any]] | None = None) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(sql), rows or [{}])
    engine.dispose()


def row(key: int, text: str, when: str) -> dict[str, Any]:
    return {"k": key, "m": f"{text} secret", "a": f"{text}-mask", "x": f"{text} dropped",
            "s": f"{text}; DROP TABLE weird", "e": when}


def expected(url: str) -> set[tuple[Any, ...]]:
    """The source as the warehouse should hold it: hashed, masked, `x"y` dropped."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            'SELECT "order", "end", "select", "my col", "a;b" FROM weird')).all()
    engine.dispose()
    return {(key, dt.datetime.fromisoformat(str(end)), select,
             hashlib.sha256(secret.encode()).hexdigest(), masked[:2] + "*" * (len(masked) - 2),
             secret) for key, end, select, secret, masked in rows}


def landed(tmp_path: Path) -> tuple[list[str], set[tuple[Any, ...]]]:
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        columns = [r[0] for r in con.execute("DESCRIBE landing.weird").fetchall()]
        rows = con.execute('SELECT "order", "end", "select", "my col", "a;b", "plain; copy" '
                           "FROM landing.weird").fetchall()
    finally:
        con.close()
    return columns, set(rows)


def test_hostile_column_names_reach_the_warehouse_equal_to_the_source(
        project_dir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    (tmp_path / "state").mkdir(exist_ok=True)
    execute(url, CREATE)
    execute(url, INSERT, [row(1, "one", "2024-01-01 10:00:00"),
                          row(2, "two", "2024-01-01 11:00:00")])
    (project_dir / "pipelines" / "weird.yml").write_text(PIPELINE)
    checked = cli("validate", str(project_dir / "pipelines" / "weird.yml"))
    assert checked.exit_code == 0, checked.output

    first = run_json("--pipeline", "weird", "--no-dbt")["weird"]

    assert first["status"] == "success", first["error"]
    assert (first["rows_extracted"], first["rows_loaded"]) == (2, 2)
    columns, rows = landed(tmp_path)
    assert 'x"y' not in columns and "x_y" not in columns
    assert {"order", "end", "select", "my col", "a;b", "plain; copy"} <= set(columns)
    assert rows == expected(url)

    # A change and a new row: merged on the quoted key, ordered by the quoted cursor.
    execute(url, 'UPDATE weird SET "my col" = \'changed\', "end" = \'2024-01-02 00:00:00\' '
                 'WHERE "order" = 1')
    execute(url, INSERT, [row(3, "three", "2024-01-03 00:00:00")])

    second = run_json("--pipeline", "weird", "--no-dbt")["weird"]

    assert second["status"] == "success", second["error"]
    assert second["rows_extracted"] == 2
    assert landed(tmp_path)[1] == expected(url)
    reconciled = cli("reconcile", "--pipeline", "weird")
    assert reconciled.exit_code == 0, reconciled.output


def test_a_pii_rule_naming_the_sources_column_not_the_lakes_is_named_with_the_lake_name(
        project_dir: Path, tmp_path: Path) -> None:
    """`transform.pii: [{column: Größe}]` passes validate (a transform may output any name) and
    failed the run with DuckDB's `Column "Größe" in REPLACE list not found`, never saying that
    the lake stores it as `gr_e`."""
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    (tmp_path / "state").mkdir(exist_ok=True)
    execute(url, 'CREATE TABLE sizes (id INTEGER PRIMARY KEY, "Größe" TEXT)')
    execute(url, "INSERT INTO sizes VALUES (1, 'XL')")
    (project_dir / "pipelines" / "sizes.yml").write_text(
        "name: sizes\nsource:\n  connection: shop\n  table: sizes\n  primary_key: [id]\n"
        "lake:\n  path: sizes\ntransform:\n  pii:\n    - {column: Größe, action: hash}\n")

    record = run_json("--pipeline", "sizes", "--no-dbt")["sizes"]

    assert cli("validate").exit_code == 0
    assert record["status"] == "failed"
    assert record["error"] == (
        "sizes: transform: pipelines/sizes.yml: transform.pii[0].column: 'Größe' is not a column "
        "of the transform's output (the lake stores the source's 'Größe' as 'gr_e': name that)")
