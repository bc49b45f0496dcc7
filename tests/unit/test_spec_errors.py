"""Malformed pipeline files: each mistake is exactly one located line, never a traceback.

Every case is a whole pipeline file written as `pipelines/orders.yml` into a throw-away
project, validated as `framework validate` does, and compared with the exact line
`path:line:col: key.path: message`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import CliRunner

from framework.cli import main
from framework.errors import SpecError, SpecErrors
from framework.project import Project

ROOT = Path(__file__).resolve().parents[2]
FILE = "pipelines/orders.yml"

# A second pipeline, so that `depends_on` has something to name.
CUSTOMERS = """\
name: customers
source:
  connection: shop
  table: customers
  primary_key: [customer_id]
lake:
  path: customers
"""


def y(text: str) -> str:
    return dedent(text).lstrip("\n")


CASES = [
    # -- YAML syntax ----------------------------------------------------------------------------
    pytest.param(
        "name: orders\nsource:\n\tconnection: shop\n",
        f"{FILE}:3:1: invalid YAML: a tab character; YAML indents and separates with spaces "
        "only (replace the tab with spaces)",
        id="yaml-tab-indentation"),
    pytest.param(
        y("""
        name: orders
        tags: [core, orders
        source:
          connection: shop
        """),
        f"{FILE}:2:7: invalid YAML: the '[' here is never closed (expected ',' or ']' at line 3, "
        "column 7); add the missing ']'",
        id="yaml-unclosed-bracket"),
    pytest.param(
        y("""
        name: orders
        description: "Orders placed in the shop
        """),
        f'{FILE}:2:14: invalid YAML: the " here is never closed; add the closing "',
        id="yaml-unclosed-quote"),
    pytest.param(
        y("""
        name: orders
        description: Orders: one row per order
        """),
        f"{FILE}:2:20: invalid YAML: unexpected ':'; quote a value that contains ': ' "
        "(description: \"a: b\") or fix the indentation of this line",
        id="yaml-colon-in-plain-value"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
         table: orders
        """),
        f"{FILE}:4:2: invalid YAML: this line is indented differently from the keys above it; "
        "align keys of the same mapping",
        id="yaml-bad-indentation"),
    pytest.param(
        y("""
        name: orders
        source
        lake:
          path: orders
        """),
        f"{FILE}:2:1: invalid YAML: this line is not a 'key: value' pair; add ': ' after the key",
        id="yaml-key-without-colon"),
    pytest.param(
        y("""
        name: orders
        owner: *team
        """),
        f"{FILE}:2:8: invalid YAML: alias '*team' is used, but no '&team' anchor defines it",
        id="yaml-undefined-alias"),
    pytest.param(
        y("""
        name: orders
        ---
        name: customers
        """),
        f"{FILE}:2:1: invalid YAML: a second YAML document ('---'); a file holds one",
        id="yaml-two-documents"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        lake:
          path: orders_v2
        """),
        f"{FILE}:8:1: lake: duplicate key 'lake' (first written at line 6); keep one of them",
        id="duplicate-key"),
    # -- the file as a whole --------------------------------------------------------------------
    pytest.param(
        "",
        f"{FILE}:1:1: the file is empty; a pipeline needs at least 'name', 'source' and 'lake'",
        id="empty-file"),
    pytest.param(
        "# nothing here yet\n",
        f"{FILE}:1:1: the file is empty; a pipeline needs at least 'name', 'source' and 'lake'",
        id="comments-only"),
    pytest.param(
        y("""
        - name: orders
          lake:
            path: orders
        """),
        f"{FILE}:1:1: a pipeline file must be a mapping of keys ('name', 'source', 'lake', ...), "
        "not a list",
        id="top-level-list"),
    # -- required keys and names ----------------------------------------------------------------
    pytest.param(
        y("""
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:1:1: name: missing required key 'name'; add it, e.g. name: orders",
        id="missing-name"),
    pytest.param(
        y("""
        name: orders
        lake:
          path: orders
        """),
        f"{FILE}:1:1: source: missing required key 'source'; add it, e.g. source: {{connection: "
        "shop, table: orders, primary_key: [\"order_id\"], incremental: {cursor: updated_at}}",
        id="missing-source"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        """),
        f"{FILE}:1:1: lake: missing required key 'lake'; add it, e.g. lake: {{path: orders}}",
        id="missing-lake"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
        lake:
          path: orders
        """),
        f"{FILE}:2:1: source.primary_key: missing required key 'primary_key'; add it, e.g. "
        "primary_key: [\"order_id\"]",
        id="missing-nested-key"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_kye: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:5:3: source.primary_kye: unknown key 'primary_kye' (did you mean 'primary_key'?)",
        id="misspelt-required-key-is-one-line"),
    pytest.param(
        y("""
        name: order
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:1:7: name: 'order' differs from the file name; set name: orders (or rename the "
        "file to order.yml)",
        id="name-differs-from-file-name"),
    pytest.param(
        y("""
        name: Orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:1:7: name: 'Orders' is not a valid name: use lower-case letters, digits and '_', "
        "starting with a letter (e.g. orders)",
        id="name-with-capitals"),
    # -- unknown keys ---------------------------------------------------------------------------
    pytest.param(
        y("""
        name: orders
        descripton: Orders placed in the shop.
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:2:1: descripton: unknown key 'descripton' (did you mean 'description'?)",
        id="unknown-top-level-key"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
          incremental:
            cursr: updated_at
        lake:
          path: orders
        """),
        f"{FILE}:7:5: source.incremental.cursr: unknown key 'cursr' (did you mean 'cursor'?)",
        id="unknown-nested-key"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        retries: 3
        """),
        f"{FILE}:8:1: retries: unknown key 'retries' (allowed: name, description, owner, tags, "
        "depends_on, schedule, source, lake, transform, quality, warehouse, dbt, deletes, columns)",
        id="unknown-key-lists-allowed"),
    # -- wrong types ----------------------------------------------------------------------------
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: order_id
        lake:
          path: orders
        """),
        f"{FILE}:5:16: source.primary_key: expected a list, got a string ('order_id'); write a "
        "list: [\"order_id\"]",
        id="string-for-list"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: 42
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:4:10: source.table: expected a string, got a number (42); quote it if you mean "
        "the text: '42'",
        id="number-for-string"),
    pytest.param(
        y("""
        name: orders
        description: yes
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:2:14: description: expected a string, got a boolean (yes); quote it if you mean "
        "the text: 'yes'",
        id="boolean-for-string"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake: [orders]
        """),
        f"{FILE}:6:7: lake: expected a mapping, got a list (e.g. lake: {{path: orders}})",
        id="list-for-mapping"),
    pytest.param(
        y("""
        name: orders
        source:
        lake:
          path: orders
        """),
        f"{FILE}:2:1: source: expected a mapping, got nothing (e.g. source: {{connection: shop, "
        "table: orders, primary_key: [\"order_id\"], incremental: {cursor: updated_at}})",
        id="empty-value-for-mapping"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
          incremental: updated_at
        lake:
          path: orders
        """),
        f"{FILE}:6:16: source.incremental: expected a mapping, got a string ('updated_at') (e.g. "
        "incremental: {cursor: updated_at, lag: '10m'})",
        id="string-for-optional-mapping"),
    # -- enum typos -----------------------------------------------------------------------------
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        transform:
          engine: duckbd
        """),
        f"{FILE}:9:11: transform.engine: 'duckbd' is not one of: duckdb, spark (did you mean "
        "'duckdb'?)",
        id="enum-engine"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        warehouse:
          write_disposition: upsert
        """),
        f"{FILE}:9:22: warehouse.write_disposition: 'upsert' is not one of: merge, append, replace",
        id="enum-write-disposition"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        warehouse:
          contract: frozen
        """),
        f"{FILE}:9:13: warehouse.contract: 'frozen' is not one of: evolve, freeze, discard (did "
        "you mean 'freeze'?)",
        id="enum-contract"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
          incremental:
            cursor: updated_at
            on_null: skip
        lake:
          path: orders
        """),
        f"{FILE}:8:14: source.incremental.on_null: 'skip' is not one of: include, exclude, fail",
        id="enum-on-null"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        quality:
          severity: warning
        """),
        f"{FILE}:9:13: quality.severity: 'warning' is not one of: error, warn (did you mean "
        "'warn'?)",
        id="enum-severity"),
    # -- cross-field rules ----------------------------------------------------------------------
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          query: SELECT * FROM orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:5:10: source.query: give 'table' or 'query', not both; remove one of them",
        id="table-and-query"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:2:1: source: missing 'table' or 'query'; name the source table (table: orders) "
        "or give a SELECT (query: SELECT ...)",
        id="neither-table-nor-query"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        transform:
          sql: SELECT * FROM batch
          sql_file: sql/orders.sql
        """),
        f"{FILE}:10:13: transform.sql_file: give 'sql' or 'sql_file', not both; remove one of them",
        id="sql-and-sql-file"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
          incremental:
            cursor: order_id
        lake:
          path: orders
        """),
        f"{FILE}:7:13: source.incremental.cursor: 'order_id' is also in source.primary_key; a "
        "row's key must not change when the row does, so pick another cursor (e.g. updated_at) "
        "or key",
        id="cursor-in-primary-key"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: []
        lake:
          path: orders
        """),
        f"{FILE}:5:16: source.primary_key: must not be empty; e.g. primary_key: [\"order_id\"]",
        id="empty-primary-key"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: order_items
          primary_key: [order_id, order_id]
        lake:
          path: orders
        """),
        f"{FILE}:5:27: source.primary_key[1]: 'order_id' is listed twice; remove one",
        id="primary-key-column-twice"),
    # -- durations and schedules ----------------------------------------------------------------
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
          incremental:
            cursor: updated_at
            lag: 10 minutes
        lake:
          path: orders
        """),
        f"{FILE}:8:10: source.incremental.lag: '10 minutes' is not a duration: write a number of "
        "seconds or a number and a unit (us, ms, s, m, h, d) such as '10m' (did you mean '10m'?)",
        id="lag-invalid-duration"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
          incremental:
            cursor: updated_at
            lag: -5
        lake:
          path: orders
        """),
        f"{FILE}:8:10: source.incremental.lag: must be 0 or more, got -5 (e.g. lag: '10m')",
        id="lag-negative"),
    pytest.param(
        y("""
        name: orders
        schedule: "61 * * * *"
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:2:11: schedule: '61 * * * *' is not a valid cron expression: the minute field "
        "'61' is not valid (0-59, '*', lists, ranges, steps)",
        id="cron-out-of-range"),
    pytest.param(
        y("""
        name: orders
        schedule: "0 0 * * * *"
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:2:11: schedule: '0 0 * * * *' has 6 field(s); a cron expression has five: "
        "minute hour day-of-month month day-of-week (e.g. '*/15 * * * *'), or use a preset: "
        "@continuous, @daily, @hourly, @monthly, @once, @quarterly, @weekly, @yearly",
        id="cron-six-fields"),
    pytest.param(
        y("""
        name: orders
        schedule: "@dayly"
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:2:11: schedule: '@dayly' is not an Airflow preset (did you mean '@daily'?); "
        "presets are @continuous, @daily, @hourly, @monthly, @once, @quarterly, @weekly, @yearly",
        id="schedule-preset-typo"),
    # -- expectations ---------------------------------------------------------------------------
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        quality:
          expectations:
            - column_values_to_not_be_null: {column: order_id}
        """),
        f"{FILE}:10:7: quality.expectations[0].column_values_to_not_be_null: "
        "'column_values_to_not_be_null' is not an expectation name: names are Great "
        "Expectations' snake_case names, starting with 'expect_' (did you mean "
        "'expect_column_values_to_not_be_null'?)",
        id="expectation-without-expect-prefix"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        quality:
          expectations:
            - expect_column_values_to_not_be_null: {column: order_id}
              expect_column_values_to_be_unique: {column: order_id}
        """),
        f"{FILE}:11:7: quality.expectations[0].expect_column_values_to_be_unique: a second "
        "expectation in the same list item; start 'expect_column_values_to_be_unique' on its own "
        "line with '- '",
        id="expectation-with-two-expect-keys"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        quality:
          expectations:
            - severity: warn
        """),
        f"{FILE}:10:7: quality.expectations[0]: 'severity' alone is not an expectation; add the "
        "expectation it applies to, e.g. '- expect_column_values_to_not_be_null: {column: "
        "order_id}'",
        id="expectation-severity-alone"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        quality:
          expectations:
            - expect_column_values_to_be_unique
        """),
        f"{FILE}:10:7: quality.expectations[0]: an expectation maps its name to its arguments; "
        "write '- expect_column_values_to_be_unique: {column: ...}'",
        id="expectation-without-arguments"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        quality:
          expectations:
            - expect_column_values_to_be_unique: order_id
        """),
        f"{FILE}:10:42: quality.expectations[0].expect_column_values_to_be_unique: the arguments "
        "must be a mapping such as {column: order_id} ({} for none), got order_id",
        id="expectation-arguments-not-a-mapping"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        quality:
          expectations:
            - expect_column_values_to_be_unique: {column: order_id}
              severity: warning
        """),
        f"{FILE}:11:17: quality.expectations[0].severity: 'warning' is not one of: error, warn "
        "(did you mean 'warn'?)",
        id="expectation-severity-typo"),
    # -- references to the rest of the project --------------------------------------------------
    pytest.param(
        y("""
        name: orders
        source:
          connection: shp
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:3:15: source.connection: unknown connection 'shp': no sources/shp.yml (did you "
        "mean 'shop'?)",
        id="unknown-connection"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        transform:
          sql_file: sql/order.sql
        """),
        f"{FILE}:9:13: transform.sql_file: no file pipelines/sql/order.sql (the path is relative "
        "to pipelines/) (did you mean 'sql/orders.sql'?)",
        id="sql-file-missing"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        quality:
          suite: ordres
        """),
        f"{FILE}:9:10: quality.suite: unknown quality suite 'ordres': no quality/ordres.yml (did "
        "you mean 'orders'?)",
        id="unknown-suite"),
    pytest.param(
        y("""
        name: orders
        depends_on: [customer]
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:2:14: depends_on[0]: unknown pipeline 'customer': no pipelines/customer.yml (did "
        "you mean 'customers'?)",
        id="depends-on-unknown"),
    pytest.param(
        y("""
        name: orders
        depends_on: [customers, orders]
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:2:25: depends_on[1]: a pipeline cannot depend on itself; remove 'orders'",
        id="depends-on-self"),
    pytest.param(
        y("""
        name: orders
        depends_on: [customers, customers]
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:2:25: depends_on[1]: 'customers' is listed twice; remove one",
        id="depends-on-twice"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        dbt:
          select: [stg_ordres+]
        """),
        f"{FILE}:9:12: dbt.select[0]: no dbt model named 'stg_ordres' (did you mean "
        "'stg_orders'?)",
        id="dbt-unknown-model"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        dbt:
          select: stg_ordres+
        """),
        f"{FILE}:9:11: dbt.select: no dbt model named 'stg_ordres' (did you mean 'stg_orders'?)",
        id="dbt-unknown-model-in-string"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        dbt:
          select: ["tag:ordrs"]
        """),
        f"{FILE}:9:12: dbt.select[0]: no dbt model has the tag 'ordrs' (did you mean 'orders'?)",
        id="dbt-unknown-tag"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        dbt:
          select: []
        """),
        f"{FILE}:9:11: dbt.select: must not be empty; e.g. select: [\"stg_orders+\"]",
        id="dbt-empty-select"),
    # -- PII, lake, warehouse -------------------------------------------------------------------
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        transform:
          pii:
            - column: customer_id
              action: encrypt
        """),
        f"{FILE}:11:15: transform.pii[0].action: 'encrypt' is not one of: hash, mask, drop",
        id="pii-unknown-action"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        transform:
          pii:
            - column: customer_id
        """),
        f"{FILE}:10:7: transform.pii[0].action: missing required key 'action'; add it, e.g. "
        "action: hash",
        id="pii-missing-action"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: raw/Orders
        """),
        f"{FILE}:7:9: lake.path: 'raw/Orders' is not a valid name: use lower-case letters, "
        "digits and '_' (single, not at the end), starting with a letter (e.g. raw_orders)",
        id="lake-path-invalid-characters"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
          format: csv
        """),
        f"{FILE}:8:11: lake.format: 'csv' is not one of: parquet",
        id="lake-format"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        warehouse:
          schema: Landing
        """),
        f"{FILE}:9:11: warehouse.schema: 'Landing' is not a valid name: use lower-case letters, "
        "digits and '_', starting with a letter (e.g. landing)",
        id="warehouse-schema-invalid"),
    # -- more YAML surprises --------------------------------------------------------------------
    pytest.param(
        y("""
        name: orders
        owner: !Ref team
        """),
        f"{FILE}:2:8: invalid YAML: unknown tag '!Ref'; the framework's files are plain YAML, "
        "without tags",
        id="yaml-unknown-tag"),
    pytest.param(
        y("""
        name: orders
        defaults: &defaults
          write_disposition: merge
        warehouse:
          <<: *defaults
        """),
        f"{FILE}:5:3: warehouse.<<: merge keys ('<<') are not supported in pipeline files; write "
        "the keys out",
        id="yaml-merge-key"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
          incremental:
            cursor: updated_at
            initial_value: 2016-13-01
        lake:
          path: orders
        """),
        f"{FILE}:8:20: source.incremental.initial_value: '2016-13-01' is not a valid date or time "
        "(month must be in 1..12); quote it if it is meant as text",
        id="invalid-date"),
    pytest.param(
        y("""
        name: orders
        tags: core, orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:2:7: tags: expected a list, got a string ('core, orders'); write a list: "
        "[\"core\", \"orders\"]",
        id="comma-separated-string-for-list"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
          incremental:
            cursor: updated_at
            lag: "30"
        lake:
          path: orders
        """),
        f"{FILE}:8:10: source.incremental.lag: '30' is not a duration: write a number of seconds "
        "or a number and a unit (us, ms, s, m, h, d) such as '10m' (did you mean 30, without "
        "quotes, or '30s'?)",
        id="lag-quoted-number"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        quality:
          expectations:
            - expect_column_values_to_be_unique: {column: order_id}
              severty: warn
        """),
        f"{FILE}:11:7: quality.expectations[0].severty: 'severty' is not an expectation name: "
        "names are Great Expectations' snake_case names, starting with 'expect_' (did you mean "
        "'severity'?)",
        id="expectation-severity-key-typo"),
    pytest.param(
        y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        dbt:
          select: ["path:models/stagin"]
        """),
        f"{FILE}:9:12: dbt.select[0]: dbt path 'models/stagin' does not exist (paths are "
        "relative to dbt_ecommerce/)",
        id="dbt-unknown-path"),
    pytest.param(
        y("""
        name: orders
        tags: |
          core
          orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        """),
        f"{FILE}:2:7: tags: expected a list, got a string (\"core\\norders\\n\"); write a list: "
        "[\"core\\norders\"]",
        id="multi-line-value-stays-one-line"),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with the shipped settings, suites and dbt project, and no pipelines yet."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "framework.yml", root / "framework.yml")
    for part in ("sources", "quality"):
        shutil.copytree(ROOT / part, root / part)
    (root / "dbt_ecommerce").symlink_to(ROOT / "dbt_ecommerce")
    (root / "pipelines" / "sql").mkdir(parents=True)
    shutil.copy(ROOT / "pipelines" / "sql" / "orders.sql", root / "pipelines" / "sql")
    (root / "pipelines" / "customers.yml").write_text(CUSTOMERS)
    return root


def problems(root: Path, text: str, name: str = "orders") -> list[str]:
    """Every line `framework validate` reports for the project with `pipelines/<name>.yml`."""
    (root / "pipelines" / f"{name}.yml").write_text(text)
    try:
        Project(root).load_pipelines()
    except SpecErrors as exc:
        return [error.render() for error in exc.errors]
    except SpecError as exc:
        return [exc.render()]
    return []


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_spec_error_is_one_exact_line(project: Path, text: str, expected: str) -> None:
    assert problems(project, text) == [expected]


def test_spec_errors_cover_thirty_classes_of_mistake() -> None:
    assert len(CASES) >= 30


def test_spec_errors_base_pipeline_is_valid(project: Path) -> None:
    """The cases differ from a valid file by one mistake; the valid file itself passes."""
    text = y("""
        name: orders
        depends_on: [customers]
        schedule: "*/15 * * * *"
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
          incremental:
            cursor: updated_at
            lag: 10m
        lake:
          path: orders
        transform:
          sql_file: sql/orders.sql
          pii:
            - column: customer_id
              action: hash
        quality:
          suite: orders
          expectations:
            - expect_column_values_to_be_unique: {column: order_id}
              severity: warn
        warehouse:
          schema: landing
        dbt:
          select: [stg_orders+, "tag:orders"]
        """)
    assert problems(project, text) == []


def test_spec_errors_two_mistakes_are_two_lines(project: Path) -> None:
    text = y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        warehouse:
          write_dispostion: merge
          contract: frozen
        """)
    assert problems(project, text) == [
        (f"{FILE}:9:3: warehouse.write_dispostion: unknown key 'write_dispostion' (did you mean "
        "'write_disposition'?)"),
        (f"{FILE}:10:13: warehouse.contract: 'frozen' is not one of: evolve, freeze, discard (did "
        "you mean 'freeze'?)"),
    ]


