"""`framework run` on a rest_api pipeline, end to end against the shop API on loopback: the
landing table equals what the API serves, run after run; the token never leaves the
environment (console, `--json`, history, lake, state, warehouse)."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.e2e.helpers import cli, run_json
from tests.sources.rest_api.conftest import TOKEN, orders_spec, refunds_spec
from tests.sources.rest_api.shop_api import ShopApi, instant, iso

NAME = "shop_api_orders"


def landing(state: Path) -> dict[str, dict[str, Any]]:
    con = duckdb.connect(str(state / "warehouse.duckdb"), read_only=True)
    try:
        cursor = con.execute(f"SELECT * FROM landing.{NAME} ORDER BY order_id")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    return {r["order_id"]: {k: iso(v) if k.endswith("_at") else v for k, v in r.items()
                            if not k.startswith("_")} for r in rows}


def test_rest_run_lands_what_the_api_serves_run_after_run(
        api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    state = tmp_path / "state"
    shop.rate_limit_every = 4
    shop.fail_once = {("/api/orders", 2)}

    first = run_json("-p", NAME)[NAME]
    assert first["status"] == "success", first
    assert (first["rows_extracted"], first["rows_loaded"]) == (25, 25)
    assert landing(state) == shop.orders
    assert shop.served(429) and shop.served(500)

    boundary = shop.orders["o00025"]["updated_at"]
    shop.add_order(at=boundary)  # late, at the very value the last run ended on
    shop.update_order("o00007", "delivered")
    shop.update_order("o00011", "shipped")
    for _ in range(4):
        shop.add_order()

    second = run_json("-p", NAME)[NAME]
    assert second["status"] == "success", second
    # The late order, two updates, four new: the boundary order served again is not read.
    assert (second["rows_extracted"], second["rows_loaded"]) == (7, 7)
    assert landing(state) == shop.orders  # 30 orders, two of them updated, none twice
    assert len(shop.orders) == 30

    third = run_json("-p", NAME)[NAME]
    assert third["status"] == "success", third
    assert third["rows_extracted"] == 0
    assert landing(state) == shop.orders

    history = cli("history", "--json")
    leaks = [str(p) for p in tmp_path.rglob("*") if p.is_file()
             and TOKEN.encode() in p.read_bytes()]
    assert leaks == []
    assert TOKEN not in history.output


def test_rest_run_wrong_token_fails_in_one_line_naming_the_variable_not_the_value(
        api_project: Path, shop: ShopApi, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    wrong = "wrong-token-5d2c8e"
    monkeypatch.setenv("SHOP_API_TOKEN", wrong)
    result = cli("run", "-p", NAME)
    assert result.exit_code != 0
    assert "HTTP 401 Unauthorized on GET /api/orders: check the credential in SHOP_API_TOKEN" \
        in result.output
    records = run_json("-p", NAME)
    assert "SHOP_API_TOKEN" in records[NAME]["error"]
    history = cli("history", "--json").output
    for text in (result.output, str(records), history):
        assert wrong not in text and TOKEN not in text
    assert [p for p in tmp_path.rglob("*") if p.is_file() and wrong.encode() in p.read_bytes()
            ] == []


def test_rest_run_missing_token_variable_is_one_line(
        api_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_API_TOKEN")
    result = cli("run", "-p", NAME)
    assert result.exit_code != 0
    assert "pipelines/shop_api_orders.yml: source.auth.token_env: the environment variable " \
        "SHOP_API_TOKEN is not set" in result.output
    assert "Traceback" not in result.output


def test_rest_run_quarantines_a_record_without_its_key(
        api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    broken = {**shop.add_order(), "order_id": None}
    del shop.orders["o00026"]
    shop.orders["broken"] = broken

    record = run_json("-p", NAME)[NAME]

    assert record["status"] == "success", record
    assert (record["rows_extracted"], record["rows_quarantined"], record["rows_loaded"]) == (
        26, 1, 25)
    del shop.orders["broken"]
    assert landing(tmp_path / "state") == shop.orders
    [kept] = (tmp_path / "state" / "lake" / "quarantine" / NAME / "_rejected").glob("*.parquet")
    rows = duckdb.sql(f"SELECT \"where\", reason FROM read_parquet('{kept}')").fetchall()
    assert rows == [("orders: record 26 of this run",
                     "no value for primary key field(s) order_id")]

    shop.orders["broken"] = broken  # served again at the cursor boundary: refused once only
    again = run_json("-p", NAME)[NAME]
    assert (again["status"], again["rows_quarantined"], again["rows_loaded"]) == ("success", 0, 0)
    assert len(list((tmp_path / "state" / "lake" / "quarantine" / NAME / "_rejected").glob(
        "*.parquet"))) == 1


def test_a_quarantine_write_cut_short_leaves_no_file_to_fail_later_runs(
        api_project: Path, shop: ShopApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The refused records' file was written in place: a write cut short (a kill, a full disk)
    left a broken Parquet file that every later run read, and failed on."""
    import pyarrow.parquet as pq

    broken = {**shop.add_order(), "order_id": None}
    del shop.orders["o00026"]
    shop.orders["broken"] = broken

    def cut_short(table: Any, where: Any, **_: Any) -> None:
        where.write(b"PAR1" + bytes(64))
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(pq, "write_table", cut_short)
        first = run_json("-p", NAME)[NAME]
    assert first["status"] == "failed", first
    folder = tmp_path / "state" / "lake" / "quarantine" / NAME / "_rejected"
    assert list(folder.glob("*.parquet")) == []

    second = run_json("-p", NAME)[NAME]

    assert (second["status"], second["rows_quarantined"]) == ("success", 1), second
    del shop.orders["broken"]
    assert landing(tmp_path / "state") == shop.orders
    [kept] = folder.glob("*.parquet")
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{kept}')").fetchall() == [(1,)]


