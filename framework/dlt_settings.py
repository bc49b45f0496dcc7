"""How every dlt pipeline of ours is configured: environment defaults, set before dlt first reads
its configuration (a pipeline or an attach; dlt starts its telemetry then, once per process),
and the Arrow scalar its incremental compares with. An owner's own setting of any of them wins.
"""

from __future__ import annotations

import os


def apply_defaults() -> None:
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    # dlt sends anonymous usage events from a thread of its own and waits for them at exit
    # (0.3-0.5 CPU s a run here, longer behind a firewall that drops): a pipeline of ours
    # phones nowhere unless its owner opts in, as with dbt's and GX's.
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    # zstd Parquet: same CPU as dlt's default, 40% smaller raw files (benchmarks/profile.md).
    os.environ.setdefault("DATA_WRITER__COMPRESSION", "zstd")
    # Once a package is in the lake, dlt's local copy of its files is dead weight (the whole
    # batch again, per run, in the state folder); its state and load records stay.
    os.environ.setdefault("LOAD__DELETE_COMPLETED_JOBS", "true")


def arrow_scalars_without_pandas() -> None:
    """dlt's Arrow incremental turns its last value into a scalar with `pa.scalar`, which
    imports pandas on its first call: 0.35 s of every run reading more than one batch (or
    incrementally), and nothing else in a run without Great Expectations needs pandas. Ours
    builds the same scalar from the value's integer form (tests/unit/test_cursor_values.py),
    and falls back to `pa.scalar` for any other value. Set when a read builds its pipeline: a
    run with nothing new never imports dlt."""
    from dlt.common.libs import pyarrow as dlt_arrow

    from framework.sources.sql.cursor import arrow_scalar

    dlt_arrow.to_arrow_scalar = arrow_scalar
