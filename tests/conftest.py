"""Shared fixtures: a throw-away copy of the project with its own state folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]  # tests/test_ci_skip_guard.py runs pytest on small files

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


ALLOW_SKIP_IN_CI = "skip_allowed_in_ci"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{ALLOW_SKIP_IN_CI}(reason): this test may skip under CI=true, for the "
        "reason given (a platform it cannot run on, say); every other skip fails in CI")


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def service_unavailable(reason: str) -> None:
    """Fail in CI, skip (with the reason) on a laptop."""
    if in_ci():
        pytest.fail(f"service needed in CI is unavailable: {reason}")
    pytest.skip(reason)


def _skip_allowed(item: pytest.Item) -> bool:
    marker = item.get_closest_marker(ALLOW_SKIP_IN_CI)
    if marker is None:
        return False
    reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
    if not str(reason).strip():
        raise pytest.UsageError(f"{item.nodeid}: @{ALLOW_SKIP_IN_CI} needs a reason")
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, None]:
    """Under CI=true a skip is a failure (a service CI must have is missing, a dependency did
    not install), however it was raised: pytest.skip, importorskip, a skipif marker, a
    fixture. Expected failures (xfail) are not skips."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (in_ci() and report.skipped) or hasattr(report, "wasxfail") or _skip_allowed(item):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"skipped under CI=true ({reason}); a skip in CI needs "
                       f"@pytest.mark.{ALLOW_SKIP_IN_CI}(reason=...)")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    """A whole module skipped at import (a module-level importorskip) fails in CI too."""
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if in_ci() and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"module skipped under CI=true: {reason}"


@pytest.fixture(autouse=True)
def forget_secrets() -> Iterator[None]:
    """Secrets registered for redaction by one test (a password 'dbt', say) stay in it."""
    from framework.settings import envvars

    yield
    envvars._SECRETS.clear()
