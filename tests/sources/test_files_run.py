"""A `files` pipeline through `framework run` (the generic extract): good rows land, refused
records are kept in the lake's quarantine zone with file:line and reason and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.e2e.helpers import cli, duckdb_landing_rows, run_json
from tests.sources.test_files_adapter import write_dirty

PIPELINE = """\
name: dirty_orders
source:
  kind: files
  location: data
  glob: orders_*.csv
  csv: {delimiter: ";", encoding: latin-1, timestamp_formats: ["%m/%d/%Y %H:%M"]}
  primary_key: [order_id]
lake:
  path: dirty_orders
columns:
  - {name: order_id, type: string, nullable: false, unique: true}
  - {name: customer_city, type: string}
  - {name: order_purchase_timestamp, type: timestamp}
  - {name: price, type: "decimal(12,2)"}
"""


def test_run_lands_good_rows_and_quarantines_refused_records(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in (project_dir / "pipelines").glob("*.yml"):
        path.unlink()
    (project_dir / "pipelines" / "dirty_orders.yml").write_text(PIPELINE)
    (project_dir / "data").mkdir()
    write_dirty(project_dir / "data" / "orders_2024-01.csv")
    monkeypatch.chdir(project_dir)

    record = run_json("--all", "--no-dbt")["dirty_orders"]
    assert record["status"] == "success", record["error"]
    # Refused records count as read and quarantined: extracted = loaded + quarantined.
    assert (record["rows_extracted"], record["rows_quarantined"], record["rows_loaded"]) == \
        (6, 4, 2)
    rows = duckdb_landing_rows(tmp_path / "state" / "warehouse.duckdb", "dirty_orders")
    assert sorted(r["order_id"] for r in rows) == ["a1", "a4"]
    assert {r["order_id"]: r["customer_city"] for r in rows}["a1"] == "São Paulo; centro"
    rejected_dir = tmp_path / "state" / "lake" / "quarantine" / "dirty_orders" / "_rejected"
    kept = pq.read_table(next(rejected_dir.glob("*.parquet"))).to_pylist()
    assert [(r["where"], r["reason"]) for r in kept] == [
        ("orders_2024-01.csv:3", "blank line"),
        ("orders_2024-01.csv:4", "2 field(s), the header has 4"),
        ("orders_2024-01.csv:5", ("column order_purchase_timestamp: '19.09.2017' is not a "
                                 "timestamp (ISO or '%m/%d/%Y %H:%M')")),
        ("orders_2024-01.csv:8", "every field is empty")]
    assert any("4 source record(s) refused" in w for w in record["warnings"])

    again = run_json("--all", "--no-dbt")["dirty_orders"]
    assert again["status"] == "success" and again["rows_extracted"] == 0

    # `list` and `plan` name how a files pipeline finds new rows: not a cursor, not a full
    # refresh.
    listed = cli("list").stdout
    assert "(new and" in listed and "changed" in listed and "(full refresh)" not in listed
    planned = cli("plan", "--no-dbt")
    assert "no cursor: a run reads new and changed files" in planned.stdout, planned.output
    as_json = json.loads(cli("plan", "--no-dbt", "--json").stdout)
    assert [(p["cursor"], p["reads"], p["state"]) for p in as_json] == [
        (None, "(new and changed files)", "by kind")]

    # `reconcile --all` skips a kind that cannot list its current keys, in one line.
    compared = cli("reconcile", "--all")
    assert compared.exit_code == 0, compared.output
    assert "skipped dirty_orders: a files source cannot list its current keys" in \
        " ".join(compared.output.split())


def sales_pipeline(project_dir: Path, monkeypatch: pytest.MonkeyPatch, glob: str,
                   key_type: str) -> str:
    """The project's only pipeline: `sales`, files `data/<glob>` keyed on `order_id`; returns
    its text."""
    for path in (project_dir / "pipelines").glob("*.yml"):
        path.unlink()
    spec = (f"name: sales\nsource:\n  kind: files\n  location: data\n  glob: {glob}\n"
            "  primary_key: [order_id]\nlake:\n  path: sales\n"
            f"columns:\n  - {{name: order_id, type: {key_type}, nullable: false}}\n")
    (project_dir / "pipelines" / "sales.yml").write_text(spec)
    (project_dir / "data").mkdir()
    monkeypatch.chdir(project_dir)
    return spec


def test_plan_types_an_undeclared_parquet_column_for_the_transforms_dry_run(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file's Arrow type names went to the dry run as if portable: `plan` stopped with
    `KeyError: 'int8'` (found by a trial on pyarrow-written files)."""
    import pyarrow as pa

    sales_pipeline(project_dir, monkeypatch, "s_*.parquet", "bigint")

    def write(name: str, first: int) -> None:
        pq.write_table(pa.table({
            "order_id": pa.array([first, first + 1], pa.int64()),
            "status": pa.array([1, 2], pa.int8()),
            "score": pa.array([0.5, 1.5], pa.float32()),
            "amount": pa.array([1, 2], pa.decimal128(10, 2)),
            "at": pa.array([0, 1], pa.timestamp("ms", tz="UTC")),
            "big": pa.array([1, 2], pa.uint64())}), project_dir / "data" / name)

    write("s_001.parquet", 1)
    first = run_json("--all", "--no-dbt")
    assert first["sales"]["rows_loaded"] == 2, first
    write("s_002.parquet", 3)

    planned = cli("plan", "--no-dbt", "--json")

    assert planned.exit_code == 0, planned.output
    [plan] = json.loads(planned.stdout)
    assert plan["rows_label"] == "in 1 new or changed file(s): s_002.parquet", plan
    assert (plan["new_columns"], plan["notes"]) == ([], []), plan


