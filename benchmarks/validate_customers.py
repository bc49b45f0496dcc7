"""The validate stage alone on a customers batch: the shipped pipeline's expectations.

    uv run python benchmarks/validate_customers.py [--rows 900000] [--repeat 1]
        [--framework DIR]

Writes a processed customers batch of `--rows` rows (benchmarks/shop_data.py's customers
through pipelines/sql/customers.sql, by DuckDB; kept in benchmarks/results/ between
invocations), then runs `framework.stages.validate.validate` on it with the expectations
pipelines/customers.yml compiles to (its `columns:` and quality/customers.yml), each time in a
process of its own, as a run's would be: the Great Expectations import counts. Prints wall
seconds of the process and of the stage, peak RSS, CPU seconds (wait4), whether GX was
imported, the failures, and the load average.

`--framework DIR` runs another version of the package (DIR holds `framework/`), e.g. one
unpacked by `git archive <commit> framework | tar -x -C DIR`, for a before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parents[1]
RESULTS = WORK / "benchmarks" / "results"


def batch(rows: int) -> Path:
    import duckdb

    sys.path.insert(0, str(WORK / "benchmarks"))
    from shop_data import CUSTOMERS

    path = RESULTS / f"validate-customers-{rows}.parquet"
    if not path.exists():
        RESULTS.mkdir(parents=True, exist_ok=True)
        source = CUSTOMERS.format(first=1, last=rows)
        transform = (WORK / "pipelines" / "sql" / "customers.sql").read_text()
        with duckdb.connect() as con:
            con.execute(f"CREATE VIEW batch AS {source}")
            con.execute(f"COPY ({transform}) TO '{path}.tmp' (FORMAT parquet)")
        os.replace(f"{path}.tmp", path)
    return path


def child(path: str) -> None:
    """One validate of the batch, in this process; one JSON line on stdout."""
    import tempfile

    from framework.compiled import run_context
    from framework.project import Project
    from framework.settings.targets import build_target
    from framework.stages.validate import validate

    project = Project(root=WORK)
    spec = project.load_pipelines(["customers"])["customers"]
    with tempfile.TemporaryDirectory() as tmp:
        target = build_target("local", {"lake": {"url": tmp},
                                        "warehouse": {"type": "duckdb", "path": "w.duckdb"}})
        ctx = run_context(project=project, target=target, spec=spec)
        started = time.perf_counter()
        outcome = validate(ctx, path)
        seconds = time.perf_counter() - started
    print(json.dumps({"stage_s": round(seconds, 2), "checked": outcome.checked,
                      "gx_imported": "great_expectations" in sys.modules,
                      "errors": outcome.errors, "warnings": outcome.warnings}))


def measure(path: Path, framework: str | None) -> dict[str, object]:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [framework, str(WORK)]))}
    load = os.getloadavg()[0]
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, "--child", str(path)], env=env,
                               stdout=subprocess.PIPE, cwd=str(WORK))
    out = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"validate failed (exit {os.waitstatus_to_exitcode(status)})")
    return {**json.loads(out.decode().strip().splitlines()[-1]), "process_s": round(wall, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "load": round(load, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=900_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--framework", help="a folder holding another version's framework/")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    path = batch(args.rows)
    for _ in range(args.repeat):
        print(json.dumps({"rows": args.rows, **measure(path, args.framework)}), flush=True)


if __name__ == "__main__":
    main()
