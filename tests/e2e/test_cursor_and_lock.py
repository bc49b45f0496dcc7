"""Cursor semantics (NULL policy, look-back window) and one run at a time per pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from framework.demo.shop import create_shop
from tests.e2e.helpers import (
    assert_landing_equals_source,
    cli,
    run_json,
    vouchers_spec,
)


@pytest.fixture
def shop(project_dir: Path, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    create_shop(url, scale=0.003, seed=3)
    return url


def set_spec(project_dir: Path, name: str, old: str, new: str) -> None:
    path = project_dir / "pipelines" / f"{name}.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))




def vouchers_with_null_cursors(url: str, project_dir: Path, policy: str) -> int:
    """A table whose cursor is NULL on some rows (the shop's own tables never are)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE vouchers (voucher_id INTEGER PRIMARY KEY, "
                             "code VARCHAR(16), updated_at DATETIME)"))
        conn.execute(sa.text("INSERT INTO vouchers VALUES (1, 'A', '2018-01-01 00:00:00.000001'), "
                             "(2, 'B', NULL), (3, 'C', '2018-01-02 00:00:00.5'), (4, 'D', NULL)"))
    engine.dispose()
    (project_dir / "pipelines" / "vouchers.yml").write_text(vouchers_spec(f", on_null: {policy}"))
    return 2


def test_null_cursor_fail_stops_the_run_naming_the_policy(shop: str, project_dir: Path) -> None:
    vouchers_with_null_cursors(shop, project_dir, "fail")

    result = cli("run", "--pipeline", "vouchers", "--no-dbt")

    assert result.exit_code == 1
    assert "rows with a NULL 'updated_at'; set source.incremental.on_null" in result.output


def test_null_cursor_fail_stops_a_later_run_that_meets_one(shop: str, project_dir: Path,
                                                          tmp_path: Path) -> None:
    """A row inserted after the first run with no cursor: once a cursor existed, the read's
    WHERE left it out (and the pre-check never saw it), so `fail` skipped it for good, with a
    success. Now the run stops, and again on a worker without its state folder."""
    (project_dir / "pipelines" / "vouchers.yml").write_text(vouchers_spec(", on_null: fail"))
    engine = sa.create_engine(shop)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE vouchers (voucher_id INTEGER PRIMARY KEY, "
                             "code VARCHAR(16), updated_at DATETIME)"))
        conn.execute(sa.text("INSERT INTO vouchers VALUES (1, 'A', '2018-01-01 00:00:00')"))
    assert run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]["status"] == "success"
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO vouchers VALUES (2, 'B', NULL)"))
    engine.dispose()

    later = cli("run", "--pipeline", "vouchers", "--no-dbt")
    for folder in (tmp_path / "state" / "targets").glob("*/dlt"):
        shutil.rmtree(folder)
    fresh = cli("run", "--pipeline", "vouchers", "--no-dbt")

    for result in (later, fresh):
        assert result.exit_code == 1, result.output
        assert "rows with a NULL 'updated_at'; set source.incremental.on_null" in result.output


@pytest.mark.parametrize("policy", ["include", "exclude"])
def test_null_cursor_include_or_exclude(policy: str, shop: str, project_dir: Path,
                                        tmp_path: Path) -> None:
    nulls = vouchers_with_null_cursors(shop, project_dir, policy)

    first = run_json("--pipeline", "vouchers", "--no-dbt")["vouchers"]

    expected = 4 if policy == "include" else 4 - nulls
    assert first["status"] == "success" and first["rows_loaded"] == expected
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"))
    ids = con.execute("SELECT voucher_id FROM landing.vouchers ORDER BY 1").fetchall()
    con.close()
    assert ids == ([(1,), (2,), (3,), (4,)] if policy == "include" else [(1,), (3,)])


def test_lag_rereads_the_window_and_catches_a_late_commit(shop: str, project_dir: Path,
                                                          tmp_path: Path) -> None:
    set_spec(project_dir, "orders", "lag: 0", "lag: 1h")
    run_json("--pipeline", "orders", "--no-dbt")
    engine = sa.create_engine(shop)
    with engine.begin() as conn:
        top = conn.execute(sa.text("SELECT max(updated_at) FROM orders")).scalar_one()
        # A transaction that started earlier commits now, with a cursor value just below the max.
        conn.execute(sa.text("UPDATE orders SET order_status = 'canceled', "
                             "updated_at = datetime(:top, '-10 minutes') "
                             "WHERE order_id = (SELECT min(order_id) FROM orders)"), {"top": top})
    engine.dispose()

    second = run_json("--pipeline", "orders", "--no-dbt")["orders"]

    assert second["rows_extracted"] >= 1
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    assert_landing_equals_source(shop, warehouse, ["orders"])


def test_a_second_concurrent_run_of_a_pipeline_refuses(shop: str, project_dir: Path,
                                                       tmp_path: Path) -> None:
    env = {**os.environ, "FRAMEWORK_KILL_AT": ""}
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time; from framework.locks import pipeline_lock; "
         "from pathlib import Path\n"
         f"with pipeline_lock(Path({str(tmp_path / 'state' / 'targets' / 'local' / 'locks')!r}), "
         "'orders', 'local'):\n    print('locked', flush=True); time.sleep(60)")],
        env=env, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    try:
        refused = cli("run", "--pipeline", "orders", "--no-dbt")
        assert refused.exit_code == 1
        assert f"orders: already running on target 'local' (pid {holder.pid})" in refused.output
    finally:
        holder.kill()  # a killed holder leaves no stale lock behind
        holder.wait()
    time.sleep(0.1)
    assert run_json("--pipeline", "orders", "--no-dbt")["orders"]["status"] == "success"
