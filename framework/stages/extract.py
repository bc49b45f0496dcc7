"""Extract: one dlt load of the new rows into the lake's `raw/` zone as Parquet.

Whatever the source's kind: its adapter (`ctx.source`, framework/sources) opens this run's
read (the dlt resource, the columns it delivers, a cheap "anything new?"); this stage owns the
rest. dlt owns the cursor state and the load package. The state is kept with the lake: every
run first restores it from there (`sync_destination`), so a worker without the local state
folder resumes where the last run stopped. Records the source refused go to the lake's
quarantine zone, one file per load, and count as quarantined rows.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

from framework import full_refresh
from framework.context import RunContext
from framework.dlt_settings import apply_defaults, arrow_scalars_without_pandas
from framework.errors import StageError, chain
from framework.faults import checkpoint
from framework.lake import COLUMNS, QUARANTINE, RAW
from framework.sources.base import Rejected
from framework.spec.columns import base_type, decimal_parts, dlt_column_name
from framework.stages import dlt_state

DLT_DATASET = RAW
REJECTED_FOLDER = "_rejected"  # under quarantine/<lake path>/, apart from quarantined batches


@dataclass(frozen=True)
class Extracted:
    load_id: str | None
    rows: int
    rejected: int = 0  # source records refused (malformed, blank), kept in quarantine/


def extract(ctx: RunContext) -> Extracted:
    """Extract the rows past the cursor; `load_id` is None when there were none."""
    apply_defaults()
    ctx.lake.check()
    extraction = ctx.source.open(ctx)
    try:
        look = _Look()
        if not ctx.full_refresh:
            look.known_columns = _known_columns(ctx)
            check_drift(ctx, look.known_columns, extraction.columns)
            if _nothing_new_on_current_state(ctx, extraction, look):
                return Extracted(None, 0)
        return _extract_with_dlt(ctx, extraction, look)
    finally:
        extraction.close()
        # Arrow's allocator keeps freed batches for reuse (~90 MB at 10M rows); the stages
        # after this one run in DuckDB, which would otherwise stack its memory on top.
        if "pyarrow" in sys.modules:
            sys.modules["pyarrow"].default_memory_pool().release_unused()


@dataclass
class _Look:
    """What the look without dlt did, so the dlt path does not do it again."""

    # the lake's state files once unfinished ones were removed (None: not looked at yet)
    stored: list[tuple[str, str]] | None = None
    asked_on: str | None = None  # the state version the source said had something new
    known_columns: dict[str, str] | None = None  # the source's columns at the last extract


def _nothing_new_on_current_state(ctx: RunContext, extraction: Any, look: _Look) -> bool:
    """The source's "anything new?" asked on dlt's state read from its files, when that state
    is the one dlt would restore (framework/stages/dlt_state.py): a run with nothing new then
    never starts dlt. Anything else is dlt's to settle."""
    pipeline_dir = ctx.state_dir / "dlt" / ctx.spec.name
    if dlt_state.has_pending_packages(pipeline_dir):
        return False  # dlt loads those first, before any state file is judged unfinished
    look.stored = _forget_unfinished_states(ctx)
    state = dlt_state.current_state(pipeline_dir, ctx.lake, look.stored)
    if state is None:
        return False
    checkpoint("extract")
    if not extraction.nothing_new(dlt_state.StateOnly(state)):
        look.asked_on = state["_version_hash"]
        return False
    _remember_columns(ctx, extraction.columns, look)
    return True


