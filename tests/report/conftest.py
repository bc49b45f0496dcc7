"""Fixtures of the report tests: the demo shop taken through `framework run --all` and a full
`dbt build`, and the dashboard rendered from it by `framework report`.

Session-scoped (the demo run takes about a minute); the environment they need is set only while
they run and again by `demo_env` in each test that calls the CLI, so nothing leaks into other
tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_project


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: needs headless Chromium (Debian package chromium)")


@dataclass(frozen=True)
class Demo:
    root: Path
    state: Path
    records: dict[str, dict[str, Any]]
    full_build: Any  # dbtRunnerResult of `dbt build` (no selection) after the run

    @property
    def warehouse(self) -> Path:
        return self.state / "warehouse.duckdb"

    @property
    def env(self) -> dict[str, str]:
        return {"FRAMEWORK_PROJECT_DIR": str(self.root), "FRAMEWORK_STATE_DIR": str(self.state)}


@dataclass(frozen=True)
class Rendered:
    path: Path
    html: str
    output: str  # what `framework report` printed


def _set_env(mp: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("SHOP_DB_URL", "LAKE_URL", "DUCKDB_PATH", "FRAMEWORK_TARGET"):
        mp.delenv(name, raising=False)
    for name, value in env.items():
        mp.setenv(name, value)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    from dbt.cli.main import dbtRunner

    from framework.demo.shop import create_shop
    from tests.e2e.helpers import run_json

    tmp = tmp_path_factory.mktemp("report_demo")
    root, state = copy_project(tmp / "project"), tmp / "state"
    with pytest.MonkeyPatch.context() as mp:
        _set_env(mp, {"FRAMEWORK_PROJECT_DIR": str(root), "FRAMEWORK_STATE_DIR": str(state)})
        create_shop(f"sqlite:///{state / 'shop.db'}", scale=0.01, seed=7)
        records = run_json("--all")
        mp.setenv("DUCKDB_PATH", str(state / "warehouse.duckdb"))
        full_build = dbtRunner().invoke([
            "build", "--project-dir", str(root / "dbt_ecommerce"),
            "--profiles-dir", str(root / "dbt_ecommerce"), "--target", "local",
            "--target-path", str(tmp / "dbt-target"), "--log-path", str(tmp / "dbt-logs"),
        ])
    return Demo(root, state, records, full_build)


@pytest.fixture
def demo_env(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> Demo:
    _set_env(monkeypatch, demo.env)
    return demo


@pytest.fixture(scope="session")
def dashboard(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    from tests.e2e.helpers import cli

    folder = tmp_path_factory.mktemp("dashboard")
    with pytest.MonkeyPatch.context() as mp:
        _set_env(mp, demo.env)
        result = cli("report", "--output", str(folder))
    assert result.exit_code == 0, result.output
    path = folder / "index.html"
    return Rendered(path, path.read_text(encoding="utf-8"), result.output)


@pytest.fixture
def query(demo: Demo) -> Iterator[Any]:
    """SQL straight on the demo warehouse (read-write: dbt ran in this process, see STACK-NOTES)."""
    import duckdb

    con = duckdb.connect(str(demo.warehouse))
    try:
        yield lambda sql: con.execute(sql).fetchall()
    finally:
        con.close()
