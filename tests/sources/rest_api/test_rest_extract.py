"""The `rest_api` adapter against the shop API on loopback: every order exactly once across
pages, a failing page, a rate limit and an incremental second run; children of a parent;
credentials from the environment only, never in the lake or the state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from framework.compiled import run_context
from framework.errors import FrameworkError
from framework.project import Project
from tests.e2e.helpers import cli
from tests.sources.rest_api.conftest import TOKEN, orders_spec, refunds_spec
from tests.sources.rest_api.shop_api import ShopApi, iso

COLUMNS = ("order_id", "customer_id", "order_status", "total", "purchased_at", "updated_at")


def opened(root: Path, name: str) -> tuple[Any, Any, Any]:
    """The pipeline's run context, its source opened, and its dlt pipeline into the lake (the
    adapter driven directly, without the runner)."""
    import dlt

    project = Project.discover(root)
    ctx = run_context(project, project.target(), project.pipeline(name))
    pipeline = dlt.pipeline(pipeline_name=name, pipelines_dir=str(ctx.state_dir / "dlt"),
                            destination=dlt.destinations.filesystem(bucket_url=ctx.lake.url),
                            dataset_name="raw")
    return ctx, ctx.source.open(ctx), pipeline


def extract(root: Path, name: str = "shop_api_orders") -> list[dict[str, Any]]:
    """One run of the pipeline's resource into the project's lake, as the extract stage does
    (one dlt pipeline per spec, state kept in the state folder): the batch's records."""
    ctx, extraction, pipeline = opened(root, name)
    spec = ctx.spec
    try:
        pipeline.extract(extraction.resource, loader_file_format="parquet")
        normalized = pipeline.normalize()
        info = pipeline.load()
    finally:
        extraction.close()
    rows = int(normalized.row_counts.get(spec.lake.path, 0)) if normalized else 0
    if not rows:
        return []
    load_id = info.loads_ids[-1]
    files = f"{ctx.lake.url}/raw/{spec.lake.path}/{load_id}.*.parquet"
    return [dict(zip(COLUMNS, row, strict=True)) for row in duckdb.sql(
        f"SELECT {', '.join(COLUMNS)} FROM read_parquet('{files}') ORDER BY order_id").fetchall()]


def as_served(record: dict[str, Any]) -> dict[str, Any]:
    """A lake row as the API wrote it (timestamps back to its ISO text)."""
    return {k: iso(v) if k.endswith("_at") else v for k, v in record.items()}


def test_rest_api_reads_every_order_once_across_pages_a_failing_page_and_a_rate_limit(
        api_project: Path, shop: ShopApi) -> None:
    shop.rate_limit_every = 3
    shop.fail_once = {("/api/orders", 2)}

    first = extract(api_project)

    assert [as_served(r) for r in first] == [shop.orders[k] for k in sorted(shop.orders)]
    assert len(first) == 25
    assert shop.served(429) and shop.served(500) == [
        p for p in shop.served(500) if "page=2" in p]  # both happened and were retried
    # The back-off is 0.05 s; after a 429 the client waited what Retry-After said (1 s).
    assert min(shop.waits_after(429)) >= 0.95
    assert max(shop.waits_after(500)) < 0.9

    # Between runs: an update, a late order at the very cursor value the last run ended on
    # (the API serves the boundary again), and new orders.
    boundary = shop.orders["o00025"]["updated_at"]
    late = shop.add_order(at=boundary)
    shop.update_order("o00003", "shipped")
    new = [shop.add_order() for _ in range(3)]

    second = extract(api_project)

    wanted = {late["order_id"], "o00003", *(o["order_id"] for o in new)}
    assert [r["order_id"] for r in second] == sorted(wanted)  # o00025 is not read twice
    assert [as_served(r) for r in second] == [shop.orders[k] for k in sorted(wanted)]
    assert any(f"updated_since={boundary.replace(':', '%3A')}" in p for p in shop.served(200))

    # The lake's latest version of each order (what merge on the key keeps) is the API's truth.
    latest = {r["order_id"]: as_served(r) for r in [*first, *second]}
    assert latest == shop.orders

    assert extract(api_project) == []  # nothing changed: nothing read twice


