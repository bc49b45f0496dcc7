"""Fixtures of the `rest_api` tests: the shop API on loopback and a project that reads it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sources.rest_api.shop_api import ShopApi

TOKEN = "shop-api-token-7f3a91c2e4"


@pytest.fixture
def shop() -> Iterator[ShopApi]:
    api = ShopApi(token=TOKEN).start()
    for _ in range(25):
        api.add_order()
    try:
        yield api
    finally:
        api.stop()


def orders_spec(url: str, *, name: str = "shop_api_orders", extra: str = "") -> str:
    """A pipeline file reading the test API's orders, incrementally on `updated_at`."""
    return f"""\
name: {name}
source:
  kind: rest_api
  base_url: {url}
  auth: {{type: bearer, token_env: SHOP_API_TOKEN}}
  path: orders
  params: {{per_page: 10}}
  data_selector: data
  paginator: {{type: page_number, page_param: page, base_page: 1, total_path: total_pages}}
  primary_key: [order_id]
  incremental: {{cursor: updated_at, param: updated_since, initial_value: "2026-01-01T00:00:00Z"}}
  retry: {{max_attempts: 4, backoff_factor: 0.05}}
lake:
  path: {name}
warehouse:
  write_disposition: merge
{extra}"""


def refunds_spec(url: str, *, name: str = "shop_api_refunds", extra: str = "") -> str:
    """A pipeline file reading each order's refunds, the orders' listing as its parent."""
    return f"""\
name: {name}
source:
  kind: rest_api
  base_url: {url}
  auth: {{type: bearer, token_env: SHOP_API_TOKEN}}
  path: orders/{{order_id}}/refunds
  data_selector: data
  paginator: {{type: page_number, base_page: 1, total_path: total_pages}}
  primary_key: [refund_id]
  parent:
    name: orders
    path: orders
    data_selector: data
    paginator: {{type: page_number, base_page: 1, total_path: total_pages}}
{extra}lake:
  path: {name}
"""


@pytest.fixture
def api_project(project_dir: Path, shop: ShopApi, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHOP_API_TOKEN", TOKEN)
    (project_dir / "pipelines" / "shop_api_orders.yml").write_text(orders_spec(shop.url))
    return project_dir
