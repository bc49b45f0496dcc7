"""Lineage watches a run and never fails it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from framework import lineage
from framework.compiled import run_context
from framework.project import Project
from framework.runs import RunRecord


def test_an_unwritable_transport_is_a_warning_not_a_failure(
        project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH",
                       str(tmp_path / "no" / "such" / "folder" / "events.jsonl"))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    monkeypatch.setattr(lineage, "_client", [])  # this configuration, not an earlier test's
    project = Project.discover(project_dir)
    ctx = run_context(project, project.target(None), project.pipeline("orders"))
    record = RunRecord("run1", "orders", "local", status="success")

    with caplog.at_level(logging.WARNING, logger="framework"):
        lineage.started(ctx, "run1")
        lineage.finished(ctx, record)

    warnings = [r.getMessage() for r in caplog.records if r.name == "framework"]
    assert [w.split(":")[:2] for w in warnings] == [["openlineage", " START event not sent"],
                                                   ["openlineage", " COMPLETE event not sent"]]


@pytest.mark.parametrize(("url", "namespace", "name"), [
    ("postgresql+psycopg://loader:s3cret@db.example/shop", "postgres://db.example:5432",
     "shop.public.orders"),
    ("mysql+pymysql://loader:s3cret@db.example:3307/shop", "mysql://db.example:3307",
     "shop.orders"),
])
def test_the_source_is_named_the_openlineage_way_without_credentials(
        project_dir: Path, monkeypatch: pytest.MonkeyPatch, url: str, namespace: str,
        name: str) -> None:
    monkeypatch.setenv("SHOP_DB_URL", url)
    project = Project.discover(project_dir)
    ctx = run_context(project, project.target(None), project.pipeline("orders"))

    source = lineage._source(ctx, rows=3)

    assert (source.namespace, source.name) == (namespace, name)
    assert source.inputFacets["inputStatistics"].rowCount == 3
