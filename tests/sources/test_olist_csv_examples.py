"""The Olist CSV example set validates as one set, and each pipeline lands in the SQL
pipeline's table with the same columns, key, transform, checks and dbt selection."""

from __future__ import annotations

from pathlib import Path

from framework.demo.csv_files import OLIST_FILES, olist_csv_specs
from framework.project import Project


def test_olist_csv_examples_mirror_the_sql_pipelines(project_dir: Path) -> None:
    project = Project(project_dir, {"FRAMEWORK_STATE_DIR": str(project_dir / ".framework")})
    examples = olist_csv_specs(project)
    sql = project.load_pipelines()
    assert set(examples) == {f"olist_{t}" for t in OLIST_FILES} | {
        "olist_product_category_name_translation"}
    for table, published in OLIST_FILES.items():
        csv, twin = examples[f"olist_{table}"], sql[table]
        assert csv.source.kind == "files"
        assert csv.source.glob == published.replace(".csv", "*.csv")
        assert csv.warehouse.model_dump(exclude={"table"}) == \
            twin.warehouse.model_dump(exclude={"table"})
        assert (csv.table, csv.columns, csv.transform, csv.quality, csv.dbt) == \
            (twin.table, twin.columns, twin.transform, twin.quality, twin.dbt)
        assert csv.source.primary_key == twin.source.primary_key
        assert csv.depends_on == [f"olist_{d}" for d in twin.depends_on]
