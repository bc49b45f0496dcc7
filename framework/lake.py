"""The lake: a local folder or an S3 prefix, with zones `raw/`, `processed/`, `quarantine/`.

A batch is one dlt load: its raw files are `raw/<path>/<load_id>.<file_id>.parquet`; the
transform writes `processed/<path>/<load_id>.parquet`. A raw batch counts only once dlt has
recorded its load as complete in `raw/_dlt_loads/`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import fsspec

from framework.settings.targets import LakeTarget

RAW, PROCESSED, QUARANTINE = "raw", "processed", "quarantine"


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
        if not self.target.is_s3:
            return
        from framework.errors import ServiceError

        bucket = self.url.removeprefix("s3://").split("/")[0]
        fs = self.fs  # MissingExtra (no s3fs) as it is, not as the lake's answer
        try:
            found = fs.exists(bucket)
        except Exception as exc:  # credentials, endpoint, network: all the lake's answer
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
        return self.uri(zone, table_path, f"{load_id}.parquet")

    def exists(self, url: str) -> bool:
        return bool(self.fs.exists(url.removeprefix("s3://")))

    def remove(self, url: str) -> None:
        if self.exists(url):
            self.fs.rm(url.removeprefix("s3://"))

    def _full(self, fs_path: str) -> str:
        return f"s3://{fs_path}" if self.target.is_s3 else fs_path