def test_spec_errors_suite_file_problem_points_into_the_suite(project: Path) -> None:
    (project / "quality" / "orders.yml").write_text(y("""
        expectations:
          - expect_column_values_to_not_be_null: {column: order_id}
          - expect_column_values_to_be_unique: {column: order_id}
            expect_column_values_to_not_be_null: {column: customer_id}
        """))
    text = y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        quality:
          suite: orders
        """)
    assert problems(project, text) == [
        ("quality/orders.yml:4:5: expectations[1].expect_column_values_to_not_be_null: a second "
        "expectation in the same list item; start 'expect_column_values_to_not_be_null' on its "
        "own line with '- '")
    ]


def test_spec_errors_suite_file_invalid_yaml(project: Path) -> None:
    (project / "quality" / "orders.yml").write_text("expectations:\n\t- expect_x: {}\n")
    text = y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        quality:
          suite: orders
        """)
    assert problems(project, text) == [
        ("quality/orders.yml:2:1: invalid YAML: a tab character; YAML indents and separates with "
        "spaces only (replace the tab with spaces)")
    ]


def test_spec_errors_suite_file_unknown_key(project: Path) -> None:
    (project / "quality" / "orders.yml").write_text("expectatons: []\n")
    text = y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        quality:
          suite: orders
        """)
    assert problems(project, text) == [
        ("quality/orders.yml:1:1: expectatons: unknown key 'expectatons' (did you mean "
        "'expectations'?)")
    ]


CLI_CASES = [case for case in CASES if case.id in {
    "yaml-unclosed-bracket", "empty-file", "missing-name", "unknown-nested-key",
    "string-for-list", "name-with-capitals", "lag-invalid-duration", "dbt-unknown-model",
    "expectation-with-two-expect-keys", "duplicate-key", "unknown-connection"}]


@pytest.mark.parametrize(("text", "expected"), CLI_CASES)
def test_spec_error_cli_prints_one_line(project: Path, monkeypatch: pytest.MonkeyPatch,
                                        text: str, expected: str) -> None:
    """Through `framework validate`: exit 1, the same single line, no traceback."""
    (project / "pipelines" / "orders.yml").write_text(text)
    monkeypatch.setenv("FRAMEWORK_PROJECT_DIR", str(project))
    monkeypatch.delenv("FRAMEWORK_TARGET", raising=False)
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.splitlines() == [expected]


def test_spec_error_cli_cases_were_found() -> None:
    assert len(CLI_CASES) == 11


# -- hostile files: whatever a pull request holds is answered in one line, fast ------------------

VALID = y("""
    name: orders
    source:
      connection: shop
      table: orders
      primary_key: [order_id]
    lake:
      path: orders
    """)


def alias_bomb() -> str:
    """Nine levels of nine aliases: 9**9 values from ~700 bytes."""
    lines = [VALID.rstrip("\n"), "lol0: &a0 [" + ", ".join(['"lol"'] * 9) + "]"]
    for level in range(1, 9):
        lines.append(f"lol{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def symlink_to(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


HOSTILE = [
    pytest.param(alias_bomb(), f"{FILE}:12:17: alias '*a3' makes the file hold more than 20000 "
                 "values (each alias repeats its anchor's values); write the values out",
                 id="alias-bomb"),
    pytest.param(VALID + "tags: &t [core, *t]\n", f"{FILE}:8:17: alias '*t' is inside the node its "
                 "anchor '&t' names, a structure without end; write the values out",
                 id="recursive-alias"),
    pytest.param(VALID + "x: &m {a: *m}\n", f"{FILE}:8:11: alias '*m' is inside the node its "
                 "anchor '&m' names, a structure without end; write the values out",
                 id="recursive-alias-in-mapping"),
    pytest.param(y("""
        defaults: &defaults
          contract: freeze
        name: orders
        source: {connection: shop, table: orders, primary_key: [order_id]}
        lake: {path: orders}
        warehouse:
          <<: *defaults
        """),
        f"{FILE}:7:3: warehouse.<<: merge keys ('<<') are not supported in pipeline files; write "
        "the keys out", id="merge-key-with-anchor"),
    pytest.param(VALID + "tags: " + "[" * 40 + "]" * 40 + "\n", f"{FILE}:8:26: nested more than "
                 "20 levels deep; a pipeline file needs far fewer (is it the right file?)",
                 id="deep-nesting"),
    pytest.param(VALID + "tags: " + "[" * 200_000 + "\n", f"{FILE}:8:1006: nested more than "
                 "20 levels deep; a pipeline file needs far fewer (is it the right file?)",
                 id="deep-nesting-past-libyaml-limit"),
    pytest.param(VALID + "tags: [" + ", ".join(["t"] * 30_000) + "]\n", f"{FILE}:8:59954: the file "
                 "holds more than 20000 values; a pipeline file needs far fewer (is it the right "
                 "file?)", id="too-many-values"),
    pytest.param(VALID + "description: |\n" + "  lorem ipsum dolor sit amet\n" * 50_000,
                 f"{FILE}:1:1: the file is 1.4 MiB; a pipeline file holds at most 1.0 MiB (is it "
                 "the right file?)", id="huge-document"),
    pytest.param(VALID.replace("name: orders", "name: " + "Orders" * 100_000),
                 f"{FILE}:1:7: name: '{'Orders' * 10}... (600000 characters)' is not a valid "
                 "name: use lower-case letters, digits and '_', starting with a letter",
                 id="very-long-line"),
    pytest.param(VALID + "x" * 300 + ": 1\n", f"{FILE}:8:1: {'x' * 60}... (300 characters): "
                 f"unknown key '{'x' * 60}... (300 characters)' (allowed: name, description, "
                 "owner, tags, depends_on, schedule, source, lake, transform, quality, "
                 "warehouse, dbt, deletes, columns)", id="very-long-key"),
    pytest.param(VALID + "owner: data\x07team\n", f"{FILE}:8:12: a control character (U+0007) "
                 "here; pipeline files are plain text (write it as an escape such as \"\\t\" "
                 "inside double quotes if the value needs it)", id="control-character"),
    pytest.param(VALID + "owner: data\0team\n", f"{FILE}:8:12: a NUL byte here; pipeline files "
                 "are plain text (write it as an escape such as \"\\t\" inside double quotes if "
                 "the value needs it)", id="nul-byte"),
    pytest.param(VALID.replace("name: orders", 'name: "\\e[2J\\e[31morders"'),
                 f'{FILE}:1:7: name: "\\u001b[2J\\u001b[31morders" is not a valid name: use '
                 "lower-case letters, digits and '_', starting with a letter",
                 id="terminal-escape-in-value"),
    pytest.param(VALID.encode() + "owner: équipe\n".encode("latin-1"),
                 f"{FILE}:8:8: the file is not UTF-8 text: byte 0xe9 here cannot be decoded; save "
                 "it as UTF-8", id="non-utf8-bytes"),
    pytest.param(VALID.encode("utf-16"), f"{FILE}:1:1: the file is UTF-16 text; save it as UTF-8",
                 id="utf16-file"),
    pytest.param("\ufeff" + VALID.replace("name: orders", "name: Orders"),
                 f"{FILE}:1:7: name: 'Orders' is not a valid name: use lower-case letters, "
                 "digits and '_', starting with a letter (e.g. orders)", id="bom-keeps-columns"),
    pytest.param(symlink_to("/dev/zero"), f"{FILE}:1:1: a character device (through a symbolic "
                 "link), not a pipeline file; a pipeline file is a YAML text file",
                 id="symlink-to-dev-zero"),
    pytest.param(lambda path: path.mkdir(), f"{FILE}:1:1: a directory, not a pipeline file; a "
                 "pipeline file is a YAML text file", id="directory-named-yml"),
    pytest.param(lambda path: os.mkfifo(path), f"{FILE}:1:1: a named pipe, not a pipeline file; "
                 "a pipeline file is a YAML text file", id="named-pipe"),
    pytest.param(symlink_to("elsewhere/missing.yml"), f"{FILE}:1:1: a symbolic link to "
                 "'elsewhere/missing.yml', which does not exist", id="dangling-symlink"),
    pytest.param(VALID.replace("name: orders", "name: !!binary b3JkZXJz"),
                 f"{FILE}:1:7: name: the tag '!!binary' makes bytes data; pipeline files hold "
                 "text, numbers and true/false only (remove the tag)", id="binary-tag"),
    pytest.param(VALID + "tags: !!python/object/apply:os.system [ls]\n",
                 f"{FILE}:8:7: tags: unknown tag '!!python/object/apply:os.system'; the "
                 "framework's files are plain YAML, without tags", id="python-tag-on-a-list"),
    pytest.param(VALID + "owner: " + "9" * 5000 + "\n", f"{FILE}:8:8: owner: "
                 f"'{'9' * 60}... (5000 characters)' is too long a number to read; quote it if it "
                 "is meant as text", id="number-too-long-to-read"),
    pytest.param(VALID.replace("  table: orders\n", "  table: orders\n  table: customers\n"),
                 f"{FILE}:5:3: source.table: duplicate key 'table' (first written at line 4); "
                 "keep one of them", id="duplicate-nested-key"),
    pytest.param(VALID + "description: >\n" + "  lorem ipsum dolor sit amet\n" * 800
                 + "tags: [core, orders\nowner: me\n", f"{FILE}:809:7: invalid YAML: the '[' here "
                 "is never closed (expected ',' or ']' at line 810, column 6); add the missing ']'",
                 id="syntax-error-in-a-large-file-in-libyaml-words"),
    pytest.param(VALID + "...\n---\n" + VALID, f"{FILE}:9:1: invalid YAML: a second YAML "
                 "document ('---'); a file holds one", id="second-document-after-end"),
]


# -- identifiers: names reach SQL quoted, or are refused here ------------------------------------

def with_source(extra: str) -> str:
    return VALID.replace("  primary_key: [order_id]\n", "  primary_key: [order_id]\n" + extra)


IDENTIFIERS = [
    pytest.param(VALID.replace("[order_id]", '["my col"]'),
                 f"{FILE}:5:17: source.primary_key[0]: 'my col' is stored in the lake as 'my_col' "
                 "(dlt's snake_case names), where the warehouse would not find it; a primary key "
                 "column needs a snake_case name: rename it in source.query (SELECT ... AS my_col)",
                 id="key-with-a-space"),
    pytest.param(VALID.replace("[order_id]", '[.inf]'),
                 f"{FILE}:5:17: source.primary_key[0]: expected a string, got a number (.inf); "
                 "quote it if you mean the text: '.inf'", id="key-yaml-infinity"),
    pytest.param(VALID.replace("[order_id]", '[""]'),
                 f"{FILE}:5:17: source.primary_key[0]: a column name must not be empty",
                 id="key-empty"),
    pytest.param(with_source("  incremental: {cursor: OrderDate}\n"),
                 f"{FILE}:6:25: source.incremental.cursor: 'OrderDate' is stored in the lake as "
                 "'order_date' (dlt's snake_case names), where the warehouse would not find it; a "
                 "cursor column needs a snake_case name: rename it in source.query (SELECT ... AS "
                 "order_date)", id="cursor-camel-case"),
    pytest.param(with_source("  incremental: {cursor: true}\n"),
                 f"{FILE}:6:25: source.incremental.cursor: expected a string, got a boolean "
                 "(true); quote it if you mean the text: 'true'", id="cursor-yaml-boolean"),
    pytest.param(with_source("  incremental: {cursor: 1e3}\n"),
                 f"{FILE}:6:25: source.incremental.cursor: '1e3' is stored in the lake as '_1e3' "
                 "(dlt's snake_case names), where the warehouse would not find it; a cursor "
                 "column needs a snake_case name: rename it in source.query (SELECT ... AS _1e3)",
                 id="cursor-1e3-is-text-that-dlt-renames"),
    pytest.param(VALID + "deletes: {soft_delete_column: 'x\"y'}\n",
                 f"{FILE}:8:31: deletes.soft_delete_column: 'x\"y' is stored in the lake as 'x_y' "
                 "(dlt's snake_case names), where the warehouse would not find it; a soft-delete "
                 "column needs a snake_case name: rename it in source.query (SELECT ... AS x_y)",
                 id="soft-delete-column-with-a-quote"),
    pytest.param(VALID + "transform:\n  pii:\n    - {column: null, action: hash}\n",
                 f"{FILE}:10:16: transform.pii[0].column: expected a string, got null (null) "
                 "(e.g. column: customer_zip_code_prefix)", id="pii-column-null"),
    pytest.param(VALID + 'transform:\n  pii:\n    - {column: "a\\tb", action: hash}\n',
                 f'{FILE}:10:16: transform.pii[0].column: "a\\tb" holds a control character; a '
                 "column name is printable text", id="pii-column-control-character"),
    pytest.param(VALID + "quality:\n  expectations:\n    - expect_column_values_to_not_be_null: "
                 "{column: .inf}\n",
                 f"{FILE}:10:53: quality.expectations[0].expect_column_values_to_not_be_null."
                 "column: expected a column name (a string), got a number (.inf); quote it if you "
                 "mean the text: '.inf'", id="expectation-column-yaml-infinity"),
    pytest.param(VALID + "quality:\n  expectations:\n    - expect_compound_columns_to_be_unique: "
                 "{column_list: [order_id, true]}\n",
                 f"{FILE}:10:70: quality.expectations[0].expect_compound_columns_to_be_unique."
                 "column_list[1]: expected a column name (a string), got a boolean (true); quote "
                 "it if you mean the text: 'true'", id="expectation-column-list-boolean"),
    pytest.param(VALID + "quality:\n  expectations:\n    - expect_column_values_to_be_unique: "
                 "{column: ''}\n",
                 f"{FILE}:10:51: quality.expectations[0].expect_column_values_to_be_unique.column: "
                 "a column name must not be empty", id="expectation-column-empty"),
    pytest.param(VALID + "quality:\n  expectations:\n    - expect_column_values_to_be_in_set: "
                 "{column: order_id, value_set: abc}\n",
                 f"{FILE}:10:72: quality.expectations[0].expect_column_values_to_be_in_set."
                 "value_set: expected a list of values such as [a, b], got abc",
                 id="expectation-value-set-text"),
]


@pytest.mark.parametrize(("text", "expected"), IDENTIFIERS)
def test_identifier_problem_is_one_exact_line(project: Path, text: str, expected: str) -> None:
    assert problems(project, text) == [expected]


def test_identifiers_dlt_keeps_match_the_lake_column_pattern() -> None:
    """The pattern is dlt's naming, written out: a name matches iff dlt keeps it as it is."""
    import re

    from dlt.common.normalizers.naming.snake_case import NamingConvention

    from framework.spec.model import LAKE_COLUMN_PATTERN

    naming = NamingConvention()
    for name in NAMES:
        kept = naming.normalize_identifier(name) == name
        assert bool(re.match(LAKE_COLUMN_PATTERN, name)) == kept, name


