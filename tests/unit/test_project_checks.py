"""Checks across pipeline files: `depends_on` cycles are caught by validate, not at run time."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import cli


def test_validate_reports_a_depends_on_cycle_at_its_first_file(project_dir: Path) -> None:
    spec = project_dir / "pipelines" / "customers.yml"
    spec.write_text(spec.read_text().replace("tags: [core, customers]\n",
                                             "tags: [core, customers]\ndepends_on: [payments]\n"))

    result = cli("validate")

    assert result.exit_code == 1
    assert result.output.strip() == ("pipelines/customers.yml:6:14: depends_on[0]: depends_on "
                                     "forms a cycle: customers -> payments -> orders -> customers")


def test_validate_refuses_lake_paths_dlt_would_rename(project_dir: Path) -> None:
    spec = project_dir / "pipelines" / "orders.yml"
    spec.write_text(spec.read_text().replace("  path: orders\n", "  path: order__s_\n"))

    result = cli("validate")

    assert result.exit_code == 1
    assert "lake.path: 'order__s_' is not a valid name" in result.output
    assert "(e.g. order_s)" in result.output


def test_validate_refuses_pii_on_a_primary_key(project_dir: Path) -> None:
    spec = project_dir / "pipelines" / "customers.yml"
    spec.write_text(spec.read_text().replace(
        "  sql_file: sql/customers.sql\n",
        "  sql_file: sql/customers.sql\n  pii:\n    - {column: customer_id, action: mask}\n"))

    result = cli("validate")

    assert result.exit_code == 1
    assert "transform.pii[0].column: 'customer_id' is in source.primary_key" in result.output


def test_validate_refuses_two_pipelines_sharing_a_lake_path(project_dir: Path) -> None:
    spec = project_dir / "pipelines" / "payments.yml"
    spec.write_text(spec.read_text().replace("  path: payments\n", "  path: orders\n"))

    result = cli("validate")

    assert result.exit_code == 1
    assert ("lake.path: 'orders' is already the lake path of pipeline 'orders'; each pipeline "
            "needs its own") in result.output


def test_validate_refuses_two_pipelines_with_one_landing_table(project_dir: Path) -> None:
    spec = project_dir / "pipelines" / "payments.yml"
    text = spec.read_text()
    assert "  table: orders\n" not in text.split("warehouse:")[1]
    spec.write_text(text.replace("warehouse:\n", "warehouse:\n  table: orders\n", 1))

    result = cli("validate")

    assert result.exit_code == 1
    line = next(n for n, t in enumerate(spec.read_text().splitlines(), 1) if t == "  table: orders"
                and n > text[:text.index("warehouse:")].count("\n"))
    assert result.output.strip() == (
        f"pipelines/payments.yml:{line}:10: warehouse.table: landing table landing.orders is also "
        "the landing table of pipeline 'orders' (pipelines/orders.yml); each pipeline needs its "
        "own: set warehouse.table")


def test_validate_refuses_a_landing_table_named_by_another_pipelines_default(
        project_dir: Path) -> None:
    """`warehouse.table` defaults to the pipeline's name; the collision is found either way."""
    def pipeline(name: str, extra: str = "") -> str:
        return (f"name: {name}\nsource:\n  connection: shop\n  table: sellers\n"
                f"  primary_key: [seller_id]\nlake:\n  path: {name}\n{extra}")

    (project_dir / "pipelines" / "a_sellers.yml").write_text(
        pipeline("a_sellers", "warehouse:\n  table: sellers\n"))
    (project_dir / "pipelines" / "sellers.yml").write_text(pipeline("sellers"))

    result = cli("validate")

    assert result.exit_code == 1
    assert result.output.strip() == (
        "pipelines/sellers.yml:1:7: name: landing table landing.sellers is also the landing "
        "table of pipeline 'a_sellers' (pipelines/a_sellers.yml); each pipeline needs its own: "
        "set warehouse.table")


def test_validate_checks_a_named_file_outside_pipelines(project_dir: Path, tmp_path: Path) -> None:
    """A file named on the command line is validated wherever it is (it used to print
    `ok 0 pipeline file(s) valid`)."""
    draft = tmp_path / "drafts" / "orders.yml"
    draft.parent.mkdir()
    draft.write_text((project_dir / "pipelines" / "orders.yml").read_text()
                     .replace("connection: shop", "connection: shpo"))

    broken = cli("validate", str(draft))

    assert broken.exit_code == 1
    assert broken.output.startswith(f"{draft}:")
    assert "source.connection: unknown connection 'shpo': no sources/shpo.yml (did you mean " \
        "'shop'?)" in broken.output
    assert len(broken.output.strip().splitlines()) == 1

    draft.write_text((project_dir / "pipelines" / "orders.yml").read_text())
    fine = cli("validate", str(draft))
    assert fine.exit_code == 0 and fine.output.startswith("ok 1 pipeline file(s) valid")

    directory = tmp_path / "x.yml"
    directory.mkdir()
    refused = cli("validate", str(directory))
    assert refused.exit_code == 1
    assert refused.output.strip() == (f"{directory}:1:1: a directory, not a pipeline file; a "
                                      "pipeline file is a YAML text file")

    missing = cli("validate", str(tmp_path / "nowhere.yml"))
    assert missing.exit_code == 1 and "nowhere.yml: no such file" in missing.output


def test_validate_counts_the_named_files_of_the_project(project_dir: Path) -> None:
    pipelines = project_dir / "pipelines"
    result = cli("validate", str(pipelines / "orders.yml"), str(pipelines / "payments.yml"))

    assert result.exit_code == 0
    assert result.output.startswith("ok 2 pipeline file(s) valid")


def test_validate_survives_hostile_files_in_the_dbt_project(project_dir: Path) -> None:
    """validate reads dbt's files for model names and tags: an alias bomb, a directory named
    x.sql and a symlink to /dev/zero there must not hang it or crash it."""
    import time

    models = project_dir / "dbt_ecommerce" / "models"
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    (models / "bomb.yml").write_text("\n".join(lines) + "\n")
    (models / "folder.sql").mkdir()
    (models / "zero.sql").symlink_to("/dev/zero")
    (models / "zero.yml").symlink_to("/dev/zero")

    started = time.perf_counter()
    result = cli("validate")

    assert time.perf_counter() - started < 5.0
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok ")
