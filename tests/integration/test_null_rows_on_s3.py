"""The ledger of the rows with no cursor (framework/sources/sql/null_rows.py) kept in an S3
lake (moto's server): one ledger object at a time, and a run sends on only what changed."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pytest

from tests.e2e.test_incremental_exact import Events, create, events_spec
from tests.integration.conftest import S3Server

NULLS = 300


@pytest.mark.integration
def test_rows_with_no_cursor_sent_on_only_when_changed_with_an_s3_lake(
        project_dir: Path, tmp_path: Path, moto_s3: S3Server,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    moto_s3.create_bucket(bucket)
    for key, value in {"LAKE_URL": f"s3://{bucket}/lake", "AWS_ENDPOINT_URL": moto_s3.endpoint_url,
                       "AWS_ACCESS_KEY_ID": moto_s3.access_key_id, "AWS_REGION": moto_s3.region,
                       "AWS_SECRET_ACCESS_KEY": moto_s3.secret_access_key,
                       "DUCKDB_PATH": str(tmp_path / "warehouse.duckdb")}.items():
        monkeypatch.setenv(key, value)
    for spec in (project_dir / "pipelines").glob("*.yml"):
        spec.unlink()
    db = tmp_path / "events.db"
    (project_dir / "sources" / "events.yml").write_text(f"name: events\nurl: sqlite:///{db}\n")
    events = Events(db, project_dir, tmp_path / "warehouse.duckdb", tmp_path / "state")
    events.spec(events_spec(extra=", on_null: include"))
    create(events)
    events.write("INSERT INTO events VALUES (?, ?, ?)",
                 [(i, 1, None) for i in range(1, NULLS + 1)] + [(NULLS + 1, 1, "2017-01-14")])
    s3 = boto3.client("s3", endpoint_url=moto_s3.endpoint_url, region_name=moto_s3.region,
                      aws_access_key_id=moto_s3.access_key_id,
                      aws_secret_access_key=moto_s3.secret_access_key)

    def ledgers() -> list[str]:
        listing = s3.list_objects_v2(Bucket=bucket, Prefix="lake/raw/_framework_nulls/events/")
        return [item["Key"] for item in listing.get("Contents", [])]

    first = events.run()
    oldest = ledgers()
    events.write("UPDATE events SET v = 2 WHERE event_id = 7")
    changed = events.run()
    quiet = events.run()
    events.write("UPDATE events SET v = 3 WHERE event_id = 8")
    again = events.run()

    assert [r["rows_extracted"] for r in (first, changed, quiet, again)] == [NULLS + 1, 1, 0, 1]
    assert len(oldest) == 1 and len(ledgers()) == 2 and oldest[0] not in ledgers()  # removed
    assert dict(events.landed()) == events.source()
