"""Settings outside the pipeline files that `validate` does not read (framework.yml,
sources/*.yml, FRAMEWORK_* variables, LAKE_URL), and Ctrl-C: one line naming the file, key or
variable, never a Python error. Each printed a bare AttributeError, ValueError or
FileExistsError, cut pydantic's message before the key, or (a lake URL of another scheme) made a
folder named after it and reported success."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import cli


def _error(*args: str) -> str:
    result = cli(*args)
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert lines, result.output
    assert "Traceback" not in result.output
    return lines[-1]


@pytest.mark.parametrize(("framework_yml", "expected"), [
    ("targets:\n  local: [1, 2]\n",
     "error: framework.yml: targets.local: expected a mapping (lake:, warehouse:)"),
    ("targets:\n\tlocal: {}\n",
     ("error: framework.yml:2:1: invalid YAML: a tab character; YAML indents and separates "
      "with spaces only (replace the tab with spaces)")),
    ("targets:\n  local:\n    lake: {url: x}\n    warehouse: {pth: w.duckdb}\n",
     "error: framework.yml: targets.local: warehouse.pth: Extra inputs are not permitted"),
    ("targets:\n  local:\n    lake: {url: 'memory://x'}\n    warehouse: {path: w.duckdb}\n",
     ("error: framework.yml: targets.local: lake.url: 'memory://x': the lake is a local folder "
      "or s3://bucket/prefix")),
])
def test_a_broken_project_file_is_one_line_naming_the_key(
        project_dir: Path, framework_yml: str, expected: str) -> None:
    (project_dir / "framework.yml").write_text(framework_yml)
    assert _error("run", "--pipeline", "orders", "--no-dbt") == expected


def test_a_source_file_typo_names_the_key(project_dir: Path) -> None:
    shop = project_dir / "sources" / "shop.yml"
    shop.write_text(shop.read_text().replace("url:", "urll:"))
    assert _error("run", "--pipeline", "orders", "--no-dbt") == (
        "error: sources/shop.yml: url: Field required; urll: Extra inputs are not permitted")


def test_a_source_file_with_broken_yaml_is_located_and_explained(project_dir: Path) -> None:
    shop = project_dir / "sources" / "shop.yml"
    shop.write_text("dialect: sqlite\nurl: [sqlite:///x.db\n")
    assert _error("run", "--pipeline", "orders", "--no-dbt") == (
        "error: sources/shop.yml:2:6: invalid YAML: the '[' here is never closed (expected ',' "
        "or ']' at the end of the file); add the missing ']'")


def test_a_duration_that_is_not_a_number_names_its_variable(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.errors import FrameworkError
    from framework.lease import lease_ttl, lease_wait

    monkeypatch.setenv("FRAMEWORK_WAREHOUSE_WAIT", "abc")
    assert _error("run", "--pipeline", "orders", "--no-dbt") == (
        "error: environment variable FRAMEWORK_WAREHOUSE_WAIT='abc': expected a number of "
        "seconds (default 3600)")
    for variable, read in (("FRAMEWORK_LEASE_TTL", lease_ttl), ("FRAMEWORK_LEASE_WAIT", lease_wait)):
        monkeypatch.setenv(variable, "-1")
        with pytest.raises(FrameworkError, match=f"environment variable {variable}='-1': "
                                                 "expected a number of seconds"):
            read()
        monkeypatch.setenv(variable, "2.5")
        assert read() == 2.5


def test_a_state_folder_that_is_a_file_names_the_variable(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setenv("FRAMEWORK_STATE_DIR", str(afile / "state"))
    assert _error("list") == (f"error: state folder {afile / 'state'} (FRAMEWORK_STATE_DIR): "
                              f"{afile} is a file, not a folder")


def test_ctrl_c_inside_dlts_extract_stops_the_run(tmp_path: Path) -> None:
    """dlt catches a KeyboardInterrupt like any error of its step and wraps it: it became one
    pipeline's failure, and the other pipelines and the dbt build ran on."""
    import dlt
    from dlt.pipeline.exceptions import PipelineStepFailed

    from framework.stages.extract import _interrupted

    def failure(inner: BaseException) -> PipelineStepFailed:
        def rows() -> object:
            yield {"id": 1}
            raise inner

        pipeline = dlt.pipeline(pipeline_name="interrupted", pipelines_dir=str(tmp_path))
        with pytest.raises(PipelineStepFailed) as failed:
            pipeline.extract(dlt.resource(rows, name="rows"))
        return failed.value

    assert _interrupted(failure(KeyboardInterrupt()))
    assert not _interrupted(failure(ValueError("a source error")))


@pytest.mark.parametrize("command", ["run", "reconcile"])
def test_all_and_a_pipeline_together_are_refused(project_dir: Path, command: str) -> None:
    """`run --all --pipeline orders` ran every pipeline and the dbt build."""
    assert _error(command, "--all", "--pipeline", "orders") == \
        "error: give --pipeline NAME or --all, not both"


def test_a_duckdb_memory_that_is_not_a_size_names_its_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.errors import FrameworkError
    from framework.stages.load.duckdb import memory_limit

    monkeypatch.setenv("FRAMEWORK_DUCKDB_MEMORY", "lots")
    with pytest.raises(FrameworkError, match="environment variable FRAMEWORK_DUCKDB_MEMORY="
                                             "'lots': expected a size such as 384MB"):
        memory_limit()
    monkeypatch.setenv("FRAMEWORK_DUCKDB_MEMORY", "2GB")
    assert memory_limit() == "2GB"


@pytest.mark.parametrize(("url", "expected"), [
    ("not a url", ("error: sources/shop.yml: url: not a database URL (dialect+driver://user:"
                  "password@host:port/database, or sqlite:///path/to/file.db)")),
    ("foo://x/y", ("error: sources/shop.yml: url: unknown database 'foo' (SQLAlchemy has no "
                  "dialect of that name installed)")),
    ("oracle://u:p@h/x", ("error: orders: the Python module 'oracledb' is not installed (a "
                         "driver the source's URL needs: install it into the framework's "
                         "environment)")),
])
def test_a_source_url_that_cannot_work_is_one_line(project_dir: Path, url: str,
                                                   expected: str) -> None:
    """They printed SQLAlchemy's ArgumentError, NoSuchModuleError or a ModuleNotFoundError
    marked unexpected."""
    (project_dir / "sources" / "shop.yml").write_text(f"name: shop\nurl: '{url}'\n")
    assert _error("run", "--pipeline", "orders", "--no-dbt") == expected


def test_a_lake_folder_under_a_file_names_the_lake(project_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """It failed as an unexpected NotADirectoryError about dlt's state file."""
    from framework.demo.shop import create_shop

    create_shop(f"sqlite:///{tmp_path / 'state' / 'shop.db'}", scale=0.001, seed=1)
    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setenv("LAKE_URL", str(afile / "lake"))
    assert _error("run", "--pipeline", "products", "--no-dbt") == (
        f"error: lake {afile / 'lake'}: {afile} is a file, not a folder")


@pytest.mark.parametrize("command", ["list", "history"])
def test_an_unknown_target_is_refused_by_list_and_history(project_dir: Path,
                                                          command: str) -> None:
    """They showed this worker's local runs under the mistyped name."""
    assert _error(command, "--target", "nope") == (
        "error: framework.yml: unknown target 'nope' (defined: local, prod)")
