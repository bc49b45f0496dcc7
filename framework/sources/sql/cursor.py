"""Exact cursor comparisons and the boundary de-duplication of the extract.

Two rules make incremental extraction exact whatever the source's spelling of a value:

- The SQL filter is a guaranteed *superset* of `cursor >= start`. Most databases compare their
  temporal types exactly, but SQLite keeps timestamps as text in the writer's spelling
  (`...21:19:00`, `...T21:19:00.5`, `...+02:00`, a bare date): as text, `'...21:19:00'` sorts
  below `'...21:19:00.000000'` and offsets do not sort at all. There the filter compares
  `julianday()` (which parses every spelling) with a second of slack, behind an index-friendly
  text bound a day below. dlt then filters exactly on the parsed values, in Arrow.
- The rows at the previous maximum (the boundary) are read again on every run (`>=`, with
  dlt's own hash de-duplication off) and dropped when they equal the latest version of their key
  already in the lake's raw batches at that value: a DuckDB anti-join over Arrow. A row changed
  at the boundary value differs, so it is extracted. The state this needs is the boundary value
  and the ids of the loads that hold rows at it (`BOUNDARY_KEY` in the resource's dlt state,
  kept with the lake by dlt), whatever the number of rows at the boundary.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from framework.context import RunContext
from framework.errors import StageError
from framework.sources.sql.null_rows import NULLS_KEY, NullRowsLedger
from framework.sources.sql.versions import VERSIONS_KEY, BeforeRead
from framework.spec.columns import dlt_column_name
from framework.stages.load import quote

# Our entry in the resource's dlt state: {"value": boundary cursor value, "loads": [load ids],
# "digests": {key digest: row digest} of the latest version of each key at the boundary, or
# None when more than DIGEST_ROWS rows share it; on PostgreSQL "versions": the fingerprint of
# the rows at the maximum (or in the look-back window up to it) just before the last read
# (framework/sources/sql/versions.py); with a look-back window, "window": {key digest: [row
# digest, the first load that carried that version]} of every row the last read met (with
# `on_null: include` alone, of every row with no cursor it met), or None past WINDOW_ROWS}.
BOUNDARY_KEY = "framework_boundary"
WINDOW_KEY = "window"
WINDOW_READ = "window_read"  # the load of the read that kept the window's digests
# landed_at's column: whether a version's load was kept out of the warehouse.
KEPT_OUT = "__framework_kept_out"
# Up to this many rows at the boundary, their digests spare the pre-check a look at the lake
# (about 40 bytes of state each).
DIGEST_ROWS = 64
# Up to this many rows in a look-back window, their digests let the pre-check tell a window
# read again unchanged from a late row (a quiet table's window holds its last few changes).
WINDOW_ROWS = 256
# SQLite's julianday() keeps milliseconds in a double: compare with a second of slack, then
# let the exact Arrow filter decide.
SQLITE_SLACK_DAYS = 1 / 86400


def lag_in_cursor_units(ctx: RunContext, sql_type: Any) -> float | None:
    """The spec's `lag` in the unit dlt applies to the cursor's type, or None for no lag.

    dlt reads `lag` as seconds for timestamps, days for dates and raw units for numbers.
    A duration is meaningless on a number or text cursor: refused in one line.
    """
    import sqlalchemy as sa

    incremental = ctx.spec.source.incremental
    if incremental is None or not incremental.lag_seconds:
        return None
    where = f"pipelines/{ctx.spec.name}.yml: source.incremental.lag"
    if isinstance(sql_type, (sa.DateTime, sa.types.NullType)):  # NullType: a query's column
        return incremental.lag_seconds
    if isinstance(sql_type, sa.Date):
        # Whole days: a look-back window may only widen, never narrow.
        return float(math.ceil(incremental.lag_seconds / 86400))
    if isinstance(sql_type, sa.Numeric) and not isinstance(sql_type, (sa.Integer, sa.Float)) \
            and sql_type.asdecimal:  # read as Decimal
        raise StageError(ctx.spec.name, "extract", f"{where}: dlt has no look-back window for "
                         f"a decimal cursor ('{incremental.cursor}', {sql_type}); remove lag, "
                         "or use an integer or timestamp cursor")
    if isinstance(sql_type, (sa.Integer, sa.Numeric, sa.Float)):  # SQLAlchemy 2.1: not Numeric
        if isinstance(incremental.lag, str):
            raise StageError(ctx.spec.name, "extract", f"{where}: '{incremental.lag}' is a "
                             f"duration but cursor '{incremental.cursor}' is a number "
                             f"({sql_type}); give the look-back in cursor units (lag: 100)")
        return float(incremental.lag)
    raise StageError(ctx.spec.name, "extract", f"{where}: a look-back window has no meaning "
                     f"for cursor '{incremental.cursor}' ({sql_type}); remove lag")


def superset_where(dialect: str, column: Any, start: Any) -> Any:
    """A condition true for every row whose cursor is `>= start`, whatever its spelling."""
    import sqlalchemy as sa

    if isinstance(start, (datetime, date)) and dialect == "sqlite":
        text = _utc_text(start)
        low = (_as_date(start) - timedelta(days=1)).isoformat()
        day = sa.func.julianday(column)
        # A spelling julianday() cannot read ('...12:02:00+0200') passes, and the cursor's own
        # comparison keeps it or not: by SQL alone it was skipped for good. The text bound
        # stays outside the OR, so the cursor's index still serves the read.
        return sa.and_(column >= sa.literal(low, sa.String()),
                       sa.or_(day >= sa.func.julianday(sa.literal(text, sa.String()))
                              - SQLITE_SLACK_DAYS, day.is_(None)))
    if isinstance(start, datetime) and dialect == "postgresql" \
            and isinstance(column.type, sa.types.NullType):
        # A query's column has no type to say whether it is zoned: an aware bound reads as
        # the same instant against timestamptz, and as its UTC wall time against timestamp,
        # whatever the session's zone (a reader that cannot set it: connectorx).
        return column >= _naive_utc(start).replace(tzinfo=UTC)
    return column >= exact_bound(column, start)


def exact_bound(column: Any, value: Any) -> Any:
    """`value` as a server (not SQLite) compares it with `column`: timestamps as UTC."""
    return _bound_for(column, value) if isinstance(value, datetime) else value


def query_adapter(ctx: RunContext, dialect: str, wrap: Callable[[Any, Any], Any] | None,
                  before_read: Callable[[Any, Any], None] | None = None) -> Callable[..., Any]:
    """dlt's `query_adapter_callback`: dlt's SELECT with our superset filter for its range.
    dlt calls it right before it runs its query: `before_read(engine, table)` runs then."""
    import sqlalchemy as sa

    from framework.sources.sql.as_text import read_as_null

    incremental_spec = ctx.spec.source.incremental

    def adapt(select: Any, table: Any, incremental: Any = None, engine: Any = None) -> Any:
        if before_read is not None and engine is not None:
            before_read(engine, table)
        query = select
        if incremental is not None and incremental_spec is not None:
            column = table.c[incremental_spec.cursor]
            _stored_as_column(ctx, incremental, column)
            start, _ = incremental.get_current_range()
            clause: Any = sa.true()
            if start is not None:
                clause = superset_where(dialect, column, start)
                # `fail` reads them too: dlt stops at the first one (filtered out here, a row
                # with no cursor inserted after the first run was skipped for good).
                if incremental_spec.on_null in ("include", "fail"):
                    clause = sa.or_(clause, read_as_null(column))
            if incremental_spec.on_null == "exclude":
                clause = sa.and_(clause, column.isnot(None))
            query = table.select().where(clause)
        return wrap(query, table) if wrap else query

    return adapt


def _stored_as_column(ctx: RunContext, incremental: Any, column: Any) -> None:
    """A cursor column that gained or lost its time zone (`timestamp` -> `timestamptz`, a
    common migration) meets a stored last value of the other kind. dlt adapts it at the
    first row, but with a lag it then compares the two as stored (dlt 1.31), failing every run
    with "can't compare offset-naive and offset-aware datetimes". The stored value is moved to
    the column's kind first (a naive value is UTC here), before dlt reads it."""
    zoned = getattr(column.type, "timezone", None)
    # The state dlt bound the cursor to, the very dict it keeps in the pipeline's state: the
    # Arrow reader builds its query in a thread of its own, where dlt's resource state cannot
    # be reached by name.
    state = getattr(incremental, "_cached_state", None)
    if not isinstance(zoned, bool) or not isinstance(state, dict):  # not a timestamp column
        return
    last = state.get("last_value")
    if isinstance(last, datetime) and (last.tzinfo is not None) != zoned:
        state["last_value"] = _bound_for(column, last)
        ctx.warn(f"cursor '{column.name}' is now a timestamp {'with' if zoned else 'without'} "
                 f"time zone: its last value {last} is read as UTC; if the migration wrote "
                 "local times, run once with --full-refresh")


