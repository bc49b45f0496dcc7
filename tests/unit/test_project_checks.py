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
