"""The DuckDB transform engine on a project whose path holds a quote (/home/o'neil/...)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from framework.compiled import run_context
from framework.project import Project
from framework.settings.targets import build_target
from framework.spec.model import PipelineSpec
from framework.stages.transform.duckdb_engine import DuckDBEngine


def test_a_state_dir_with_a_quote_transforms_and_hashes(tmp_path: Path) -> None:
    root = tmp_path / "o'neil"
    (root / "pipelines").mkdir(parents=True)
    project = Project(root=root, env={"FRAMEWORK_STATE_DIR": str(root / "state")})
    target = build_target("local", {"lake": {"url": str(root / "lake")},
                                    "warehouse": {"type": "duckdb", "path": "w.duckdb"}})
    ctx = run_context(project=project, target=target, spec=PipelineSpec.model_validate({
        "name": "people",
        "source": {"connection": "shop", "table": "people", "primary_key": ["id"]},
        "lake": {"path": "people"},
        "transform": {"pii": [{"column": "email", "action": "drop"}]}}))
    raw = root / "raw.parquet"
    pq.write_table(pa.table({"id": [1, 2], "email": ["a@x", "b@x"]}), raw)
    output = root / "lake" / "out.parquet"

    rows = DuckDBEngine().run(ctx, ctx.compiled.sql.duckdb, [str(raw)], str(output))

    assert rows == 2
    assert pq.read_table(output).to_pylist() == [{"id": 1}, {"id": 2}]
    # SQL with braces (a struct, a regex count, format's placeholders) goes to DuckDB as it is
    braces = "SELECT id, {'a': id} AS s, format('{}-x', id) AS f FROM batch WHERE email ~ '.{1,}'"
    assert DuckDBEngine().run(ctx, braces, [str(raw)], str(output)) == 2
    assert pq.read_table(output).column("f").to_pylist() == ["1-x", "2-x"]


def test_a_batch_of_wide_rows_transforms_within_the_memory_cap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each thread of DuckDB's Parquet writer holds a row group of 122,880 rows: 400k rows of
    1 KB of text failed at the 384 MB cap, and, pending, failed every later run. One thread
    writing smaller row groups fits (here 100k rows at 64 MB)."""
    project = Project(root=tmp_path, env={"FRAMEWORK_STATE_DIR": str(tmp_path / "state")})
    target = build_target("local", {"lake": {"url": str(tmp_path / "lake")},
                                    "warehouse": {"type": "duckdb", "path": "w.duckdb"}})
    ctx = run_context(project=project, target=target, spec=PipelineSpec.model_validate({
        "name": "notes", "source": {"connection": "main", "table": "notes", "primary_key": ["id"]},
        "lake": {"path": "notes"}}))
    ctx.state_dir.mkdir(parents=True)  # where the spill goes, as a run has it
    raw = tmp_path / "raw.parquet"
    rows = 100_000
    body = pa.array([f"{i:08d}" * 128 for i in range(rows)])  # 1 KB each, incompressible-ish
    pq.write_table(pa.table({"id": pa.array(range(rows), pa.int64()), "body": body}), raw,
                   row_group_size=20_000)
    monkeypatch.setenv("FRAMEWORK_DUCKDB_MEMORY", "64MB")

    written = DuckDBEngine().run(ctx, ctx.compiled.sql.duckdb, [str(raw)],
                                 str(tmp_path / "lake" / "out.parquet"))

    assert written == rows
    assert pq.read_metadata(tmp_path / "lake" / "out.parquet").num_rows == rows
