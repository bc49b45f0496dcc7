"""What schedulers and operators read: `run --json` on every run, `doctor` with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import cli


def json_records(stdout: str) -> list[dict[str, object]]:
    return json.loads(stdout[stdout.index("["):stdout.rindex("]") + 1])  # type: ignore[no-any-return]


def test_run_json_prints_a_record_per_pipeline_when_the_warehouse_cannot_be_opened(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "not-a-database"
    folder.mkdir()
    monkeypatch.setenv("DUCKDB_PATH", str(folder))  # a folder: DuckDB cannot open it

    result = cli("run", "--pipeline", "customers", "--pipeline", "products", "--json")

    assert result.exit_code == 1
    records = json_records(result.stdout)
    assert [(r["pipeline"], r["status"]) for r in records] == [("customers", "failed"),
                                                               ("products", "failed")]
    assert all(str(r["error"]).startswith(f"warehouse {folder}: ") for r in records)
    assert all(r["stages_status"] == "failed" and r["dbt"] is None for r in records)
    history = json.loads(cli("history", "--json").stdout)
    assert {(h["pipeline"], h["status"]) for h in history} == {("customers", "failed"),
                                                               ("products", "failed")}


def test_run_json_prints_a_record_when_the_run_cannot_start(project_dir: Path) -> None:
    (project_dir / "pipelines" / "customers.yml").write_text("name: customers\nsource: [\n")

    result = cli("run", "--pipeline", "customers", "--json")

    assert result.exit_code == 1
    [record] = json_records(result.stdout)
    assert (record["pipeline"], record["status"]) == ("customers", "failed")
    assert str(record["error"]).startswith("pipelines/customers.yml:")
    # the keys a script reads on every other record, the shared dbt build's included
    assert (record["stages_status"], record["models_status"], record["dbt"]) == \
        ("failed", None, None)


def test_doctor_names_the_missing_snowflake_setting_for_dbt_too(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"FRAMEWORK_TARGET": "prod", "LAKE_URL": str(tmp_path / "lake"),
                        "SNOWFLAKE_ACCOUNT": "acme", "SNOWFLAKE_USER": "loader",
                        "SNOWFLAKE_DATABASE": "analytics"}.items():
        monkeypatch.setenv(name, value)
    for name in ("SNOWFLAKE_PASSWORD", "SNOWFLAKE_PRIVATE_KEY_PATH"):
        monkeypatch.delenv(name, raising=False)

    result = cli("doctor")

    needs = ("the Snowflake target needs a 'password' (SNOWFLAKE_PASSWORD) or a "
             "'private_key_path' (key-pair auth)")
    lines = result.output.splitlines()
    assert result.exit_code == 1
    assert f"FAIL warehouse snowflake: warehouse snowflake (account acme): {needs}" in lines
    assert f"FAIL dbt target prod: {needs}" in lines
