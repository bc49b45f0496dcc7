"""The lake: a local folder or an S3 prefix, with zones `raw/`, `processed/`, `quarantine/`.

A batch is one dlt load: its raw files are `raw/<path>/<load_id>.<file_id>.parquet`; the
transform writes `processed/<path>/<load_id>.parquet` (one file, DuckDB) or the parts
`processed/<path>/<load_id>.<NNNNN>.parquet` (as many as the data needs, Spark). Everything
downstream takes a batch as the list `batch_files` gives. A raw batch counts only once dlt has
recorded its load as complete in `raw/_dlt_loads/`.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import fsspec

from framework.settings.targets import LakeTarget

RAW, PROCESSED, QUARANTINE = "raw", "processed", "quarantine"
# The framework's own records with the lake (`record`): the source's columns last seen, and
# the newest batch reconcile deleted rows up to, a full refresh not finished yet.
COLUMNS, RECONCILED, FULL_REFRESH, RELEASED = ("columns", "reconciled", "full_refresh",
                                            "released")
# A dlt load id has exactly one dot (`1795658744.7682724`), so `<load_id>.<NNNNN>.parquet` (two
# dots before the suffix) is never another batch's single file.
PART_DIGITS = 5


# What readers say of a Parquet file cut short or overwritten (DuckDB, then PyArrow), with the
# file named: the lake's copy is damaged, which no transform, release or replay of the batch
# mends. (A value reading 'Corrupted' in a cast's error is the batch's data, not this.)
UNREADABLE = re.compile(r"[Dd]ecompression failure|[Nn]o magic bytes|magic bytes not found|"
                        r"too small to be a Parquet file|Couldn't deserialize thrift|"
                        r"Parquet file size is 0|Corrupt (file|footer|page|snappy)")


def unreadable(files: list[str], message: str) -> bool:
    """Whether `message` is a reader's own word that one of `files` cannot be read."""
    return bool(UNREADABLE.search(message)) and any(
        posixpath.basename(f) in message for f in files)


def footer_unreadable(exc: BaseException) -> bool:
    """Whether PyArrow's failure to read a Parquet file's footer says the file is damaged (cut
    short: ArrowInvalid; its footer overwritten: an OSError in the reader's words), not that it
    is missing or forbidden (S3 credentials, permissions: the lake's own error stands)."""
    import pyarrow as pa

    return isinstance(exc, pa.ArrowInvalid) or (
        isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, PermissionError))
        and bool(UNREADABLE.search(str(exc))))


def first_unreadable(lake: Lake, files: list[str]) -> tuple[str, str] | None:
    """The first of `files` PyArrow cannot read through, with its words; None when all read
    (or one is missing or forbidden: the caller's own error stands). DuckDB names no file for a
    damaged page header ('TProtocolException: Invalid data'), so a failed read of a batch asks
    here, on the failure's path only, before blaming the SQL or the data."""
    import pyarrow.parquet as pq

    for file in files:
        try:
            with lake.fs.open(file.removeprefix("s3://"), "rb") as handle:
                for _ in pq.ParquetFile(handle).iter_batches(batch_size=65_536):
                    pass
        except (ValueError, OSError) as exc:
            if footer_unreadable(exc):
                return file, str(exc)
            return None
    return None


def damaged(lake: Lake, table_path: str, load_id: str, reason: str) -> str:
    """The way out of a batch whose raw files cannot be read: its rows are still in the source,
    past the cursor, so only a full read brings them back."""
    first = " ".join(reason.strip().splitlines()[0].split()) if reason.strip() else "unreadable"
    return (f"batch {load_id}: a raw file of it cannot be read ({first}): the lake's copy is "
            f"damaged. Move the batch's files aside ({lake.uri(RAW, table_path, load_id)}.*) and "
            "run with --full-refresh, which reads the source whole")


