"""Lineage watches a run and never fails it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from framework import lineage
from framework.context import RunContext
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
    ctx = RunContext(project, project.target(None), project.pipeline("orders"))
    record = RunRecord("run1", "orders", "local", status="success")

    with caplog.at_level(logging.WARNING, logger="framework"):
        lineage.started(ctx, "run1")
        lineage.finished(ctx, record)

    warnings = [r.getMessage() for r in caplog.records if r.name == "framework"]
    assert [w.split(":")[:2] for w in warnings] == [["openlineage", " START event not sent"],
                                                   ["openlineage", " COMPLETE event not sent"]]
