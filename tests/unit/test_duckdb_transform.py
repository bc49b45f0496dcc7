"""The DuckDB transform engine on a project whose path holds a quote (/home/o'neil/...)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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