def test_two_files_giving_a_column_different_types_name_it_and_the_fix(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's error ended at dlt's "... with exception:", the cause cut off (found by a
    trial on pyarrow-written files)."""
    import pyarrow as pa

    spec = sales_pipeline(project_dir, monkeypatch, "s_*.parquet", "bigint")
    pq.write_table(pa.table({"order_id": pa.array([1], pa.int64()), "status": ["open"]}),
                   project_dir / "data" / "s_001.parquet")
    pq.write_table(pa.table({"order_id": pa.array([2], pa.int64()),
                             "status": pa.array([3], pa.int8())}),
                   project_dir / "data" / "s_002.parquet")

    failed = run_json("--all", "--no-dbt")["sales"]
    (project_dir / "pipelines" / "sales.yml").write_text(
        spec + "  - {name: status, type: string}\n")
    fixed = run_json("--all", "--no-dbt")["sales"]

    assert failed["status"] == "failed"
    assert failed["error"].startswith(
        "files source data: the files read in this run give a column different types, which "
        "one batch cannot hold (Schema at index 1 was different"), failed["error"]
    assert failed["error"].endswith("declare the column's type in columns:")
    assert fixed["status"] == "success" and fixed["rows_loaded"] == 2, fixed["error"]


def test_a_column_spelled_in_another_case_by_a_later_export_is_no_schema_change(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`Channel` in a later file is the lake's `channel`, where its values land: the run
    warned of a new column and a dropped one (found by a trial)."""
    sales_pipeline(project_dir, monkeypatch, "c_*.csv", "integer")
    (project_dir / "data" / "c_1.csv").write_text("order_id,channel\n1,web\n")
    assert run_json("--all", "--no-dbt")["sales"]["status"] == "success"
    (project_dir / "data" / "c_2.csv").write_text("order_id,Channel\n2,shop\n")

    second = run_json("--all", "--no-dbt")["sales"]

    assert second["status"] == "success", second["error"]
    assert not any("schema changed" in w for w in second["warnings"]), second["warnings"]
    rows = duckdb_landing_rows(tmp_path / "state" / "warehouse.duckdb", "sales")
    assert sorted((r["order_id"], r["channel"]) for r in rows) == [(1, "web"), (2, "shop")]


def test_a_declared_nullable_column_a_later_export_leaves_out_lands_as_null(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An export with no value for a column often leaves the column out: a declared nullable
    column missing from a later file stopped the pipeline, every run after (found by a
    trial). Its rows hold NULL there; a column declared `nullable: false` still stops."""
    spec = sales_pipeline(project_dir, monkeypatch, "c_*.csv", "integer")
    pipeline = project_dir / "pipelines" / "sales.yml"
    pipeline.write_text(spec + "  - {name: channel, type: string}\n"
                        "  - {name: amount, type: 'decimal(10,2)', nullable: false}\n")
    (project_dir / "data" / "c_1.csv").write_text("order_id,channel,amount\n1,web,2.50\n")
    assert run_json("--all", "--no-dbt")["sales"]["status"] == "success"
    (project_dir / "data" / "c_2.csv").write_text("order_id,amount\n2,3.10\n")

    second = run_json("--all", "--no-dbt")["sales"]
    (project_dir / "data" / "c_3.csv").write_text("order_id,channel\n3,shop\n")
    third = run_json("--all", "--no-dbt")["sales"]

    assert second["status"] == "success", second["error"]
    assert second["warnings"] == [("sales: source schema changed: dropped column(s) channel "
                                   "(the rows of files without a column hold NULL in it)")]
    assert third["status"] == "failed"
    assert third["error"].startswith("sales: extract: source schema changed: new column(s) "
                                     "channel; dropped column(s) amount; 'amount' is declared in "
                                     "columns: but the source no longer has it"), third["error"]
    rows = duckdb_landing_rows(tmp_path / "state" / "warehouse.duckdb", "sales")
    assert sorted((r["order_id"], r["channel"], str(r["amount"])) for r in rows) == [
        (1, "web", "2.50"), (2, None, "3.10")]


@pytest.mark.parametrize(("export", "gone"), [("channel\nshop\n", "order_id"),
                                             ("order_id,sales_channel\n1,shop\n", "channel")],
                         ids=["key left out", "nullable column renamed"])
def test_a_later_export_without_a_declared_key_or_renaming_a_column_stops_the_run(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, export: str,
        gone: str) -> None:
    """Let through as a column a file may leave out, the key (declared without `nullable:
    false`) quarantined the batch for NULL keys, blocking the pipeline, and a renamed
    column's NULLs would overwrite the values of keys landed before (found by reviews).
    Either stops the run, naming the column."""
    spec = sales_pipeline(project_dir, monkeypatch, "r_*.csv", "integer")
    (project_dir / "pipelines" / "sales.yml").write_text(
        spec.replace(", nullable: false", "") + "  - {name: channel, type: string}\n")
    (project_dir / "data" / "r_1.csv").write_text("order_id,channel\n1,web\n")
    assert run_json("--all", "--no-dbt")["sales"]["status"] == "success"
    (project_dir / "data" / "r_2.csv").write_text(export)

    renamed = run_json("--all", "--no-dbt")["sales"]

    assert renamed["status"] == "failed"
    assert f"'{gone}' is declared in columns: but the source no longer has it" in \
        renamed["error"], renamed["error"]
    rows = duckdb_landing_rows(tmp_path / "state" / "warehouse.duckdb", "sales")
    assert [(r["order_id"], r["channel"]) for r in rows] == [(1, "web")]
