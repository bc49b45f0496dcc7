"""Exact numerics read as their text: wider than the warehouses' 38 digits, or declared
`string` in `columns:` for a numeric without precision."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


class WideDecimal(sa.Text):
    """Selected as `CAST(c AS text)` by every reader, so no driver rounds it (connectorx keeps
    10 decimal places, Arrow's decimal256 reaches DuckDB as DOUBLE) and it lands as a string
    the warehouse holds exactly; cast it in the transform or dbt where it fits. A text type to
    dlt and the readers."""

    def column_expression(self, column: Any) -> Any:
        return sa.cast(column, sa.Text())