def _extract_with_dlt(ctx: RunContext, extraction: Any, look: _Look) -> Extracted:
    from dlt.pipeline.exceptions import PipelineStepFailed

    spec = ctx.spec
    arrow_scalars_without_pandas()
    pipeline = _dlt_pipeline(ctx)
    try:
        try:
            resource = extraction.resource
        except StageError:
            raise
        except Exception as exc:  # noqa: BLE001 - building the read: the adapter explains
            raise extraction.explain(exc) from None
        dlt_state.drop_committed_extracts(ctx.state_dir / "dlt" / spec.name)
        if pipeline.has_pending_data and dlt_state.pending_is_stale(
                ctx.state_dir / "dlt" / spec.name, ctx.lake,
                dlt_state.stored_states(ctx.lake, spec.name)):
            pipeline = _forget_overtaken_package(ctx, pipeline)
        if pipeline.has_pending_data:  # a package a killed run extracted but did not land
            dlt_state.drop_torn_schema_files(ctx.lake, spec.name)
            pipeline.normalize()
            _dlt_dataset(ctx)
            pipeline.load()
        # The cursor kept with the lake: newer than ours when another worker ran last, the only
        # one when this machine has no state folder.
        _forget_damaged_state(ctx, look.stored if look.stored is not None
                              else _forget_unfinished_states(ctx))
        pipeline.sync_destination()
        checkpoint("extract")
        # Asked already on this very state: the answer was "something new".
        asked = look.asked_on is not None and look.asked_on == pipeline.state.get("_version_hash")
        if not ctx.full_refresh and not asked and extraction.nothing_new(pipeline):
            _remember_columns(ctx, extraction.columns, look)
            return Extracted(None, 0)
        _relax_dropped(pipeline, spec.lake.path, extraction.columns)
        if ctx.full_refresh:  # dlt drops the cursor: until a whole batch lands, read whole
            full_refresh.begin(ctx)
        pipeline.extract(resource, loader_file_format="parquet",
                         refresh="drop_resources" if ctx.full_refresh else None)
        checkpoint("after_extract")
        normalized = pipeline.normalize()
        rows = int(normalized.row_counts.get(spec.lake.path, 0)) if normalized else 0
        batch = (getattr(normalized, "loads_ids", None) or [None])[-1]
        # Refused records reach quarantine/ before the load moves the cursor past them.
        rejected = _not_yet_quarantined(ctx, extraction.rejected())
        if rejected:
            _quarantine_rejected(ctx, batch, rejected)
        _dlt_dataset(ctx)
        info = pipeline.load()
        load_id = info.loads_ids[-1] if rows and info.loads_ids else None
        # Named once in the lake, not before: a package that never gets there (this worker
        # gone) would leave a record naming it, and the refresh unfinished for good.
        if ctx.full_refresh and load_id:
            full_refresh.landed(ctx, load_id)
        checkpoint("after_lake_write")
        _remember_columns(ctx, extraction.columns, look)
    except PipelineStepFailed as exc:
        if _interrupted(exc):  # Ctrl-C stops the run, not just this pipeline's extract
            raise KeyboardInterrupt from None
        raise extraction.explain(exc) from None
    return Extracted(load_id, rows, len(rejected))


def _relax_dropped(pipeline: Any, table_name: str, now: dict[str, str]) -> None:
    """dlt writes a column the source dropped into every later batch as NULL: one its schema
    holds as NOT NULL (the source's nullability, as earlier versions passed it) failed every
    run after, 'declared non-nullable but contains nulls', even --full-refresh's."""
    if not pipeline.default_schema_name:
        return
    table = pipeline.default_schema.tables.get(table_name)
    if not table:
        return
    present = {dlt_column_name(c) for c in now}
    for name, column in table.get("columns", {}).items():
        if name not in present and not name.startswith("_dlt") \
                and column.get("nullable") is False:
            column["nullable"] = True


def _interrupted(exc: BaseException) -> bool:
    """Whether dlt's step failure wraps a Ctrl-C: dlt catches it like any error of the step."""
    return any(isinstance(cause, KeyboardInterrupt) for cause in chain(exc))


def _quarantine_rejected(ctx: RunContext, load_id: str | None, rejected: list[Rejected]) -> str:
    """One Parquet file per load of the records the source refused: file/line, reason, text."""
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq

    name = load_id or f"{time.time():.7f}"  # a load of nothing but refused records
    folder = ctx.lake.path(QUARANTINE, ctx.spec.lake.path, REJECTED_FOLDER)
    path = f"{folder}/{name}.parquet"
    table = pa.table({"where": [r.where for r in rejected], "reason": [r.reason for r in rejected],
                      "record": [r.record for r in rejected],
                      "digest": pa.array([r.digest for r in rejected], pa.string())})
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    # whole or not at all: every later run reads this folder's files (`_not_yet_quarantined`)
    ctx.lake.write_bytes(path, buffer.getvalue().to_pybytes())
    first = rejected[0]
    ctx.warn(f"{len(rejected)} source record(s) refused, kept in "
             f"{QUARANTINE}/{ctx.spec.lake.path}/{REJECTED_FOLDER}/{name}.parquet "
             f"(first: {first.where}: {first.reason})")
    return path


