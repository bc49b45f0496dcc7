"""The shipped pipelines on shops written by each database's own client
(tests/sources_independent.py), not by the project's generator: ties at one cursor value,
whole-second and `T` timestamps, NULLs, orphans. After every run landing equals the source on
every column and the marts add up to the source."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import (
    KEYS,
    assert_landing_equals_source,
    assert_marts_match_source,
    run_json,
)
from tests.integration.test_server_sources import server_database
from tests.sources_independent import change_shop, write_shop

TABLES = tuple(KEYS)


@pytest.fixture(params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.integration),
    pytest.param("mariadb", marks=pytest.mark.integration),
])
def written_shop(request: pytest.FixtureRequest, project_dir: Path, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "sqlite":
        (tmp_path / "state").mkdir(exist_ok=True)
        url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"  # the local target's default shop
        write_shop(url)
        yield url
        return
    with server_database(request.param) as url:
        monkeypatch.setenv("SHOP_DB_URL", url)
        write_shop(url)
        yield url


def assert_all_succeeded(records: dict[str, dict[str, Any]]) -> None:
    assert {p: r["status"] for p, r in records.items()} == dict.fromkeys(TABLES, "success"), {
        p: r["error"] for p, r in records.items()}


def test_independently_written_shop_lands_equal_and_picks_up_every_change(
        written_shop: str, tmp_path: Path) -> None:
    warehouse = tmp_path / "state" / "warehouse.duckdb"
    assert_all_succeeded(run_json("--all", "--no-dbt"))
    assert_landing_equals_source(written_shop, warehouse, TABLES)

    for round_ in (1, 2):
        print(f"change round {round_}")
        changed = change_shop(written_shop, round_)
        records = run_json("--all", "--no-dbt")
        assert_all_succeeded(records)
        assert_landing_equals_source(written_shop, warehouse, TABLES)
        assert {p: r["rows_extracted"] for p, r in records.items()} == changed


def test_independently_written_shop_with_orphans_builds_marts_equal_to_the_source(
        project_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(exist_ok=True)
    url = f"sqlite:///{tmp_path / 'state' / 'shop.db'}"
    write_shop(url)

    assert_all_succeeded(run_json("--all"))
    assert_marts_match_source(url, tmp_path / "state" / "warehouse.duckdb")
