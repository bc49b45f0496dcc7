"""The project's own YAML files (framework.yml, sources/*.yml) pass a pipeline file's limits:
a pull request may change them too, and run, plan, doctor and reconcile read them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from framework.errors import FrameworkError
from framework.project import Project


def bomb() -> str:
    """Nine levels of nine aliases: 9**9 values from ~400 bytes."""
    lines = ["bomb0: &a0 [" + ", ".join(['"x"'] * 9) + "]"]
    lines += [f"bomb{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    return "\n".join(lines) + "\n"


def refused_quickly(load: object, expected: str) -> None:
    started = time.perf_counter()
    with pytest.raises(FrameworkError) as error:
        load()  # type: ignore[operator]
    assert time.perf_counter() - started < 2
    assert str(error.value) == expected


def test_an_alias_bomb_in_a_source_file_is_one_line(project_dir: Path) -> None:
    path = project_dir / "sources" / "shop.yml"
    lines = path.read_text().count("\n")
    path.write_text(path.read_text() + bomb())  # its fifth line holds the alias that crosses

    refused_quickly(lambda: Project.discover().connection("shop"),
                    f"sources/shop.yml:{lines + 5}:18: alias '*a3' makes the file hold more than "
                    "20000 values (each alias repeats its anchor's values); write the values out")


def test_a_nul_byte_in_framework_yml_is_one_line(project_dir: Path) -> None:
    path = project_dir / "framework.yml"
    path.write_text("\0" + path.read_text())

    refused_quickly(lambda: Project.discover().config,
                    "framework.yml:1:1: a NUL byte here; pipeline files are plain text (write it "
                    'as an escape such as "\\t" inside double quotes if the value needs it)')


def test_hostile_dbt_files_are_skipped_by_run_as_by_validate(project_dir: Path) -> None:
    from framework.stages.model import unloaded_sources

    project = Project.discover()
    before = unloaded_sources(project, project.target(None))
    models = project.dbt_dir / "models"
    (models / "x.yml").mkdir()
    (models / "zero.yml").symlink_to("/dev/zero")
    (models / "bomb.yml").write_text("sources:\n  - name: s\n" + bomb())
    (models / "list.yml").write_text("- just a list\n")

    started = time.perf_counter()
    after = unloaded_sources(project, project.target(None))

    assert time.perf_counter() - started < 2
    assert before and after == before