def _not_yet_quarantined(ctx: RunContext, rejected: list[Rejected]) -> list[Rejected]:
    """The refused records not already kept in quarantine (by digest, where the source gives
    one: an API serves a refused record again at its cursor boundary on every run)."""
    if not any(r.digest for r in rejected):
        return rejected
    import pyarrow.parquet as pq

    folder = ctx.lake.path(QUARANTINE, ctx.spec.lake.path, REJECTED_FOLDER)
    kept: set[str] = set()
    for path in ctx.lake.fs.glob(f"{folder}/*.parquet") if ctx.lake.fs.exists(folder) else []:
        with ctx.lake.fs.open(path, "rb") as handle:
            file = pq.ParquetFile(handle)
            if "digest" in file.schema_arrow.names:
                kept.update(d for d in file.read(columns=["digest"])["digest"].to_pylist() if d)
    return [r for r in rejected if r.digest is None or r.digest not in kept]


def _dlt_dataset(ctx: RunContext) -> None:
    """dlt makes the lake's `raw/` dataset (the folder, then its `init` file) on its first load
    there, with `makedirs` and no `exist_ok`: on a local lake it failed when the folder was
    there already (a record of the framework's written first, as by a first run with
    `--full-refresh`; a folder made by hand) or was made at the same moment (two first loads
    at once, in threads or processes). The framework makes it first, as dlt would: dlt then
    finds `init` and creates nothing. Only before a load: dlt's `sync_destination` takes a lake
    without `init` for a new one, and drops this machine's state then (a lake wiped or
    restored without `raw/` must not keep the old cursor)."""
    from dlt.common import json  # dlt's own encoder: the file byte for byte as dlt writes it
    from dlt.destinations.impl.filesystem.filesystem import CURRENT_VERSION, INIT_FILE_NAME

    init = ctx.lake.path(RAW, INIT_FILE_NAME)
    if not ctx.lake.fs.exists(init):
        ctx.lake.write_text(init, json.dumps({"initial_version": CURRENT_VERSION,
                                              "current_version": CURRENT_VERSION}))


def _forget_overtaken_package(ctx: RunContext, pipeline: Any) -> Any:
    """Drop the package a killed run extracted here, which another worker has overtaken
    (`dlt_state.pending_is_stale`), and this machine's state with it: dlt restores the lake's,
    whose cursor the rows of the package are read again from, if they are still new."""
    pipeline.drop_pending_packages()
    (ctx.state_dir / "dlt" / ctx.spec.name / dlt_state.STATE_FILE).unlink(missing_ok=True)
    ctx.warn("dropped the batch a stopped run had extracted on this machine: another worker "
             "has loaded since; its rows are read again from the lake's cursor")
    return _dlt_pipeline(ctx)  # anew: it reads the state from its (now missing) file


def _dlt_pipeline(ctx: RunContext) -> Any:
    """The pipeline's dlt handle: its state in this machine's state folder, its lake the
    destination. A local state file dlt cannot parse (cut short by a full disk) failed every
    run: set aside, the state comes from the lake, as on a worker without a state folder."""
    import dlt

    local = ctx.state_dir / "dlt" / ctx.spec.name / dlt_state.STATE_FILE
    if local.is_file() and not dlt_state.parses(local.read_bytes()):
        aside = local.with_name(f"{local.name}.damaged")
        local.replace(aside)
        ctx.warn(f"dlt's state on this machine ({local}) was damaged: set aside as "
                 f"{aside.name}; the cursor is the lake's, as on a worker without a state folder")
    return dlt.pipeline(pipeline_name=ctx.spec.name, pipelines_dir=str(ctx.state_dir / "dlt"),
                        destination=_destination(ctx), dataset_name=DLT_DATASET)


def _forget_damaged_state(ctx: RunContext, states: list[tuple[str, str]]) -> None:
    """The newest of the lake's state files (`states`: the one dlt restores) cut short or
    overwritten failed every run. Without it dlt restores the one before: an older cursor,
    whose rows a merge takes again harmlessly but an append table would hold twice."""
    if not states:
        return
    _, newest = max(states)
    with ctx.lake.fs.open(newest, "rb") as handle:
        if dlt_state.parses(handle.read()):
            return
    spec = ctx.spec
    if spec.warehouse.write_disposition == "append" and not ctx.full_refresh:
        raise StageError(spec.name, "extract", f"dlt's cursor state in the lake ({newest}) is "
                         "damaged, and the one before it would read rows again that an append "
                         "table holds already: run with --full-refresh (the table is loaded "
                         "again whole)")
    ctx.lake.fs.rm(newest)
    ctx.warn(f"removed dlt's damaged cursor state {newest} from the lake: the rows since the "
             "state before it are read again, and merged")