def _naive_utc(value: datetime) -> datetime:
    """A plain (stdlib) naive UTC datetime: naive values are UTC throughout the framework, and
    dlt's state hands back pendulum datetimes, which SQLAlchemy and Arrow treat apart."""
    wall = datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                    value.microsecond)
    offset = value.utcoffset()
    return wall - timedelta(microseconds=round(offset.total_seconds() * 10**6)) if offset \
        else wall


def _utc_text(value: date) -> str:
    if isinstance(value, datetime):
        return _naive_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value.isoformat()


def _as_date(value: date) -> date:
    return _naive_utc(value).date() if isinstance(value, datetime) else value


def _bound_for(column: Any, start: datetime) -> datetime:
    """`start` as the column's type compares it: aware UTC for a zoned column (the session's
    time zone never enters), naive UTC otherwise (a naive column holds UTC here)."""
    naive = _naive_utc(start)
    return naive.replace(tzinfo=UTC) if getattr(column.type, "timezone", False) else naive


# --- the boundary -------------------------------------------------------------------------


def resource_name(spec: Any) -> str:
    """The dlt resource a SQL pipeline's state sits under: `sql_table` names it by its table
    (a query's pipeline, by the pipeline)."""
    return str(getattr(spec.source, "table", None) or spec.name)