def states(state: Path) -> dict[str, tuple[str, Any]]:
    """order_id -> (status, updated_at as an instant in UTC) in landing."""
    con = duckdb.connect(str(state / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(f"SELECT order_id, order_status, updated_at FROM landing.{NAME}"
                           ).fetchall()
    finally:
        con.close()
    return {key: (status, at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC))
            for key, status, at in rows}


def served(shop: ShopApi) -> dict[str, tuple[str, Any]]:
    return {key: (o["order_status"], instant(o["updated_at"]).astimezone(UTC))
            for key, o in shop.orders.items()}


def test_rest_cursor_values_are_compared_as_instants_not_as_text(
        api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    """As text, `08:25:00.25Z` sorts before `08:25:00Z` and `04:30:00-04:00` (08:30 UTC)
    before both: each record was filtered out as older than the last run's cursor, for good."""
    assert run_json("-p", NAME)[NAME]["status"] == "success"
    boundary = shop.orders["o00025"]["updated_at"]
    assert boundary == "2026-11-01T08:25:00Z"
    shop.add_order(at="2026-11-01T08:25:00.250000Z")
    shop.update_order("o00003", "shipped", at="2026-11-01T04:30:00-04:00")

    second = run_json("-p", NAME)[NAME]

    assert (second["status"], second["rows_extracted"]) == ("success", 2), second
    assert states(tmp_path / "state") == served(shop)
    assert run_json("-p", NAME)[NAME]["rows_extracted"] == 0


def test_rest_a_change_at_the_last_cursor_value_is_read(
        api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    """Two changes within the same second: the boundary record re-served with a new status
    was taken for the one already loaded (the same key), and its change was lost."""
    assert run_json("-p", NAME)[NAME]["status"] == "success"
    last = shop.orders["o00025"]["updated_at"]
    shop.update_order("o00025", "shipped", at=last)
    shop.add_order()

    second = run_json("-p", NAME)[NAME]

    assert (second["status"], second["rows_extracted"]) == ("success", 2), second
    assert states(tmp_path / "state") == served(shop)
    assert run_json("-p", NAME)[NAME]["rows_extracted"] == 0


@pytest.mark.parametrize(("odd", "expected"), [
    ("empty", ("GET /api/orders answered page 2 with no records, before the last (total_pages: "
               "3): the listing changed while it was read, or the API failed")),
    ("errors", ("GET /api/orders answered HTTP 200 without the records' field 'data' "
                "(source.data_selector): {\"errors\": \"Exceeded 2 calls per second for api "
                "client\"}")),
    ("html", ("GET /api/orders answered HTTP 200 with a body that is not JSON (text/html: "
              "'<html><body><h1>Down for maintenance</h1></body></html>')")),
])
def test_rest_a_page_without_records_fails_the_run_naming_the_service(
        odd: str, expected: str, api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    """With status 200, an empty page before the stated last, or an error object instead of
    the records, was read as the listing's end: the run succeeded, the next started after the
    pages behind it, lost for good. An HTML page failed with a bare JSONDecodeError."""
    shop.odd_once[("/api/orders", 2)] = odd

    result = cli("run", "-p", NAME)

    assert result.exit_code == 1
    assert f"error: source '{NAME}' (rest_api {shop.url}): {expected}" in \
        result.output.splitlines(), result.output
    again = run_json("-p", NAME)[NAME]
    assert (again["status"], again["rows_extracted"]) == ("success", 25), again
    assert states(tmp_path / "state") == served(shop)


def test_rest_a_listing_that_moves_while_read_stops_the_run_and_loses_nothing(
        api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    """Order 5 updated between the requests of pages 1 and 2 moves to the listing's end: it
    was served twice (the batch quarantined for its key, the pipeline blocked) and order 11,
    shifted onto page 1, never (lost for good once the cursor passed it)."""
    shop.before_page[("/api/orders", 2)] = lambda: shop.update_order("o00005", "shipped")

    result = cli("run", "-p", NAME)

    assert result.exit_code == 1
    assert (f"error: {NAME}: extract: GET orders served order_id \"o00005\" twice in this run, "
            "changed in between: the listing moved while it was read, so records may have been "
            "skipped; nothing was loaded, and the next run reads it again (a listing paged by a "
            "cursor token, or sorted by a field that never changes, does not move)") in \
        result.output.splitlines(), result.output
    again = run_json("-p", NAME)[NAME]
    assert (again["status"], again["rows_extracted"]) == ("success", 25), again
    assert states(tmp_path / "state") == served(shop)


def test_rest_a_record_served_again_unchanged_in_one_run_is_read_once(
        api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    """A record committed with an older timestamp between two page requests shifts the
    listing forward: page 2 starts with page 1's last record again."""
    shop.before_page[("/api/orders", 2)] = lambda: shop.add_order(at="2026-11-01T07:00:00Z")

    first = run_json("-p", NAME)[NAME]

    assert (first["status"], first["rows_extracted"]) == ("success", 25), first
    late = shop.orders.pop("o00026")  # served on no page of this run: on page 1, read already
    assert states(tmp_path / "state") == served(shop)
    assert late["updated_at"] < shop.orders["o00001"]["updated_at"]


COLUMNS = """columns:
  - {name: order_id, type: string, nullable: false}
  - {name: customer_id, type: string}
  - {name: total, type: "decimal(12,2)"}
  - {name: purchased_at, type: timestamp}
  - {name: updated_at, type: timestamp}
"""


def test_rest_declared_columns_take_a_field_whose_json_type_changes(
        project_dir: Path, shop: ShopApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dlt kept a field served as a number and then as text in two columns (`total` and
    `total__v_text`), and the text ones landed as nulls, the run a success."""
    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)
    (project_dir / "pipelines" / f"{NAME}.yml").write_text(orders_spec(shop.url, extra=COLUMNS))
    for number in range(11, 16):  # page 2 serves them otherwise
        order = shop.orders[f"o{number:05d}"]
        order["total"] = str(order["total"])
    shop.orders["o00012"]["customer_id"] = 4
    shop.orders["o00013"]["purchased_at"] = ""
    shop.orders["o00014"]["purchased_at"] = "0000-00-00 00:00:00"

    record = run_json("-p", NAME)[NAME]

    assert (record["status"], record["rows_loaded"], record["rows_quarantined"]) == \
        ("success", 24, 1), record
    con = duckdb.connect(str(tmp_path / "state" / "warehouse.duckdb"), read_only=True)
    try:
        landed = {r[0]: r[1:] for r in con.execute(
            f"SELECT order_id, customer_id, total, purchased_at FROM landing.{NAME}").fetchall()}
        columns = [r[0] for r in con.execute(f"DESCRIBE landing.{NAME}").fetchall()]
    finally:
        con.close()
    assert not [c for c in columns if "__v_" in c], columns
    assert set(landed) == set(shop.orders) - {"o00014"}
    assert {key: total for key, (_, total, _) in landed.items()} == {
        key: Decimal(str(o["total"])).quantize(Decimal("0.01"))
        for key, o in shop.orders.items() if key != "o00014"}
    assert landed["o00012"][0] == "4" and landed["o00013"][2] is None
    [kept] = (tmp_path / "state" / "lake" / "quarantine" / NAME / "_rejected").glob("*.parquet")
    assert duckdb.sql(f"SELECT reason FROM read_parquet('{kept}')").fetchall() == [
        ("field 'purchased_at': '0000-00-00 00:00:00' is not a timestamp (declared timestamp)",)]


def test_rest_refused_records_are_named_by_their_own_place_in_the_run(
        project_dir: Path, shop: ShopApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dlt runs each filter over a whole page before the next: every record the type check
    refused was named by the page's last place (three records of page 1 all 'record 10'),
    found by a trial."""
    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)
    (project_dir / "pipelines" / f"{NAME}.yml").write_text(orders_spec(shop.url, extra=COLUMNS))
    for number in (2, 4, 13):
        shop.orders[f"o{number:05d}"]["total"] = "x"

    record = run_json("-p", NAME)[NAME]

    assert (record["rows_loaded"], record["rows_quarantined"]) == (22, 3), record
    [kept] = (tmp_path / "state" / "lake" / "quarantine" / NAME / "_rejected").glob("*.parquet")
    assert duckdb.sql(f"SELECT \"where\" FROM read_parquet('{kept}') ORDER BY 1").fetchall() \
        == [("orders: record 13 of this run",), ("orders: record 2 of this run",),
            ("orders: record 4 of this run",)]


@pytest.mark.parametrize(("change", "expected"), [
    ("epoch", ("source.incremental: the API served 'updated_at' as 1793520000, which does not "
              "compare with the last value '2026-01-01T00:00:00Z' (source.incremental."
              "initial_value, or the previous run's): give initial_value in the API's own form")),
    ("huge", ("a number in the API's records is beyond 64 bits: declare its field in columns: as "
             "type string or decimal(38,0)")),
    ("no_cursor", ("source.incremental.cursor: a record without the field 'updated_at' (is it a "
                  "field of the API's records? if only some lack it, set "
                  "source.incremental.on_null to include or exclude them)")),
])
def test_rest_records_dlt_cannot_take_fail_in_one_line_naming_the_fix(
        change: str, expected: str, api_project: Path, shop: ShopApi) -> None:
    order = shop.orders["o00003"]
    if change == "epoch":
        for each in shop.orders.values():
            each["updated_at"] = 1793520000
    elif change == "huge":
        order["loyalty_points"] = 2**64
    else:
        del order["updated_at"]

    result = cli("run", "-p", NAME)

    assert result.exit_code == 1
    assert f"error: {NAME}: extract: {expected}" in result.output.splitlines(), result.output


@pytest.mark.parametrize("links", [False, True], ids=["guessed", "next-links"])
def test_rest_a_listing_without_paginator_is_read_only_when_dlt_is_sure_how_it_pages(
        links: bool, api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    """Without `paginator:`, dlt guessed: this page-number listing it read from page 0 and
    then page 1 again, the run a success with the pages it missed lost."""
    spec = api_project / "pipelines" / f"{NAME}.yml"
    spec.write_text("\n".join(line for line in spec.read_text().splitlines()
                              if "paginator:" not in line) + "\n")
    shop.next_links = links

    result = cli("run", "-p", NAME)

    if links:
        assert result.exit_code == 0, result.output
        assert states(tmp_path / "state") == served(shop)
        return
    assert result.exit_code == 1
    assert (f"error: source '{NAME}' (rest_api {shop.url}): GET orders: source.paginator is not "
            "set, and dlt could only guess how the API pages (PageNumberPaginator); "
            "a wrong guess reads some pages and skips the rest: set it (page_number, offset, "
            "cursor, json_link, header_link, or single_page for a one-page listing)") in \
        result.output.splitlines(), result.output


def paged(spec: Path, paginator: str) -> None:
    spec.write_text("\n".join(f"  paginator: {paginator}" if "paginator:" in line else line
                              for line in spec.read_text().splitlines()) + "\n")


def test_rest_a_record_updated_during_a_keyset_read_is_kept_in_its_latest_version(
        project_dir: Path, shop: ShopApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paged by a cursor token nothing is skipped when a record moves: the run stopped all the
    same, and on a busy API no run got through (a key twice in a batch also quarantined it)."""
    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)
    spec = project_dir / "pipelines" / f"{NAME}.yml"
    spec.write_text(orders_spec(shop.url, extra=COLUMNS.replace(
        "type: string, nullable: false}", "type: string, nullable: false, unique: true}")))
    paged(spec, "{type: cursor, cursor_path: next_cursor, cursor_param: cursor}")
    shop.cursor_tokens = True
    calls = iter(range(99))

    def update_once() -> None:
        if next(calls) == 0:
            shop.update_order("o00003", "shipped")

    original = shop._answer

    def answer(target: str, authorization: str | None) -> Any:
        if "cursor=" in target:
            update_once()
        return original(target, authorization)

    monkeypatch.setattr(shop, "_answer", answer)

    first = run_json("-p", NAME)[NAME]

    assert (first["status"], first["rows_extracted"]) == ("success", 26), first  # o00003 twice
    assert states(tmp_path / "state") == served(shop)  # in its latest version


def test_rest_a_child_listing_whose_parent_moved_stops_the_run(
        api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    """A parent order updated between two of its pages moved to the end: the order shifted
    onto the page already read was never asked for its refunds, and the run succeeded."""
    for number in range(1, 26):
        shop.add_refund(f"o{number:05d}", 1.0)
    (api_project / "pipelines" / "refunds.yml").write_text(refunds_spec(shop.url, name="refunds"))
    shop.before_page[("/api/orders", 2)] = lambda: shop.update_order("o00005", "shipped")

    result = cli("run", "-p", "refunds")

    assert result.exit_code == 1
    assert ('error: refunds: extract: GET orders served order_id "o00005" twice in this run, '
            "changed in between") in result.output, result.output
    again = run_json("-p", "refunds")["refunds"]
    assert (again["status"], again["rows_loaded"]) == ("success", 25), again


@pytest.mark.parametrize("odd", ["empty", "shrunk"])
def test_rest_an_offset_listing_that_ends_early_or_shrinks_stops_the_run(
        odd: str, api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    spec = api_project / "pipelines" / f"{NAME}.yml"
    paged(spec, "{type: offset, limit: 10, total_path: total}")
    if odd == "empty":
        shop.odd_once[("/api/orders", 10)] = "empty"
    else:  # an order already served is deleted before the second page
        shop.before_page[("/api/orders", 10)] = lambda: shop.orders.pop("o00002")
    expected = {
        "empty": "GET /api/orders answered offset 10 with no records, before the last (total: "
                 "25): the listing changed while it was read, or the API failed",
        "shrunk": "GET /api/orders: total went from 25 to 24 while the listing was read, "
                  "shifting records past a page already read; the run stops so that none is "
                  "skipped"}[odd]

    result = cli("run", "-p", NAME)

    assert result.exit_code == 1
    assert f"error: source '{NAME}' (rest_api {shop.url}): {expected}" in \
        result.output.splitlines(), result.output
    again = run_json("-p", NAME)[NAME]
    assert again["status"] == "success", again
    assert states(tmp_path / "state") == served(shop)


def test_rest_a_declared_cursor_goes_back_to_the_api_as_it_served_it(
        project_dir: Path, shop: ShopApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """Typed before dlt's incremental step, a cursor declared `timestamp` went back without
    its zone (`updated_since=2026-11-01 08:25:00`): an API reading local time skipped hours."""
    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)
    (project_dir / "pipelines" / f"{NAME}.yml").write_text(orders_spec(shop.url, extra=COLUMNS))
    assert run_json("-p", NAME)[NAME]["status"] == "success"

    assert run_json("-p", NAME)[NAME]["status"] == "success"

    assert shop.requests[-1][0] == \
        "/api/orders?per_page=10&updated_since=2026-11-01T08%3A25%3A00Z&page=1"


def test_rest_a_one_page_listing_without_paginator_is_read(
        api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    """A listing that fits one page (a small run, an order's refunds) says so (`total_pages:
    1`), or has no records: nothing can be skipped, whatever dlt would guess."""
    for order_id in [f"o{n:05d}" for n in range(6, 26)]:
        del shop.orders[order_id]
    spec = api_project / "pipelines" / f"{NAME}.yml"
    spec.write_text("\n".join(line for line in spec.read_text().splitlines()
                              if "paginator:" not in line) + "\n")

    first = run_json("-p", NAME)[NAME]
    again = run_json("-p", NAME)[NAME]  # its listing: the boundary order alone

    assert (first["status"], first["rows_extracted"]) == ("success", 5), first
    assert (again["status"], again["rows_extracted"]) == ("success", 0), again
    assert states(tmp_path / "state") == served(shop)