def _forget_unfinished_states(ctx: RunContext) -> list[tuple[str, str]]:
    """Remove this pipeline's state files in the lake whose load never completed; return the
    others (load id, path).

    dlt writes a load's state file before the load's completion record, and restores the
    newest state file whatever became of its load. A run killed in between (its local package
    lost with its machine) would leave a cursor past rows no completed batch holds.
    """
    states = dlt_state.stored_states(ctx.lake, ctx.spec.name)
    if not states:
        return []
    completed = ctx.lake.completed_loads()
    kept = []
    for load_id, path in states:
        if load_id in completed:
            kept.append((load_id, path))
        else:
            ctx.warn(f"ignored the cursor state of load {load_id}, which never completed")
            ctx.lake.fs.rm(path)
    return kept


def _destination(ctx: RunContext) -> Any:
    import dlt

    lake = ctx.lake
    credentials: dict[str, Any] | None = None
    if lake.target.is_s3:
        credentials = {
            "aws_access_key_id": lake.target.access_key_id,
            "aws_secret_access_key": lake.target.secret_access_key.get_secret_value()
            if lake.target.secret_access_key else None,
            "endpoint_url": lake.target.endpoint_url,
            "region_name": lake.target.region,
        }
        credentials = {k: v for k, v in credentials.items() if v}
    return dlt.destinations.filesystem(bucket_url=lake.url, credentials=credentials)


def _known_columns(ctx: RunContext) -> dict[str, str]:
    path = ctx.lake.record(COLUMNS, ctx.spec.name)
    try:
        return dict(ctx.lake.read_json(path) or {})
    except ValueError:  # torn by an older version's in-place write, killed halfway
        ctx.warn(f"{path} is unreadable: this run compares the source's columns with nothing "
                 "and writes it again")
        return {}


def _remember_columns(ctx: RunContext, columns: dict[str, str], look: _Look) -> None:
    """Keep the source's columns with the lake, once they differ from the known ones (every
    run wrote them before: the most exposed write there was to a kill)."""
    import json

    if columns != look.known_columns:
        ctx.lake.write_text(ctx.lake.record(COLUMNS, ctx.spec.name),
                            json.dumps(columns, indent=1))


_DECIMAL = re.compile(r"(?:NUMERIC|DECIMAL)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", re.IGNORECASE)
_FLOAT = re.compile(r"\b(DOUBLE|REAL|FLOAT)(\b|\d)", re.IGNORECASE)


def _rounded_by_declaration(ctx: RunContext, retyped: list[str], now: dict[str, str]) -> str:
    """Which retyped columns now hold decimals their declared type would round or overflow
    (a source widened numeric(10,2) to numeric(12,4): the declared cast turned 1.2345 into 1.23
    on every run after, with one warning the first time); empty if none."""
    declared = {c.name: c.type for c in ctx.spec.columns}
    found = []
    for column in retyped:
        name = dlt_column_name(column)
        wanted = declared.get(name)
        if wanted is None or base_type(wanted) != "decimal":
            continue
        if _FLOAT.search(now[column]):  # binary fractions: 1.2345 or 7.777 rounded to cents
            found.append(f"'{name}' is now {now[column]}, which its declared {wanted} would "
                         "round; declare it double in columns: (and in the transform's CAST), "
                         "or round it in source.query on purpose")
            continue
        wider = _DECIMAL.fullmatch(now[column].strip())
        if wider is None:
            continue
        precision, scale = int(wider.group(1)), int(wider.group(2))
        kept_precision, kept_scale = decimal_parts(wanted)
        if scale > kept_scale or precision - scale > kept_precision - kept_scale:
            found.append(f"'{name}' is now {now[column]}, which its declared {wanted} would "
                         f"round; declare it decimal({precision},{scale}) in columns: (and in "
                         "the transform's CAST), or round it in source.query on purpose")
    return "; ".join(found)


