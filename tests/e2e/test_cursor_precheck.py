"""The cursor pre-check (framework/sources/sql/precheck.py) skips dlt only when nothing is new.

Each case runs the real pipeline once, changes the source, then asks the pre-check with dlt's
real stored state; a second real run then confirms what dlt itself finds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import dlt
import pytest
import sqlalchemy as sa

from framework.project import Project
from framework.runner import runner_for
from framework.sources.sql.precheck import _compare, nothing_new, stored_cursor
from tests.e2e.helpers import duckdb_landing_rows, run_json, vouchers_spec

EDGE = "2018-01-02 00:00:00.500000"


@pytest.fixture
def shop(project_dir: Path, tmp_path: Path) -> str:
    (tmp_path / "state").mkdir(exist_ok=True)
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE vouchers (voucher_id INTEGER PRIMARY KEY, "
                             "code VARCHAR(16), amount NUMERIC(8, 2), updated_at DATETIME)"))
        conn.execute(sa.text(f"INSERT INTO vouchers VALUES (1, 'A', 1.50, '2018-01-01 00:00:00'), "
                             f"(2, 'B', 2.25, '{EDGE}'), (3, 'C', NULL, '{EDGE}')"))
    engine.dispose()
    for spec in (project_dir / "pipelines").glob("*.yml"):
        spec.unlink()
    (project_dir / "pipelines" / "vouchers.yml").write_text(vouchers_spec())
    assert run_json("--all", "--no-dbt")["vouchers"]["rows_loaded"] == 3
    return url


def precheck(project_dir: Path) -> bool:
    project = Project.discover(project_dir)
    runner = runner_for(project, None)
    ctx = runner.context(project.pipeline("vouchers"))
    pipeline = dlt.pipeline(pipeline_name="vouchers", pipelines_dir=str(ctx.state_dir / "dlt"))
    connection = project.connection("shop")
    engine = sa.create_engine(connection.url)
    table = sa.Table("vouchers", sa.MetaData(), autoload_with=engine)
    engine.dispose()
    return nothing_new(ctx, pipeline, table, connection)


def change(url: str, sql: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(sql))
    engine.dispose()


def codes_at_source_and_landed(url: str, project_dir: Path
                               ) -> tuple[set[tuple[int, str]], set[tuple[int, str]]]:
    """Each voucher's (id, code) in the source, and in the warehouse's landing table."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        codes = set(conn.execute(sa.text("SELECT voucher_id, code FROM vouchers")).all())
    engine.dispose()
    landed = {(r["voucher_id"], r["code"]) for r in duckdb_landing_rows(
        project_dir.parent / "state" / "warehouse.duckdb", "vouchers")}
    return codes, landed


def test_nothing_new_after_a_run_and_dlt_agrees(shop: str, project_dir: Path) -> None:
    assert precheck(project_dir) is True
    assert run_json("--all", "--no-dbt")["vouchers"]["rows_extracted"] == 0


@pytest.mark.parametrize("sql", [
    "INSERT INTO vouchers VALUES (4, 'D', 4.00, '2018-01-03 00:00:00')",    # past the cursor
    f"INSERT INTO vouchers VALUES (4, 'D', 4.00, '{EDGE}')",               # at the cursor
    "UPDATE vouchers SET code = 'B2' WHERE voucher_id = 2",                # changed at it
    "UPDATE vouchers SET amount = 0.01 WHERE voucher_id = 3",              # NULL -> value at it
], ids=["past", "new-at-boundary", "changed-at-boundary", "null-filled-at-boundary"])
def test_a_row_past_or_changed_at_the_cursor_is_not_nothing(shop: str, project_dir: Path,
                                                          sql: str) -> None:
    change(shop, sql)

    assert precheck(project_dir) is False
    assert run_json("--all", "--no-dbt")["vouchers"]["rows_extracted"] == 1
    assert precheck(project_dir) is True


def test_rows_removed_from_the_top_leave_nothing_new(shop: str, project_dir: Path) -> None:
    change(shop, f"DELETE FROM vouchers WHERE updated_at = '{EDGE}'")

    assert precheck(project_dir) is True
    assert run_json("--all", "--no-dbt")["vouchers"]["rows_extracted"] == 0