def test_rest_api_reads_the_children_of_each_parent_record(
        api_project: Path, shop: ShopApi) -> None:
    refunds = [shop.add_refund("o00002", 5.0), shop.add_refund("o00002", 2.5),
               shop.add_refund("o00017", 11.0)]
    (api_project / "pipelines" / "shop_api_refunds.yml").write_text(
        refunds_spec(shop.url, extra="  include_from_parent: [customer_id]\n"))
    extract_refunds(api_project)

    lake = Path(Project.discover(api_project).target().lake.url) / "raw"
    rows = duckdb.sql(f"SELECT refund_id, order_id, amount, _orders_customer_id FROM "
                      f"read_parquet('{lake}/shop_api_refunds/*.parquet') ORDER BY refund_id"
                      ).fetchall()
    assert rows == [(r["refund_id"], r["order_id"], r["amount"],
                     shop.orders[r["order_id"]]["customer_id"]) for r in refunds]
    assert not (lake / "orders").exists()  # the parent is read, never loaded
    # Every order's refunds were asked for, once.
    asked = [p for p in shop.served(200) if p.endswith("/refunds?page=1")]
    assert len(asked) == len(shop.orders)


def extract_refunds(root: Path) -> None:
    _, extraction, pipeline = opened(root, "shop_api_refunds")
    pipeline.extract(extraction.resource, loader_file_format="parquet")
    pipeline.normalize()
    pipeline.load()


def test_rest_api_incremental_parent_reads_only_the_children_of_changed_records(
        api_project: Path, shop: ShopApi) -> None:
    shop.add_refund("o00004", 3.0)
    example = (Path(__file__).parents[3] / "pipelines" / "examples" / "shop_api_refunds.yml")
    (api_project / "pipelines" / "shop_api_refunds.yml").write_text(
        example.read_text().replace("https://api.shop.example/v1/", shop.url))
    extract_refunds(api_project)
    assert len([p for p in shop.served(200) if "/refunds" in p]) == 25

    shop.requests.clear()
    shop.add_refund("o00009", 4.0)
    shop.update_order("o00009", "canceled")  # the shop bumps the order with its refund
    extract_refunds(api_project)

    asked = sorted({p.split("/")[3] for p in shop.served(200) if "/refunds" in p})
    assert asked == ["o00009"]  # not o00025, the boundary order served again unchanged
    lake = Path(Project.discover(api_project).target().lake.url) / "raw"
    rows = duckdb.sql(f"SELECT refund_id FROM read_parquet('{lake}/shop_api_refunds/*.parquet') "
                      "ORDER BY refund_id").fetchall()
    assert rows == [("r-o00004-1",), ("r-o00009-1",)]


