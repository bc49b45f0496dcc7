"""What the DAG factory parses: each pipeline file on its own, bad ones skipped (no Airflow here)."""

from __future__ import annotations

from pathlib import Path

from framework.orchestration.specs import valid_pipelines
from framework.project import Project


def shipped(project_dir: Path) -> list[str]:
    return sorted(p.stem for p in (project_dir / "pipelines").glob("*.yml"))


def add_pipeline(project_dir: Path, name: str, **replace: str) -> Path:
    text = (project_dir / "pipelines" / "customers.yml").read_text()
    text = text.replace("name: customers", f"name: {name}").replace("  path: customers",
                                                                    f"  path: {name}")
    for old, new in replace.items():
        text = text.replace(old, new)
    path = project_dir / "pipelines" / f"{name}.yml"
    path.write_text(text)
    return path


def test_every_shipped_pipeline_is_valid(project_dir: Path) -> None:
    found = valid_pipelines(Project.discover())

    assert sorted(found.specs) == shipped(project_dir)
    assert found.problems == [] and found.skipped == []


def test_a_bad_file_is_skipped_with_validate_s_line_and_the_others_stay(project_dir: Path) -> None:
    good = shipped(project_dir)
    add_pipeline(project_dir, "broken", **{'schedule: "0 * * * *"': 'schedule: "61 * * * *"'})
    (project_dir / "pipelines" / "garbled.yml").write_text("name: [unclosed\n")

    found = valid_pipelines(Project.discover())

    assert sorted(found.specs) == good
    assert sorted(found.skipped) == ["broken", "garbled"]
    assert "pipelines/broken.yml:6:11: schedule: '61 * * * *' is not a valid cron expression: " \
           "the minute field '61' is not valid (0-59, '*', lists, ranges, steps)" in found.problems
    assert any(p.startswith("pipelines/garbled.yml:") for p in found.problems)


def test_project_checks_apply_too(project_dir: Path) -> None:
    add_pipeline(project_dir, "elsewhere", **{"connection: shop": "connection: nowhere"})

    found = valid_pipelines(Project.discover())

    assert found.skipped == ["elsewhere"]
    assert found.problems[0].startswith("pipelines/elsewhere.yml:")
    assert "unknown connection 'nowhere'" in found.problems[0]


def test_pipelines_on_a_depends_on_cycle_are_skipped(project_dir: Path) -> None:
    spec = project_dir / "pipelines" / "customers.yml"
    spec.write_text(spec.read_text().replace("tags: [core, customers]\n",
                                             "tags: [core, customers]\ndepends_on: [payments]\n"))

    found = valid_pipelines(Project.discover())

    cycle = {"customers", "orders", "payments"}
    assert sorted(found.specs) == [n for n in shipped(project_dir) if n not in cycle]
    assert sorted(found.skipped) == ["customers", "orders", "payments"]
    assert found.problems == [
        "pipelines/customers.yml: depends_on forms a cycle: customers -> payments -> orders -> "
        + "customers"]


def test_pipelines_sharing_a_landing_table_or_lake_path_are_all_skipped(project_dir: Path) -> None:
    add_pipeline(project_dir, "clients", **{"  schema: landing\n":
                                            "  schema: landing\n  table: customers\n"})
    add_pipeline(project_dir, "buyers", **{"  path: buyers": "  path: orders"})

    found = valid_pipelines(Project.discover())

    assert sorted(found.skipped) == ["buyers", "clients", "customers", "orders"]
    assert sorted(found.specs) == [n for n in shipped(project_dir)
                                   if n not in ("buyers", "clients", "customers", "orders")]
    assert len(found.problems) == 2
    assert found.problems[0].startswith("pipelines/orders.yml:") and \
        "'orders' is already the lake path of pipeline 'buyers'" in found.problems[0]
    assert found.problems[1].startswith("pipelines/customers.yml:") and \
        "landing table landing.customers is also the landing table of pipeline 'clients' " \
        "(pipelines/clients.yml)" in found.problems[1]
