"""Exact numerics wider than the warehouses' 38 digits, read as their text."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


class WideDecimal(sa.types.TypeDecorator):  # type: ignore[type-arg]
    """Selected as `CAST(c AS text)` by every reader, so no driver rounds it (connectorx keeps
    10 decimal places, Arrow's decimal256 reaches DuckDB as DOUBLE) and it lands as a string
    the warehouse holds exactly; cast it in the transform or dbt where it fits."""

    impl = sa.Text
    cache_ok = True

    def column_expression(self, column: Any) -> Any:
        return sa.cast(column, sa.Text)
