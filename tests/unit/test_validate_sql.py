"""Expectations with an exact SQL meaning, counted by DuckDB in one scan of the batch's file,
give Great Expectations' own counts."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from framework.compiled import run_context
from framework.context import RunContext
from framework.errors import StageError
from framework.project import Project
from framework.settings.targets import build_target
from framework.spec.model import PipelineSpec
from framework.stages.validate import run_expectations, validate

ROWS = [  # order_id, item, status, price
    ("o1", 1, "paid", Decimal("5.00")),
    ("o1", 2, "paid", Decimal("-1.00")),   # price below 0
    ("o2", 1, "lost", Decimal("12.00")),   # status not in the set, price above 10
    ("o2", 1, None, None),                 # (order_id, item) twice; NULL status and price
    (None, 3, "paid", Decimal("1.00")),    # NULL order_id
]
EXPECTATIONS = [
    {"expect_column_values_to_not_be_null": {"column": "order_id"}},
    {"expect_column_values_to_be_between": {"column": "price", "min_value": 0, "max_value": 10}},
    {"expect_column_values_to_be_in_set": {"column": "status", "value_set": ["paid", "shipped"]}},
    {"expect_compound_columns_to_be_unique": {"column_list": ["order_id", "item"]}},
    {"expect_column_values_to_be_unique": {"column": "order_id"}},
    {"expect_column_values_to_not_be_null": {"column": "item"}},  # passes
]


def context(tmp_path: Path, expectations: list[dict[str, Any]]) -> RunContext:
    (tmp_path / "pipelines").mkdir()
    project = Project(root=tmp_path, env={"FRAMEWORK_STATE_DIR": str(tmp_path / "state")})
    target = build_target("local", {"lake": {"url": str(tmp_path / "lake")},
                                    "warehouse": {"type": "duckdb", "path": "w.duckdb"}})
    return run_context(project=project, target=target, spec=PipelineSpec.model_validate({
        "name": "items",
        "source": {"connection": "shop", "table": "items", "primary_key": ["order_id", "item"]},
        "lake": {"path": "items"},
        "quality": {"expectations": expectations},
        "warehouse": {"schema": "landing"}}))


def batch(tmp_path: Path) -> str:
    schema = pa.schema([("order_id", pa.string()), ("item", pa.int64()), ("status", pa.string()),
                        ("price", pa.decimal128(12, 2))])
    path = tmp_path / "batch.parquet"
    pq.write_table(pa.Table.from_pylist([dict(zip(schema.names, r)) for r in ROWS], schema=schema),
                   path)
    return str(path)


def counts(messages: list[str]) -> list[tuple[str, int]]:
    return [(m.split("(")[0], int(re.search(r"failed: (\d+) unexpected", m).group(1)))  # type: ignore[union-attr]
            for m in messages]


def test_sql_counts_equal_great_expectations_counts(tmp_path: Path) -> None:
    ctx = context(tmp_path, EXPECTATIONS)
    path = batch(tmp_path)

    outcome = validate(ctx, path)

    assert outcome.checked == 6 and not outcome.warnings
    assert counts(outcome.errors) == [
        ("expect_column_values_to_not_be_null", 1),
        ("expect_column_values_to_be_between", 2),
        ("expect_column_values_to_be_in_set", 1),
        ("expect_compound_columns_to_be_unique", 2),
        ("expect_column_values_to_be_unique", 4),
    ]
    assert "e.g. [Decimal('-1.00'), Decimal('12.00')]" in outcome.errors[1]
    assert "e.g. [('o2', 1)]" in outcome.errors[3]
    by_gx = run_expectations(ctx, list(ctx.compiled.expectations),
                             pq.read_table(path).to_pandas())
    assert counts(by_gx.errors) == counts(outcome.errors)


def test_a_missing_column_names_its_expectation(tmp_path: Path) -> None:
    ctx = context(tmp_path, [EXPECTATIONS[0], {
        "expect_column_values_to_not_be_null": {"column": "updated_at"}}])

    with pytest.raises(StageError, match=r"^items: validate: expect_column_values_to_not_be_null"
                       r"\(column='updated_at'\): Binder Error: .*updated_at"):
        validate(ctx, batch(tmp_path))


def test_an_infinite_bound_is_a_number_not_a_column(tmp_path: Path) -> None:
    """A YAML `.inf` became `price > inf`, which DuckDB reads as a column named inf."""
    ctx = context(tmp_path, [
        {"expect_column_values_to_be_between": {"column": "price", "min_value": 0,
                                                "max_value": float("inf")}},
        {"expect_column_values_to_be_between": {"column": "item", "min_value": float("-inf"),
                                                "max_value": 1}}])

    outcome = validate(ctx, batch(tmp_path))

    assert counts(outcome.errors) == [("expect_column_values_to_not_be_null", 1),  # the key's
                                      ("expect_column_values_to_be_between", 1),
                                      ("expect_column_values_to_be_between", 2)]
    assert "e.g. [Decimal('-1.00')]" in outcome.errors[1]


# Text the project did not make: NULL, empty, multibyte (a combining accent, an emoji with a
# skin tone: two code points each), a trailing newline, a newline inside, Arabic-Indic digits.
CODES = ["12345", "12345\n", "1234", None, "", "ab", "AB", "a\nb", "é", "e\u0301", "日本",
         "👍🏽", "١٢٣٤٥", "abc\n", "a.b", "x" * 7]
TEXT_EXPECTATIONS = [
    {"expect_column_value_lengths_to_equal": {"column": "code", "value": 2}},
    {"expect_column_value_lengths_to_be_between": {"column": "code", "min_value": 2,
                                                   "max_value": 5}},
    {"expect_column_value_lengths_to_be_between": {"column": "code", "min_value": 1,
                                                   "strict_min": True}},
    {"expect_column_values_to_match_regex": {"column": "code", "regex": "^[0-9]{5}$"}},
    {"expect_column_values_to_match_regex": {"column": "code", "regex": "a.b"}},
    {"expect_column_values_to_not_match_regex": {"column": "code", "regex": "[^a-z0-9]"}},
    {"expect_column_values_to_match_regex_list": {"column": "code",
                                                  "regex_list": ["^[0-9]", "b$"]}},
    {"expect_column_values_to_match_regex_list": {"column": "code", "match_on": "all",
                                                  "regex_list": ["^a", "(?s)a.b"]}},
    {"expect_column_values_to_not_match_regex_list": {"column": "code",
                                                      "regex_list": ["日", "\n"]}},
]
# Left to GX: `\d` is Unicode in Python's `re` (the Arabic-Indic digits match), ASCII in RE2;
# a look-behind RE2 refuses; `{,2}`, which pandas may hand to RE2 (literal text there); a
# length of an int column with NULLs, which pandas reads `5.0`.
FALLBACKS = [
    {"expect_column_values_to_match_regex": {"column": "code", "regex": r"^\d{5}$"}},
    {"expect_column_values_to_match_regex": {"column": "code", "regex": "(?<=a)b"}},
    {"expect_column_values_to_match_regex": {"column": "code", "regex": "^.{,2}$"}},
    {"expect_column_value_lengths_to_equal": {"column": "number", "value": 1}},
]


def text_batch(tmp_path: Path) -> str:
    path = tmp_path / "text.parquet"
    numbers = [None if i % 5 == 0 else i for i in range(len(CODES))]
    pq.write_table(pa.table({"order_id": [f"o{i}" for i in range(len(CODES))],  # the key
                             "item": list(range(len(CODES))),
                             "code": pa.array(CODES, pa.string()),
                             "number": pa.array(numbers, pa.int64())}), path)
    return str(path)


def by_python(expectation: dict[str, Any]) -> int:
    """Unexpected non-NULL values by GX's definition, in plain Python: len(str), re.search."""
    name, kwargs = next(iter(expectation.items()))
    def rejects(value: str) -> bool:
        if name == "expect_column_value_lengths_to_equal":
            return len(value) != kwargs["value"]
        if name == "expect_column_value_lengths_to_be_between":
            low, high = kwargs.get("min_value"), kwargs.get("max_value")
            above = low is None or (len(value) > low if kwargs.get("strict_min") else
                                    len(value) >= low)
            return not (above and (high is None or len(value) <= high))
        hits = [re.search(p, value) is not None
                for p in kwargs.get("regex_list", [kwargs.get("regex")])]
        if "_not_match_" in name:
            return any(hits)
        return not (all(hits) if kwargs.get("match_on") == "all" else any(hits))

    return sum(rejects(v) for v in CODES if v is not None)


