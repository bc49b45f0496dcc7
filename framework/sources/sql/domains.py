"""PostgreSQL domains, read as their base types: by the extract and by `framework init` alike,
so a column typed `positive_amount` (a domain over numeric(12,2)) lands as that decimal and is
declared as one."""

from __future__ import annotations

import re
from typing import Any


def base_types(engine: Any, reflected: list[dict[str, Any]]) -> dict[str, Any]:
    """Each column of an inspector's `get_columns` with its domain (if any) unwrapped to the
    base type, a numeric with its precision and scale."""
    numerics = _numeric_bases(engine, {c["name"]: c["type"] for c in reflected})
    return {c["name"]: numerics.get(c["name"]) or unwrapped(c["type"]) for c in reflected}


def unwrapped(sql_type: Any) -> Any:
    """A domain's base type (a domain over a domain: the innermost); any other type as is."""
    from sqlalchemy.dialects import postgresql

    while isinstance(sql_type, postgresql.DOMAIN):
        sql_type = sql_type.data_type
    return sql_type


def _numeric_bases(engine: Any, types: dict[str, Any]) -> dict[str, Any]:
    """The columns typed by a PostgreSQL domain over a numeric (directly or through other
    domains), as that numeric with its precision and scale: SQLAlchemy reflects a domain's base
    type without them (`numeric(50,20)` as `NUMERIC()`), which would read a wide numeric as
    decimal(38,9). One catalog query, only when the table has such a column."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql

    from framework.sources.sql.as_text import exact_numeric

    domains = {column: t for column, t in types.items() if isinstance(t, postgresql.DOMAIN)
               and exact_numeric(unwrapped(t))}
    if not domains:
        return {}
    with engine.connect() as conn:
        found = conn.execute(sa.text(
            "SELECT t.oid, n.nspname AS schema, t.typname AS name, t.typbasetype AS base_oid, "
            "format_type(t.typbasetype, t.typtypmod) AS base, pg_type_is_visible(t.oid) AS visible "
            "FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace "
            "WHERE t.typtype = 'd'")).all()
    by_oid = {row.oid: row for row in found}
    bases = {}
    for column, domain in domains.items():  # a visible domain is reflected without its schema
        row = next((r for r in found if r.name == domain.name and
                    (r.schema == domain.schema if domain.schema else r.visible)), None)
        while row is not None and row.base_oid in by_oid:  # over a domain: the inner one's base
            row = by_oid[row.base_oid]
        digits = re.fullmatch(r"numeric\((\d+),(\d+)\)", row.base) if row else None
        if digits:
            bases[column] = sa.Numeric(int(digits[1]), int(digits[2]))
    return bases

