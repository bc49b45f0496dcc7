"""`framework plan`: the cursor, the rows waiting at or after it, the batches waiting in the lake,
new source columns and the dbt models, all without running anything."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from framework import api
from tests.e2e.helpers import cli, run_json
from tests.onboarding.conftest import START, TABLE, insert_accounts


def plan_json(*args: str) -> dict[str, dict[str, Any]]:
    result = cli("plan", "--json", *args)
    assert result.exit_code == 0, result.output
    return {p["pipeline"]: p for p in json.loads(result.stdout[result.stdout.index("["):])}


def untouched(state: Path) -> dict[str, str]:
    """The lake, dlt's state and the warehouse, by content."""
    parts = [*(state / "lake").rglob("*"), state / "warehouse.duckdb",
             state / "targets" / "local" / "dlt" / TABLE / "state.json"]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in parts if p.is_file()}


def source_count(url: str, where: str = "", **params: Any) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.text(f"SELECT count(*) FROM {TABLE} {where}"), params).scalar_one()
    engine.dispose()
    return int(count)


def test_plan_shows_cursor_waiting_rows_pending_batches_and_new_columns(
        sqlite_source: str, project_dir: Path, tmp_path: Path) -> None:
    assert cli("init", TABLE, "--connection", "loyalty").exit_code == 0

    first = plan_json("--pipeline", TABLE, "--no-dbt")[TABLE]

    assert first["state"] == "missing" and first["cursor_value"] is None
    assert first["rows_waiting"] == 25 and first["rows_label"] == "all rows (no cursor position yet)"
    assert first["pending_batches"] == [] and first["landing_exists"] is False
    assert any("no local dlt state" in note for note in first["notes"])

    assert run_json("--pipeline", TABLE, "--no-dbt")[TABLE]["status"] == "success"
    later = START + dt.timedelta(days=1)
    insert_accounts(sqlite_source, range(26, 28), later)  # extracted below, never loaded
    [pending] = api.extract(TABLE)
    insert_accounts(sqlite_source, range(28, 31), later + dt.timedelta(hours=1))
    engine = sa.create_engine(sqlite_source)
    with engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {TABLE} ADD COLUMN referrer VARCHAR(40)"))
    engine.dispose()
    before = untouched(tmp_path / "state")

    planned = plan_json("--pipeline", TABLE)[TABLE]

    assert untouched(tmp_path / "state") == before  # nothing extracted, loaded or moved
    assert planned["state"] == "local"
    assert planned["cursor"] == "modified_at"
    assert planned["cursor_value"] == str(later)
    # the two rows at the cursor (dlt re-reads the boundary) and the three after it
    assert planned["rows_waiting"] == source_count(sqlite_source, "WHERE modified_at >= :v",
                                                   v=later) == 5
    # init's lag: the window below the cursor is read again (none of these rows is in it)
    assert planned["rows_label"] == ("at or after the cursor, less the lag window (read again, "
                                     "merged on the key)")
    assert planned["pending_batches"] == [pending]
    assert planned["new_columns"] == [{"column": "referrer",
                                       "action": "ignored: the transform does not select it"}]
    assert planned["dbt_select"] == [f"stg_{TABLE}+"]
    assert planned["dbt_models"] == [f"stg_{TABLE}"]
    assert planned["stages"][1] == "finish 1 batch(es) already in the lake"

    # A transform that passes new columns through hands them to the warehouse contract.
    (project_dir / "pipelines" / "sql" / f"{TABLE}.sql").write_text("SELECT * FROM batch\n")
    passed = plan_json("--pipeline", TABLE, "--no-dbt")[TABLE]
    assert passed["new_columns"] == [{"column": "referrer", "action":
                                      f"added to landing.{TABLE} (contract: evolve)"}]
    text = cli("plan", "--pipeline", TABLE, "--no-dbt")
    assert text.exit_code == 0, text.output
    assert f"  5 row(s) at or after the cursor, less the lag window (read again, merged on the " \
        f"key)\n  batch in the lake, not loaded: {pending}\n" \
        f"  new column referrer: added to landing.{TABLE} (contract: evolve)\n" in text.output


def test_plan_of_the_shipped_pipelines_without_state(project_dir: Path, tmp_path: Path) -> None:
    """No demo shop yet: a plan of every pipeline skips the demo's in one line (and creates no
    empty shop.db); a plan of one of them says what it could not read instead of failing."""
    result = cli("plan", "--no-dbt", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("["):]) == []
    assert result.stderr.strip() == (
        "skipped 5 pipeline(s) of connection 'shop' (customers, order_items, orders, payments, "
        f"products): not set up, no database file {tmp_path / 'state' / 'shop.db'} (framework "
        "demo creates it)")
    named = cli("plan", "--no-dbt", "--json", "--pipeline", "orders")
    assert named.exit_code == 0, named.output
    [plan] = json.loads(named.stdout[named.stdout.index("["):])
    assert plan["pipeline"] == "orders" and plan["state"] == "missing"
    assert plan["landing_exists"] is False and plan["rows_waiting"] is None
    assert not (tmp_path / "state" / "shop.db").exists()


def test_plan_right_after_a_complete_run_shows_nothing_waiting(project_dir: Path,
                                                               tmp_path: Path) -> None:
    """`plan` asks the source adapter's "anything new?", the one `run` asks: right after a
    complete run the rows at the cursor boundary (already loaded) are not waiting."""
    from framework.demo.shop import create_shop

    create_shop(f"sqlite:///{tmp_path / 'state' / 'shop.db'}", scale=0.01, seed=7)
    first = run_json("--all", "--no-dbt")
    assert {r["status"] for r in first.values()} == {"success"}

    planned = plan_json("--no-dbt")

    assert set(planned) == set(first)
    for name, item in planned.items():
        assert item["state"] == "local" and item["cursor_value"] is not None, name
        assert (item["rows_waiting"], item["rows_label"]) == (0, "(nothing new since the last run)")
        assert item["stages"][0] == "extract: 0 row(s) (nothing new since the last run)"
    again = run_json("--all", "--no-dbt")  # and run agrees
    assert {(r["status"], r["rows_extracted"], r["load_id"]) for r in again.values()} == \
        {("success", 0, None)}


def test_plan_on_a_worker_without_its_state_shows_the_lakes_cursor(project_dir: Path,
                                                                   tmp_path: Path) -> None:
    """It said every row was waiting (no cursor position yet) while the run restores the
    lake's state and reads nothing."""
    import shutil

    from framework.demo.shop import create_shop

    create_shop(f"sqlite:///{tmp_path / 'state' / 'shop.db'}", scale=0.005, seed=7)
    run_json("--pipeline", "orders", "--no-dbt")
    for folder in (tmp_path / "state" / "targets").glob("*/dlt"):
        shutil.rmtree(folder)

    item = plan_json("--pipeline", "orders", "--no-dbt")["orders"]

    assert item["state"] == "lake" and item["cursor_value"] is not None, item
    assert (item["rows_waiting"], item["rows_label"]) == (0, "(nothing new since the last run)")
    assert run_json("--pipeline", "orders", "--no-dbt")["orders"]["rows_extracted"] == 0
