"""Soak: many runs SIGKILLed at random moments between source changes, then one clean run;
no row may be lost or duplicated (issue #13). Not in CI: it takes minutes.

    uv run python benchmarks/soak.py [--runs 100] [--seed 1] [--drop-state 0.1]
                                     [--sources sqlite,postgresql]

Four pipelines: `sq_merge` and `sq_append` on a SQLite source whose timestamps are written by
Python's `sqlite3` in mixed spellings (no fraction, `T`, `Z`, offsets), `pg_merge`
(`timestamp`) and `pg_append` (`timestamptz`) on a fresh PostgreSQL database. Before each run
the sources change (new rows, updates, rows at exactly the current maximum); each
`framework run --all --no-dbt` is killed with SIGKILL after a random delay (some finish); with
probability `--drop-state` the state folder is deleted first (a new worker: the lake and the
warehouse live outside it). Then one clean run, and per table: rows lost and rows duplicated
(merge: keys missing or at another version, keys twice; append: current versions missing,
versions twice). Exit 1 unless all are 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"

SPELLINGS = [
    lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f"),
    lambda t: t.isoformat(sep=" "),
    lambda t: t.isoformat(),
    lambda t: t.isoformat() + "Z",
    lambda t: t.isoformat(sep=" ") + "+00:00",
    lambda t: (t + dt.timedelta(hours=-3)).isoformat(sep=" ") + "-03:00",
]


def spec(name: str, connection: str, table: str, disposition: str) -> str:
    return (f"name: {name}\nsource:\n  connection: {connection}\n  table: {table}\n"
            "  primary_key: [event_id]\n  incremental: {cursor: updated_at}\n"
            f"lake:\n  path: {name}\nwarehouse:\n  write_disposition: {disposition}\n")


class Table:
    """One source table and what was written to it."""

    def __init__(self, pipeline: str, kind: str, url: str, table: str, append: bool) -> None:
        self.pipeline, self.kind, self.url, self.table, self.append = (
            pipeline, kind, url, table, append)
        self.next_id = 1
        self.clock = dt.datetime(2024, 1, 1, 12, 0, 0)

    def execute(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        if self.kind == "sqlite":
            con = sqlite3.connect(self.url)
            try:
                for sql, args in statements:
                    con.execute(sql, args)
                con.commit()
            finally:
                con.close()
            return
        import psycopg

        with psycopg.connect(self.url) as con:
            for sql, args in statements:
                con.execute(sql.replace("?", "%s"), args)

    def rows(self) -> dict[int, int]:
        if self.kind == "sqlite":
            con = sqlite3.connect(self.url)
            try:
                return dict(con.execute(f"SELECT event_id, v FROM {self.table}").fetchall())
            finally:
                con.close()
        import psycopg

        with psycopg.connect(self.url) as con:
            return dict(con.execute(f"SELECT event_id, v FROM {self.table}").fetchall())

    def create(self) -> None:
        cursor = {"sqlite": "DATETIME", "pg-ts": "timestamp", "pg-tz": "timestamptz"}[
            self.kind if self.kind == "sqlite" else ("pg-tz" if self.append else "pg-ts")]
        self.execute([((f"CREATE TABLE {self.table} (event_id INTEGER PRIMARY KEY, v INTEGER "
                       f"NOT NULL, updated_at {cursor} NOT NULL)"), ())])

    def value(self, when: dt.datetime, rng: random.Random) -> Any:
        if self.kind == "sqlite":
            return rng.choice(SPELLINGS)(when)
        if self.append:  # timestamptz: an aware value, sometimes in another zone
            zone = dt.timezone(dt.timedelta(hours=rng.choice([0, 2, -5])))
            return when.replace(tzinfo=dt.UTC).astimezone(zone)
        return when

    def change(self, rng: random.Random, version: int) -> int:
        """A random round of changes; returns the next version number."""
        statements: list[tuple[str, tuple[Any, ...]]] = []
        for _ in range(rng.randint(0, 6)):
            kind = rng.choice(["insert", "insert", "update", "update", "boundary"])
            if kind != "boundary" and rng.random() < 0.6:
                self.clock += dt.timedelta(seconds=rng.choice([0, 1]),
                                           microseconds=rng.choice([0, 0, rng.randint(1, 999999)]))
            when = self.clock
            version += 1
            if kind == "update" and self.next_id > 1:
                key = rng.randrange(1, self.next_id)
                statements.append(((f"UPDATE {self.table} SET v = ?, updated_at = ? "
                                   "WHERE event_id = ?"), (version, self.value(when, rng), key)))
            else:
                statements.append((f"INSERT INTO {self.table} VALUES (?, ?, ?)",
                                   (self.next_id, version, self.value(when, rng))))
                self.next_id += 1
        self.execute(statements)
        return version


def warehouse_rows(path: Path, table: str) -> list[tuple[int, int]]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return [tuple(r) for r in  # type: ignore[misc]
                con.execute(f"SELECT event_id, v FROM landing.{table}").fetchall()]
    except duckdb.CatalogException:
        return []
    finally:
        con.close()


def verdict(table: Table, warehouse: Path) -> tuple[int, int]:
    source = table.rows()
    landed = warehouse_rows(warehouse, table.pipeline)
    if table.append:
        versions = set(landed)
        lost = sum(1 for item in source.items() if item not in versions)
        return lost, len(landed) - len(versions)
    merged = dict(landed)
    lost = sum(1 for key, v in source.items() if merged.get(key) != v)
    return lost, len(landed) - len(merged)


def framework(env: dict[str, str], kill_after: float | None, log: Path) -> tuple[str, float]:
    started = time.perf_counter()
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "framework.cli", "run", "--all",
                                    "--no-dbt"], env=env, stdout=out, stderr=out)
        try:
            process.wait(timeout=kill_after)
            outcome = "ok" if process.returncode == 0 else f"exit {process.returncode}"
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            outcome = "killed"
    return outcome, time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drop-state", type=float, default=0.1)
    parser.add_argument("--sources", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    sys.path.insert(0, str(ROOT))
    from tests.conftest import copy_project

    work = BENCH / ".work" / "soak" / time.strftime("%Y%m%dT%H%M%S")
    project = copy_project(work / "project")
    for file in (project / "pipelines").glob("*.yml"):
        file.unlink()
    state, warehouse = work / "state", work / "warehouse.duckdb"
    tables: list[Table] = []
    pg_db = None
    admin = None
    if "sqlite" in args.sources:
        db = work / "source.sqlite"
        (project / "sources" / "soak_sqlite.yml").write_text(
            f"name: soak_sqlite\nurl: sqlite:///{db}\n")
        tables += [Table("sq_merge", "sqlite", str(db), "events_m", False),
                   Table("sq_append", "sqlite", str(db), "events_a", True)]
    if "postgresql" in args.sources:
        import psycopg

        pg_db = f"soak_{uuid.uuid4().hex[:8]}"
        admin = psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True)
        admin.execute(f"CREATE DATABASE {pg_db}")
        (project / "sources" / "soak_pg.yml").write_text(f"name: soak_pg\nurl: {PG}/{pg_db}\n")
        url = f"host=127.0.0.1 user=postgres dbname={pg_db}"
        tables += [Table("pg_merge", "postgresql", url, "events_m", False),
                   Table("pg_append", "postgresql", url, "events_a", True)]
    connection = {"sqlite": "soak_sqlite", "postgresql": "soak_pg"}
    for table in tables:
        table.create()
        (project / "pipelines" / f"{table.pipeline}.yml").write_text(
            spec(table.pipeline, connection[table.kind], table.table,
                 "append" if table.append else "merge"))
    env = {k: v for k, v in os.environ.items() if k not in ("FRAMEWORK_KILL_AT",)}
    env.update(FRAMEWORK_PROJECT_DIR=str(project), FRAMEWORK_STATE_DIR=str(state),
               LAKE_URL=str(work / "lake"), DUCKDB_PATH=str(warehouse),
               GX_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", TQDM_DISABLE="1")
    log = work / "runs.log"
    started = time.perf_counter()
    version = 0
    try:
        for table in tables:
            version = table.change(rng, version)
        outcome, clean = framework(env, None, log)  # how long a run takes here
        print(f"first run: {outcome} in {clean:.1f} s", flush=True)
        outcomes: dict[str, int] = {}
        dropped = 0
        for run in range(args.runs):
            for table in tables:
                version = table.change(rng, version)
            if rng.random() < args.drop_state and state.exists():
                shutil.rmtree(state)
                dropped += 1
            outcome, _ = framework(env, rng.uniform(0.3, clean * 1.3), log)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if (run + 1) % 10 == 0:
                print(f"  {run + 1} runs: {outcomes}, state dropped {dropped}x "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
        outcome, _ = framework(env, None, log)
        print(f"clean run: {outcome}")
        print(f"\n{'table':<10} {'source rows':>11} {'lost':>5} {'duplicated':>10}")
        failed = outcome != "ok"
        for table in tables:
            lost, duplicated = verdict(table, warehouse)
            failed |= bool(lost or duplicated)
            print(f"{table.pipeline:<10} {len(table.rows()):>11} {lost:>5} {duplicated:>10}")
        print(f"\n{args.runs} runs ({outcomes}), state folder dropped {dropped}x, seed "
              f"{args.seed}: {time.perf_counter() - started:.0f} s; work folder {work}")
        return 1 if failed else 0
    finally:
        if admin is not None:
            admin.execute(f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")
            admin.close()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