NAMES = ["order", "order_id", "_x", "_1abc", "a1", "x_", "a__b", "1abc", "OrderId", "my col",
         "a;b", 'x"y', "prénom", "_", "__a", "a_1_b", "select", "a-b", "a.b", "ü", "z9", "ID"]


def test_a_columns_lake_name_is_dlts_whether_or_not_dlt_is_asked() -> None:
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    from framework.spec.columns import dlt_column_name

    naming = NamingConvention()
    assert [dlt_column_name(n) for n in NAMES] == [naming.normalize_identifier(n) for n in NAMES]


def test_a_key_differing_from_its_lake_name_only_in_case_is_fine(project: Path) -> None:
    """`Id` lands as `id`; DuckDB and Snowflake both match names regardless of case."""
    assert problems(project, VALID.replace("[order_id]", "[Id]")) == []
    declared = VALID + "columns:\n  - {name: id, type: bigint}\n"  # as init declares it
    assert problems(project, declared.replace("[order_id]", "[Id]")) == []
    assert problems(project, VALID.replace("[order_id]", "[iD]")) == [
        (f"{FILE}:5:17: source.primary_key[0]: 'iD' is stored in the lake as 'i_d' (dlt's "
        "snake_case names), where the warehouse would not find it; a primary key column needs a "
        "snake_case name: rename it in source.query (SELECT ... AS i_d)")]


