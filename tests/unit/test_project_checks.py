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
