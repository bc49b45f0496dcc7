"""How long `framework report` takes on the `--scale 1` demo shop (~100k orders).

    uv run python benchmarks/report_render.py [--scale 1] [--repeat 5] [--state-dir DIR]

Builds the demo once in its own state folder (default `benchmarks/results/report-state-<scale>`;
kept, so later runs skip straight to the measurement): the shop, `framework run --all` with dbt.
That set-up is not measured. Then it measures

- `framework report` as a user runs it: a fresh process each time (interpreter start, imports,
  warehouse connection, queries, HTML), wall time;
- inside one process, the two parts of a render: reading the marts and building the page.

Prints one JSON object (also written to `benchmarks/results/report_render.json`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--state-dir", type=Path, default=None)
    args = parser.parse_args()
    state = (args.state_dir or RESULTS / f"report-state-{args.scale:g}").resolve()
    env = {**os.environ, "FRAMEWORK_PROJECT_DIR": str(ROOT), "FRAMEWORK_STATE_DIR": str(state),
           "FRAMEWORK_TARGET": "local"}
    for name in ("SHOP_DB_URL", "LAKE_URL", "DUCKDB_PATH"):
        env.pop(name, None)
    setup = prepare(state, env, args.scale, args.seed)

    cli = [time_cli(env, state) for _ in range(args.repeat)]
    os.environ.update(env)
    read, page, size = zip(*(time_in_process() for _ in range(args.repeat)))
    result = {
        "scale": args.scale,
        "orders": setup["orders"],
        "setup_seconds": setup["seconds"],
        "cli_seconds_median": round(statistics.median(cli), 3),
        "cli_seconds_min": round(min(cli), 3),
        "read_marts_seconds_median": round(statistics.median(read), 4),
        "build_page_seconds_median": round(statistics.median(page), 4),
        "html_bytes": size[0],
        "repeat": args.repeat,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report_render.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


def prepare(state: Path, env: dict[str, str], scale: float, seed: int) -> dict[str, float | None]:
    """The demo shop and its marts, once per state folder (setup seconds None when reused)."""
    import duckdb

    warehouse = state / "warehouse.duckdb"
    started, reused = time.perf_counter(), (state / "report-ready").is_file()
    if not reused:
        from framework.demo.shop import create_shop

        create_shop(f"sqlite:///{state / 'shop.db'}", scale=scale, seed=seed)
        subprocess.run([sys.executable, "-m", "framework.cli", "run", "--all"], env=env,
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        (state / "report-ready").write_text("")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM marts.fact_orders").fetchone()
    finally:
        con.close()
    seconds = None if reused else round(time.perf_counter() - started, 1)
    return {"orders": row[0] if row else 0, "seconds": seconds}


def time_cli(env: dict[str, str], state: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "framework.cli", "report", "--output",
                    str(state / "report")], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_in_process() -> tuple[float, float, int]:
    import datetime as dt

    from framework.project import Project
    from framework.report.data import load_report_data, marts_reader
    from framework.report.page import PageInfo, render_page

    target = Project.discover().target(None)
    started = time.perf_counter()
    with marts_reader(target) as reader:
        data = load_report_data(reader)
    read = time.perf_counter() - started
    started = time.perf_counter()
    html = render_page(data, PageInfo(target.name, "bench", dt.datetime.now(dt.UTC)))
    return read, time.perf_counter() - started, len(html.encode())


if __name__ == "__main__":
    main()