@pytest.mark.parametrize("sql", [
    None,
    "UPDATE vouchers SET code = 'E2' WHERE voucher_id = 5",              # changed, no cursor
    "INSERT INTO vouchers VALUES (7, 'G', 7.00, NULL)",                  # a new one
    "UPDATE vouchers SET updated_at = NULL WHERE voucher_id = 1",        # a cursor cleared
    "UPDATE vouchers SET code = 'B2' WHERE voucher_id = 2",              # changed at the top
    "DELETE FROM vouchers WHERE voucher_id = 6",                         # reconcile's part
], ids=["nothing", "changed", "inserted", "cursor-cleared", "changed-at-boundary", "deleted"])
def test_included_null_cursors_run_dlt_only_when_one_changed(shop: str, project_dir: Path,
                                                             sql: str | None) -> None:
    """`on_null: include` reads the rows with no cursor on every run: a batch, a load and a
    dbt build every 15 minutes for nothing. The digests the last read kept of them tell."""
    change(shop, "INSERT INTO vouchers VALUES (5, 'E', 5.00, NULL), (6, 'F', NULL, NULL)")
    (project_dir / "pipelines" / "vouchers.yml").write_text(vouchers_spec(", on_null: include"))
    assert run_json("--all", "--no-dbt")["vouchers"]["rows_extracted"] == 2
    assert precheck(project_dir) is True
    if sql:
        change(shop, sql)
    new = sql is not None and "DELETE" not in sql

    assert precheck(project_dir) is (not new)
    run_json("--all", "--no-dbt")
    assert precheck(project_dir) is True
    codes, landed = codes_at_source_and_landed(shop, project_dir)
    assert landed == codes | ({(6, "F")} if sql and "DELETE" in sql else set())


def test_a_reader_that_keeps_no_digests_always_runs_dlt(shop: str, project_dir: Path) -> None:
    """The digests are kept by the Arrow readers' boundary filter: after a switch to a row
    reader they went stale, and a row changed and changed back matched them (found by a
    review)."""
    change(shop, "INSERT INTO vouchers VALUES (5, 'E', 5.00, NULL)")
    (project_dir / "pipelines" / "vouchers.yml").write_text(vouchers_spec(", on_null: include"))
    run_json("--all", "--no-dbt")
    source = project_dir / "sources" / "shop.yml"
    source.write_text(source.read_text() + "backend: sqlalchemy\n")
    change(shop, "UPDATE vouchers SET code = 'E2' WHERE voucher_id = 5")
    run_json("--all", "--no-dbt")
    change(shop, "UPDATE vouchers SET code = 'E' WHERE voucher_id = 5")

    back = run_json("--all", "--no-dbt")["vouchers"]

    codes, landed = codes_at_source_and_landed(shop, project_dir)
    assert back["status"] == "success" and landed == codes


@pytest.mark.parametrize("sql", [
    None,
    "INSERT INTO vouchers VALUES (4, 'D', 4.00, '2018-01-01 23:00:00.5')",  # late, at its edge
    "UPDATE vouchers SET code = 'C2' WHERE voucher_id = 3",             # changed, cursor kept
    "INSERT INTO vouchers VALUES (4, 'D', 4.00, '2018-01-01 22:59:59')",  # below the window
], ids=["nothing", "late-row-in-window", "changed-in-window", "below-window"])
def test_a_look_back_window_runs_dlt_only_when_a_row_in_it_changed(
        shop: str, project_dir: Path, sql: str | None) -> None:
    """With `lag` (init writes 10m) off PostgreSQL every run read the window again: a batch,
    a load and a dbt build every 15 minutes for nothing. The digests the last read kept of
    the window's rows tell whether any is new."""
    (project_dir / "pipelines" / "vouchers.yml").write_text(vouchers_spec(", lag: 1h"))
    assert run_json("--all", "--no-dbt")["vouchers"]["rows_extracted"] == 2  # the window
    assert precheck(project_dir) is True
    if sql:
        change(shop, sql)
    in_window = sql is not None and "22:59:59" not in sql

    assert precheck(project_dir) is (not in_window)
    record = run_json("--all", "--no-dbt")["vouchers"]
    assert record["rows_extracted"] == (3 if "INSERT" in (sql or "") else 2) * in_window
    assert precheck(project_dir) is True
    codes, landed = codes_at_source_and_landed(shop, project_dir)
    # a row committed below the window is what lag cannot catch: the run cannot see it
    assert landed == codes - ({(4, "D")} if sql and not in_window else set())


def test_a_look_back_window_of_more_rows_than_its_digests_runs_dlt(
        shop: str, project_dir: Path) -> None:
    (project_dir / "pipelines" / "vouchers.yml").write_text(vouchers_spec(", lag: 1h"))
    change(shop, "INSERT INTO vouchers WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT "
                 f"v + 1 FROM n WHERE v < 300) SELECT v + 10, 'X', 1.00, '{EDGE}' FROM n")
    run_json("--all", "--no-dbt")

    assert precheck(project_dir) is False


