"""The `files` kind: a folder or S3 prefix read incrementally by file.

Each run lists the files the glob matches and compares them with what the last run read (kept
in dlt's resource state, so it travels with the lake like a cursor): a new file is read, a
changed file (other size, modification time or ETag) is read again whole with every file after
it in path order, merged on the primary key in the warehouse (a key in several files keeps the
last file's row, as when they were first read); an unchanged one is not opened, and one that
disappeared is reported once and forgotten. Listing is the whole cost of a run with nothing new. A local file
whose modification time changed but not its content (same size and SHA-256) is not read again.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from framework.errors import FrameworkError, chain
from framework.settings.envvars import MissingVariable, interpolate
from framework.sources.base import KeysNotSupported, Rejected
from framework.sources.files import readers
from framework.sources.files.spec import FilesSource

if TYPE_CHECKING:
    import fsspec
    import pyarrow as pa

    from framework.context import RunContext
from framework.spec.columns import dlt_column_name

STATE_KEY = "files"  # in the resource's dlt state: {relative path: `_Entry` text}


class FilesAdapter:
    kind: ClassVar[str] = "files"

    def __init__(self, source: FilesSource, *, connections: Callable[[str], Any],
                 target: Any, env: Mapping[str, str], root: Path) -> None:
        self.source = source
        self.target = target
        # A relative folder is the project's, and `${VAR}` its variables.
        self.root = root
        self.variables: Mapping[str, str] = env
        self.name = source.location  # what messages call the source

    @cached_property
    def location(self) -> str:
        """`source.location` with its `${VAR:-default}` references expanded."""
        try:
            return interpolate(self.source.location, self.variables)
        except MissingVariable as exc:
            raise FrameworkError(f"source.location '{self.source.location}' needs the "
                                 f"environment variable {exc.name}") from None

    @property
    def is_s3(self) -> bool:
        return self.location.startswith("s3://")

    @cached_property
    def fs(self) -> fsspec.AbstractFileSystem:
        import fsspec

        if not self.is_s3:
            return fsspec.filesystem("file")
        from framework.extras import require
        from framework.lake import Lake

        s3fs = require("s3fs", f"the files source {self.location}")
        lake = getattr(self.target, "lake", None)
        options = Lake(lake).s3_options() if lake is not None and lake.is_s3 else \
            {"use_listings_cache": False}
        return s3fs.S3FileSystem(**options)

    @cached_property
    def base(self) -> str:
        """The location as the filesystem names it: `bucket/prefix` or an absolute folder."""
        if self.is_s3:
            return self.location.removeprefix("s3://").rstrip("/")
        folder = Path(self.location).expanduser()
        return (folder if folder.is_absolute() else self.root / folder).as_posix().rstrip("/")

    def listing(self) -> dict[str, str]:
        """Every matching file (relative to the location) and its version."""
        try:
            found = self.fs.glob(posixpath.join(self.base, self.source.glob), detail=True)
        except Exception as exc:  # noqa: BLE001 - credentials, endpoint, network: one line
            raise FrameworkError(f"files source {self.location}: cannot list "
                                 f"{self.source.glob}: {_first_line(exc)}") from None
        files: dict[str, str] = {}
        for path, info in sorted(found.items()):
            if info.get("type") == "directory":
                continue
            relative = str(path).removeprefix(self.base.lstrip("/")).lstrip("/") \
                if self.is_s3 else str(path).removeprefix(self.base).lstrip("/")
            files[relative] = _version(info)
        return files

    def open(self, ctx: RunContext) -> FilesExtraction:
        problem = self.not_set_up()
        if problem:
            raise FrameworkError(f"{ctx.spec.name}: {problem}")
        return FilesExtraction(self, ctx)

    def read(self, relative: str, types: dict[str, str],
             rejected: list[Rejected]) -> Iterator[pa.Table]:
        """The Arrow tables of one file; its refused records appended to `rejected`."""
        fmt = self.source.file_format
        with self.fs.open(posixpath.join(self.base, relative), "rb",
                          compression="infer") as handle:
            if fmt == "csv":
                yield from readers.read_csv(handle, relative, self.source.csv, types, rejected)
            elif fmt == "jsonl":
                yield from readers.read_jsonl(handle, relative, types, self.source.csv,
                                              rejected)
            else:
                yield from readers.read_parquet(handle, relative, types, rejected)

    def content_hash(self, relative: str) -> str | None:
        """A local file's SHA-256 (its modification time alone changes on a touch, a copy, a
        checkout); None on S3, where the ETag already follows the content."""
        if self.is_s3:
            return None
        import hashlib

        with open(posixpath.join(self.base, relative), "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()

    def file_columns(self, relative: str, types: dict[str, str],
                     portable: bool = False) -> dict[str, str]:
        """The columns one file delivers and their types (declared, or as the file has them;
        with `portable`, an undeclared Parquet column's type as the portable type holding it)."""
        with self.fs.open(posixpath.join(self.base, relative), "rb",
                          compression="infer") as handle:
            if self.source.file_format == "csv":
                names = readers.csv_header(handle, self.source.csv, list(types))
                return {n: types.get(dlt_column_name(n), "string") for n in names}
            if self.source.file_format == "parquet":
                import pyarrow.parquet as pq

                from framework.sources.files.values import portable_of

                schema = pq.read_schema(handle)
                stated = portable_of if portable else str
                return {n: types.get(dlt_column_name(n), stated(schema.field(n).type))
                        for n in schema.names}
        return dict(types)  # JSON lines: keys may differ per line; the declared columns

    def current_keys(self, ctx: RunContext, columns: list[str]) -> Any:
        raise KeysNotSupported(
            "a files source cannot list its current keys without reading every file; "
            "remove deletes.reconcile (a row deleted at the source stays in the warehouse)")

    def not_set_up(self) -> str | None:
        if self.is_s3:
            return None
        if not Path(self.base).is_dir():
            return f"no folder {self.location} (source.location)"
        return None

    def describe(self) -> str:
        return f"files {self.source.location.rstrip('/')}/{self.source.glob}"

    def check(self) -> str:
        problem = self.not_set_up()
        if problem:
            raise FrameworkError(problem)
        files = self.listing()
        return f"{len(files)} file(s) match {self.describe().removeprefix('files ')}"


class FilesExtraction:
    """One run: the listing taken at open, and the files it shows new or changed."""

    def __init__(self, adapter: FilesAdapter, ctx: RunContext) -> None:
        import dlt

        self.adapter, self.ctx = adapter, ctx
        self.files = adapter.listing()
        self.declared = {c.name: c.type for c in ctx.spec.columns}
        self._rejected: list[Rejected] = []
        self._reported: set[str] = set()
        self._seen: dict[str, str] | None = None  # the last run's files, once looked up
        self._hashes: dict[str, str | None] = {}  # local files' SHA-256, taken once a run
        self.columns = self._columns()
        def rows() -> Iterator[pa.Table]:  # dlt decorates functions, not bound methods
            yield from self._rows()

        self.resource = dlt.resource(rows, name=ctx.spec.lake.path,
                                     write_disposition="append")

    @cached_property
    def types(self) -> dict[str, str]:
        """The newest file's columns in portable types (`plan` dry-runs the transform over
        them), looked up only when asked."""
        return self._columns(portable=True)

    def _columns(self, portable: bool = False) -> dict[str, str]:
        if not self.files:
            return dict(self.declared)
        newest = list(self.files)[-1]
        try:
            return self.adapter.file_columns(newest, self.declared, portable)
        except Exception:  # noqa: BLE001 - the read itself names the problem
            return dict(self.declared)

    def _rows(self) -> Iterator[pa.Table]:
        import dlt

        seen: dict[str, str] = dlt.current.resource_state().setdefault(STATE_KEY, {})
        changed, skipped, gone = self._diff(seen)
        for relative in gone:
            del seen[relative]
        newer = _NewerKeys(self.ctx, self.adapter.source.primary_key) \
            if len(changed) - len(skipped) > 1 else None
        try:
            yield from self._read_changed(changed, seen, newer, skipped)
        finally:
            if newer:
                newer.close()
        if newer and newer.dropped:
            self.ctx.warn(f"{newer.dropped} row(s) of older files not loaded: a newer file of "
                          "this run holds the same key")

    def _read_changed(self, changed: list[str], seen: dict[str, str],
                      newer: _NewerKeys | None, skipped: dict[str, str]) -> Iterator[pa.Table]:
        # Newest first when several files are read at once: a key an older file shares with a
        # newer one keeps the newer file's row, as reading them one run at a time would.
        for relative in reversed(changed) if newer else changed:
            entry = _Entry.parse(seen.get(relative))
            content = skipped.get(relative)
            refused = entry.refused  # kept for a file skipped as unchanged
            if content is None:
                # Hashed before it is read: a rewrite in between makes the next run read it
                # again (a hash taken after could be the new content's, never read).
                content = self._content_hash(relative)
                before = len(self._rejected)
                try:
                    tables = self.adapter.read(relative, self.declared, self._rejected)
                    yield from newer.drop_replaced(tables) if newer else tables
                except readers.FileError as exc:
                    raise FrameworkError(f"files source {self.adapter.location}: "
                                         f"{exc}") from None
                if newer:
                    newer.file_done()
                by_value = any(r.by_value for r in self._rejected[before:])
                refused = self._reading if by_value else None
            # Recorded only once the whole file is read: dlt keeps the state with the load.
            seen[relative] = _Entry(self.files[relative], content, refused).text()

    @cached_property
    def _reading(self) -> str:
        """How the files are read (the declared types, the csv options): a file some of whose
        values were refused is read again once this changes, so a fixed declaration (a date
        format, say) brings them in."""
        import hashlib
        import json

        how = json.dumps([self.declared, self.adapter.source.csv.model_dump(mode="json")],
                         sort_keys=True)
        return hashlib.sha256(how.encode()).hexdigest()[:16]

    def _same_content(self, relative: str, before: _Entry) -> str | None:
        """The content hash of a file whose modification time changed but not its size nor its
        content (touched, copied, checked out again), else None: it is read again. Re-reading
        an older export whole would put its rows back over newer files' rows of the same keys."""
        if before.content is None or before.refused not in (None, self._reading) or \
                before.version == self.files[relative]:  # unchanged: read with an older one
            return None
        if before.version.split(":", 1)[0] != self.files[relative].split(":", 1)[0]:
            return None  # another size: changed
        return before.content if self._content_hash(relative) == before.content else None

    def _content_hash(self, relative: str) -> str | None:
        """adapter.content_hash, once a run: `_changed` asks before the read, and the read
        keeps the hash taken before it."""
        if relative not in self._hashes:
            self._hashes[relative] = self.adapter.content_hash(relative)
        return self._hashes[relative]

    def _changed(self, seen: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        """Files new, with another version than the last run read, or with records refused under
        another way of reading them. A file read before and read again (rewritten, or for its
        refused records) is read with every file after it in path order, so that a key they
        share keeps the later file's row (`_NewerKeys`), as when they were first read: read
        alone, an older export put its rows back over newer ones. A new file does not bring
        the files after it: it is the newest by arrival, whatever its name (`<uuid>.csv`
        drops sort at random). Also returns, of these files, those only touched before any
        read again (same content: their hash), which are not read."""
        changed, skipped, again = [], {}, False
        for relative, version in self.files.items():  # in path order
            entry = _Entry.parse(seen.get(relative))
            refused_again = entry.version == version and entry.refused not in (None,
                                                                               self._reading)
            if entry.version != version or refused_again:
                content = None if again or refused_again else \
                    self._same_content(relative, entry)
                if content is not None:  # only touched: its new version is recorded
                    skipped[relative] = content
                else:
                    again = again or bool(entry.version)
                changed.append(relative)
            elif again:
                changed.append(relative)
        return changed, skipped

    def _diff(self, seen: dict[str, str]) -> tuple[list[str], dict[str, str], list[str]]:
        changed, skipped = self._changed(seen)
        gone = [f for f in seen if f not in self.files]
        for relative in gone:
            if relative not in self._reported:
                self._reported.add(relative)
                self.ctx.warn(f"file {relative} was read before and is gone from "
                              f"{self.adapter.location}; its rows stay loaded")
        return changed, skipped, gone

    def _local_state(self) -> dict[str, str]:
        """What the last run on this machine read (`plan` asks without restoring from the lake)."""
        import dlt

        from framework.dlt_settings import apply_defaults

        folder = self.ctx.state_dir / "dlt"
        if not (folder / self.ctx.spec.name).is_dir():
            return {}
        apply_defaults()
        try:
            pipeline = dlt.attach(pipeline_name=self.ctx.spec.name, pipelines_dir=str(folder))
        except Exception:  # noqa: BLE001 - no readable state: everything is new
            return {}
        return _state(pipeline, self.ctx.spec.lake.path)

    def nothing_new(self, pipeline: Any) -> bool:
        self._seen = _state(pipeline, self.ctx.spec.lake.path)
        changed, _, gone = self._diff(self._seen)
        return not changed and not gone

    def count_waiting(self, last_value: Any) -> tuple[int | None, str]:
        """Rows are not counted (that means reading the files); the files are named."""
        seen = self._seen if self._seen is not None else self._local_state()
        changed = self._changed(seen)[0]
        if not changed:
            return 0, "(no new or changed file since the last run)"
        shown = ", ".join(changed[:3]) + (f" (+{len(changed) - 3} more)" if len(changed) > 3
                                          else "")
        return None, f"in {len(changed)} new or changed file(s): {shown}"

    def explain(self, exc: Exception) -> Exception:
        # dlt wraps the resource's own error
        explained = next((c for c in chain(exc) if isinstance(c, FrameworkError)), None)
        if explained is not None:
            return explained
        # the innermost error says what happened; dlt's wrapper ends "with exception:"
        cause = _first_line(list(chain(exc))[-1])
        if cause.startswith("Schema at index"):  # Arrow, two files of this run
            cause = ("the files read in this run give a column different types, which one batch "
                     f"cannot hold ({cause}); declare the column's type in columns:")
        return FrameworkError(f"files source {self.adapter.location}: {cause}")

    def rejected(self) -> list[Rejected]:
        return list(self._rejected)

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class _Entry:
    """What the state keeps of a file read: its version (size and modification time, or ETag),
    a local file's SHA-256, and when some of its records were refused, how it was read then.
    As text: `version|sha256:HEX|refused:HOW` (older states hold the version alone)."""

    version: str
    content: str | None = None
    refused: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> _Entry:
        version, *parts = (text or "").split("|")
        found = dict(part.split(":", 1) for part in parts if ":" in part)
        return cls(version, found.get("sha256"), found.get("refused"))

    def text(self) -> str:
        return self.version + (f"|sha256:{self.content}" if self.content else "") + \
            (f"|refused:{self.refused}" if self.refused else "")


class _NewerKeys:
    """The keys of the files already read in a run that reads newest first; an older file's
    rows with one of them are dropped (a key twice within one file is left to validation).

    The keys wait in DuckDB, capped and spilled like the stages' work: a first run over a
    folder of daily exports may hold tens of millions of them (a Python set took 0.5 GB per
    2M). As text, so that a key read as 7 from one file and '7' from another is one key."""

    def __init__(self, ctx: RunContext, primary_key: list[str]) -> None:
        from framework.stages.load.duckdb import scratch_connection

        # by the lake's names, as each table's columns are looked up (`Order_ID` is `order_id`)
        self.primary_key = [dlt_column_name(k) for k in primary_key]
        self.con = scratch_connection(ctx.state_dir)
        columns = ", ".join(f"k{i} VARCHAR" for i in range(len(primary_key)))
        self.con.execute(f"CREATE TABLE seen ({columns}); CREATE TABLE this_file ({columns})")
        self.dropped = 0

    def drop_replaced(self, tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
        import pyarrow as pa

        key_names = [f"k{i}" for i in range(len(self.primary_key))]
        keys = ", ".join(f"CAST({k} AS VARCHAR) AS {k}" for k in key_names)
        for table in tables:
            names = {dlt_column_name(n): n for n in table.column_names}
            if not all(k in names for k in self.primary_key):
                yield table  # a key column missing: the load names it
                continue
            batch = pa.table([pa.array(range(table.num_rows), pa.int64()),
                              *(table.column(names[k]) for k in self.primary_key)],
                             names=["_row", *key_names])
            self.con.register("_batch", batch)
            try:
                # The positions of the rows to keep: no newer file holds their key.
                kept = self.con.sql(
                    f"SELECT _row FROM (SELECT _row, {keys} FROM _batch) ANTI JOIN seen "
                    f"USING ({', '.join(key_names)}) ORDER BY _row").to_arrow_table().column(0)
                self.con.execute(f"INSERT INTO this_file SELECT {keys} FROM _batch")
            finally:
                self.con.unregister("_batch")
            self.dropped += table.num_rows - len(kept)
            yield table if len(kept) == table.num_rows else table.take(kept)

    def file_done(self) -> None:
        self.con.execute("INSERT INTO seen SELECT * FROM this_file; DELETE FROM this_file")

    def close(self) -> None:
        self.con.close()


def _state(pipeline: Any, resource: str) -> dict[str, str]:
    """What the last run read, from the pipeline's restored state."""
    for source in pipeline.state.get("sources", {}).values():
        files = source.get("resources", {}).get(resource, {}).get(STATE_KEY)
        if files is not None:
            return dict(files)
    return {}


def _version(info: dict[str, Any]) -> str:
    """Size plus the store's change marker: S3's ETag, or the modification time."""
    marker = info.get("ETag") or info.get("etag") or info.get("mtime") or \
        info.get("LastModified") or info.get("last_modified") or ""
    return f"{info.get('size')}:{marker}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
