"""Demo shop: a deterministic, Olist-shaped OLTP database the framework can ingest.

Table and column names are the public Olist e-commerce data set's (its ``lenght`` spelling too), so
pipelines written against the demo also fit the real data. Every row carries ``updated_at``;
:func:`simulate_activity` moves it forward on a logical clock (never the wall clock), so incremental
loads get new rows, changed rows and ties on the cursor boundary, and reruns are reproducible.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

TABLES: tuple[str, ...] = ("customers", "products", "orders", "order_items", "payments")
Row = dict[str, Any]


class ShopError(Exception):
    """The shop could not be created or changed; the message is one line, fit for a CLI."""


@dataclass(frozen=True)
class ShopStats:
    """Rows written per table: inserted by create_shop, inserted or updated by simulate_activity."""

    customers: int
    products: int
    orders: int
    order_items: int
    payments: int
    dirt: Any = None  # framework.demo.dirty.Dirt of a dirty shop


# MySQL/MariaDB DATETIME drops microseconds unless fsp=6; cursors compare at microsecond precision.
_TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_ID = sa.String(32)
_MONEY = sa.Numeric(12, 2)
_CHUNK = 5000
_DAY = 86_400
_ONE_DAY = timedelta(days=1)
_EST = "order_estimated_delivery_date"
_START, _CUTOFF = datetime(2016, 9, 1), datetime(2018, 9, 1)  # purchases span 2016-09 .. 2018-08
# Olist's orders per month, 2016-09 .. 2018-08: slow start, Black Friday 2017, plateau in 2018.
_MONTH_WEIGHTS = [4, 324, 1, 1, 800, 1780, 2682, 2404, 3700, 3245, 4026, 4331,
                  4285, 4631, 7544, 5673, 7269, 6728, 7211, 6939, 6873, 6167, 6292, 6512]
_MONTHS = [datetime(2016 + (8 + i) // 12, (8 + i) % 12 + 1, 1) for i in range(25)]
_FLOW = ("created", "approved", "invoiced", "processing", "shipped", "delivered")
_NEXT = dict(pairwise(_FLOW))  # the non-final statuses and where each goes next
# UF: (share of customers %, CEP range, cities by size); each city gets a slice of the CEP range.
_STATES: dict[str, tuple[float, int, int, str]] = {
    "SP": (42.0, 1000, 19999, "sao paulo|campinas|guarulhos|sao bernardo do campo|santo andre|"
                              + "osasco|santos|ribeirao preto|sorocaba|sao jose dos campos"),
    "RJ": (12.9, 20000, 28999, "rio de janeiro|niteroi|nova iguacu|sao goncalo|duque de caxias"),
    "MG": (11.7, 30000, 39999, "belo horizonte|contagem|juiz de fora|uberlandia|betim"),
    "RS": (5.5, 90000, 99999, "porto alegre|caxias do sul|canoas|pelotas|santa maria"),
    "PR": (5.1, 80000, 87999, "curitiba|londrina|maringa|ponta grossa|cascavel"),
    "SC": (3.7, 88000, 89999, "florianopolis|joinville|blumenau|sao jose|itajai|chapeco"),
    "BA": (3.4, 40000, 48999, "salvador|feira de santana|vitoria da conquista|camacari|itabuna"),
    "DF": (2.2, 70000, 72799, "brasilia"),
    "ES": (2.0, 29000, 29999, "vila velha|vitoria|serra|cariacica|linhares"),
    "GO": (2.0, 72800, 76799, "goiania|aparecida de goiania|anapolis|rio verde"),
    "PE": (1.7, 50000, 56999, "recife|jaboatao dos guararapes|olinda|caruaru|petrolina"),
    "CE": (1.3, 60000, 63999, "fortaleza|caucaia|juazeiro do norte|sobral"),
    "PA": (1.0, 66000, 68899, "belem|ananindeua|santarem|maraba"),
    "MT": (0.9, 78000, 78899, "cuiaba|varzea grande|rondonopolis|sinop"),
    "MA": (0.75, 65000, 65999, "sao luis|imperatriz|caxias"),
    "MS": (0.7, 79000, 79999, "campo grande|dourados|tres lagoas"),
    "PB": (0.54, 58000, 58999, "joao pessoa|campina grande|santa rita"),
    "PI": (0.5, 64000, 64999, "teresina|parnaiba|picos"),
    "RN": (0.49, 59000, 59999, "natal|mossoro|parnamirim"),
    "AL": (0.42, 57000, 57999, "maceio|arapiraca"),
    "SE": (0.35, 49000, 49999, "aracaju|nossa senhora do socorro|lagarto"),
    "TO": (0.28, 77000, 77999, "palmas|araguaina|gurupi"),
    "RO": (0.25, 76800, 76999, "porto velho|ji-parana|ariquemes"),
    "AM": (0.15, 69000, 69299, "manaus|parintins"),
    "AC": (0.08, 69900, 69999, "rio branco|cruzeiro do sul"),
    "AP": (0.07, 68900, 68999, "macapa|santana"),
    "RR": (0.05, 69300, 69399, "boa vista"),
}
_UFS = list(_STATES)
_UF_CUM = list(accumulate(v[0] for v in _STATES.values()))
_CITIES = {uf: v[3].split("|") for uf, v in _STATES.items()}
_CITY_CUM = {uf: list(accumulate(1 / (i + 1) for i in range(len(c)))) for uf, c in _CITIES.items()}
# Olist's product categories (English slugs) weighted by its product counts; ~1.85% have none.
_CATEGORY_WEIGHTS = {
    "bed_bath_table": 3029, "sports_leisure": 2867, "furniture_decor": 2657, "health_beauty": 2444,
    "housewares": 2335, "auto": 1900, "computers_accessories": 1639, "toys": 1411,
    "watches_gifts": 1329, "telephony": 1134, "baby": 919, "perfumery": 868, "stationery": 849,
    "fashion_bags_accessories": 849, "cool_stuff": 789, "garden_tools": 753, "pet_shop": 719,
    "electronics": 517, "construction_tools_construction": 400, "home_appliances": 370,
    "luggage_accessories": 349, "consoles_games": 317, "office_furniture": 309,
    "musical_instruments": 289, "books_general_interest": 216,
}
_CATEGORIES = list(_CATEGORY_WEIGHTS)
_CAT_CUM = list(accumulate(_CATEGORY_WEIGHTS.values()))
_ITEMS_CUM = list(accumulate([0.90, 0.075, 0.017, 0.005, 0.003]))  # 1-5 items, ~1.14 per order
_MEASURES = ("product_name_lenght", "product_description_lenght", "product_photos_qty",
             "product_weight_g", "product_length_cm", "product_height_cm", "product_width_cm")
_PAY_TYPES = ["credit_card", "boleto", "voucher", "debit_card"]
_PAY_CUM = list(accumulate([0.77, 0.20, 0.015, 0.015]))  # with split vouchers: 74% 19% 6% 1.5%
_INST_CUM = list(accumulate([49, 12, 10, 7, 5, 4, 1.6, 4, 0.6, 5.3]))  # card installments 1..10


def metadata() -> sa.MetaData:
    """The five source tables; updated_at is indexed so incremental `WHERE updated_at > :cursor`
    reads stay cheap."""
    md = sa.MetaData()

    def table(name: str, *cols: sa.Column[Any]) -> None:
        sa.Table(name, md, *cols, sa.Column("updated_at", _TS, nullable=False),
                 sa.Index(f"ix_{name}_updated_at", "updated_at"))

    def c(name: str, type_: Any, *, pk: bool = False, req: bool = False) -> sa.Column[Any]:
        return sa.Column(name, type_, primary_key=pk, nullable=not (pk or req), autoincrement=False)

    table("customers", c("customer_id", _ID, pk=True), c("customer_unique_id", _ID, req=True),
          c("customer_zip_code_prefix", sa.String(5)), c("customer_city", sa.String(64)),
          c("customer_state", sa.String(2)))
    table("products", c("product_id", _ID, pk=True), c("product_category_name", sa.String(64)),
          *(c(n, sa.Integer) for n in _MEASURES))
    table("orders", c("order_id", _ID, pk=True), c("customer_id", _ID, req=True),
          c("order_status", sa.String(16), req=True), c("order_purchase_timestamp", _TS, req=True),
          *(c(n, _TS) for n in ("order_approved_at", "order_delivered_carrier_date",
                                "order_delivered_customer_date", "order_estimated_delivery_date")))
    table("order_items", c("order_id", _ID, pk=True), c("order_item_id", sa.Integer, pk=True),
          c("product_id", _ID, req=True), c("seller_id", _ID, req=True),
          c("shipping_limit_date", _TS), c("price", _MONEY, req=True),
          c("freight_value", _MONEY, req=True))
    table("payments", c("order_id", _ID, pk=True), c("payment_sequential", sa.Integer, pk=True),
          c("payment_type", sa.String(16), req=True),
          c("payment_installments", sa.Integer, req=True), c("payment_value", _MONEY, req=True))
    return md


@contextmanager
def _engine(url: str) -> Iterator[sa.Engine]:
    """An engine whose URL, driver and database errors surface as one-line ShopErrors; disposed on
    exit so that (test) databases can be dropped right after."""
    try:
        u = sa.make_url(url)
        path = u.database if u.get_backend_name() == "sqlite" else None
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(u)
    except (sa.exc.ArgumentError, ImportError, OSError) as e:
        raise ShopError(f"cannot use database URL {url!r}: {_line(e)}") from e
    try:
        yield engine
    except sa.exc.SQLAlchemyError as e:
        raise ShopError(f"{u.render_as_string(hide_password=True)}: {_line(e)}") from e
    finally:
        engine.dispose()


def _line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e).strip()
    return (text.splitlines() or [type(e).__name__])[0]


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _after(t: datetime, rng: random.Random, lo_s: float, hi_s: float) -> datetime:
    """t plus a random delay in [lo_s, hi_s) seconds, never on a round second: microseconds
    must survive every backend, so every value has some."""
    d = t + timedelta(microseconds=rng.randrange(int(lo_s * 1e6), int(hi_s * 1e6)))
    return d if d.microsecond else d + timedelta(microseconds=1)


def _clamp(x: float, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(x)))


def _zipf_cum(n: int, a: float) -> list[float]:
    """Cumulative weights for skewed popularity: a few best sellers, a long tail."""
    return list(accumulate((i + 1) ** -a for i in range(n)))


def _address(rng: random.Random) -> Row:
    """A consistent state/city/zip, with the stray spaces and case mix of hand-typed data."""
    uf = rng.choices(_UFS, cum_weights=_UF_CUM)[0]
    _, lo, hi, _ = _STATES[uf]
    cities = _CITIES[uf]
    k = rng.choices(range(len(cities)), cum_weights=_CITY_CUM[uf])[0]
    span = (hi - lo + 1) // len(cities)
    city, r = cities[k], rng.random()
    city = (f" {city.title()}" if r < 0.03 else f"{city.upper()} " if r < 0.05
            else city.title() if r < 0.07 else f"  {city} " if r < 0.08 else city)
    return {"customer_zip_code_prefix": f"{lo + k * span + rng.randrange(span):05d}",
            "customer_city": city, "customer_state": uf}


def _product(rng: random.Random) -> Row:
    """Olist-like product; like Olist, one without a category lacks the text metrics too."""
    cat = None if rng.random() < 0.0185 else rng.choices(_CATEGORIES, cum_weights=_CAT_CUM)[0]
    dims = (None,) * 4 if rng.random() < 0.005 else (
        _clamp(rng.lognormvariate(6.5, 1.1), 50, 40425),
        _clamp(rng.lognormvariate(3.3, 0.45), 7, 105),
        _clamp(rng.lognormvariate(2.6, 0.7), 2, 105), _clamp(rng.lognormvariate(3.0, 0.4), 6, 118))
    text = (None,) * 3 if cat is None else (
        _clamp(rng.gauss(48, 10), 5, 76), _clamp(rng.lognormvariate(6.4, 0.75), 4, 3992),
        rng.choices(range(1, 11), [50, 19, 11, 7, 5, 4, 2, 1, 0.5, 0.5])[0])
    return {"product_id": _hex(rng), "product_category_name": cat,
            **dict(zip(_MEASURES, text + dims))}


def _order(rng: random.Random, oid: str, cid: str, p: datetime) -> Row:
    """An order whose lifecycle is cut at the data set's end: older orders are mostly delivered,
    recent ones still in flight, and ~8% of deliveries arrive after the estimate."""
    approved = _after(p, rng, 60, 2 * _DAY if rng.random() < 0.1 else 6 * 3600)
    carrier = _after(approved, rng, 0.3 * _DAY, 5 * _DAY)
    estimated = _after(p, rng, 14 * _DAY, 29 * _DAY)
    if rng.random() < 0.085:
        delivered = _after(estimated, rng, 3600, 20 * _DAY)
    else:
        on_time = min(15 * _DAY, (estimated - carrier).total_seconds() - 60)
        delivered = _after(carrier, rng, 0.5 * _DAY, on_time)
    gap = carrier - approved  # invoiced and processing have no column, only updated_at
    times = [p, approved, _after(approved + gap / 5, rng, 1, 60),
             _after(approved + gap / 2, rng, 1, 60), carrier, delivered]
    last = next(i for i in range(5, -1, -1) if times[i] <= _CUTOFF)
    status, updated, r = _FLOW[last], times[last], rng.random()
    if r < 0.015:  # stuck in flight, like Olist's long-"shipped" orders
        last = min(last, rng.randint(2, 4))
        status, updated = _FLOW[last], times[last]
    elif r > 0.988 and last >= 1:  # canceled, or unavailable (approved but never shipped)
        last = min(last, rng.randint(0, 4) if r > 0.994 else rng.randint(1, 3))
        ended = _after(times[last], rng, 3600, 5 * _DAY)
        if ended <= _CUTOFF:
            status, updated = ("canceled" if r > 0.994 else "unavailable"), ended
    return {"order_id": oid, "customer_id": cid, "order_status": status,
            "order_purchase_timestamp": p, "order_approved_at": approved if last >= 1 else None,
            "order_delivered_carrier_date": carrier if last >= 4 else None,
            "order_delivered_customer_date": delivered if status == "delivered" else None,
            "order_estimated_delivery_date": estimated, "updated_at": updated}


def _payments(rng: random.Random, oid: str, cents: int, stamp: Callable[[], datetime]) -> list[Row]:
    """Payments summing exactly to the order total; ~2% of orders also spend 1-3 vouchers."""
    kind = rng.choices(_PAY_TYPES, cum_weights=_PAY_CUM)[0]
    parts: list[tuple[str, int]] = []
    if rng.random() < 0.022 and cents >= 8:
        for _ in range(rng.randint(1, 3)):
            v = rng.randint(1, cents // 4)
            parts.append(("voucher", v))
            cents -= v
    parts.append((kind, cents))
    return [{"order_id": oid, "payment_sequential": i, "payment_type": k,
             "payment_installments": rng.choices(range(1, 11), cum_weights=_INST_CUM)[0]
             if k == "credit_card" else 1,
             "payment_value": _money(v), "updated_at": stamp()}
            for i, (k, v) in enumerate(parts, 1)]


def _item(oid: str, n: int, sale: tuple[str, str, int, int], limit: datetime, freight: int,
          updated: datetime) -> Row:
    """An order item from a (product, seller, price cents, weight) offer."""
    return {"order_id": oid, "order_item_id": n, "product_id": sale[0], "seller_id": sale[1],
            "shipping_limit_date": limit, "price": _money(sale[2]),
            "freight_value": _money(freight), "updated_at": updated}


def _generate(scale: float, seed: int) -> dict[str, list[Row]]:
    """All rows of a fresh shop, in plain Python: one random.Random, no wall clock."""
    rng = random.Random(seed)
    n_cust = max(1, round(96_096 * scale))
    n_orders, n_products = max(n_cust, round(99_441 * scale)), max(1, round(32_951 * scale))
    customers: list[Row] = []
    for i in range(n_cust):  # ~0.6% are a known person again under a new customer_id, as in Olist
        known = i and rng.random() < 0.006
        uid = customers[rng.randrange(i)]["customer_unique_id"] if known else _hex(rng)
        customers.append({"customer_id": _hex(rng), "customer_unique_id": uid, **_address(rng)})
    sellers = [_hex(rng) for _ in range(max(1, round(3_095 * scale)))]
    seller_cum = _zipf_cum(len(sellers), 0.7)
    products = [_product(rng) for _ in range(n_products)]
    offers = [(p["product_id"], rng.choices(sellers, cum_weights=seller_cum)[0],
               _clamp(rng.lognormvariate(4.3, 0.95) * 100, 85, 673_500),
               p["product_weight_g"] or 1000) for p in products]
    offer_cum = _zipf_cum(n_products, 0.6)

    # Everyone orders once; ~2.6% of the customers place the remaining orders (repeat buyers).
    extra = n_orders - n_cust
    repeaters = rng.sample(range(n_cust), min(n_cust, extra, max(1, round(0.026 * n_cust))))
    owners = list(range(n_cust)) + repeaters
    owners += [rng.choice(repeaters) for _ in range(extra - len(repeaters))]
    rng.shuffle(owners)
    month_cum, stamps = list(accumulate(_MONTH_WEIGHTS)), []
    for _ in range(n_orders):
        m = rng.choices(range(24), cum_weights=month_cum)[0]
        span_us = int((_MONTHS[m + 1] - _MONTHS[m]).total_seconds() * 1e6)
        stamps.append(_MONTHS[m] + timedelta(microseconds=rng.randrange(1, span_us)))
    stamps.sort()

    orders, items, payments = [], [], []
    first_sale: dict[str, datetime] = {}
    for owner, p in zip(owners, stamps):
        cust = customers[owner]
        cust.setdefault("updated_at", _after(p, rng, -3600, -10))  # signed up just before ordering
        order = _order(rng, _hex(rng), cust["customer_id"], p)
        orders.append(order)
        total, sale = 0, rng.choices(offers, cum_weights=offer_cum)[0]
        limit = _after(order["order_approved_at"] or p, rng, 3 * _DAY, 7 * _DAY)
        for n in range(1, rng.choices(range(1, 6), cum_weights=_ITEMS_CUM)[0] + 1):
            if n > 1 and rng.random() < 0.4:  # more units of the same product are the common case
                sale = rng.choices(offers, cum_weights=offer_cum)[0]
            kg = sale[3] / 1000
            freight = int((rng.uniform(8, 22) + kg * rng.uniform(1, 3)) * 100)
            if rng.random() < 0.003:
                freight = 0
            stamp = _after(p, rng, 0.001, 2)
            items.append(_item(order["order_id"], n, sale, limit, freight, stamp))
            first_sale.setdefault(sale[0], p)
            total += sale[2] + freight
        payments += _payments(rng, order["order_id"], total, partial(_after, p, rng, 1, 120))
    for prod in products:  # catalogued some time before the first sale
        first = first_sale.get(prod["product_id"])
        prod["updated_at"] = (_after(first, rng, -60 * _DAY, -3600) if first
                              else _after(_START, rng, 0, 700 * _DAY))
    return dict(zip(TABLES, (customers, products, orders, items, payments)))


def _insert(conn: sa.Connection, table: sa.Table, rows: Sequence[Row]) -> None:
    """executemany in chunks: fast on every driver without building one huge statement."""
    for i in range(0, len(rows), _CHUNK):
        conn.execute(table.insert(), list(rows[i:i + _CHUNK]))


def _update(conn: sa.Connection, table: sa.Table, rows: Sequence[Row]) -> None:
    """executemany UPDATE by primary key (bind names must differ from column names)."""
    if not rows:
        return
    keys = [c.name for c in table.primary_key]
    stmt = table.update().where(*(table.c[k] == sa.bindparam(f"k_{k}") for k in keys))
    stmt = stmt.values({k: sa.bindparam(f"v_{k}") for k in rows[0] if k not in keys})
    conn.execute(stmt, [{("k_" if k in keys else "v_") + k: v for k, v in r.items()} for r in rows])


def create_shop(url: str, *, scale: float = 0.01, seed: int = 42,
                replace: bool = False, dirty: bool = False) -> ShopStats:
    """Create and fill the shop (scale=1 is about Olist's size); same scale and seed, same rows.

    `dirty`: the shop a real export looks like (framework.demo.dirty): orphans, customers
    held back to arrive one run late (`arrive_late`), blank and untranslated categories, zip
    codes without their leading zero, minute-precision timestamps, blank rows.
    """
    from framework.demo.dirty import make_dirty

    if not scale > 0:
        raise ShopError(f"scale must be positive, got {scale}")
    md = metadata()
    late_table = _late_table(md)
    with _engine(url) as engine:
        existing = sorted(set(TABLES) & set(sa.inspect(engine).get_table_names()))
        if existing and not replace:
            where = engine.url.render_as_string(hide_password=True)
            raise ShopError(f"shop tables already exist in {where} ({', '.join(existing)}); "
                            "pass replace=True to recreate them")
        data = _generate(scale, seed)
        late: list[Row] = []
        dirt = None
        if dirty:
            data, late, dirt = make_dirty(data, seed)
        with engine.begin() as conn:  # one transaction: on PostgreSQL a failed replace is undone
            md.drop_all(conn)
            md.create_all(conn, tables=[md.tables[n] for n in TABLES])
            if dirty:
                late_table.create(conn)
                _insert(conn, late_table, late)
            for name in TABLES:
                _insert(conn, md.tables[name], data[name])
    return dataclasses.replace(ShopStats(*(len(data[n]) for n in TABLES)), dirt=dirt)


def _late_table(md: sa.MetaData) -> sa.Table:
    """Customers of a dirty shop that arrive one run late: the customers table's columns."""
    from framework.demo.dirty import LATE_TABLE

    return sa.Table(LATE_TABLE, md, *(sa.Column(c.name, c.type) for c in md.tables["customers"].c))


def arrive_late(url: str) -> int:
    """Move a dirty shop's held-back customers into `customers`, stamped after every row there
    (so the next incremental run takes them); return how many arrived."""
    from framework.demo.dirty import LATE_TABLE

    md = metadata()
    late, customers = _late_table(md), md.tables["customers"]
    with _engine(url) as engine:
        if not sa.inspect(engine).has_table(LATE_TABLE):
            return 0
        with engine.begin() as conn:
            rows = _read(conn, late, *(c.name for c in late.c))
            if not rows:
                return 0
            top = conn.execute(sa.select(sa.func.max(customers.c.updated_at))).scalar() or _CUTOFF
            clock = _Clock(top, random.Random(len(rows)))
            _insert(conn, customers, [{**r, "updated_at": clock.tick()} for r in rows])
            conn.execute(late.delete())
    return len(rows)


class _Clock:
    """Logical clock of one table: its max(updated_at), then small positive steps (with
    microseconds), so new activity sorts after all existing rows whatever the wall clock says."""

    def __init__(self, start: datetime, rng: random.Random) -> None:
        self.now, self.rng = start, rng

    def tick(self) -> datetime:
        self.now = _after(self.now, self.rng, 1, 90)
        return self.now


def _progress(o: Row, ts: datetime) -> Row:
    """Move a non-final order one step along its flow, stamping the dates that step implies."""
    nxt = _NEXT[o["order_status"]]
    o = {**o, "order_status": nxt, "order_approved_at": o["order_approved_at"] or ts,
         "updated_at": ts}
    if nxt in ("shipped", "delivered"):
        o["order_delivered_carrier_date"] = o["order_delivered_carrier_date"] or ts
    if nxt == "delivered":
        o["order_delivered_customer_date"] = ts
    return o


def _move(rng: random.Random, c: Row, at: datetime) -> Row:
    """The customer at a new address in another city (a same-city draw is retried)."""
    while True:
        moved = {**c, **_address(rng), "updated_at": at}
        if moved["customer_city"].strip().lower() != c["customer_city"].strip().lower():
            return moved


def _recase(city: str) -> str:
    """A harmless edit a cleaning transform must absorb: the city's letter case flips."""
    return city.title() if city.islower() else city.lower()


def _reinstall(p: Row, at: datetime) -> Row:
    """Card installments step by one (staying in 1..10); other types must stay at 1: only touched."""
    n = p["payment_installments"]
    if p["payment_type"] == "credit_card":
        n = n + 1 if n < 10 else 9
    return {**p, "payment_installments": n, "updated_at": at}


def _read(conn: sa.Connection, table: sa.Table, *cols: str) -> list[Row]:
    """Rows sorted by primary key in Python, since collations differ between backends."""
    keys = [c.name for c in table.primary_key]
    rows = conn.execute(sa.select(*(table.c[c] for c in cols))).mappings()
    return sorted((dict(r) for r in rows), key=lambda r: tuple(r[k] for k in keys))


def simulate_activity(url: str, *, seed: int = 1, new_orders: int | None = None,
                      status_changes: int | None = None, customer_moves: int | None = None,
                      at_boundary: int = 0) -> ShopStats:
    """Add later activity (new orders, status changes, customer moves, boundary ties) so that
    incremental runs have something to pick up; deterministic for the existing data and seed."""
    for name, v in (("new_orders", new_orders), ("status_changes", status_changes),
                    ("customer_moves", customer_moves), ("at_boundary", at_boundary)):
        if v is not None and v < 0:
            raise ShopError(f"{name} must be >= 0, got {v}")
    rng, t = random.Random(seed), metadata().tables

    def draw(pool: list[Row], k: int) -> list[Row]:
        """k random rows, removed from pool so that two activities never touch the same row."""
        idx = rng.sample(range(len(pool)), max(0, min(k, len(pool))))
        chosen, gone = [pool[i] for i in idx], set(idx)
        pool[:] = [r for i, r in enumerate(pool) if i not in gone]
        return chosen

    with _engine(url) as engine:
        missing = [n for n in TABLES if not sa.inspect(engine).has_table(n)]
        if missing:
            raise ShopError(f"shop tables missing ({', '.join(missing)}); run create_shop first")
        with engine.begin() as conn:
            top = {n: conn.execute(sa.select(sa.func.max(t[n].c.updated_at))).scalar() or _CUTOFF
                   for n in TABLES}
            clock = {n: _Clock(top[n], rng) for n in TABLES}
            customers = _read(conn, t["customers"], "customer_id", "customer_city",
                              "customer_state", "customer_zip_code_prefix")
            products = _read(conn, t["products"], "product_id", "product_photos_qty")
            orders = _read(conn, t["orders"], "order_id", "order_status", "order_approved_at",
                           "order_delivered_carrier_date", "order_delivered_customer_date",
                           "order_estimated_delivery_date")
            items = _read(conn, t["order_items"], "order_id", "order_item_id", "product_id",
                          "seller_id", "price", "freight_value", "shipping_limit_date")
            pays = _read(conn, t["payments"], "order_id", "payment_sequential", "payment_type",
                         "payment_installments")
            n_new = round(0.02 * len(orders)) if new_orders is None else new_orders
            n_status = round(0.01 * len(orders)) if status_changes is None else status_changes
            n_moves = round(0.005 * len(customers)) if customer_moves is None else customer_moves
            if n_new and not items:
                raise ShopError("cannot add orders to a shop without order items")

            # Updates: activity on the clock; ties at exactly the old max(updated_at) on other rows.
            pool = list(customers)
            cust_up = [_move(rng, c, clock["customers"].tick()) for c in draw(pool, n_moves)]
            cust_up += [{**c, "customer_city": _recase(c["customer_city"]),
                         "updated_at": top["customers"]} for c in draw(pool, at_boundary)]
            prod_up = [{**p, "product_photos_qty": (p["product_photos_qty"] or 0) + 1,
                        "updated_at": top["products"]} for p in draw(list(products), at_boundary)]
            open_ = [o for o in orders if o["order_status"] in _NEXT]
            closed = [o for o in orders if o["order_status"] not in _NEXT]
            order_up = [_progress(o, clock["orders"].tick()) for o in draw(open_, n_status)]
            tied = [_progress(o, top["orders"]) for o in draw(open_, at_boundary)]
            tied += [  # too few in-flight orders left to progress: the estimate moves instead
                {**o, "order_estimated_delivery_date": o[_EST] + _ONE_DAY,
                 "updated_at": top["orders"]} for o in draw(closed, at_boundary - len(tied))]
            order_up += tied
            item_up = [{**i, "shipping_limit_date": i["shipping_limit_date"] + _ONE_DAY,
                        "updated_at": top["order_items"]} for i in draw(list(items), at_boundary)]
            cards = [p for p in pays if p["payment_type"] == "credit_card"]
            tied = draw(cards, at_boundary)  # only card installments vary; others are just touched
            tied += draw([p for p in pays if p["payment_type"] != "credit_card"],
                         at_boundary - len(tied))
            pay_up = [_reinstall(p, top["payments"]) for p in tied]

            # New orders: ~70% by new customers, the rest by existing ones; created or approved.
            new: dict[str, list[Row]] = {n: [] for n in TABLES}
            for _ in range(n_new):
                if customers and rng.random() < 0.3:
                    cid = rng.choice(customers)["customer_id"]
                else:
                    cid = _hex(rng)
                    new["customers"].append({
                        "customer_id": cid, "customer_unique_id": _hex(rng), **_address(rng),
                        "updated_at": clock["customers"].tick()})
                oid, p = _hex(rng), clock["orders"].tick()
                approved = clock["orders"].tick() if rng.random() < 0.5 else None
                new["orders"].append({
                    "order_id": oid, "customer_id": cid, "order_purchase_timestamp": p,
                    "order_status": "approved" if approved else "created",
                    "order_approved_at": approved, "order_delivered_carrier_date": None,
                    "order_delivered_customer_date": None,
                    "order_estimated_delivery_date": _after(p, rng, 14 * _DAY, 29 * _DAY),
                    "updated_at": clock["orders"].now})
                total, limit = 0, _after(p, rng, 3 * _DAY, 7 * _DAY)
                for n in range(1, rng.choices(range(1, 6), cum_weights=_ITEMS_CUM)[0] + 1):
                    like = rng.choice(items)  # an earlier sale: real popularity, price and seller
                    sale = (like["product_id"], like["seller_id"], int(like["price"] * 100), 0)
                    freight = int(like["freight_value"] * 100 * Decimal(rng.uniform(0.8, 1.2)))
                    new["order_items"].append(
                        _item(oid, n, sale, limit, freight, clock["order_items"].tick()))
                    total += sale[2] + freight
                new["payments"] += _payments(rng, oid, total, clock["payments"].tick)

            changed = dict(zip(TABLES, (cust_up, prod_up, order_up, item_up, pay_up)))
            for name in TABLES:
                _insert(conn, t[name], new[name])
                _update(conn, t[name], changed[name])
    return ShopStats(*(len(new[n]) + len(changed[n]) for n in TABLES))
