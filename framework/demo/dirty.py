"""Dirt for the demo shop (`framework demo --dirty`): what a real OLTP export looks like.

Applied to a freshly generated shop before it is written, deterministic for a seed:

- orphans in every relationship: orders whose customer row is gone, order items and payments
  whose order row is gone, order items whose product row is gone;
- customers that arrive a run late: held back in the side table `late_customers` (no
  pipeline reads it) until :func:`arrive_late` moves them into `customers`;
- product categories as Olist writes them (Portuguese), some NULL, some empty or blank, one
  the translation does not know (`pc_gamer`);
- zip codes that lost their leading zero (a spreadsheet read them as numbers);
- timestamps with minute precision (no seconds) on a share of the orders;
- a few blank rows: products and customers with a key and nothing else.

Duplicate keys within a batch are not made: the pipelines' quality checks quarantine a batch
whose key repeats (see the README, "Dirty data").
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

Row = dict[str, Any]
LATE_TABLE = "late_customers"
TRANSLATION = Path(__file__).resolve().parents[2] / "dbt_ecommerce" / "seeds" / \
    "product_category_name_translation.csv"


@dataclass(frozen=True)
class Dirt:
    """What was made dirty: counts of each kind, for tests and the demo's first line."""

    orders_without_customer: int
    items_without_order: int
    payments_without_order: int
    items_without_product: int
    late_customers: int
    blank_rows: int


def _portuguese() -> dict[str, str]:
    """English category slug -> Olist's Portuguese name (the seed read backwards)."""
    if not TRANSLATION.is_file():
        return {}
    with TRANSLATION.open(newline="", encoding="utf-8") as handle:
        return {r["product_category_name_english"]: r["product_category_name"]
                for r in csv.DictReader(handle)}


def _pick(rng: random.Random, rows: list[Row], share: float, least: int = 1) -> list[Row]:
    k = min(len(rows), max(least, round(share * len(rows))))
    return rng.sample(rows, k)


def _minute(value: datetime | None) -> datetime | None:
    return value.replace(second=0, microsecond=0) if value else value


def make_dirty(data: dict[str, list[Row]], seed: int) -> tuple[dict[str, list[Row]], list[Row], Dirt]:
    """The shop's rows with dirt, and the customers held back to arrive one run late."""
    rng = random.Random(seed * 7919 + 1)
    customers, products = list(data["customers"]), list(data["products"])
    orders, items, payments = list(data["orders"]), list(data["order_items"]), list(data["payments"])

    # Orphans: remove parent rows, keep their children.
    gone_orders = {o["order_id"] for o in _pick(rng, orders, 0.03)}
    orders = [o for o in orders if o["order_id"] not in gone_orders]
    sold = sorted({i["product_id"] for i in items})
    gone_products = set(rng.sample(sold, min(len(sold), max(1, round(0.02 * len(sold))))))
    products = [p for p in products if p["product_id"] not in gone_products]
    ordering = sorted({o["customer_id"] for o in orders})
    gone_customers = set(rng.sample(ordering, min(len(ordering), max(1, round(0.01 * len(ordering))))))
    left = [c for c in customers if c["customer_id"] not in gone_customers]
    late_ids = {c["customer_id"] for c in _pick(rng, [c for c in left if c["customer_id"] in
                                                      set(ordering)], 0.03)}
    late = [dict(c) for c in left if c["customer_id"] in late_ids]
    customers = [dict(c) for c in left if c["customer_id"] not in late_ids]

    # Categories as Olist writes them; NULL, empty and blank ones; one the seed does not list.
    names = _portuguese()
    products = [{**p, "product_category_name": names.get(p["product_category_name"],
                                                         p["product_category_name"])}
                if p["product_category_name"] else dict(p) for p in products]
    with_category = [p for p in products if p["product_category_name"]]
    for p, value in zip(_pick(rng, with_category, 0.02, 3), ("", "  ", "pc_gamer") * len(products),
                        strict=False):
        p["product_category_name"] = value

    # Zip codes read as numbers by a spreadsheet, customers held back included.
    for c in customers + late:
        zip_code = c["customer_zip_code_prefix"]
        if zip_code and zip_code.startswith("0"):
            c["customer_zip_code_prefix"] = zip_code.lstrip("0") or "0"

    # Minute precision on a tenth of the orders (every timestamp of the row).
    stamps = ("order_purchase_timestamp", "order_approved_at", "order_delivered_carrier_date",
              "order_delivered_customer_date", "order_estimated_delivery_date", "updated_at")
    minute = {o["order_id"] for o in _pick(rng, orders, 0.1)}
    orders = [{**o, **{k: _minute(o[k]) for k in stamps}} if o["order_id"] in minute else o
              for o in orders]

    # Blank rows: a key, a required identifier, a timestamp, nothing else.
    blank_products = _pick(rng, [p for p in products if p["product_id"] not in gone_products], 0.0, 3)
    for p in blank_products:
        for k in p:
            if k not in ("product_id", "updated_at"):
                p[k] = "" if k == "product_category_name" else None
    blank_customers = _pick(rng, customers, 0.0, 2)
    for c in blank_customers:
        c.update(customer_zip_code_prefix="", customer_city="", customer_state=None)

    customer_ids = {c["customer_id"] for c in customers}
    order_ids = {o["order_id"] for o in orders}
    product_ids = {p["product_id"] for p in products}
    dirt = Dirt(
        orders_without_customer=sum(o["customer_id"] not in customer_ids for o in orders),
        items_without_order=sum(i["order_id"] not in order_ids for i in items),
        payments_without_order=sum(p["order_id"] not in order_ids for p in payments),
        items_without_product=sum(i["product_id"] not in product_ids for i in items),
        late_customers=len(late), blank_rows=len(blank_products) + len(blank_customers))
    dirty = {"customers": customers, "products": products, "orders": orders,
             "order_items": items, "payments": payments}
    return dirty, late, dirt
