"""`kind: files` on S3 (moto): the Olist CSV pipelines read an S3 prefix into an S3 lake with
the lake's endpoint and keys, and land exactly what the SQL pipelines land; a changed file is
read again and merged, a deleted one is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from framework.demo.shop import create_shop
from tests.integration.conftest import S3Server
from tests.sources.olist_csv import assert_same_landing, csv_project, landing, run_all, write_csvs

S3_TARGET = {"lake": {"url": "${LAKE_URL}", "endpoint_url": "${AWS_ENDPOINT_URL:-}",
                      "region": "${AWS_REGION:-}", "access_key_id": "${AWS_ACCESS_KEY_ID:-}",
                      "secret_access_key": "${AWS_SECRET_ACCESS_KEY:-}"},
             "warehouse": {"type": "duckdb", "path": "${FRAMEWORK_STATE_DIR}/warehouse.duckdb"}}


def test_csv_pipelines_on_s3_land_what_the_sql_pipelines_land(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        moto_s3: S3Server) -> None:
    import s3fs

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    create_shop(url, scale=0.002, seed=5)
    run_all(project_dir, tmp_path / "sql_state", monkeypatch, SHOP_DB_URL=url)

    root = csv_project(tmp_path / "csv_project")
    config = yaml.safe_load((root / "framework.yml").read_text())
    config["targets"]["s3lake"] = S3_TARGET
    (root / "framework.yml").write_text(yaml.safe_dump(config))
    bucket = "files-s3-test"
    moto_s3.create_bucket(bucket)
    written = write_csvs(url, tmp_path / "olist", root)
    fs = s3fs.S3FileSystem(key=moto_s3.access_key_id, secret=moto_s3.secret_access_key,
                           client_kwargs={"endpoint_url": moto_s3.endpoint_url,
                                          "region_name": moto_s3.region},
                           use_listings_cache=False)
    for name in written:
        fs.put(str(tmp_path / "olist" / name), f"{bucket}/exports/olist/{name}")
    env = {"FRAMEWORK_TARGET": "s3lake", "LAKE_URL": f"s3://{bucket}/lake",
           "AWS_ENDPOINT_URL": moto_s3.endpoint_url, "AWS_REGION": moto_s3.region,
           "AWS_ACCESS_KEY_ID": moto_s3.access_key_id,
           "AWS_SECRET_ACCESS_KEY": moto_s3.secret_access_key,
           "OLIST_CSV_LOCATION": f"s3://{bucket}/exports/olist"}
    state = tmp_path / "csv_state"
    run_all(root, state, monkeypatch, **env)
    assert fs.ls(f"{bucket}/lake/raw/olist_orders")  # the lake is the bucket
    assert_same_landing(tmp_path / "sql_state" / "warehouse.duckdb", state / "warehouse.duckdb")

    # A changed file (one order's status, as a new export would have it) is read again whole
    # and merged: one row per key, the new value in.
    orders = fs.cat(f"{bucket}/exports/olist/olist_orders_dataset.csv").decode()
    lines = orders.splitlines(keepends=True)
    fields = lines[1].split(",")
    fields[2] = "canceled"
    lines[1] = ",".join(fields)
    fs.pipe(f"{bucket}/exports/olist/olist_orders_dataset.csv", "".join(lines).encode())
    fs.rm(f"{bucket}/exports/olist/olist_order_payments_dataset.csv")
    again = run_all(root, state, monkeypatch, **env)
    assert again["olist_orders"]["rows_extracted"] == written["olist_orders_dataset.csv"]
    assert again["olist_customers"]["rows_extracted"] == 0
    assert any("file olist_order_payments_dataset.csv was read before and is gone from "
               f"s3://{bucket}/exports/olist" in w for w in again["olist_payments"]["warnings"])
    _, rows = landing(state / "warehouse.duckdb", "orders")
    assert len(rows) == written["olist_orders_dataset.csv"]
    assert ("canceled" if fields[0] else None) in {r[2] for r in rows if r[0] == fields[0]}
