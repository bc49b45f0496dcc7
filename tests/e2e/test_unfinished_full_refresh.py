"""A `--full-refresh` that does not finish in its run (refused for an empty source, killed after
its whole read landed in the lake, its batch quarantined) is finished later: the whole batch
replaces the table. Before, dlt's cursor was gone already, the next run read every row again
and appended it (an append table twice over), or merged it (rows the source had deleted kept).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from framework.demo.shop import create_shop
from tests.e2e.helpers import cli, duckdb_landing_rows, execute, run_json, vouchers_spec

ROWS = ("INSERT INTO vouchers VALUES (1, 'A', '2031-01-01 00:00:00'), "
        "(2, 'B', '2031-01-01 00:00:00'), (3, 'C', '2031-01-02 00:00:00')")


@pytest.fixture
def shop(project_dir: Path, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    create_shop(url, scale=0.001, seed=13)
    execute(url, "CREATE TABLE vouchers (voucher_id INTEGER PRIMARY KEY, code VARCHAR(16), "
                 "updated_at TIMESTAMP NOT NULL)", ROWS)
    return url


def vouchers(project_dir: Path, disposition: str, columns: str = "") -> None:
    (project_dir / "pipelines" / "vouchers.yml").write_text(
        vouchers_spec() + f"warehouse:\n  write_disposition: {disposition}\n" + columns)


def record(tmp_path: Path) -> Path:
    """The lake's record of an unfinished full refresh (framework/full_refresh.py)."""
    return tmp_path / "state" / "lake" / "raw" / "_framework_full_refresh" / "vouchers.json"


def landed(tmp_path: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"))
    try:
        return con.execute("SELECT voucher_id, code FROM landing.vouchers "
                           "ORDER BY ALL").fetchall()
    finally:
        con.close()


def full_refresh_killed_at(point: str) -> None:
    """`run --full-refresh` in a process that SIGKILLs itself at `point` (framework/faults.py)."""
    killed = subprocess.run(
        [sys.executable, "-m", "framework.cli", "run", "--pipeline", "vouchers", "--no-dbt",
         "--full-refresh"], env={**os.environ, "FRAMEWORK_KILL_AT": point},
        capture_output=True, check=False)
    assert killed.returncode == -9, killed.stderr[-600:]


def test_a_full_refresh_refused_for_an_empty_source_is_finished_by_the_next_run(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    vouchers(project_dir, "append")
    assert run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]["rows_loaded"] == 3
    execute(shop, "DELETE FROM vouchers")  # a truncate-and-reload under way

    refused = cli("run", "--pipeline", "vouchers", "--no-dbt", "--full-refresh")
    execute(shop, ROWS)  # reloaded
    after = run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]

    assert refused.exit_code == 1, refused.output
    assert "the next run reads the source whole again" in " ".join(refused.output.split())
    assert after["status"] == "success", after["error"]
    assert after["warnings"] == [("vouchers: an earlier --full-refresh did not finish: this "
                                  "run reads the source whole, and its batch replaces the table")]
    assert not record(tmp_path).exists()
    assert landed(tmp_path) == [(1, "A"), (2, "B"), (3, "C")]  # not each row twice
    nothing_new = run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]
    assert nothing_new["rows_extracted"] == 0 and landed(tmp_path) == [(1, "A"), (2, "B"),
                                                                       (3, "C")]


@pytest.mark.parametrize("lake", ["new", "folder made by hand"])
def test_a_first_run_with_full_refresh_lands_the_source_on_a_new_lake(
        shop: str, project_dir: Path, tmp_path: Path, lake: str) -> None:
    """dlt makes the lake's `raw/` folder on its first load, without `exist_ok`: the record of
    the refresh, written first, made it already, and the run failed with `FileExistsError`
    (so did any run on a `raw/` folder made beforehand)."""
    vouchers(project_dir, "merge")
    if lake != "new":
        (tmp_path / "state" / "lake" / "raw").mkdir(parents=True)

    first = run_json("--pipeline", "vouchers", "--no-dbt", "--full-refresh")["vouchers"]
    again = run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]

    assert first["status"] == "success", first["error"]
    assert landed(tmp_path) == [(1, "A"), (2, "B"), (3, "C")]
    assert not record(tmp_path).exists()
    assert again["status"] == "success" and again["rows_extracted"] == 0, again


def test_a_full_refresh_killed_after_its_read_landed_is_loaded_whole_by_the_next_run(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    vouchers(project_dir, "append")
    run_json("--pipeline", "vouchers", "--no-dbt")
    full_refresh_killed_at("after_lake_write")

    after = run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]

    assert after["status"] == "success", after["error"]
    assert landed(tmp_path) == [(1, "A"), (2, "B"), (3, "C")]
    assert not record(tmp_path).exists()


