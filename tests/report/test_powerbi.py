"""`framework report --powerbi`: a .pbids connection file for the Snowflake marts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.errors import FrameworkError
from framework.report.powerbi import pbids
from framework.settings.targets import build_target
from tests.e2e.helpers import cli
from tests.report.conftest import Demo

SNOWFLAKE = {"type": "snowflake", "account": "xy12345.eu-central-1", "user": "reporter",
             "password": "secret-pw", "warehouse": "REPORTING_WH", "database": "ANALYTICS"}


def target(**warehouse: str) -> object:
    return build_target("prod", {"lake": {"url": "s3://lake"},
                                 "warehouse": {**SNOWFLAKE, **warehouse}})


def test_pbids_is_the_documented_snowflake_directquery_connection() -> None:
    assert pbids(target()) == {  # type: ignore[arg-type]
        "version": "0.1",
        "connections": [{
            "details": {"protocol": "snowflake",
                        "address": {"server": "xy12345.eu-central-1.snowflakecomputing.com",
                                    "warehouse": "REPORTING_WH"}},
            "options": {},
            "mode": "DirectQuery",
        }],
    }


def test_pbids_keeps_a_full_server_name_and_never_holds_credentials() -> None:
    data = pbids(target(account="org-acct.snowflakecomputing.com"))  # type: ignore[arg-type]
    address = data["connections"][0]["details"]["address"]
    assert address["server"] == "org-acct.snowflakecomputing.com"
    assert "secret-pw" not in json.dumps(data) and "reporter" not in json.dumps(data)


def test_pbids_needs_a_snowflake_target_with_a_warehouse() -> None:
    local = build_target("local", {"lake": {"url": "/lake"},
                                   "warehouse": {"type": "duckdb", "path": "/w.duckdb"}})
    with pytest.raises(FrameworkError, match="has a duckdb warehouse"):
        pbids(local)
    with pytest.raises(FrameworkError, match=r"warehouse \(SNOWFLAKE_WAREHOUSE\)"):
        pbids(target(warehouse=""))  # type: ignore[arg-type]


def test_cli_writes_the_prod_pbids_beside_the_local_dashboard(
        demo_env: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"LAKE_URL": "s3://lake", "SNOWFLAKE_ACCOUNT": "xy12345",
                        "SNOWFLAKE_USER": "reporter", "SNOWFLAKE_PASSWORD": "pw",
                        "SNOWFLAKE_WAREHOUSE": "REPORTING_WH",
                        "SNOWFLAKE_DATABASE": "ANALYTICS"}.items():
        monkeypatch.setenv(name, value)
    output = tmp_path / ("a-folder-with-a-long-name-" * 4)  # longer than a console line
    result = cli("report", "--powerbi", "--output", str(output))
    assert result.exit_code == 0, result.output
    assert (output / "index.html").is_file()  # from the local target's DuckDB
    data = json.loads((output / "marts.pbids").read_text())
    assert data["connections"][0]["details"]["address"] == {
        "server": "xy12345.snowflakecomputing.com", "warehouse": "REPORTING_WH"}
    assert "database ANALYTICS, schema MARTS" in result.output
    assert result.output.strip().splitlines()[-1] == str(output / "index.html")  # unwrapped


def test_cli_powerbi_without_snowflake_settings_fails_before_rendering(
        demo_env: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SNOWFLAKE_ACCOUNT", raising=False)
    monkeypatch.setenv("LAKE_URL", "s3://lake")
    result = cli("report", "--powerbi", "--output", str(tmp_path))
    assert result.exit_code == 1
    assert "SNOWFLAKE_ACCOUNT" in result.output
    assert not (tmp_path / "index.html").exists()
