"""Rows with no cursor (`on_null: include`): read by every run, sent on only when changed.

init writes `on_null: include` for an `updated_at` that is NULL until a row's first update, so
half a table may have no cursor, and every read takes those rows again: with one new order, a
run extracted, transformed and merged every never-updated row. The read cannot tell which of
them changed (they have no cursor), but what it read last time can: each read keeps a ledger
of the rows it met with no cursor, each key with a 64-bit hash of the row's values, in the
lake beside dlt's state (`raw/_framework_nulls/<pipeline>/<load id>.parquet`), and the next
read sends on only the rows whose key and hash are not in it.

Why a row left out is already where it belongs: the ledger's read R met it with these values,
so R's batch or an earlier one carried this very version (by the same rule, back to the first
read that met it), and it went where every version of a cursor row goes: to the warehouse, or
to quarantine, to be replayed or released. The ledger is only trusted

- when the boundary entry dlt keeps with the lake names its read (a run killed before its
  state was committed left a ledger no state names: never read);
- when reconcile deleted nothing since that read (a row deleted and then inserted again with the
  same values would match; cursor.read_trusted), and not on a full refresh;
- when its file reads and its keys compare with the batch's.

Otherwise every row with no cursor is sent on, as before: merge absorbs them. What is left is
chance: a changed row whose 64-bit hash equals the old one's. DuckDB's `hash` may differ
between its versions; an upgrade then sends every such row on once.
"""

from __future__ import annotations

import posixpath
from typing import Any

from framework.context import RunContext
from framework.lake import RAW
from framework.stages.load import quote

# The boundary entry's key for the ledger that holds the rows the last read met: {"read": the
# load id it is named by, "rows": how many}. Set as the read goes, so it is committed with the
# read's state; the file follows when the read is done. A read that met the very rows of the
# last ledger names that one again, and writes none.
NULLS_KEY = "nulls"
_HASH = "__framework_row_hash"
_PLACE = "__framework_row_place"


class NullRowsLedger:
    """Drops the rows with no cursor that the last read met unchanged, and keeps this read's
    ledger (every row with no cursor it meets) for the next one."""

    def __init__(self, ctx: RunContext, con: Any, prior: dict[str, Any] | None, trusted: bool,
                 load_id: str) -> None:
        self.ctx = ctx
        self.con = con  # a scratch DuckDB connection (UTC), shared with the boundary filter
        self.keys = list(ctx.spec.source.primary_key)
        self.load_id = load_id
        self.met = 0
        self.changed = False  # a row met that the last ledger does not hold as it is
        self.failed = False  # a batch DuckDB could not hash: no ledger from this read
        self.prior: str | None = None  # the load id of the ledger compared with
        read, rows = (prior.get("read"), prior.get("rows")) if isinstance(prior, dict) \
            else (None, None)
        self.prior_rows = rows if isinstance(rows, int) else None
        # read from the lake with the first row with no cursor: a read that meets none
        # never asks
        self.to_load = read if trusted and isinstance(read, str) else None

    @property
    def entry(self) -> dict[str, Any]:
        """The boundary entry's NULLS_KEY for the rows met so far: the last ledger again when
        they are exactly its rows (each met unchanged, as many), else this read's (none
        written when hashing failed: the next read then sends on every row)."""
        if self.prior is not None and not (self.changed or self.failed) \
                and self.met == self.prior_rows:
            return {"read": self.prior, "rows": self.met}
        return {"read": self.load_id, "rows": self.met}

    def fresh(self, rows: Any) -> Any:
        """`rows` (all with no cursor) less those whose key and values the last read met."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.failed or not rows.num_rows:
            return rows
        if self.to_load is not None:
            self.prior = self.to_load if self._load(self.to_load) else None
            self.to_load = None
        keys = ", ".join(quote(k) for k in self.keys)
        # Each row's place, 1..n (a running sum of ones: no Python value, which would import
        # pandas), so that the changed rows are taken from `rows` as read, types untouched.
        first = rows.column(0)
        place = pc.cumulative_sum(pc.cast(pc.or_(pc.is_valid(first), pc.is_null(first)),
                                          pa.int64()))
        self.con.register("_nulls", rows.append_column(_PLACE, place))
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE _hashed AS SELECT {_PLACE}, {keys}, "
                             f"{row_hash(rows.schema)} AS {_HASH} FROM _nulls")
        except Exception:  # noqa: BLE001 - a type DuckDB does not take: every row sent on
            self.prior, self.failed = None, True
            return rows
        finally:
            self.con.unregister("_nulls")
        self.con.execute(f"{'INSERT INTO' if self.met else 'CREATE OR REPLACE TEMP TABLE'} "
                         f"_met {'' if self.met else 'AS'} SELECT {keys}, {_HASH} FROM _hashed")
        self.met += rows.num_rows
        if self.prior is None:
            self.changed = True
            return rows
        on = " AND ".join(f"h.{quote(k)} = l.{quote(k)}" for k in (*self.keys, _HASH))
        try:
            places = self.con.sql(f"SELECT h.{_PLACE} - 1 FROM _hashed AS h ANTI JOIN _ledger "
                                  f"AS l ON {on} ORDER BY 1").to_arrow_table().column(0)
        except Exception:  # noqa: BLE001 - keys that no longer compare (a type changed)
            self.prior, self.changed = None, True
            return rows
        self.changed = self.changed or len(places) > 0
        return rows if len(places) == rows.num_rows else rows.take(places)

    def close(self) -> None:
        """Write this read's ledger when the entry names it (none when the read met no such
        row: the next read then sends on every one), and remove those no state can name any
        more: all but the one named and the one compared with, which a read that fails
        before its state is committed leaves named."""
        import io

        import pyarrow.parquet as pq

        named = self.entry["read"]
        if named != self.load_id or not self.met or self.failed:
            return  # nothing written: nothing more to remove either
        buffer = io.BytesIO()
        pq.write_table(self.con.sql("SELECT * FROM _met").to_arrow_table(), buffer)
        self.ctx.lake.write_bytes(self._path(self.load_id), buffer.getvalue())
        folder = posixpath.dirname(self._path(self.load_id))
        keep = {self._path(named), self._path(self.prior or named)}
        fs = self.ctx.lake.fs
        if fs.exists(folder):
            for path in fs.ls(folder, detail=False):
                if path not in keep and not path.endswith(".partial"):
                    fs.rm(path)

    def _load(self, read: str) -> bool:
        import pyarrow.parquet as pq

        try:
            with self.ctx.lake.fs.open(self._path(read), "rb") as handle:
                ledger = pq.read_table(handle)
        except (OSError, ValueError):  # gone (a run killed before writing it), or torn
            return False
        if not set(self.keys) | {_HASH} <= set(ledger.column_names):
            return False
        self.con.register("_ledger", ledger)  # read in place by the anti-join, not copied
        return True

    def _path(self, load_id: str) -> str:
        return self.ctx.lake.path(RAW, "_framework_nulls", self.ctx.spec.name,
                                  f"{load_id}.parquet")


def row_hash(schema: Any) -> str:
    """DuckDB's 64-bit hash of a row's values (columns in name order, dlt's own left out).
    A nested value is hashed as its text: `hash` takes an empty list for NULL, and
    [[1], [2]] for [[1, 2]]."""
    import pyarrow as pa

    values = [quote(f.name) if not pa.types.is_nested(f.type)
              else f"CAST({quote(f.name)} AS VARCHAR)"
              for f in sorted(schema, key=lambda f: f.name) if not f.name.startswith("_dlt")]
    return f"hash({', '.join(values)})"
