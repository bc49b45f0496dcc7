"""The compile step: one frozen object per pipeline, fingerprinted, secrets left out."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from framework.compiled import CompiledPipeline, compile_project
from framework.project import Project


def compiled(root: Path) -> dict[str, CompiledPipeline]:
    """A fresh Project each time: nothing cached between two compiles."""
    project = Project.discover(root)
    return compile_project(project, project.target())


def fingerprints(root: Path) -> dict[str, str]:
    return {name: c.fingerprint for name, c in compiled(root).items()}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_compile_holds_what_a_run_needs(project_dir: Path) -> None:
    orders = compiled(project_dir)["orders"]

    assert orders.connection_name == "shop" and orders.connection is not None
    assert orders.connection.name == "shop"
    assert orders.warehouse.quoted_table == '"landing"."orders"'
    assert orders.lake.raw.endswith("/raw/orders")
    assert orders.lake.processed.endswith("/processed/orders")
    assert orders.lake.quarantine.endswith("/quarantine/orders")
    assert orders.dbt_select == ("stg_orders+",)
    # the SQL file's text, wrapped in the declared columns' casts, for each engine
    sql_file = (project_dir / "pipelines" / "sql" / "orders.sql").read_text().strip().rstrip(";")
    assert sql_file.splitlines()[0] in orders.sql.duckdb
    assert 'CAST("order_id" AS VARCHAR) AS "order_id"' in orders.sql.duckdb
    assert "CAST(`order_id` AS STRING) AS `order_id`" in orders.sql.spark
    names = [next(iter(e.root)) for e in orders.expectations]
    assert "expect_column_values_to_not_be_null" in names
    assert len(orders.fingerprint) == 64 and orders.short_fingerprint == orders.fingerprint[:8]
    with pytest.raises(dataclasses.FrozenInstanceError):
        orders.fingerprint = "x"  # type: ignore[misc]


def test_transform_pii_is_compiled_into_each_engine(project_dir: Path) -> None:
    edit(project_dir / "pipelines" / "customers.yml", "  engine: duckdb\n",
         "  engine: duckdb\n  pii:\n    - {column: contact_email, action: drop}\n"
         "    - {column: contact_phone, action: hash}\n")

    customers = compiled(project_dir)["customers"]

    assert 'EXCLUDE ("contact_email")' in customers.sql.duckdb
    assert 'sha256(CAST("contact_phone" AS STRING)) AS "contact_phone"' \
        in customers.sql.duckdb
    assert customers.sql.spark_pii == (
        ("contact_email", None),
        ("contact_phone", "sha2(CAST(`contact_phone` AS STRING), 256)"))


def test_fingerprint_is_stable_across_compiles(project_dir: Path) -> None:
    first = fingerprints(project_dir)

    assert fingerprints(project_dir) == first
    assert len(set(first.values())) == len(first)  # one per pipeline


@pytest.mark.parametrize(("file", "old", "new"), [
    ("pipelines/sql/orders.sql", "FROM batch", "FROM batch  -- changed"),  # the SQL file
    ("quality/orders.yml", "expectations: []", ("expectations:\n  - expect_column_to_exist: "
                                               "{column: order_id}")),  # the suite
    ("pipelines/orders.yml", "{name: order_approved_at, type: timestamp,",
     "{name: order_approved_at, type: string,"),  # a column
])
def test_fingerprint_changes_with_the_pipeline_and_only_its_own(
        project_dir: Path, file: str, old: str, new: str) -> None:
    before = fingerprints(project_dir)

    edit(project_dir / file, old, new)
    after = fingerprints(project_dir)

    assert after["orders"] != before["orders"]
    assert {n: f for n, f in after.items() if n != "orders"} == \
        {n: f for n, f in before.items() if n != "orders"}


def test_secrets_stay_out_of_the_compiled_pipeline(project_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_DB_URL", "postgresql+psycopg://shop:s3cr3t-pw@db.internal/shop")
    orders = compiled(project_dir)["orders"]

    assert orders.connection is not None and "s3cr3t-pw" in orders.connection.url  # resolved
    assert "s3cr3t-pw" not in repr(orders)
    assert "s3cr3t-pw" not in json.dumps(orders.canonical(), default=str)
    assert "db.internal" not in json.dumps(orders.canonical(), default=str)
    # the URL is the target's business, not the pipeline's: the fingerprint ignores it
    monkeypatch.setenv("SHOP_DB_URL", "postgresql+psycopg://shop:other@db2.internal/shop")
    assert compiled(project_dir)["orders"].fingerprint == orders.fingerprint


def test_a_connection_that_does_not_resolve_fails_its_own_pipeline_only(
        project_dir: Path) -> None:
    shop = project_dir / "sources" / "shop.yml"
    edit(shop, "${SHOP_DB_URL:-sqlite:///${FRAMEWORK_STATE_DIR}/shop.db}", "${SHOP_DB_URL}")
    project = Project.discover(project_dir)
    specs = project.load_pipelines(["orders"])  # validation does not need the URL

    orders = compile_project(project, project.target(), specs)["orders"]

    assert orders.connection is None
    with pytest.raises(Exception, match=r"^sources/shop.yml: needs the environment variable "
                                        r"SHOP_DB_URL$"):
        orders.connection_for("shop")


def test_a_quality_suite_is_parsed_once(project_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.spec import yaml_source

    parsed: list[str] = []
    real = yaml_source.parse_yaml

    def counting(path: Path, display: str | None = None) -> yaml_source.YamlDocument:
        if path.parent.name == "quality":
            parsed.append(path.name)
        return real(path, display)

    monkeypatch.setattr(yaml_source, "parse_yaml", counting)
    project = Project.discover(project_dir)
    compile_project(project, project.target())  # loads (validates) the pipelines, then compiles

    assert sorted(parsed) == sorted(p.name for p in (project_dir / "quality").glob("*.yml"))