def answered_in_duckdb(path: str, expectations: list[dict[str, Any]]) -> list[int]:
    import duckdb

    from framework.spec.model import Expectation
    from framework.stages.validate import _duckdb_conditions, batch_types

    with duckdb.connect() as con:
        con.execute(f"CREATE VIEW batch AS SELECT * FROM read_parquet('{path}')")
        return list(_duckdb_conditions(con, [Expectation.model_validate(e)
                                             for e in expectations], batch_types(con)))


def test_text_lengths_and_regexes_are_counted_in_duckdb_as_great_expectations_counts(
        tmp_path: Path) -> None:
    ctx = context(tmp_path, TEXT_EXPECTATIONS)
    path = text_batch(tmp_path)

    outcome = validate(ctx, path)

    assert answered_in_duckdb(path, TEXT_EXPECTATIONS) == list(range(len(TEXT_EXPECTATIONS)))
    expected = [(next(iter(e)), by_python(e)) for e in TEXT_EXPECTATIONS]
    assert all(n for _, n in expected)  # every expectation fails somewhere: counts compared
    assert counts(outcome.errors) == expected
    by_gx = run_expectations(ctx, list(ctx.compiled.expectations),
                             pq.read_table(path).to_pandas())
    assert counts(by_gx.errors) == expected
    assert "e.g. ['1234', '', 'ab']" in outcome.errors[3]


