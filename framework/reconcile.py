"""Reconcile a pipeline: do the source and the warehouse hold the same keys and versions?

Both sides are read as Arrow (keys and cursor only) and compared in DuckDB: counts, keys
missing on either side, rows whose cursor differs (a stale version), rows the warehouse holds
twice (a key twice in a merged table, a key's version twice in an appended one), and an
order-independent checksum over `key|cursor` per row. Deletes by reconciliation use the keys
found missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from framework.context import RunContext
from framework.errors import StageError
from framework.stages.load import Warehouse, now_as_load_id, quote
from framework.stages.load.duckdb import merged_decimal, scratch_connection

EXAMPLES = 5  # keys named per kind of difference


@dataclass(frozen=True)
class Reconciliation:
    pipeline: str
    source_rows: int
    warehouse_rows: int
    missing: int  # in the source, not in the warehouse
    extra: int  # in the warehouse, no longer in the source (deleted there)
    stale: int  # in both, with a different cursor value
    source_checksum: str
    warehouse_checksum: str
    duplicates: int = 0  # warehouse rows repeating a key (merge) or a key's version (append)
    # A few keys of each difference, so "3 missing" can be looked up: missing/extra/stale ->
    # [{key column: value as text}]
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    extra_keys: Any = None  # Arrow table of the extra keys, for delete reconciliation
    read_at: str | None = None  # when the source was read, as a load id: the deletes' time

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.stale or self.duplicates) and \
            self.source_rows == self.warehouse_rows and \
            self.source_checksum == self.warehouse_checksum

    def differences(self) -> list[str]:
        """One line per kind of difference, naming its first keys."""
        said = {"missing": "missing from the warehouse", "extra": "gone from the source",
                "stale": "another version in the warehouse"}
        return [f"{self.pipeline}: {said[kind]}: " + "; ".join(
                    ", ".join(f"{k}={v}" for k, v in key.items()) for key in keys) +
                (" ..." if getattr(self, kind) > len(keys) else "")
                for kind, keys in self.examples.items()]

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("extra_keys", "read_at")} | \
            {"equal": self.equal}


def reconcile(ctx: RunContext, warehouse: Warehouse) -> Reconciliation:
    spec = ctx.spec
    keys = list(spec.source.primary_key)
    cursor = spec.cursor
    columns = keys + ([cursor] if cursor else [])
    read_at = now_as_load_id()  # a key missing from this read was deleted by now
    source = ctx.source.current_keys(ctx, columns)  # the adapter's read (framework/sources)
    landed = warehouse.keys(ctx, columns)
    # Capped and spilling as every stage's own DuckDB: both sides' keys of a large table.
    con = scratch_connection(ctx.state_dir)
    try:
        con.register("src_raw", source)
        if landed is None:
            landed = source.schema.empty_table()
        con.register("wh_landed", landed)
        # An append table keeps every version of a key: the source holds its latest. Compared
        # so, a version appended twice was hidden: counted on its own.
        version = cursor if spec.warehouse.write_disposition == "append" else None
        once = ", ".join(map(quote, columns if version else keys))
        duplicates = int(con.sql(f"SELECT count(*) - count(DISTINCT row({once})) FROM wh_landed"
                                 ).fetchall()[0][0])
        latest = ""
        if version:
            latest = (f" QUALIFY row_number() OVER (PARTITION BY "
                      f"{', '.join(map(quote, keys))} ORDER BY {quote(version)} DESC "
                      "NULLS LAST) = 1")
        con.execute(f"CREATE TEMP VIEW wh_raw AS SELECT * FROM wh_landed{latest}")
        # A number compares as a number: the source's 1 is the warehouse's 1.000000000 (an
        # unbounded numeric lands as decimal(38,9)); as text every key differed, and a
        # reconciled delete removed every row.
        types = {side: {r[0]: r[1] for r in con.execute(f"DESCRIBE {side}_raw").fetchall()}
                 for side in ("src", "wh")}
        common = {c: merged_decimal(types["src"][c], types["wh"][c]) or "DOUBLE"
                  for c in columns if _numeric(types["src"].get(c)) and
                  _numeric(types["wh"].get(c)) and types["src"][c] != types["wh"][c]}
        aligned = ", ".join(f"CAST({quote(c)} AS {t}) AS {quote(c)}" for c, t in common.items())
        for side in ("src", "wh"):
            con.execute(f"CREATE TEMP VIEW {side}_typed AS SELECT * " +
                        (f"REPLACE ({aligned}) " if aligned else "") + f"FROM {side}_raw")
        for side, relation in (("src", "src_typed"), ("wh", "wh_typed")):
            con.execute(f"CREATE TEMP TABLE {side} AS SELECT {_normalised(keys, spec.cursor)} "
                        f"FROM {relation}")
        on = " AND ".join(f"a.k{i} = b.k{i}" for i in range(len(keys)))

        def count(sql: str) -> int:
            return int(con.sql(sql).fetchall()[0][0])

        named = ", ".join(f"a.k{i} AS {quote(k)}" for i, k in enumerate(keys))
        # The warehouse's keys gone from the source, joined once: deleted, counted and named.
        con.execute(f"CREATE TEMP TABLE gone AS SELECT a.* FROM wh a ANTI JOIN src b ON {on}")
        differing = {"missing": f"FROM src a ANTI JOIN wh b ON {on}", "extra": "FROM gone a",
                     "stale": f"FROM src a JOIN wh b ON {on} "
                              "WHERE a.cursor IS DISTINCT FROM b.cursor"}
        missing = count(f"SELECT count(*) {differing['missing']}")
        extra_keys = con.sql(f"SELECT {named} {differing['extra']}").to_arrow_table()
        stale = count(f"SELECT count(*) {differing['stale']}")
        found = {"missing": missing, "extra": extra_keys.num_rows, "stale": stale}
        examples = {kind: [dict(zip(keys, row)) for row in con.sql(
                        f"SELECT {named} {rows} ORDER BY ALL LIMIT {EXAMPLES}").fetchall()]
                    for kind, rows in differing.items() if found[kind]}
        checksum = "SELECT coalesce(bit_xor(hash(row_text)), 0)::VARCHAR FROM {}"
        return Reconciliation(
            spec.name, count("SELECT count(*) FROM src"), count("SELECT count(*) FROM wh"),
            missing, extra_keys.num_rows, stale,
            str(con.sql(checksum.format("src")).fetchall()[0][0]),
            str(con.sql(checksum.format("wh")).fetchall()[0][0]),
            duplicates, examples, extra_keys, read_at)
    finally:
        con.close()


def _numeric(duckdb_type: str | None) -> bool:
    return duckdb_type is not None and (duckdb_type.startswith("DECIMAL") or duckdb_type in (
        "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
        "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE"))


def _normalised(keys: list[str], cursor: str | None) -> str:
    """Keys as text and the cursor as a timestamp (or text), so both sides compare alike."""
    parts = [f"CAST({quote(k)} AS VARCHAR) AS k{i}" for i, k in enumerate(keys)]
    # Timestamps compare as timestamps (SQLite hands them over as text); other cursors as text.
    cursor_sql = (f"coalesce(strftime(TRY_CAST({quote(cursor)} AS TIMESTAMP), "
                  f"'%Y-%m-%d %H:%M:%S.%f'), CAST({quote(cursor)} AS VARCHAR))"
                  if cursor else "NULL::VARCHAR")
    parts.append(f"{cursor_sql} AS cursor")
    text = " || '|' || ".join([*(f"coalesce(CAST({quote(k)} AS VARCHAR), '')" for k in keys),
                               f"coalesce({cursor_sql}, '')"])
    parts.append(f"{text} AS row_text")
    return ", ".join(parts)


def apply_deletes(ctx: RunContext, warehouse: Warehouse, result: Reconciliation,
                  allow_mass_delete: bool = False) -> int:
    """Reconciliation deletes: the warehouse rows whose keys are gone from the source.

    An empty or partial source read (a wrong schema, row-level security, a truncate-and-reload
    in progress) looks exactly like mass deletion, so more than `deletes.max_fraction` of the
    landing table stops the run, deleting nothing, unless the run allows it.
    """
    deletes = ctx.spec.deletes
    if deletes is None or deletes.reconcile is None:
        return 0
    gone, rows = result.extra, result.warehouse_rows
    if rows and gone / rows > deletes.max_fraction and not allow_mass_delete:
        verb = "remove" if deletes.reconcile == "remove" else "mark deleted"
        table = f"{ctx.spec.warehouse.db_schema}.{ctx.spec.table}"
        raise StageError(ctx.spec.name, "deletes", f"reconcile would {verb} {gone} of {rows} "
                         f"row(s) of {table} ({gone / rows:.0%}), more than deletes.max_fraction "
                         f"{deletes.max_fraction:g} ({deletes.max_fraction:.0%}); nothing was "
                         "deleted. Check that the source read is complete, or run with "
                         "--allow-mass-delete to apply it")
    # Before the delete: a kill between the two re-reads the boundary once more, harmless.
    if gone and ctx.spec.cursor:
        from framework.sources.sql.cursor import last_read, mark_reconciled

        # As of the source read it decided on: a read before it may hold a row it deletes,
        # and not every read is a batch (one that sent nothing on is none), so the newest
        # batch alone could date such a read after the delete; nor the clock alone, when the
        # read was another worker's, whose clock runs ahead.
        through = max(filter(None, (warehouse.latest_batch(ctx), result.read_at,
                                    last_read(ctx))), default=None)
        mark_reconciled(ctx, through,
                        warehouse.done_batches(ctx) - set(warehouse.fingerprints(ctx)))
    return warehouse.apply_deletes(ctx, result.extra_keys, str(deletes.reconcile),
                                   as_of=result.read_at)
