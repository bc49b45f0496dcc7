"""`FRAMEWORK_TARGET=prod` on real servers: PostgreSQL or MariaDB -> S3 (moto) -> Snowflake
(fakesnow over HTTP, the real connector) -> dbt-snowflake. The pipeline files are unchanged."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import snowflake.connector

from framework.demo.shop import TABLES, create_shop, simulate_activity
from tests.e2e.helpers import (
    KEYS,
    cli,
    landing_differences,
    run_json,
    source_rows,
    source_versions,
)
from tests.integration.conftest import FakesnowServer, S3Server
from tests.integration.test_server_sources import SERVERS, server_database

PASSWORD = "Rec0gnisable-Pa55word"


@pytest.fixture(params=sorted(SERVERS))
def prod(request: pytest.FixtureRequest, project_dir: Path, moto_s3: S3Server,
         fakesnow_server: FakesnowServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    moto_s3.create_bucket(bucket)
    database = f"ANALYTICS_{uuid.uuid4().hex[:6].upper()}"
    with server_database(request.param) as url:
        create_shop(url, scale=0.003, seed=21)
        env = {
            "FRAMEWORK_TARGET": "prod", "SHOP_DB_URL": url,
            "LAKE_URL": f"s3://{bucket}/lake", "AWS_ENDPOINT_URL": moto_s3.endpoint_url,
            "AWS_ACCESS_KEY_ID": moto_s3.access_key_id, "AWS_REGION": moto_s3.region,
            "AWS_SECRET_ACCESS_KEY": moto_s3.secret_access_key,
            "SNOWFLAKE_ACCOUNT": fakesnow_server.account, "SNOWFLAKE_USER": "loader",
            "SNOWFLAKE_PASSWORD": PASSWORD, "SNOWFLAKE_DATABASE": database,
            "SNOWFLAKE_HOST": fakesnow_server.host, "SNOWFLAKE_PORT": str(fakesnow_server.port),
            "SNOWFLAKE_PROTOCOL": "http", "SNOWFLAKE_WAREHOUSE": "LOAD_WH",
            "FRAMEWORK_REPORTER_ROLE": "",  # fakesnow cannot run GRANT
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield {"url": url, "bucket": bucket, "database": database, "server": fakesnow_server,
               "s3": moto_s3}


def snowflake_versions(prod: dict[str, Any], table: str) -> dict[tuple[str, ...], str]:
    server: FakesnowServer = prod["server"]
    con = snowflake.connector.connect(**server.connect_kwargs(database=prod["database"]))
    try:
        cur = con.cursor()
        keys = KEYS[table]
        cur.execute(f"SELECT {', '.join(keys)}, updated_at FROM landing.{table}")
        rows = cur.fetchall()
    finally:
        con.close()
    assert len(rows) == len({tuple(r[:-1]) for r in rows}), f"duplicate keys in {table}"
    out = {}
    for row in rows:
        text = row[-1].isoformat(sep=" ")
        out[tuple(str(v) for v in row[:-1])] = text if "." in text else text + ".000000"
    return out


def assert_snowflake_equals_source(prod: dict[str, Any], table: str) -> None:
    """Every column of LANDING.<table> against the source (names lower-cased)."""
    server: FakesnowServer = prod["server"]
    con = snowflake.connector.connect(**server.connect_kwargs(database=prod["database"]))
    try:
        cur = con.cursor()
        cur.execute(f"SELECT * FROM landing.{table} LIMIT 0")
        names = [d[0].lower() for d in cur.description]
        # fakesnow's server hands a NULL timestamp to the connector as 1970-01-01: ask IS NULL.
        cur.execute(f"SELECT *, {', '.join(f'{n} IS NULL' for n in names)} FROM landing.{table}")
        rows = [{n: None if row[len(names) + i] else row[i] for i, n in enumerate(names)}
                for row in cur.fetchall()]
    finally:
        con.close()
    problems = landing_differences(source_rows(prod["url"], table), rows, table)
    assert problems == [], f"{table}: " + "\n".join(problems[:10])


def marts_orders(prod: dict[str, Any]) -> int:
    server: FakesnowServer = prod["server"]
    con = snowflake.connector.connect(**server.connect_kwargs(database=prod["database"]))
    try:
        cur = con.cursor()
        cur.execute("SELECT count(*) FROM marts.fact_orders")
        return int(cur.fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


@pytest.mark.integration
def test_prod_run_all_lands_snowflake_equal_to_the_source_then_merges_the_delta(
        prod: dict[str, Any]) -> None:
    first = run_json("--all")  # dbt-snowflake builds the marts on the first run
    assert {r["status"] for r in first.values()} == {"success"}, first["customers"]["error"]
    assert marts_orders(prod) == len(source_versions(prod["url"], "orders"))
    for table in TABLES:
        assert snowflake_versions(prod, table) == source_versions(prod["url"], table), table
        assert_snowflake_equals_source(prod, table)
    s3 = prod["s3"]
    listing = boto3.client("s3", endpoint_url=s3.endpoint_url, region_name=s3.region,
                           aws_access_key_id=s3.access_key_id,
                           aws_secret_access_key=s3.secret_access_key).list_objects_v2(
        Bucket=prod["bucket"], Prefix="lake/processed/orders/")
    assert listing.get("KeyCount", 0) == 1

    changed = simulate_activity(prod["url"], seed=9, at_boundary=1)
    # the delta with pipelines at once: a Snowflake connection per thread, one S3 lake
    second = run_json("--all", "--no-dbt", "--threads", "3")

    for table in TABLES:
        assert second[table]["rows_extracted"] == getattr(changed, table), table
        assert_snowflake_equals_source(prod, table)
    dumped = str(first) + str(second)
    assert PASSWORD not in dumped
    # Snowflake's information schema says NUMBER and gives precision and scale apart: `plan`
    # said every numeric column differed from its declaration (bigint vs NUMBER).
    for pipeline in ("order_items", "payments"):
        planned = cli("plan", "--pipeline", pipeline, "--no-dbt")
        assert planned.exit_code == 0, planned.output
        assert "declared types differ" not in planned.output, planned.output


@pytest.mark.integration
def test_prod_secrets_never_reach_output_records_or_errors(prod: dict[str, Any],
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("SNOWFLAKE_PORT", "9")  # a dead warehouse: the error names it, not the secret
    result = cli("run", "--pipeline", "customers", "--no-dbt", "--json")
    history = cli("history", "--json")

    assert result.exit_code == 1
    assert "warehouse snowflake" in result.output
    for text in (result.output, history.output, (tmp_path / "state" / "runs.sqlite").read_bytes().decode(errors="replace")):
        assert PASSWORD not in text


@pytest.mark.integration
def test_doctor_names_each_part_and_the_exact_reason(prod: dict[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    healthy = cli("doctor")
    assert healthy.exit_code == 0, healthy.output
    assert {line.split()[0] for line in healthy.output.splitlines()} == {"ok"}

    monkeypatch.setenv("LAKE_URL", "s3://no-such-bucket-here/lake")
    monkeypatch.setenv("SNOWFLAKE_PORT", "9")
    broken = cli("doctor")

    assert broken.exit_code == 1
    lines = broken.output.splitlines()
    assert lines[0].startswith("ok   source shop")
    assert lines[1].startswith("FAIL lake s3://no-such-bucket-here/lake:")
    assert lines[2].startswith("FAIL warehouse snowflake:")
    assert PASSWORD not in broken.output


@pytest.mark.integration
def test_an_unknown_bucket_fails_in_one_line_and_loads_nothing(prod: dict[str, Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_URL", "s3://no-such-bucket-here/lake")

    result = cli("run", "--pipeline", "customers", "--no-dbt")

    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no-such-bucket-here" in errors[0], result.output
    assert "Traceback" not in result.output and PASSWORD not in result.output
