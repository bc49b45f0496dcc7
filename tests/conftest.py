"""Shared fixtures: a throw-away copy of the project with its own state folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PARTS = ("framework.yml", "sources", "pipelines", "quality", "dbt_ecommerce")

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("TQDM_DISABLE", "1")


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=shutil.ignore_patterns("target", "logs"))
        else:
            shutil.copy(source, dest / part)
    return dest


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the shipped project whose run state lives in tmp_path."""
    root = copy_project(tmp_path / "project")
    for name in ("SHOP_DB_URL", "LAKE_URL", "DUCKDB_PATH", "FRAMEWORK_TARGET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FRAMEWORK_PROJECT_DIR", str(root))
    monkeypatch.setenv("FRAMEWORK_STATE_DIR", str(tmp_path / "state"))
    yield root


def service_unavailable(reason: str) -> None:
    """Fail in CI, skip (with the reason) on a laptop."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"service needed in CI is unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def forget_secrets() -> Iterator[None]:
    """Secrets registered for redaction by one test (a password 'dbt', say) stay in it."""
    from framework.settings import envvars

    yield
    envvars._SECRETS.clear()
