"""The CLI's tables in an 80-column terminal: no value shortened, no line wider than 80.

The commands run as a user runs them (a process with COLUMNS=80, not a terminal), on a copy of
the shipped project whose source is unreachable, so `run` fails fast and leaves its record.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PIPELINES = ("customers", "order_items", "orders", "payments", "products")


def framework(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80", "FRAMEWORK_PROJECT_DIR": str(project),
           "SHOP_DB_URL": "sqlite:////nonexistent/folder/shop.db"}
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def assert_fits(text: str) -> None:
    assert "…" not in text, text
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, text


def test_list_run_and_history_stay_whole_at_80_columns(project_dir: Path) -> None:
    ran = framework(project_dir, "run", "--pipeline", "order_items", "--pipeline", "customers",
                    "--no-dbt")
    listed = framework(project_dir, "list")
    history = framework(project_dir, "history")

    assert ran.returncode == 1
    assert_fits(ran.stdout)
    assert sorted(line.split()[:2] for line in ran.stdout.splitlines()[2:4]) == [
        ["customers", "failed"], ["order_items", "failed"]]
    assert "no rows quarantined" in ran.stdout  # the all-zero column, said once

    assert listed.returncode == 0, listed.stderr
    assert_fits(listed.stdout)
    for name in PIPELINES:
        assert f"shop.{name}" in listed.stdout
    assert listed.stdout.count("updated_at") == len(PIPELINES)
    assert listed.stdout.count("failed") == 2 and listed.stdout.count("never") == 3
    # every landing table is landing.<pipeline>: said once instead of in a column
    assert "landing table: landing.<pipeline>" in listed.stdout

    assert history.returncode == 0, history.stderr
    assert_fits(history.stdout)
    assert history.stdout.count("failed") == 2 and "target: local" in history.stdout
    words = " ".join(history.stdout.split())
    # the error (a missing SQLite file is `not set up`, said before connecting), wrapped, not cut
    assert "not set up, no database file" in words and "(framework demo creates it)" in words


def test_a_run_with_quarantined_rows_keeps_every_column_whole_at_80_columns() -> None:
    import io

    from rich.console import Console

    from framework.runs import RunRecord
    from framework.tables import runs_table

    bad = RunRecord("r1", "order_items", "local", status="quarantined", rows_extracted=1234567,
                    rows_quarantined=1234567, load_ids=["1796136593.123456"],
                    seconds={"extract": 123.4})
    good = RunRecord("r1", "customers", "local", status="success", rows_extracted=961,
                     rows_processed=961, rows_loaded=961, load_ids=["1796136593.123457"],
                     seconds={"extract": 3.4})
    console = Console(file=io.StringIO(), _environ={"COLUMNS": "80"})
    console.print(runs_table([bad, good], console.width))
    text = console.file.getvalue()  # type: ignore[attr-defined]

    assert_fits(text)
    assert text.splitlines()[0].split() == ["pipeline", "status", "load", "id", "extracted",
                                            "quarantined", "loaded", "seconds"]
    assert "order_items quarantined 1796136593.123456" in " ".join(text.split())
    assert "customers success 1796136593.123457 961 0 961 3.4" in " ".join(text.split())


def test_the_shared_builds_warning_is_printed_once_not_per_pipeline(
        capsys: pytest.CaptureFixture[str]) -> None:
    from framework.cli import _print_records
    from framework.runs import RunRecord

    waiting = "dbt: models reading landing.orders wait until those tables are loaded"
    records = [RunRecord("r1", name, "local", status="success", warnings=[waiting, f"{name}: own"])
               for name in ("customers", "products")]
    _print_records(records)
    captured = capsys.readouterr()
    text = " ".join((captured.err + captured.out).split())
    assert text.count("wait until those tables are loaded") == 1
    assert "customers: own" in text and "products: own" in text