def boundary_state(state: Any, resource_name: str) -> dict[str, Any] | None:
    """Our boundary entry in a dlt pipeline state, or None before any."""
    for source in (state.get("sources") or {}).values():
        entry = ((source.get("resources") or {}).get(resource_name) or {}).get(BOUNDARY_KEY)
        if entry and entry.get("value") is not None:
            return dict(entry)
    return None


def mark_reconciled(ctx: RunContext, through: str | None, unloaded: set[str]) -> None:
    """Say, with the lake, that reconcile deleted (or marked) rows as of `through` (a load id:
    the newest of its batches, the time of its source read and the last read the local state
    names, so every read up to it):
    the boundary's lake rows no longer say what the warehouse holds, so a row deleted and then
    inserted again, unchanged, at the boundary would be dropped as landed, missing for good.
    `unloaded`: the batches the warehouse did not hold (quarantined or released), whose
    boundary rows still say what was kept out on purpose."""
    import json

    from framework.lake import RECONCILED

    if through:
        ctx.lake.write_text(ctx.lake.record(RECONCILED, ctx.spec.name),
                            json.dumps({"through": through, "unloaded": sorted(unloaded)}))
        ctx.reconciled = (through, frozenset(unloaded))


def last_read(ctx: RunContext) -> str | None:
    """The last read whose record of the rows it met (a window's digests, the ledger of rows
    with no cursor: an older ledger it named again is older still) this machine's dlt state
    names: what those records are trusted by."""
    from framework.stages.dlt_state import STATE_FILE, local_state

    state = local_state(ctx.state_dir / "dlt" / ctx.spec.name / STATE_FILE)
    boundary = boundary_state(state, resource_name(ctx.spec)) if state else None
    read = boundary.get(WINDOW_READ) if boundary is not None else None
    return read if isinstance(read, str) else None


def settle_replayed(ctx: RunContext, loaded: Callable[[], set[str]]) -> None:
    """Batches held back at reconcile's last delete and loaded since (replayed): their loads
    skipped the keys that delete took (read before it), so their rows no longer say what was
    kept out; read before the delete, they are stale like the batches loaded then. `loaded`
    (the warehouse's loaded batches) is asked only when the record names held-back batches;
    the ledger, not the replay, says so, whenever a replay was killed. A pipeline with no
    cursor has no such record (`mark_reconciled`): its lake is not asked."""
    if not ctx.spec.cursor:
        return
    through, unloaded = ctx.reconciled
    if unloaded:
        replayed = unloaded & loaded()
        if replayed:
            ctx.reconciled = (through, unloaded - replayed)


@dataclass(frozen=True)
class BoundaryLoads:
    """The lake loads holding the boundary's rows, as reconcile's last delete left them.

    A load the warehouse held up to that delete (`stale`) no longer says what it holds: the
    delete may have taken a row out, and the row, inserted again unchanged, matches its copy
    there. Only the other loads (`proof`) tell a row read again from one that landed: those
    after the delete, and those the warehouse did not hold then (`kept_out`: quarantined,
    released), whose rows stay out on purpose unless a stale load held their key too."""

    proof: list[str] | None  # None: a state from before the list, every raw batch is looked in
    stale: list[str]
    kept_out: frozenset[str]

    @property
    def outdated(self) -> bool:
        """No load proves anything and one was stale: every boundary row is read again."""
        return bool(self.stale) and not self.proof


def boundary_loads(ctx: RunContext, loads: list[str] | None) -> BoundaryLoads:
    """`loads` (the boundary entry's) split by `ctx.reconciled`."""
    through, unloaded = ctx.reconciled if loads else (None, frozenset())
    if through is None or loads is None:
        return BoundaryLoads(loads, [], frozenset())
    stale = [load for load in loads if load <= through and load not in unloaded]
    return BoundaryLoads([load for load in loads if load not in stale], stale,
                         frozenset(load for load in loads if load in unloaded))