def load_of(file: str) -> str:
    """The load id of a batch's file (`<load_id>.<file_id>.parquet`, `<load_id>.parquet`)."""
    return ".".join(posixpath.basename(file).split(".")[:2])


def part_file(batch_file: str, index: int) -> str:
    """The `index`-th part of a multi-file batch: `<load_id>.parquet` -> `<load_id>.00003.parquet`."""
    return f"{batch_file.removesuffix('.parquet')}.{index:0{PART_DIGITS}d}.parquet"


@dataclass(frozen=True)
class Lake:
    target: LakeTarget

    @cached_property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self.target.is_s3:
            from framework.extras import require

            s3fs = require("s3fs", f"the lake {self.url}")
            return s3fs.S3FileSystem(**self.s3_options())
        return fsspec.filesystem("file", auto_mkdir=True)

    def s3_options(self) -> dict[str, Any]:
        # Listings must be fresh: dlt writes new batches through its own client between our reads.
        options: dict[str, Any] = {
            "use_listings_cache": False,
            # 5xx and throttling answers are retried by botocore with back-off, bounded.
            "config_kwargs": {"retries": {"max_attempts": 6, "mode": "adaptive"}},
        }
        client: dict[str, Any] = {}
        if self.target.access_key_id:
            options["key"] = self.target.access_key_id
        if self.target.secret_access_key:
            options["secret"] = self.target.secret_access_key.get_secret_value()
        if self.target.endpoint_url:
            client["endpoint_url"] = self.target.endpoint_url
        if self.target.region:
            client["region_name"] = self.target.region
        if client:
            options["client_kwargs"] = client
        return options

    def check(self) -> None:
        """Fail in one line, naming the lake, when its bucket is missing or unreachable.

        (dlt would otherwise try to create the bucket, which production must never do.)
        """
        from framework.errors import ServiceError

        if not self.target.is_s3:
            from pathlib import Path

            # a file where the folder should be: named here, not as an unexpected error later
            for folder in (Path(self.url), *Path(self.url).parents):
                if folder.exists():
                    if not folder.is_dir():
                        raise ServiceError(f"lake {self.url}", f"{folder} is a file, not a folder")
                    break
            return

        bucket = self.url.removeprefix("s3://").split("/")[0]
        fs = self.fs  # MissingExtra (no s3fs) as it is, not as the lake's answer
        try:
            found = fs.exists(bucket)
        except Exception as exc:  # noqa: BLE001 - credentials, endpoint, network: the lake's answer
            first = str(exc).strip().splitlines()
            raise ServiceError(f"lake {self.url}", first[0] if first else type(exc).__name__) from None
        if not found:
            raise ServiceError(f"lake {self.url}", f"bucket '{bucket}' does not exist or these "
                               "credentials cannot see it")

    @property
    def url(self) -> str:
        return self.target.url.rstrip("/")

    def path(self, *parts: str) -> str:
        """A path inside the lake as the filesystem sees it (no `s3://` scheme)."""
        root = self.url.removeprefix("s3://")
        return posixpath.join(root, *parts)

    def uri(self, *parts: str) -> str:
        """A full URL (`s3://...` or an absolute local path) for DuckDB, Spark and dlt."""
        return posixpath.join(self.url, *parts)

    def completed_loads(self) -> set[str]:
        """Load ids dlt has finished writing to `raw/` (any pipeline)."""
        folder = self.path(RAW, "_dlt_loads")
        if not self.fs.exists(folder):
            return set()
        # `<schema>__<load_id>.jsonl`; load ids contain a dot (`1795658744.7682724`)
        names = (posixpath.basename(p).removesuffix(".jsonl") for p in self.fs.ls(folder, detail=False))
        return {name.split("__")[-1] for name in names}

    def raw_batches(self, table_path: str) -> dict[str, list[str]]:
        """Completed raw batches of one table: load id -> its Parquet files (full URLs)."""
        folder = self.path(RAW, table_path)
        if not self.fs.exists(folder):
            return {}
        completed = self.completed_loads()
        batches: dict[str, list[str]] = {}
        for file in sorted(self.fs.ls(folder, detail=False)):
            name = posixpath.basename(file)
            if not name.endswith(".parquet"):
                continue
            load_id = name.rsplit(".", 2)[0]  # `<load_id>.<file_id>.parquet`
            if load_id in completed:
                batches.setdefault(load_id, []).append(self._full(file))
        return dict(sorted(batches.items()))

    def batch_file(self, zone: str, table_path: str, load_id: str) -> str:
        """The single-file name of a batch (what the DuckDB engine writes); a batch may instead be
        parts of that name (`part_file`): list them with `batch_files`."""
        return self.uri(zone, table_path, f"{load_id}.parquet")

    def batch_files(self, zone: str, table_path: str, load_id: str) -> list[str]:
        """Every file of one batch in a zone (full URLs, parts in order); [] if it has none."""
        folder = self.path(zone, table_path)
        if not self.fs.exists(folder):
            return []
        pattern = re.compile(re.escape(load_id) + rf"(\.\d{{{PART_DIGITS}}})?\.parquet")
        return [self._full(p) for p in sorted(self.fs.ls(folder, detail=False))
                if pattern.fullmatch(posixpath.basename(p))]

    def remove_batch(self, zone: str, table_path: str, load_id: str) -> None:
        """Remove every file of a batch in a zone (a re-transform must not leave old parts)."""
        for url in self.batch_files(zone, table_path, load_id):
            self.fs.rm(url.removeprefix("s3://"))

    def move_batch(self, load_id: str, table_path: str, source: str, destination: str
                   ) -> list[str]:
        """Move every file of a batch from one zone to another (same names); the new URLs."""
        self.remove_batch(destination, table_path, load_id)
        self.fs.makedirs(self.path(destination, table_path), exist_ok=True)
        moved = []
        for url in self.batch_files(source, table_path, load_id):
            new = self.uri(destination, table_path, posixpath.basename(url))
            self.fs.mv(url.removeprefix("s3://"), new.removeprefix("s3://"))
            moved.append(new)
        return moved

    def exists(self, url: str) -> bool:
        return bool(self.fs.exists(url.removeprefix("s3://")))

    def record(self, kind: str, pipeline: str) -> str:
        """Where the framework keeps a small JSON record of its own about a pipeline
        (`raw/_framework_<kind>/<pipeline>.json`): with the lake, like dlt's state, so every
        machine reads the same past."""
        return self.path(RAW, f"_framework_{kind}", f"{pipeline}.json")

    def read_json(self, path: str) -> Any:
        """The JSON document at `path`, or None when there is none. A torn file (an older
        version wrote in place and was killed halfway) raises ValueError: each record's
        reader knows its safe side."""
        import json

        try:  # one GET on S3, not a HEAD first
            with self.fs.open(path, "r") as handle:
                return json.load(handle)
        except (FileNotFoundError, NotADirectoryError):  # a file where a folder should be:
            return None  # no record there either (`check` names such a lake in one line)

    def write_text(self, path: str, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def write_bytes(self, path: str, data: bytes) -> None:
        """Replace the file at `path` (a `path()`) whole or not at all: a process killed while
        writing in place would leave it empty, and every later read failing. An S3 PUT is
        whole already; a local file is written beside it, then renamed over it."""
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        if self.target.is_s3:
            self.fs.pipe_file(path, data)
            return
        partial = f"{path}.{uuid.uuid4().hex[:12]}.partial"  # two writers never share one
        self.fs.pipe_file(partial, data)
        self.fs.mv(partial, path)

    def remove(self, url: str) -> None:
        if self.exists(url):
            self.fs.rm(url.removeprefix("s3://"))

    def _full(self, fs_path: str) -> str:
        return f"s3://{fs_path}" if self.target.is_s3 else fs_path
