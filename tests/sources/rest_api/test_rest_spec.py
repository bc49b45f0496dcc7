"""The `rest_api` block of a pipeline file: secrets only as environment variable names, dlt's
paginator options by type, parent placeholders; errors name the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.errors import SpecErrors
from framework.sources.registry import adapter_for
from framework.sources.rest_api.spec import RestApiSource
from framework.spec.loader import load_spec

SPEC = """\
name: api_orders
source:
  kind: rest_api
  base_url: https://api.shop.example/v1/
  auth: AUTH
  path: PATH
  primary_key: [order_id]
EXTRA
lake:
  path: api_orders
"""


def load(tmp_path: Path, *, auth: str = "{type: bearer, token_env: SHOP_API_TOKEN}",
         path: str = "orders", extra: str = "") -> RestApiSource:
    file = tmp_path / "api_orders.yml"
    file.write_text(SPEC.replace("AUTH", auth).replace("PATH", path).replace("EXTRA", extra))
    spec = load_spec(file, "pipelines/api_orders.yml")
    assert isinstance(spec.source, RestApiSource)
    return spec.source


def problem(tmp_path: Path, **parts: str) -> str:
    with pytest.raises(SpecErrors) as caught:
        load(tmp_path, **parts)
    return str(caught.value)


def test_rest_spec_loads_as_the_rest_api_kind(tmp_path: Path) -> None:
    source = load(tmp_path, extra="  paginator: {type: header_link}\n"
                  "  incremental: {cursor: updated_at, param: updated_since}")
    assert source.kind == "rest_api" and not source.reads_keys
    assert source.paginator is not None and source.paginator.dlt_config() == {
        "type": "header_link"}
    assert source.incremental is not None and source.incremental.param == "updated_since"
    adapter = adapter_for(source, connections=lambda name: None, target=None)
    assert adapter.describe() == "rest_api https://api.shop.example/v1/orders"


def test_rest_spec_refuses_a_literal_secret(tmp_path: Path) -> None:
    assert problem(tmp_path, auth="{type: bearer, token: sk_live_abcdef}") == (
        "pipelines/api_orders.yml:5:24: source.auth.token: unknown key 'token' "
        "(did you mean 'token_env'?)")


def test_rest_spec_refuses_a_secret_in_the_variable_field_without_echoing_it(
        tmp_path: Path) -> None:
    message = problem(tmp_path, auth="{type: bearer, token_env: sk_live_abcdef}")
    assert message == (
        "pipelines/api_orders.yml:5:35: source.auth.token_env: expected the name of an "
        "environment variable (upper-case letters, digits, '_', e.g. SHOP_API_TOKEN), never "
        "the secret itself")


@pytest.mark.parametrize(("key", "extra", "column"), [
    ("headers", "  headers: {Authorization: Bearer sk_live_abcdef}", 28),
    ("params", "  params: {api_key: sk_live_abcdef}", 21),
])
def test_rest_spec_refuses_credentials_in_headers_and_params(
        tmp_path: Path, key: str, extra: str, column: int) -> None:
    name = extra.split("{")[1].split(":")[0]
    assert problem(tmp_path, extra=extra) == (
        f"pipelines/api_orders.yml:8:{column}: source.{key}.{name}: '{name}' carries a "
        f"credential, which is never written in a pipeline file; remove it from {key} and set "
        "source.auth (its value comes from an environment variable)")


def test_rest_spec_auth_type_needs_its_variable(tmp_path: Path) -> None:
    assert problem(tmp_path, auth="{type: api_key, token_env: SHOP_API_KEY}") == (
        "pipelines/api_orders.yml:5:9: source.auth.api_key_env: auth type 'api_key' needs "
        "'api_key_env' (the environment variable holding the secret)")


def test_rest_spec_paginator_options_belong_to_its_type(tmp_path: Path) -> None:
    assert problem(tmp_path, extra="  paginator: {type: cursor, page_param: page}") == (
        "pipelines/api_orders.yml:8:41: source.paginator.page_param: 'page_param' is not an "
        "option of paginator 'cursor' (its options: cursor_param, cursor_path, has_more_path, "
        "stop_after_empty_page)")


def test_rest_spec_placeholder_needs_a_parent(tmp_path: Path) -> None:
    assert problem(tmp_path, path="orders/{order_id}/refunds") == (
        "pipelines/api_orders.yml:6:9: source.path: '{order_id}' needs a parent listing to "
        "take it from; add parent: {path: ...}")


def test_rest_spec_errors_speak_of_the_rest_api_kind_not_sql(tmp_path: Path) -> None:
    """In the union of kinds, the schema error is the `rest_api` branch's."""
    assert problem(tmp_path, extra="  data_selectr: data") == (
        "pipelines/api_orders.yml:8:3: source.data_selectr: unknown key 'data_selectr' "
        "(did you mean 'data_selector'?)")
    assert problem(tmp_path, extra="  incremental: {cursor: updated_at}") == (
        "pipelines/api_orders.yml:8:3: source.incremental.param: missing required key 'param'")


def test_rest_spec_refuses_delete_reconciliation(tmp_path: Path) -> None:
    """An API has no cheap listing of every key: reconcile is refused when validating."""
    assert problem(tmp_path, extra="deletes: {reconcile: remove}") == (
        "pipelines/api_orders.yml:8:22: deletes.reconcile: source kind 'rest_api' cannot list "
        "every current key, so deletes cannot be reconciled; use deletes.soft_delete_column, or "
        "remove deletes")


def test_a_camel_case_key_of_an_api_is_refused_without_a_query_to_rename_it(
        tmp_path: Path) -> None:
    """The message told an API's pipeline to rename the field in source.query, which it has
    not."""
    message = problem(tmp_path, extra="  incremental: {cursor: updatedAt, param: since}")

    assert "source.incremental.cursor: 'updatedAt' is stored in the lake as 'updated_at' " \
        "(dlt's snake_case names), where the warehouse would not find it; a cursor column " \
        "needs a snake_case name: an API's field that is not snake_case cannot be one yet" \
        in message, message