def read_trusted(ctx: RunContext, read: Any) -> bool:
    """Whether what read `read` (a load id) kept of the rows it met is still true of the
    warehouse: it came after reconcile's last delete. A row deleted since is still among
    them, and inserted again unchanged it would match."""
    through, unloaded = ctx.reconciled
    return through is None or (isinstance(read, str) and read > through
                               and read not in unloaded)


def boundary_tables(ctx: RunContext, con: Any, value: Any, loads: BoundaryLoads,
                    columns: dict[str, str]) -> tuple[list[str] | None, bool]:
    """Temp tables `landed` (landed_at over the proof loads) and, when a kept-out copy may
    stand for a row a stale load held too, `loaded` (those loads' rows). Returns the columns
    `landed` has (None: every row is read) and whether `loaded` was made, for unlanded_sql."""
    needs_keys = bool(loads.stale and loads.kept_out)
    landed = landed_at(ctx, con, value, loads.proof, columns,
                       kept_out=loads.kept_out if needs_keys else frozenset())
    if landed is None or not needs_keys:
        return landed, False
    if landed_at(ctx, con, value, loads.stale, columns, "loaded") is None:
        return None, False  # their files are gone: every row is read again
    return landed, True


def landed_at(ctx: RunContext, con: Any, value: Any, loads: list[str] | None,
              columns: dict[str, str], name: str = "landed",
              kept_out: frozenset[str] = frozenset()) -> list[str] | None:
    """Create temp table `name` in DuckDB `con`: the latest version of each key among the lake's raw
    rows whose cursor equals `value`, with `columns` (lake name -> source name) in that order,
    and with `kept_out`, a last column KEPT_OUT: whether that version's load is one of them.
    `loads` None (state from before the boundary was kept) looks in every raw batch. Returns
    the source names of the columns the lake's rows have (a column the source added or renamed
    since has none to compare), or None when no raw batch can hold such rows. `con` is a
    `scratch_connection` (in UTC)."""
    from framework.lake import (
        RAW,
        damaged,
        first_unreadable,
        footer_unreadable,
        load_of,
        unreadable,
    )
    from framework.stages.load.duckdb import sql_text

    spec = ctx.spec
    batches = ctx.lake.raw_batches(spec.lake.path)
    chosen = [(load, files) for load, files in batches.items() if loads is None or load in loads]
    files = [f for _, fs in chosen for f in fs]
    gone = [load for load in loads or () if load not in batches]
    if spec.warehouse.write_disposition == "append" and (gone or not files):
        # Merged, the rows read again change nothing; appended, they would land twice.
        held = f"batch(es) {', '.join(gone)}" if gone else "any raw batch"
        raise StageError(spec.name, "extract", (
            f"the lake ({ctx.lake.uri(RAW, spec.lake.path, '')}) no longer holds {held} with "
            f"the rows at cursor '{spec.cursor}''s last value {value!r}, which this run reads "
            "again: an append table would get them twice. Restore the lake's files, or run "
            "with --full-refresh (the table is loaded again whole)"))
    if not files:
        return None
    if ctx.lake.target.is_s3:
        con.register_filesystem(ctx.lake.fs)
    import pyarrow.parquet as pq

    try:
        with ctx.lake.fs.open(files[-1].removeprefix("s3://"), "rb") as handle:
            present = set(pq.ParquetFile(handle).schema_arrow.names)
    except (ValueError, OSError) as exc:
        if not footer_unreadable(exc):
            raise
        raise StageError(spec.name, "extract", damaged(ctx.lake, spec.lake.path,
                                                       load_of(files[-1]), str(exc))) from None
    cursor = dlt_column_name(spec.cursor or "")
    keys = [dlt_column_name(k) for k in spec.source.primary_key]
    select = ", ".join(f"{quote(lake)} AS {quote(source)}" if lake in present
                       else f"NULL AS {quote(source)}" for lake, source in columns.items())
    source = (f"read_parquet([{', '.join(map(sql_text, files))}], union_by_name = true"
              f"{', filename = true' if len(chosen) > 1 else ''})")
    if kept_out:
        matches = [f"parse_filename(filename) LIKE {sql_text(load + '.%')}"
                   for load, _ in chosen if load in kept_out]
        flag = ("true" if len(chosen) == 1 else " OR ".join(matches)) if matches else "false"
        select += f", {flag} AS {KEPT_OUT}"
    latest = ""
    if len(chosen) > 1:  # a key may be in several loads: compare with its latest version
        order = " ".join(f"WHEN parse_filename(filename) LIKE {sql_text(load + '.%')} THEN {i}"
                         for i, (load, _) in enumerate(chosen))
        partition = ", ".join(map(quote, keys))
        latest = (f"QUALIFY row_number() OVER (PARTITION BY {partition} "
                  f"ORDER BY CASE {order} END DESC) = 1")
    # The boundary goes in as a bound parameter: exact, whatever its type.
    try:
        con.execute(f'CREATE OR REPLACE TEMP TABLE {name} AS SELECT {select} FROM {source} '
                    f"WHERE {quote(cursor)} = ? {latest}", [value])
    except Exception as exc:  # a file of a loaded batch overwritten in the middle
        if unreadable(files, str(exc)):
            named = [f for f in files if f in str(exc)]
            found: tuple[str, str] | None = ((named or files)[-1], str(exc))
        else:  # DuckDB names no file for some damage: read the files to find it
            found = first_unreadable(ctx.lake, files)
        if found is None:
            raise
        raise StageError(spec.name, "extract", damaged(
            ctx.lake, spec.lake.path, load_of(found[0]), found[1])) from None
    return [source for lake, source in columns.items() if lake in present]