def test_patterns_and_columns_duckdb_cannot_read_alike_are_left_to_great_expectations(
        tmp_path: Path) -> None:
    ctx = context(tmp_path, FALLBACKS)
    path = text_batch(tmp_path)

    outcome = validate(ctx, path)

    assert answered_in_duckdb(path, FALLBACKS) == []
    by_gx = run_expectations(ctx, list(ctx.compiled.expectations),
                             pq.read_table(path).to_pandas())
    assert counts(outcome.errors) == counts(by_gx.errors) == [
        ("expect_column_values_to_match_regex", by_python(FALLBACKS[0])),
        ("expect_column_values_to_match_regex", by_python(FALLBACKS[1])),
        ("expect_column_values_to_match_regex", by_python(FALLBACKS[2])),
        ("expect_column_value_lengths_to_equal", 12),  # '1.0' ... '15.0', not one NULL of 4
    ]


CLEAN = [("o1", 1, "paid", Decimal("5.00")), ("o1", 2, "paid", Decimal("1.00")),
         ("o2", 1, "paid", Decimal("2.00"))]
KEY_UNIQUE = {"expect_compound_columns_to_be_unique": {"column_list": ["item", "order_id"]}}
NOT_NULL = [{"expect_column_values_to_not_be_null": {"column": c}} for c in ("order_id", "item")]


@pytest.mark.parametrize(("rows", "expectations", "proven"), [
    (CLEAN, [KEY_UNIQUE, *NOT_NULL], True),
    (ROWS, [KEY_UNIQUE, *NOT_NULL], False),  # they fail: the load must look for itself
    # the key's not-null checks are there whatever is written (framework/project.py)
    (CLEAN, [KEY_UNIQUE, NOT_NULL[0]], True),
    (CLEAN, NOT_NULL, False),
    (CLEAN, [{"expect_column_values_to_be_unique": {"column": "order_id"}}, *NOT_NULL], False),
    (CLEAN, [{"expect_compound_columns_to_be_unique": {"column_list": ["order_id", "item"],
                                                       "mostly": 0.5}}, *NOT_NULL], False),
    # Great Expectations (and the SQL count) group by `column` when both are given, whatever
    # the name: here by price, unique, while the key (o1, 1) is there twice.
    ([("o1", 1, "paid", Decimal("5.00")), ("o1", 1, "paid", Decimal("6.00"))],
     [{"expect_compound_columns_to_be_unique": {"column": "price",
                                                "column_list": ["order_id", "item"]}},
      *NOT_NULL], False),
    (CLEAN, [{"expect_column_values_to_be_unique": {"column_list": ["order_id", "item"]}},
             *NOT_NULL], True),
])
def test_unique_keys_only_when_passed_checks_prove_them(
        tmp_path: Path, rows: list[tuple[Any, ...]], expectations: list[dict[str, Any]],
        proven: bool) -> None:
    """`Validation.unique_keys` tells the load it need not look for a key twice: only exact
    checks that passed on this batch may say so."""
    ctx = context(tmp_path, [{**e, "severity": "warn"} for e in expectations])
    schema = pa.schema([("order_id", pa.string()), ("item", pa.int64()), ("status", pa.string()),
                        ("price", pa.decimal128(12, 2))])
    path = tmp_path / "batch.parquet"
    pq.write_table(pa.Table.from_pylist([dict(zip(schema.names, r)) for r in rows], schema=schema),
                   path)

    outcome = validate(ctx, str(path))

    assert outcome.unique_keys is proven
    assert outcome.passed is (rows is not ROWS)  # a NULL key fails whatever the severity