def test_quoted_names_are_fine_where_the_lake_is_not_involved(project: Path) -> None:
    """PII and expectation columns name the transform's output: any printable text, quoted."""
    text = VALID + ("transform:\n  pii:\n    - {column: 'x\"y; DROP TABLE t', action: drop}\n"
                    "quality:\n  expectations:\n    - expect_column_values_to_be_between: "
                    "{column: 'my col', max_value: .inf}\n")
    assert problems(project, text) == []


def hostile_problems(root: Path, content: str | bytes | Callable[[Path], None]) -> list[str]:
    path = root / "pipelines" / "orders.yml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        content(path)
    return problems_as_they_are(root)


def problems_as_they_are(root: Path) -> list[str]:
    try:
        Project(root).load_pipelines()
    except SpecErrors as exc:
        return [error.render() for error in exc.errors]
    except SpecError as exc:
        return [exc.render()]
    return []


@pytest.mark.parametrize(("content", "expected"), HOSTILE)
def test_hostile_file_is_one_exact_line_in_under_two_seconds(
        project: Path, content: str | bytes | Callable[[Path], None], expected: str) -> None:
    started = time.perf_counter()
    found = hostile_problems(project, content)
    elapsed = time.perf_counter() - started
    assert found == [expected]
    assert elapsed < 2.0, f"{elapsed:.2f}s"