def compared_columns(ctx: RunContext, read: list[str], in_lake: list[str]) -> list[str]:
    """The columns that tell a boundary row read again from its lake copy. A column the source
    added since (every row holding its default) makes the rows new for a merge table, which
    then holds the default too; an append table would hold each row twice, so there only the
    columns the lake's rows have count."""
    if ctx.spec.warehouse.write_disposition == "append":
        return in_lake
    return read


def unlanded_sql(con: Any, columns: list[str], keys: list[str], loaded: bool = False) -> str:
    """Rows of `_at` whose key has no identical row in `landed` (NULLs equal NULLs), compared on
    `columns` (compared_columns). A column the source turned between text and another type
    compares as text, or as the new type where the lake holds text (text that is no such value
    differs, where comparing would fail the read). With `loaded` (boundary_tables), a row
    identical to a kept-out copy is kept too when its key is in table `loaded`.

    An anti-join on the key, then every other column: 9x less time than `EXCEPT ALL` at a
    million rows (DuckDB builds its hash table on the smaller side)."""
    batch = {r[0]: r[1] for r in con.execute("DESCRIBE _at").fetchall()}
    landed = {r[0]: r[1] for r in con.execute("DESCRIBE landed").fetchall()}

    def equal(c: str, alias: str = "l") -> str:
        mine, theirs = f"a.{quote(c)}", f"{alias}.{quote(c)}"
        op = "=" if c in keys else "IS NOT DISTINCT FROM"
        if (batch[c] == "VARCHAR") == (landed.get(c) == "VARCHAR"):
            return f"{mine} {op} {theirs}"  # DuckDB compares them in a type holding both
        if batch[c] == "VARCHAR":  # a number or a time turned to text: compared as text
            return f"{mine} {op} CAST({theirs} AS VARCHAR)"
        # text turned to a number or a time: text that is not one differs (DuckDB's own
        # comparison would fail the read on it)
        return f"({mine} {op} TRY_CAST({theirs} AS {batch[c]}) AND " \
               f"({mine} IS NULL) = ({theirs} IS NULL))"

    on = " AND ".join(equal(c) for c in columns)
    sql = f"SELECT a.* FROM _at AS a ANTI JOIN landed AS l ON {on}"
    if loaded:
        match = " AND ".join(equal(c, "k") for c in keys)
        sql += (f" UNION ALL SELECT a.* FROM _at AS a SEMI JOIN landed AS l ON {on} "
                f"AND l.{KEPT_OUT} WHERE EXISTS (SELECT 1 FROM loaded AS k WHERE {match})")
    return sql