def test_rest_api_token_never_reaches_the_lake_or_the_state(
        api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    extract(api_project)
    leaks = [str(p) for p in tmp_path.rglob("*") if p.is_file()
             and TOKEN.encode() in p.read_bytes()]
    assert leaks == []


def test_rest_api_missing_token_variable_is_one_line_naming_it(
        api_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_API_TOKEN")
    with pytest.raises(FrameworkError) as caught:
        extract(api_project)
    assert str(caught.value) == ("pipelines/shop_api_orders.yml: source.auth.token_env: the "
                                 "environment variable SHOP_API_TOKEN is not set (it holds the "
                                 "API's credential)")


def errors_of(root: Path) -> str:
    """The innermost framework error a failed extraction raised, as the CLI would print it."""
    with pytest.raises(Exception) as caught:
        extract(root)
    error: BaseException | None = caught.value
    while error is not None and not isinstance(error, FrameworkError):
        error = error.__cause__ or error.__context__
    assert error is not None, caught.value
    return str(error)


def test_rest_api_wrong_token_names_the_variable(
        api_project: Path, shop: ShopApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_API_TOKEN", "not-the-token")
    assert errors_of(api_project) == (
        f"source 'shop_api_orders' (rest_api {shop.url}): HTTP 401 Unauthorized on GET "
        "/api/orders: check the credential in SHOP_API_TOKEN")


def test_rest_api_dead_server_names_the_base_url(api_project: Path, shop: ShopApi) -> None:
    shop.stop()
    assert errors_of(api_project) == (
        f"source 'shop_api_orders' (rest_api {shop.url}): cannot reach GET /api/orders after 4 "
        "attempt(s): connection refused")


def test_rest_api_server_error_that_does_not_pass_fails_after_the_attempts(
        api_project: Path, shop: ShopApi) -> None:
    shop.fail_once = {("/api/orders", 1)}
    original = shop._answer

    def always_500(target: str, authorization: str | None) -> Any:
        shop.fail_once.add(("/api/orders", 1))
        return original(target, authorization)

    shop._answer = always_500  # type: ignore[method-assign]
    assert errors_of(api_project).endswith(
        "HTTP 500 Internal Server Error on GET /api/orders after 4 attempt(s)")
    assert len(shop.served(500)) == 4


def test_rest_api_base_url_env_replaces_the_base_url(
        api_project: Path, shop: ShopApi, monkeypatch: pytest.MonkeyPatch) -> None:
    (api_project / "pipelines" / "shop_api_orders.yml").write_text(
        orders_spec("https://api.shop.example/v1/").replace(
            "  auth:", "  base_url_env: SHOP_API_URL\n  auth:"))
    monkeypatch.setenv("SHOP_API_URL", shop.url)
    assert len(extract(api_project)) == 25


def test_rest_api_record_without_its_key_is_refused_not_loaded(
        api_project: Path, shop: ShopApi) -> None:
    shop.orders["broken"] = {**shop.add_order(), "order_id": None}
    del shop.orders["o00026"]
    _, extraction, pipeline = opened(api_project, "shop_api_orders")
    pipeline.extract(extraction.resource, loader_file_format="parquet")
    assert pipeline.normalize().row_counts["shop_api_orders"] == 25
    [rejected] = extraction.rejected()
    assert (rejected.where, rejected.reason) == (
        "orders: record 26 of this run", "no value for primary key field(s) order_id")
    assert '"order_id": null' in rejected.record


def test_rest_api_doctor_check_asks_the_api_with_the_credential(
        api_project: Path, shop: ShopApi, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.sources.registry import adapter_for

    def adapter() -> Any:
        project = Project.discover(api_project)
        return adapter_for(project.pipeline("shop_api_orders").source,
                           connections=project.connection, target=project.target())

    host = shop.url.split("/")[2]
    assert (adapter().name, adapter().check()) == (host, f"{shop.url}: orders answered HTTP 200")
    monkeypatch.setenv("SHOP_API_TOKEN", "nope-not-it")
    with pytest.raises(FrameworkError) as caught:
        adapter().check()
    assert str(caught.value) == (f"rest_api {shop.url}: HTTP 401 Unauthorized on GET "
                                 "/api/orders: check the credential in SHOP_API_TOKEN")


def test_rest_api_key_in_the_query_string_stays_out_of_errors_lake_and_state(
        api_project: Path, shop: ShopApi, tmp_path: Path) -> None:
    """An API key in the URL is the easiest to leak: through dlt's request URLs and errors."""
    (api_project / "pipelines" / "shop_api_orders.yml").write_text(orders_spec(shop.url).replace(
        "auth: {type: bearer, token_env: SHOP_API_TOKEN}",
        "auth: {type: api_key, location: query, name: api_key, api_key_env: SHOP_API_TOKEN}"))
    assert len(extract(api_project)) == 25
    assert all(f"api_key={TOKEN}" in p for p in shop.served(200))

    shop.fail_once = {("/api/orders", 1)}
    original = shop._answer

    def always_500(target: str, authorization: str | None) -> Any:
        shop.fail_once.add(("/api/orders", 1))
        return original(target, authorization)

    shop._answer = always_500  # type: ignore[method-assign]
    message = errors_of(api_project)
    assert message.endswith("HTTP 500 Internal Server Error on GET /api/orders after 4 "
                            "attempt(s)")
    assert TOKEN not in message
    leaks = [str(p) for p in tmp_path.rglob("*") if p.is_file()
             and TOKEN.encode() in p.read_bytes()]
    assert leaks == []


def test_doctor_checks_each_credential_of_one_api(
        api_project: Path, shop: ShopApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pipelines on one host shared a check: the one whose variable was unset went
    unseen, and doctor said the API was fine."""
    (api_project / "pipelines" / "keyed_orders.yml").write_text(orders_spec(
        shop.url, name="keyed_orders").replace(
        "auth: {type: bearer, token_env: SHOP_API_TOKEN}",
        "auth: {type: api_key, location: query, name: api_key, api_key_env: SHOP_API_KEY}"))
    monkeypatch.delenv("SHOP_API_KEY", raising=False)

    result = cli("doctor")

    host = shop.url.split("/")[2]
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    assert f"ok source {host} (SHOP_API_TOKEN): {shop.url}: orders answered HTTP 200" in lines
    assert (f"FAIL source {host} (SHOP_API_KEY): source.auth.api_key_env: the environment "
            "variable SHOP_API_KEY is not set (it holds the API's credential)") in lines
    assert result.exit_code == 1
