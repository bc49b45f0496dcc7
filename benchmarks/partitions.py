"""A large table's first read with 1, 2 and 4 partitions (`source.partitions`), next to DuckDB.

    uv run python benchmarks/partitions.py [--rows 5000000] [--rows 50000000] [--partitions 1,2,4]

The source is run.py's `order_items` (generate_series inside the local PostgreSQL, one database
per size, kept between invocations). Each case is the framework's extract hop
(benchmarks/drivers.py framework-extract: the order_items pipeline, a fresh state folder) in a
process of its own, with `partitions: {column: updated_at, count: N}` added to its source (N = 1:
no partitions), measured whole: wall seconds, rows/s, peak RSS (wait4), CPU seconds. DuckDB's
postgres_scanner copies the same table to Parquet in the same invocation. Each case checks that
the lake holds exactly the table's row count. Prints one table; `--write` adds it to
benchmarks/RESULTS-partitions.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as harness  # benchmarks/run.py, beside this file

WORK = harness.WORK / "partitions"
RESULTS = harness.BENCH / "RESULTS-partitions.md"


def with_partitions(project: Path, count: int) -> None:
    spec = project / "pipelines" / "order_items.yml"
    text = spec.read_text()
    if count > 1:
        text = text.replace("  primary_key: [order_id, order_item_id]\n",
                            "  primary_key: [order_id, order_item_id]\n"
                            f"  partitions: {{column: updated_at, count: {count}}}\n")
        assert "partitions:" in text, "order_items.yml changed: update benchmarks/partitions.py"
    spec.write_text(text)


def extract_case(ctx: harness.Context, count: int) -> harness.Measure:
    m = harness.Measure(f"framework extract, {count} partition{'s' * (count > 1)}", ctx.size)
    project = harness.make_project(ctx.run_dir / "project")
    with_partitions(project, count)
    env = harness.framework_env(ctx, project, ctx.run_dir / "state")
    cmd = [sys.executable, str(harness.BENCH / "drivers.py"), "framework-extract", str(project)]
    code, text = harness.run_process(cmd, env, ctx.run_dir / "log", ctx.timeout, m)
    m.rows, m.error = (harness.json_rows(text), None) if code == 0 else (None, text)
    if m.rows is not None and m.rows != ctx.size:
        m.error = f"the lake holds {m.rows:,} rows, the table {ctx.size:,}"
    return m


def scanner_case(ctx: harness.Context) -> harness.Measure:
    m = harness.Measure("DuckDB postgres_scanner -> Parquet", ctx.size)
    harness.path_duckdb(ctx, m)
    return m


def row(m: harness.Measure, base: float | None) -> str:
    if m.error or m.seconds is None:
        return f"| {m.path} | {m.size:,} | failed: {(m.error or '')[:90]} | | | | | |"
    rate = m.rows / m.seconds if m.rows else 0
    ratio = f"{m.seconds / base:.2f}x" if base else "-"
    return (f"| {m.path} | {m.size:,} | {m.seconds:.1f} | {rate:,.0f} | "
            f"{(m.rss_kb or 0) / 1024:,.0f} | {m.cpu or 0:.1f} | {ratio} | {m.load or 0:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append")
    parser.add_argument("--partitions", default="1,2,4")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    sizes = args.rows or [5_000_000, 50_000_000]
    counts = [int(c) for c in args.partitions.split(",")]
    lines = ["| case | rows | wall s | rows/s | peak RSS MB | CPU s | vs scanner | load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    rss: dict[tuple[int, int], int] = {}
    for size in sizes:
        db = harness.ensure_source(size)
        ctx = harness.Context(size, db, WORK, args.timeout, harness.base_env())
        cases = []
        for name, measure in [("scanner", scanner_case),
                              *[(f"p{c}", lambda ctx, c=c: extract_case(ctx, c)) for c in counts]]:
            ctx.run_dir = WORK / str(size) / name
            shutil.rmtree(ctx.run_dir, ignore_errors=True)
            ctx.run_dir.mkdir(parents=True)
            load = os.getloadavg()[0]
            m = measure(ctx)
            m.load = load
            cases.append(m)
            print(f"{m.path} ({size:,}): {m.seconds or 0:.1f} s, "
                  f"{(m.rss_kb or 0) / 1024:,.0f} MB{'; ' + m.error if m.error else ''}",
                  file=sys.stderr, flush=True)
            shutil.rmtree(ctx.run_dir, ignore_errors=True)  # tens of GB of Parquet at 50M
            if name != "scanner" and m.rss_kb:
                rss[(size, int(name[1:]))] = m.rss_kb
        base = cases[0].seconds if not cases[0].error else None
        lines += [row(m, base) for m in cases]
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        for count in counts:
            if (small, count) in rss and (large, count) in rss:
                grow = rss[(large, count)] / rss[(small, count)]
                lines.append(f"\nPeak RSS, {count} partition(s), {large:,} / {small:,} rows: "
                             f"{grow:.2f} (target <= 1.5)")
    text = "\n".join(lines)
    print(text)
    if args.write:
        stamp = time.strftime("%Y-%m-%d %H:%M %Z")
        RESULTS.write_text(f"# Partitioned first read (benchmarks/partitions.py)\n\n"
                           f"{stamp}; {harness.environment()}\n\n{text}\n")


if __name__ == "__main__":
    main()