class BoundaryFilter:
    """A dlt map step after the incremental: drops re-read rows at the previous boundary that
    are already in the lake, and keeps the boundary entry of the resource state current."""

    def __init__(self, ctx: RunContext, resource_name: str, dedup: bool,
                 versions: BeforeRead | None = None, window: bool = False,
                 nulls: bool = False) -> None:
        self.ctx = ctx
        self.resource_name = resource_name
        self.dedup = dedup
        self.window = window  # a look-back window: its rows' digests are kept
        self.nulls = nulls  # NULL cursors included: those rows' digests are kept
        self.versions = versions  # PostgreSQL's row versions taken before the read
        self.cursor = ctx.spec.cursor or ""
        self.con: Any = None
        self.prior: dict[str, Any] | None = None
        self.started = False
        self.loads = BoundaryLoads(None, [], frozenset())  # the prior boundary's
        self.landed: list[str] | None = None  # the columns the lake's boundary rows have
        self.looked = False  # `landed` (and `loaded`) made: the lake was looked in
        self.released: set[str] = set()  # a window's: batches released from quarantine
        self.last_window: dict[str, Any] | None = None  # as the last read kept them
        self.loaded = False  # temp table `loaded` holds the stale loads' keys
        self.ledger: NullRowsLedger | None = None  # the rows with no cursor the reads met

    def __call__(self, table: Any) -> Any:
        import dlt
        import pyarrow as pa
        import pyarrow.compute as pc

        if not isinstance(table, pa.Table):  # our readers yield Arrow; anything else passes
            return table
        state = self._state()
        if not self.started:
            self.started = True
            self.prior = dict(state) if state.get("value") is not None else self._legacy()
            if self.prior is not None:
                self.loads = boundary_loads(self.ctx, self.prior.get("loads"))
                self.dedup = self.dedup and not self.loads.outdated
            if self.versions is not None:  # the read ran: its fingerprint replaces the last
                state[VERSIONS_KEY] = self.versions.taken
            if self.window or self.nulls:  # this read meets every row of the window (and
                # every row with no cursor): their digests replace the last read's
                last = state.get(WINDOW_KEY)
                # None (more rows than kept), or none yet (lag just added): a row's first
                # batch is not known this read
                self.last_window = last if isinstance(last, dict) else None
                state[WINDOW_KEY] = {}
                state[WINDOW_READ] = dlt.current.load_package_state()["load_id"]
                self.released = self._released()
            if self.nulls:
                self.ledger = self._ledger(state)
        column = table[self.cursor]
        if self.prior is not None and self.dedup and table.num_rows:
            at = _equals(column, self._boundary_scalar(column.type))
            if pc.any(at).as_py():
                self._digest_again(state, table.filter(at))
                table = pa.concat_tables([table.filter(pc.invert(at)),
                                          self._unlanded(table.filter(at))])
                column = table[self.cursor]
        if not table.num_rows:
            return None
        self._advance(state, table, column)  # on every row read: dlt's cursor saw them all
        if self.window:
            table = self._window_rows(state, table)
        if self.nulls:
            table = self._null_rows(state, table)
        return table if table.num_rows else None

    def _ledger(self, state: dict[str, Any]) -> NullRowsLedger:
        """The ledger of the rows with no cursor this read meets, named in the boundary entry
        as the read goes, so that it is committed with this read's state; the last read's,
        when it can be trusted, tells which of them are unchanged."""
        import dlt

        prior = state.get(NULLS_KEY)
        read = prior.get("read") if isinstance(prior, dict) else None
        trusted = not self.ctx.full_refresh and read_trusted(self.ctx, read)
        ledger = NullRowsLedger(self.ctx, self._connection(), prior, trusted,
                                dlt.current.load_package_state()["load_id"])
        state[NULLS_KEY] = ledger.entry
        return ledger

    def _digest_again(self, state: dict[str, Any], at: Any) -> None:
        """The boundary's rows read again, digested as now: a digest kept by an older
        version of the framework (another spelling of a value) no longer matches, and the
        pre-check would run dlt on every run while these rows, all landed, leave no batch."""
        digests = state.get("digests")
        if digests is None:
            return
        if at.num_rows > DIGEST_ROWS:  # the pre-check compares with the lake instead
            state["digests"] = None
            return
        self._digest(digests, at)

    def _digest(self, digests: dict[str, str], rows: Any) -> None:
        """Each of `rows` (Arrow) by its key: the digest of its latest version."""
        keys = self.ctx.spec.source.primary_key
        for row in rows.to_pylist():
            digests[key_digest(row, keys)] = row_digest(row)

    def _released(self) -> set[str]:
        """The batches released from quarantine (and not replayed since): a window read leaves
        out the rows they first carried, unchanged since. None at all on a full refresh: its
        whole read replaces the table."""
        if self.ctx.full_refresh:
            return set()
        from framework.quarantine import released_batches

        return set(released_batches(self.ctx))

    def _null_rows(self, state: dict[str, Any], table: Any) -> Any:
        """The rows with no cursor (`on_null: include`) are read again by every run, as a
        look-back window's are: the same digests for them (_window_rows; with a window it took
        them already), for the pre-check; then the ledger drops those the last read met."""
        import pyarrow as pa
        import pyarrow.compute as pc

        assert self.ledger is not None
        nulls = pc.is_null(table[self.cursor])
        if not pc.any(nulls).as_py():
            return table
        rows = table.filter(nulls)
        if not self.window:
            rows = self._window_rows(state, rows)
        rows = self.ledger.fresh(rows)
        state[NULLS_KEY] = self.ledger.entry
        return pa.concat_tables([table.filter(pc.invert(nulls)), rows])

    def _window_rows(self, state: dict[str, Any], table: Any) -> Any:
        """A look-back window is read again by every run. Each row's digest is kept with the
        first batch that carried that version (up to WINDOW_ROWS rows, else None), so that

        - the next pre-check tells a window read again unchanged from one a late or changed
          row joined (precheck.py);
        - a version carried by one batch only, released, and unchanged since, stays out: it
          was read again with the next new row, and quarantined again, for as long as it
          stayed in the window. Such a version never reached the warehouse, so no reconcile
          delete can have touched it. A version another batch carried too (read again before
          the release: a killed run's batch), or changed since, is read."""
        import dlt
        import pyarrow as pa

        window = state.get(WINDOW_KEY)
        if window is None or len(window) + table.num_rows > WINDOW_ROWS:
            state[WINDOW_KEY] = None  # a larger window runs dlt every time, as before
            return table
        load_id = dlt.current.load_package_state()["load_id"]
        keys = self.ctx.spec.source.primary_key
        keep = []
        for row in table.to_pylist():
            key, digest = key_digest(row, keys), row_digest(row)
            last = self.last_window.get(key) if self.last_window is not None else None
            if isinstance(last, list) and last[0] == digest:  # unchanged since the last read
                held = last[1] is not None and last[1] in self.released
                # carried by this batch as well: no longer the released batch's alone (it may
                # reach the warehouse through this one), so never kept out. (A row with no
                # cursor the ledger then drops is not carried: it comes back only when the
                # ledger is set aside, quarantined again.)
                window[key] = last if held else [digest, None]
                keep.append(not held)
            else:
                # A version the last read did not meet is this batch's, unless that read kept
                # no digests: then the row may well be older (loaded before), and no release
                # may keep it out.
                window[key] = [digest, load_id if self.last_window is not None else None]
                keep.append(True)
        return table if all(keep) else table.filter(pa.array(keep))

    def _boundary_scalar(self, arrow_type: Any) -> Any:
        """The stored boundary as a value of the column's type now. A source that changed what
        it hands over (a table's TIMESTAMP turned into an untyped query column: text) cannot
        be compared with what earlier runs stored: said, naming the fix."""
        import pyarrow as pa

        assert self.prior is not None
        value = self.prior["value"]
        try:
            return arrow_scalar(value, arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            raise StageError(self.ctx.spec.name, "extract", (
                f"cursor '{self.cursor}' now reads as {arrow_type}, but earlier runs stored "
                f"{type(value).__name__} {value!r} as its last value (a SQLite query's "
                "columns carry no type: its timestamps read as text); read it as before "
                "(source.table, or a cast in source.query), or start over with "
                "--full-refresh")) from None

    def _state(self) -> dict[str, Any]:
        import dlt

        resource: dict[str, Any] = dlt.current.resource_state(self.resource_name)
        return resource.setdefault(BOUNDARY_KEY, {})  # type: ignore[no-any-return]

    def _legacy(self) -> dict[str, Any] | None:
        """A state written before the boundary was ours holds only dlt's cursor: its boundary
        rows are looked up in every raw batch, once."""
        import dlt

        resource = dlt.current.resource_state(self.resource_name)
        last = ((resource.get("incremental") or {}).get(self.cursor) or {}).get("last_value")
        return None if last is None else {"value": last, "loads": None}

    def _advance(self, state: dict[str, Any], table: Any, column: Any) -> None:
        """The boundary becomes this batch's maximum when it is higher; a load holding rows
        at the boundary joins its list, their digests join the map while it is small."""
        import dlt
        import pyarrow.compute as pc

        top = pc.max(column)
        if not top.is_valid:
            return
        load_id = dlt.current.load_package_state()["load_id"]
        current = state.get("value")
        if current is None and self.prior is not None and self.prior.get("loads") is None \
                and pc.equal(top, self._boundary_scalar(column.type)).as_py():
            # A state from before this entry (_legacy): the boundary's rows are in batches no
            # list names, so every batch stays the place to look (naming this load alone
            # appended them again at the next read).
            state["value"], state["loads"], state["digests"] = top.as_py(), None, None
            return
        if current is None or pc.greater(top, arrow_scalar(current, column.type)).as_py():
            state["value"], state["loads"], state["digests"] = top.as_py(), [load_id], {}
        elif pc.equal(top, arrow_scalar(current, column.type)).as_py():
            loads = state.setdefault("loads", [])
            if loads is not None and load_id not in loads:
                loads.append(load_id)
        else:
            return
        digests = state.get("digests")
        if digests is None:
            return
        on_top = _equals(column, top)
        # Counted before filtered: a bulk-loaded table has every row on top, and its copy
        # would only be thrown away.
        if len(digests) + pc.sum(on_top).as_py() > DIGEST_ROWS:
            state["digests"] = None  # the pre-check compares with the lake instead
            return
        self._digest(digests, table.filter(on_top))
        if len(digests) > DIGEST_ROWS:
            state["digests"] = None

    def _unlanded(self, at: Any) -> Any:
        """Rows of `at` (all at the previous boundary) that differ from the latest version of
        their key in the lake."""
        if not self.looked:
            self.looked = True
            assert self.prior is not None
            columns = {dlt_column_name(c): c for c in at.column_names}
            self.landed, self.loaded = boundary_tables(self.ctx, self._connection(),
                                                       self.prior["value"], self.loads, columns)
        if self.landed is None:
            return at
        self.con.register("_at", at)
        try:
            fresh = self.con.sql(unlanded_sql(
                self.con, compared_columns(self.ctx, at.column_names, self.landed),
                self.ctx.spec.source.primary_key, self.loaded)).to_arrow_table()
        finally:
            self.con.unregister("_at")
        return fresh.cast(at.schema) if not fresh.schema.equals(at.schema) else fresh

    def _connection(self) -> Any:
        if self.con is None:
            from framework.stages.load.duckdb import scratch_connection

            # A million boundary rows sit here while the extract streams: capped and spilled
            # like the other stages' DuckDB work.
            self.con = scratch_connection(self.ctx.state_dir)
        return self.con

    def close(self) -> None:
        if self.ledger is not None:
            try:
                self.ledger.close()
            except Exception as exc:  # noqa: BLE001 - the lake unreachable: the batch stands
                self.ctx.warn(f"the rows with no cursor met by this read were not recorded "
                              f"({exc}): the next read sends every one on again")
            self.ledger = None
        if self.con is not None:
            self.con.close()
            self.con = None


def row_digest(row: dict[str, Any] | list[Any]) -> str:
    """A short digest of a row's values (by column name for a mapping) that is the same for
    the value read through Arrow and through SQLAlchemy: naive timestamps are UTC, decimals are
    compared by value. Values read differently digest differently: never a false match."""
    import hashlib

    items: list[tuple[Any, Any]] = sorted(row.items()) if isinstance(row, dict) \
        else list(enumerate(row))
    digest = hashlib.blake2b(digest_size=10)
    for name, value in items:
        digest.update(f"{name}\x1e{_canonical(value)}\x1f".encode())
    return digest.hexdigest()


def key_digest(row: dict[str, Any], keys: list[str]) -> str:
    """The digest of a row's primary key: where the boundary's and the window's digests keep
    each row."""
    return row_digest([row[k] for k in keys])


def _canonical(value: Any) -> str:
    from decimal import Decimal

    if value is None:
        return "\x00"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return f"ts:{value.isoformat()}"
    if isinstance(value, Decimal):
        return f"n:{value.normalize():f}"
    if isinstance(value, int) and not isinstance(value, bool):
        # MySQL's BIGINT UNSIGNED is an int to its driver and a decimal(20,0) through Arrow
        return f"n:{value}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "b:" + bytes(value).hex()
    return f"{type(value).__name__}:{value!r}"


def _equals(column: Any, scalar: Any) -> Any:
    """Whether each value of `column` equals `scalar`: false, not NULL, where it is NULL.
    (`fill_null(..., False)` built its Python False with `pa.scalar`, which imports pandas.)"""
    import pyarrow.compute as pc

    return pc.and_kleene(pc.equal(column, scalar), pc.is_valid(column))


def arrow_scalar(value: Any, arrow_type: Any) -> Any:
    """`value` as an Arrow scalar of `arrow_type`. Temporal and integer values are built from
    their integer form: `pa.scalar` and `pa.array` on Python objects import pandas (0.5 s a
    run the Arrow readers otherwise never pay)."""
    import pyarrow as pa

    number: int | None = None
    storage: Any = pa.int64()
    if pa.types.is_timestamp(arrow_type) and isinstance(value, datetime):
        micros = (_naive_utc(value) - _EPOCH) // timedelta(microseconds=1)
        if arrow_type.unit == "ns":
            number = micros * 1000
        else:  # a value finer than the unit has no exact scalar: pa.scalar says so
            whole, rest = divmod(micros, {"s": 10**6, "ms": 10**3, "us": 1}[arrow_type.unit])
            number = None if rest else whole
    elif pa.types.is_date32(arrow_type) and isinstance(value, date) \
            and not isinstance(value, datetime):
        number, storage = value.toordinal() - _EPOCH.toordinal(), pa.int32()
    elif pa.types.is_integer(arrow_type) and isinstance(value, int):
        number = value
    if number is None:
        return pa.scalar(value, type=arrow_type)
    buffer = pa.py_buffer(int(number).to_bytes(storage.bit_width // 8, "little", signed=True))
    return pa.Array.from_buffers(storage, 1, [None, buffer]).cast(arrow_type)[0]


_EPOCH = datetime(1970, 1, 1)
