"""Pull-request CI and the pre-commit hooks: the files say what they must, and agree."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from framework.cli import main
from tests.conftest import ROOT


def load(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def steps(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_ci_workflow_validates_with_annotations_and_runs_the_tests_with_services() -> None:
    workflow = load(".github/workflows/ci.yml")
    triggers = workflow.get("on") or workflow.get(True)  # YAML 1.1 reads `on` as true
    assert "pull_request" in triggers
    validate, test = workflow["jobs"]["validate"], workflow["jobs"]["test"]
    assert "framework validate --format github" in steps(validate)
    assert "framework schema --check" in steps(validate)
    assert "framework dbt-sources --check" in steps(validate)
    assert "uv run --locked pytest" in steps(test)
    services = test["services"]
    assert services["postgres"]["ports"] == ["5432:5432"]
    assert services["mariadb"]["ports"] == ["3306:3306"]
    assert test["env"]["CI"] == "true"


def test_pre_commit_hook_is_offered_and_used_locally() -> None:
    offered = {hook["id"]: hook for hook in load(".pre-commit-hooks.yaml")}
    [local] = load(".pre-commit-config.yaml")["repos"]
    assert local["repo"] == "local"
    used = {hook["id"]: hook for hook in local["hooks"]}
    for hook_id in ("framework-validate", "framework-dbt-sources"):
        assert offered[hook_id]["entry"].startswith("framework ")
        assert used[hook_id]["entry"] == f"uv run --locked {offered[hook_id]['entry']}"
        assert used[hook_id]["files"] == offered[hook_id]["files"]
    files = re.compile(offered["framework-validate"]["files"])
    assert files.match("pipelines/orders.yml") and files.match("pipelines/sql/orders.sql")
    assert files.match("quality/orders.yml") and not files.match("README.md")


@pytest.mark.parametrize("hook_id", ["framework-validate", "framework-dbt-sources"])
def test_pre_commit_hook_entry_passes_on_the_shipped_project(
        hook_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMEWORK_PROJECT_DIR", str(ROOT))
    entry = {hook["id"]: hook for hook in load(".pre-commit-hooks.yaml")}[hook_id]["entry"]
    program, *args = shlex.split(entry)
    assert program == "framework"
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output


def test_shipped_pipeline_files_carry_the_schema_line() -> None:
    for path in sorted((ROOT / "pipelines").glob("*.yml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../pipeline.schema.json", path
    assert Path(ROOT / "pipeline.schema.json").is_file()
