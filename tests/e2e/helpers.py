"""Helpers for end-to-end tests: run the CLI, compare the warehouse with the source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from click.testing import CliRunner, Result

from framework.cli import main

KEYS = {
    "customers": ["customer_id"],
    "products": ["product_id"],
    "orders": ["order_id"],
    "order_items": ["order_id", "order_item_id"],
    "payments": ["order_id", "payment_sequential"],
}


def vouchers_spec(incremental: str = "") -> str:
    """A pipeline file for a `vouchers` table the tests create; `incremental` adds cursor
    options (`, on_null: include`)."""
    return ("name: vouchers\nsource:\n  connection: shop\n  table: vouchers\n"
            "  primary_key: [voucher_id]\n"
            f"  incremental: {{cursor: updated_at{incremental}}}\nlake:\n  path: vouchers\n")


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run_json(*args: str) -> dict[str, dict[str, Any]]:
    result = cli("run", "--json", *args)
    assert "[" in result.stdout, result.output
    start = result.stdout.index("[")
    records = json.loads(result.stdout[start:])
    return {r["pipeline"]: r for r in records}


def source_versions(url: str, table: str) -> dict[tuple[Any, ...], str]:
    """Key -> updated_at (as ISO text with microseconds) of every source row."""
    keys = KEYS[table]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT {', '.join(keys)}, updated_at FROM {table}")).all()
    engine.dispose()
    return {tuple(str(v) for v in row[:-1]): _iso(row[-1]) for row in rows}


def warehouse_versions(path: Path, table: str) -> dict[tuple[Any, ...], str]:
    keys = KEYS[table]
    con = duckdb.connect(str(path))
    try:
        rows = con.execute(f"SELECT {', '.join(keys)}, updated_at FROM landing.{table}").fetchall()
    finally:
        con.close()
    assert len(rows) == len({tuple(r[:-1]) for r in rows}), f"duplicate keys in landing.{table}"
    return {tuple(str(v) for v in row[:-1]): _iso(row[-1]) for row in rows}


def _iso(value: Any) -> str:
    text = value.isoformat(sep=" ") if hasattr(value, "isoformat") else str(value)
    return text if "." in text else text + ".000000"