@pytest.mark.parametrize(("value", "last", "expected"), [
    (datetime(2024, 1, 1, 10), datetime(2024, 1, 1, 10, tzinfo=UTC), 0),  # naive is UTC
    (datetime(2024, 1, 1, 11), datetime(2024, 1, 1, 10, tzinfo=UTC), 1),
    (date(2024, 1, 1), date(2024, 1, 2), -1),
    (Decimal("1.50"), 2, -1),
    (0.1, 0.10000000149011612, None),  # floats: one driver's float32 is another's 0.1
    ("b", "a", None),                  # text: the database's collation decides, not Python's
    (date(2024, 1, 1), datetime(2024, 1, 1), None),
])
def test_the_cursor_comparison_orders_only_what_python_and_the_database_agree_on(
        value: object, last: object, expected: int | None) -> None:
    assert _compare(value, last) == expected


def test_the_stored_cursor_is_the_source_tables_own(project_dir: Path) -> None:
    (project_dir / "pipelines" / "vouchers.yml").write_text(
        vouchers_spec().replace("path: vouchers", "path: coupons"))
    spec = Project.discover(project_dir).pipeline("vouchers")
    entry = {"incremental": {"updated_at": {"last_value": 5, "unique_hashes": ["h"]}}}

    assert stored_cursor({"sources": {"vouchers": {"resources": {"vouchers": entry}}}}, spec) \
        == {"last_value": 5, "unique_hashes": ["h"]}
    # a resource named like the lake path is another table's (a renamed source table)
    assert stored_cursor({"sources": {"vouchers": {"resources": {"coupons": entry}}}}, spec) \
        is None


PROBE = """import json, sys
from click.testing import CliRunner
from framework.cli import main
result = CliRunner().invoke(main, ["run", "--all", "--no-dbt", "--json"])
records = json.loads(result.stdout[result.stdout.index("["):])
print(json.dumps({"dlt": "dlt" in sys.modules, "exit": result.exit_code,
                  "extracted": [r["rows_extracted"] for r in records]}))
"""


def probe_run(tmp_path: Path) -> dict[str, object]:
    """`run --all --no-dbt` in a process of its own: what it extracted, whether dlt started."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_run_with_nothing_new_reads_dlts_state_from_its_files(shop: str, project_dir: Path,
                                                                 tmp_path: Path) -> None:
    assert probe_run(tmp_path) == {"dlt": False, "exit": 0, "extracted": [0]}

    # A local state that is not the lake's newest (another worker ran since): dlt restores it.
    state_file = tmp_path / "state" / "targets" / "local" / "dlt" / "vouchers" / "state.json"
    state = json.loads(state_file.read_text())
    state["_version_hash"] = "another-workers-version"
    state_file.write_text(json.dumps(state))
    assert probe_run(tmp_path) == {"dlt": True, "exit": 0, "extracted": [0]}
    assert json.loads(state_file.read_text())["_version_hash"] != "another-workers-version"

    # New rows: the pre-check sends the run on to dlt, which reads exactly them.
    change(shop, "INSERT INTO vouchers VALUES (4, 'D', 4.00, '2018-01-03 00:00:00')")
    assert probe_run(tmp_path) == {"dlt": True, "exit": 0, "extracted": [1]}
    assert probe_run(tmp_path) == {"dlt": False, "exit": 0, "extracted": [0]}


def named_spec(name: str, path: str) -> str:
    """The vouchers table under another pipeline name, lake path and landing table."""
    return (f"name: {name}\nsource:\n  connection: shop\n  table: vouchers\n"
            "  primary_key: [voucher_id]\n  incremental: {cursor: updated_at}\n"
            f"lake:\n  path: {path}\nwarehouse:\n  table: {path}\n")


def test_pipelines_whose_names_share_a_prefix_keep_their_own_cursor_state(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    """dlt names state files `<pipeline>__<load_id>__<hash>`: the files of `vouchers_` and
    `vouchers__eu` begin with `vouchers__`, and neither is one of `vouchers`'s."""
    for name, path in (("vouchers_", "coupons"), ("vouchers__eu", "coupons_eu")):
        (project_dir / "pipelines" / f"{name}.yml").write_text(named_spec(name, path))
    first = run_json("--all", "--no-dbt")
    assert {n: r["rows_extracted"] for n, r in first.items()} == \
        {"vouchers": 0, "vouchers_": 3, "vouchers__eu": 3}
    assert {n: r["rows_extracted"] for n, r in run_json("--all", "--no-dbt").items()} == \
        {"vouchers": 0, "vouchers_": 0, "vouchers__eu": 0}

    # Another machine (the lake and the warehouse only): each resumes from its own state.
    shutil.rmtree(tmp_path / "state" / "targets")
    again = run_json("--all", "--no-dbt")
    assert {n: (r["status"], r["rows_extracted"]) for n, r in again.items()} == \
        {"vouchers": ("success", 0), "vouchers_": ("success", 0),
         "vouchers__eu": ("success", 0)}
