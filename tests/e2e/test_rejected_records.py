"""Records a source refuses (the files kind's malformed rows) go to the lake's quarantine zone,
one file per load, and count so the hops reconcile: extracted = processed + quarantined."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from framework.demo.shop import create_shop
from framework.sources.base import Rejected
from framework.sources.sql.adapter import SqlExtraction
from tests.e2e.helpers import run_json

REFUSED = [Rejected("customers.csv:3", "blank row"),
           Rejected("customers.csv:9", "2 fields, expected 5", "a,b")]


def test_refused_records_are_quarantined_and_counted(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    create_shop(f"sqlite:///{tmp_path / 'state' / 'shop.db'}", scale=0.01, seed=7)
    # SQL refuses nothing; this stands in for a kind that does (the extract stage is shared).
    monkeypatch.setattr(SqlExtraction, "rejected", lambda self: list(REFUSED))

    record = run_json("--pipeline", "customers", "--no-dbt")["customers"]

    assert record["status"] == "success", record["error"]
    assert record["rows_quarantined"] == 2
    assert record["rows_extracted"] == record["rows_processed"] + 2 == record["rows_loaded"] + 2
    [refused] = (tmp_path / "state" / "lake" / "quarantine" / "customers" / "_rejected").iterdir()
    assert refused.name == f"{record['load_id']}.parquet"
    assert pq.read_table(refused).to_pylist() == [
        {"where": "customers.csv:3", "reason": "blank row", "record": "", "digest": None},
        {"where": "customers.csv:9", "reason": "2 fields, expected 5", "record": "a,b",
         "digest": None}]
    assert any("2 source record(s) refused, kept in quarantine/customers/_rejected/" in w
               for w in record["warnings"])