def _declared_but_dropped(ctx: RunContext, known: dict[str, str], now: dict[str, str],
                          added: list[str]) -> str:
    """Which columns `columns:` declares that the source no longer has (a rename, most often),
    by their lake names (`Order_ID` and `order_id` are one column there). dlt writes such a
    column into every later batch as NULL: under `evolve` each row read after it overwrote the
    landed value on the merge, while the declaration still promised the column. Empty if
    none, or if the transform is a person's own SQL (it may compute the column now)."""
    transform = ctx.spec.transform
    written = ctx.compiled.sql.duckdb
    if not now or (transform.sql or transform.sql_file) and "framework-init:" not in written:
        return ""
    # An export may leave out a column it has no value for: a declared nullable column
    # missing from a file lands as NULL for that file's rows (the drift warning names it).
    # Not beside a new column: that is a rename, whose NULLs would overwrite landed values.
    files = ctx.spec.source.kind == "files" and not added
    keys = {dlt_column_name(k) for k in ctx.spec.source.primary_key}
    declared = {c.name for c in ctx.spec.columns
                if not (files and c.nullable and c.name not in keys)}
    kept = {dlt_column_name(c) for c in now}
    gone = sorted(({dlt_column_name(c) for c in known} - kept) & declared)
    if not gone:
        return ""
    one = len(gone) == 1
    names = ", ".join(f"'{name}'" for name in gone)
    if ctx.spec.source.kind == "sql":
        # Not in the transform: dlt writes the dropped column into the batch as NULL.
        example = f" (SELECT {added[0]} AS {gone[0]}, ...)" if one and len(added) == 1 else ""
        fix = f"map the new name in source.query{example}"
    else:
        fix = f"give {'it' if one else 'them'} back at the source"
    return (f"{names} {'is' if one else 'are'} declared in columns: but the source no longer "
            f"has {'it' if one else 'them'}: {fix}, or remove the declaration (or, where the "
            "transform now computes it, run once with --full-refresh)")


def _type_key(stated: str) -> str:
    """A stated type in one spelling: SQLAlchemy names a table's column DECIMAL(10, 2) and the
    same column of a query NUMERIC(10, 2)."""
    return re.sub(r"^NUMERIC\b", "DECIMAL", stated.upper().replace(" ", ""))


def check_drift(ctx: RunContext, known: dict[str, str], now: dict[str, str]) -> None:
    """Name every change in the source's columns since the last extract, before extracting.

    A new, dropped or retyped (widened) column is a warning under `evolve` and flows on; under
    `freeze` it stops the run before anything is written. Never a silent change, nor a lossy
    one: a decimal widened past its declared type stops the run under either contract.
    """
    if not known:
        return
    # By lake name: `Channel` in a later export is the column `channel` was (one in the lake)
    before = {dlt_column_name(c): known[c] for c in known}
    after = {dlt_column_name(c): c for c in now}
    added = [c for name, c in after.items() if name not in before]
    dropped = [c for c in known if dlt_column_name(c) not in after]
    # "NULL": a query's column, whose type the source does not state
    retyped = [c for name, c in after.items() if name in before
               and _type_key(now[c]) != _type_key(before[name])
               and "NULL" not in (now[c], before[name])]
    types = ", ".join(f"{c} ({before[dlt_column_name(c)]} -> {now[c]})" for c in retyped)
    changes = [f"new column(s) {', '.join(added)}"] * bool(added) + \
        [f"dropped column(s) {', '.join(dropped)}"] * bool(dropped) + \
        [f"changed type(s) {types}"] * bool(retyped)
    if not changes:
        return
    message = "source schema changed: " + "; ".join(changes)
    stopped = [m for m in (_declared_but_dropped(ctx, known, now, added),
                           _rounded_by_declaration(ctx, retyped, now)) if m]
    if stopped:
        raise StageError(ctx.spec.name, "extract", f"{message}; {'; '.join(stopped)}; nothing "
                         "was extracted")
    if ctx.spec.warehouse.contract == "freeze":
        raise StageError(ctx.spec.name, "extract", f"{message}; warehouse.contract is 'freeze', "
                         "nothing was extracted (set 'evolve' to let the change through)")
    transform = ctx.spec.transform
    if added and (transform.sql or transform.sql_file):
        # `init` writes a SELECT naming every column: the new one stops in the lake's raw zone
        where = f"pipelines/{transform.sql_file}" if transform.sql_file else "transform.sql"
        message += (f" (a new column reaches the warehouse once the transform selects it: "
                    f"{where})")
    if dropped and ctx.spec.source.kind == "files":
        message += " (the rows of files without a column hold NULL in it)"
    if added and ctx.spec.cursor:
        # A column added with a default moves no cursor: only rows changed later are read.
        message += (" (rows loaded before keep NULL in the new column until they change; run "
                    "once with --full-refresh to fill them)")
    ctx.warn(message)