def test_a_record_naming_a_batch_loaded_since_is_forgotten(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    """Killed between the load's COMMIT and the record's removal, the record named a batch
    already loaded, and stayed for good."""
    vouchers(project_dir, "append")
    run_json("--pipeline", "vouchers", "--no-dbt")
    full_refresh_killed_at("after_load")
    assert record(tmp_path).exists()
    execute(shop, "INSERT INTO vouchers VALUES (4, 'D', '2031-01-03 00:00:00')")

    after = run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]

    assert after["status"] == "success", after["error"]
    assert after["rows_loaded"] == 1  # an incremental read, not a full refresh again
    assert not any("full-refresh" in w for w in after["warnings"]), after["warnings"]
    assert not record(tmp_path).exists()
    assert landed(tmp_path) == [(1, "A"), (2, "B"), (3, "C"), (4, "D")]


@pytest.mark.parametrize("disposition", ["append", "merge"])
def test_replaying_a_quarantined_full_refresh_batch_replaces_the_table(
        disposition: str, shop: str, project_dir: Path, tmp_path: Path) -> None:
    strict = ("columns:\n  - {name: voucher_id, type: integer, nullable: false}\n"
              "  - {name: code, type: string, nullable: false}\n"
              "  - {name: updated_at, type: timestamp}\n")
    vouchers(project_dir, disposition, strict)
    run_json("--pipeline", "vouchers", "--no-dbt")
    execute(shop, "DELETE FROM vouchers WHERE voucher_id = 1",  # a delete no cursor sees
            "UPDATE vouchers SET code = NULL WHERE voucher_id = 2")
    held = run_json("--pipeline", "vouchers", "--no-dbt", "--full-refresh")["vouchers"]
    assert held["status"] == "quarantined", held["error"]
    vouchers(project_dir, disposition)  # a NULL code is fine after all

    replayed = cli("replay", "--pipeline", "vouchers", "--load-id", held["load_id"])

    assert replayed.exit_code == 0, replayed.output
    assert landed(tmp_path) == [(2, None), (3, "C")]
    assert run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]["status"] == "success"
    assert landed(tmp_path) == [(2, None), (3, "C")]


COUPONS = """\
name: coupons
source:
  kind: files
  location: data
  glob: coupons_*.csv
  primary_key: [coupon_id]
lake:
  path: coupons
columns:
  - {name: coupon_id, type: integer, nullable: false}
  - {name: code, type: string}
"""


def test_a_files_full_refresh_that_finds_no_file_keeps_the_table_and_is_finished_later(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a SQL source's empty whole read was refused: a files source's said success with
    the old rows kept, and every later run read every file again (its record stayed)."""
    (project_dir / "pipelines" / "coupons.yml").write_text(COUPONS)
    data = project_dir / "data"
    data.mkdir()
    (data / "coupons_1.csv").write_text("coupon_id,code\n1,A\n2,B\n")
    monkeypatch.chdir(project_dir)
    assert run_json("--pipeline", "coupons", "--no-dbt")["coupons"]["rows_loaded"] == 2
    (data / "coupons_1.csv").rename(tmp_path / "away.csv")  # an export being rewritten

    refused = cli("run", "--pipeline", "coupons", "--no-dbt", "--full-refresh")
    (tmp_path / "away.csv").rename(data / "coupons_1.csv")
    after = run_json("--pipeline", "coupons", "--no-dbt")["coupons"]
    again = run_json("--pipeline", "coupons", "--no-dbt")["coupons"]

    text = " ".join(refused.output.split())
    assert refused.exit_code == 1, refused.output
    assert ("the source returned no rows, so landing.coupons keeps its 2 row(s)" in text
            and "the next run reads the source whole again" in text), text
    assert after["status"] == "success", after["error"]
    assert again["rows_extracted"] == 0  # the refresh finished: new files only again
    landed = duckdb_landing_rows(tmp_path / "state" / "warehouse.duckdb", "coupons")
    assert sorted((r["coupon_id"], r["code"]) for r in landed) == [(1, "A"), (2, "B")]


def test_the_extract_task_refuses_an_empty_whole_read_as_a_run_does(
        shop: str, project_dir: Path, tmp_path: Path) -> None:
    """Airflow's extract task (`framework.api.extract`) found the owed whole read empty and
    returned no batch: the table kept its rows, the task succeeded, and every later task read
    the source whole again."""
    from framework import api
    from framework.errors import StageError

    vouchers(project_dir, "append")
    run_json("--pipeline", "vouchers", "--no-dbt")
    execute(shop, "DELETE FROM vouchers")
    assert cli("run", "--pipeline", "vouchers", "--no-dbt", "--full-refresh").exit_code == 1

    with pytest.raises(StageError, match=r"the source returned no rows, so landing\.vouchers "
                                         r"keeps its 3 row\(s\)"):
        api.extract("vouchers")
    execute(shop, ROWS)
    pending = api.extract("vouchers")

    assert len(pending) == 1
    assert record(tmp_path).exists()  # names the whole batch until it loads