def test_hostile_cases_are_at_least_fifteen_more() -> None:
    assert len(HOSTILE) >= 15
    assert len(CASES) + len(HOSTILE) >= 73 + 15


@pytest.mark.parametrize("text", [
    pytest.param(VALID + "tags: &shared [core, orders]\ndepends_on: []\nowner: &o data\n"
                 "description: *o\n", id="anchor-and-alias"),
    pytest.param("\ufeff" + VALID, id="utf8-bom"),
    pytest.param(VALID.replace("\n", "\r\n"), id="windows-line-ends"),
    pytest.param(VALID + "description: " + "lorem ipsum " * 60_000 + "\n", id="long-description"),
])
def test_fair_files_at_the_edges_are_valid(project: Path, text: str) -> None:
    """Aliases within the budget, a BOM, CRLF and a long line are fine."""
    started = time.perf_counter()
    assert hostile_problems(project, text) == []
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(("content", "expected"), [c for c in HOSTILE if c.id in {
    "alias-bomb", "symlink-to-dev-zero", "directory-named-yml", "huge-document", "nul-byte"}])
def test_hostile_file_through_framework_validate(
        project: Path, monkeypatch: pytest.MonkeyPatch,
        content: str | bytes | Callable[[Path], None], expected: str) -> None:
    """`framework validate FILE`: exit 1, the one line, no traceback, in under 2 s."""
    monkeypatch.setenv("FRAMEWORK_PROJECT_DIR", str(project))
    monkeypatch.delenv("FRAMEWORK_TARGET", raising=False)
    monkeypatch.chdir(project)
    hostile_problems(project, content)  # writes the file (the command is timed below)

    started = time.perf_counter()
    result = CliRunner().invoke(main, ["validate", "pipelines/orders.yml"])

    assert time.perf_counter() - started < 2.0
    assert result.exit_code == 1
    assert result.output.splitlines() == [expected]


@pytest.mark.parametrize(("content", "expected"), [
    (b"", ("pipelines/sql/orders.sql is empty; write the transform's SELECT, or drop "
           "transform.sql_file to load the batch as it is")),
    (b"\xd0\xff\x00SELECT", "pipelines/sql/orders.sql is not UTF-8 text"),
])
def test_spec_errors_an_empty_or_binary_sql_file(project: Path, content: bytes,
                                                 expected: str) -> None:
    """An empty SQL file ran as SELECT * FROM batch, silently; a binary one failed the run with
    a UnicodeDecodeError naming no file."""
    (project / "pipelines" / "sql" / "orders.sql").write_bytes(content)
    text = y("""
        name: orders
        source:
          connection: shop
          table: orders
          primary_key: [order_id]
        lake:
          path: orders
        transform:
          sql_file: sql/orders.sql
        """)
    assert problems(project, text) == [f"{FILE}:9:13: transform.sql_file: {expected}"]
