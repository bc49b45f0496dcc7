"""`framework new DIR`: the skeleton without the example is a valid project of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from framework.cli import main


def test_a_new_project_validates_where_it_was_written(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAMEWORK_PROJECT_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    made = runner.invoke(main, ["new", "analytics"])
    monkeypatch.chdir(tmp_path / "analytics")
    validated = runner.invoke(main, ["validate"])

    assert made.exit_code == 0, made.output
    assert validated.exit_code == 0, validated.output
    assert "0 pipeline file(s) valid" in validated.output
    project = tmp_path / "analytics"
    assert "${SOURCE_DB_URL}" in (project / "sources" / "main.yml").read_text()
    env_example = (project / ".env.example").read_text()
    assert "SOURCE_DB_URL=" in env_example and "SHOP_DB_URL" not in env_example
    assert not list((project / "pipelines").glob("*.yml"))  # no pipeline of this repository


def test_new_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")

    result = CliRunner().invoke(main, ["new", str(tmp_path / "taken")])

    assert result.exit_code == 1
    assert "exists and is not empty" in result.output
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
