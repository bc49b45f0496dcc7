"""Spark for the `spark` transform engine: one SparkSession per process, configured from the target.

The whole configuration is data (`spark_conf(target)`): the master from `target.spark.master`,
the SQL settings that make Spark write what DuckDB writes (UTC, naive microsecond timestamps,
zstd Parquet), the S3A settings generated from the lake (endpoint, keys, path-style access,
`s3://` mapped to S3A) and, last, the target's own `spark.conf` overrides.

The session starts on first use, after checking that Java 17+ is there (one clear line if not),
and stops when the process exits. It stays quiet: log4j at ERROR, no progress bars, no UI in
local mode.

How the lake is reached depends on the master (`lake_access`):

- a local lake is read and written in place (on a cluster it must be a shared mount);
- an S3 lake with a cluster master is read and written as `s3a://` (the cluster provides the
  hadoop-aws jars);
- an S3 lake with a `local[...]` master goes through local temporary files copied with the
  lake's own filesystem (s3fs), since a local pyspark has no hadoop-aws jars and no Maven.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from framework.errors import FrameworkError
from framework.settings.targets import Target

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from framework.context import RunContext

MIN_JAVA = 17
APP_NAME = "framework"
S3A = "org.apache.hadoop.fs.s3a.S3AFileSystem"
S3A_ABSTRACT = "org.apache.hadoop.fs.s3a.S3A"

# Settings that must not appear on the spark-submit command line (pyspark passes every builder
# setting as `--conf k=v`, visible in `ps`): they are set on the running session instead.
_SECRET = re.compile(r"(secret|password|token|secret\.key|access\.key)$", re.IGNORECASE)

# The JVM's log4j: errors only, and not even those for a failed task, whose error reaches
# Python anyway (the transform turns it into one line).
_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
# Spark's own loggers configured (at the root's level), so it announces no shell log level.
logger.spark.name = org.apache.spark
logger.spark.level = error
"""
_QUIET_LOGGERS = (
    "org.apache.spark.executor.Executor",
    "org.apache.spark.scheduler.TaskSetManager",
    "org.apache.spark.scheduler.TaskSchedulerImpl",
    "org.apache.spark.sql.execution.datasources.FileFormatWriter",
    "org.apache.spark.internal.io.SparkHadoopWriter",
    "org.apache.spark.util.Utils",
    "org.apache.hadoop.util.NativeCodeLoader",
)

_lock = threading.RLock()
_session: SparkSession | None = None
_session_conf: dict[str, str] | None = None
_scratch: str | None = None
_atexit_registered = False


# -- configuration as data -------------------------------------------------------------------


def is_local(master: str) -> bool:
    return master == "local" or master.startswith(("local[", "local-cluster"))


def spark_conf(target: Target) -> dict[str, str]:
    """The session's configuration for a target: master, SQL settings, S3A, the target's overrides."""
    master = target.spark.master
    conf: dict[str, str] = {
        "spark.master": master,
        "spark.app.name": APP_NAME,
        # What DuckDB writes: naive timestamps meaning UTC, as Parquet TIMESTAMP_MICROS (Arrow
        # timestamp[us], no time zone), zstd. `CAST(x AS TIMESTAMP)` is TIMESTAMP_NTZ, like
        # DuckDB's TIMESTAMP; casts from zoned timestamps use the UTC session zone, as DuckDB's.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.parquet.compression.codec": "zstd",
        # Strict casts (Spark 4's default, stated): a value that does not fit fails, as in DuckDB.
        "spark.sql.ansi.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        # No `_SUCCESS` marker next to the part file.
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    }
    if is_local(master):
        conf.update({
            "spark.ui.enabled": "false",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
        })
    conf.update(s3a_conf(target))
    conf.update({str(k): str(v) for k, v in target.spark.conf.items()})
    return conf


def s3a_conf(target: Target) -> dict[str, str]:
    """Hadoop S3A settings for an S3 lake (empty for a local one); `s3://` is S3A too."""
    lake = target.lake
    if not lake.is_s3:
        return {}
    conf = {
        "spark.hadoop.fs.s3a.impl": S3A,
        "spark.hadoop.fs.s3.impl": S3A,
        "spark.hadoop.fs.AbstractFileSystem.s3a.impl": S3A_ABSTRACT,
        "spark.hadoop.fs.AbstractFileSystem.s3.impl": S3A_ABSTRACT,
    }
    if lake.endpoint_url:
        conf["spark.hadoop.fs.s3a.endpoint"] = lake.endpoint_url
        # S3-compatible servers (MinIO, moto, Ceph) rarely serve virtual-host buckets.
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
            lake.endpoint_url.startswith("https://")).lower()
    if lake.region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = lake.region
    if lake.access_key_id and lake.secret_access_key:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider")
        conf["spark.hadoop.fs.s3a.access.key"] = lake.access_key_id
        conf["spark.hadoop.fs.s3a.secret.key"] = lake.secret_access_key.get_secret_value()
    return conf


LakeAccess = Literal["direct", "s3a", "staged"]


def lake_access(target: Target) -> LakeAccess:
    """How Spark reaches the lake: in place, as `s3a://`, or through local temporary files."""
    if not target.lake.is_s3:
        return "direct"
    return "staged" if is_local(target.spark.master) else "s3a"


def spark_url(url: str) -> str:
    """A lake URL as Spark reads it: `s3://` as `s3a://`, a local path as an explicit `file://`
    URL (so a cluster's default filesystem, HDFS say, never applies to it)."""
    if url.startswith("s3://"):
        return "s3a://" + url.removeprefix("s3://")
    return url if "://" in url else "file://" + os.path.abspath(url)


# -- Java --------------------------------------------------------------------------------------


def java_executable() -> str | None:
    """The `java` Spark's launcher would run: `$JAVA_HOME/bin/java`, else `java` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.is_file() else None
    return shutil.which("java")


def java_version(java: str) -> int | None:
    """The major version `java -version` reports (8 for `1.8.0_x`), None if unreadable."""
    try:
        done = subprocess.run([java, "-version"], check=False, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def check_java() -> None:
    """Raise one clear line unless Java 17 or newer is there."""
    java = java_executable()
    home = os.environ.get("JAVA_HOME")
    if java is None:
        where = f"JAVA_HOME={home} has no bin/java" if home else "no java on PATH and JAVA_HOME unset"
        raise FrameworkError(f"spark: the spark engine needs Java {MIN_JAVA} or newer, but none "
                             f"was found ({where}); install a JDK {MIN_JAVA}+ (e.g. apt-get install "
                             f"openjdk-{MIN_JAVA}-jre-headless) or set JAVA_HOME")
    version = java_version(java)
    if version is None:
        raise FrameworkError(f"spark: could not run '{java} -version'; the spark engine needs "
                             f"Java {MIN_JAVA} or newer (set JAVA_HOME to a JDK {MIN_JAVA}+)")
    if version < MIN_JAVA:
        raise FrameworkError(f"spark: the spark engine needs Java {MIN_JAVA} or newer, found Java "
                             f"{version} at {java}; set JAVA_HOME to a JDK {MIN_JAVA}+")


# -- the session -------------------------------------------------------------------------------


def session_conf(target: Target) -> dict[str, str]:
    """What the session is started with: `spark_conf`, less the S3A settings when Spark never
    reads S3 itself (staged access), so a local session serves local and S3 lakes alike and
    holds no S3 keys."""
    conf = spark_conf(target)
    if lake_access(target) == "staged":
        conf = {k: v for k, v in conf.items() if k not in s3a_conf(target)}
    return conf


def session(target: Target) -> SparkSession:
    """The process's SparkSession for this target, started on first use."""
    global _session, _session_conf
    conf = session_conf(target)
    with _lock:
        if _session is not None and _session_conf == conf and _alive(_session):
            return _session
        if _session is not None:
            stop()  # another target's settings (or stopped underneath us): one session at a time
        _session = _start(conf)
        _session_conf = conf
        return _session


def active() -> SparkSession | None:
    """The running session, if one was started."""
    return _session if _session is not None and _alive(_session) else None


def stop() -> None:
    """Stop the session (registered at exit); safe to call twice."""
    global _session, _session_conf, _scratch
    with _lock:
        if _session is not None:
            with contextlib.suppress(Exception):  # the JVM may already be gone at exit
                _session.stop()
        _session = _session_conf = None
        if _scratch:
            shutil.rmtree(_scratch, ignore_errors=True)
            _scratch = None


def _alive(spark: SparkSession) -> bool:
    from pyspark import SparkContext

    return SparkContext._active_spark_context is spark.sparkContext


def _start(conf: dict[str, str]) -> SparkSession:
    global _scratch, _atexit_registered
    _quiet_python()
    from framework.extras import require

    require("pyspark.sql", "the spark engine")
    from pyspark.sql import SparkSession
    check_java()
    _scratch = tempfile.mkdtemp(prefix="framework-spark-")
    log4j = Path(_scratch) / "log4j2.properties"
    log4j.write_text(_LOG4J2 + "".join(
        f"logger.q{i}.name = {name}\nlogger.q{i}.level = fatal\n"
        for i, name in enumerate(_QUIET_LOGGERS)))
    public = {k: v for k, v in conf.items() if not _SECRET.search(k)}
    secret = {k: v for k, v in conf.items() if _SECRET.search(k)}
    options = f"-Dlog4j2.configurationFile=file:{log4j} -Duser.timezone=UTC"
    public["spark.driver.extraJavaOptions"] = " ".join(
        filter(None, [options, public.get("spark.driver.extraJavaOptions")]))
    builder = SparkSession.builder
    for key, value in public.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - the JVM did not start: one line, not a traceback
        shutil.rmtree(_scratch, ignore_errors=True)
        _scratch = None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FrameworkError(f"spark: could not start Spark (master {conf['spark.master']}): "
                             f"{first}") from None
    spark.sparkContext.setLogLevel("ERROR")
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in secret.items():
        if key.startswith("spark.hadoop."):
            hadoop.set(key.removeprefix("spark.hadoop."), value)
        else:
            spark.conf.set(key, value)
    if not _atexit_registered:
        atexit.register(stop)
        _atexit_registered = True
    return spark


def _quiet_python() -> None:
    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark")
    # pyspark logs every SQL error as a JSON record on stderr before raising it; we raise it
    # as one line instead.
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


# -- the lake as Spark sees it -----------------------------------------------------------------


@contextmanager
def read_parquet(ctx: RunContext, urls: list[str], merge_schema: bool = False
                 ) -> Iterator[DataFrame]:
    """Lake Parquet files as one Spark DataFrame, valid inside the block.

    Staged access (S3 lake, local master) downloads the files to a temporary folder first,
    removed when the block ends.
    """
    spark = session(ctx.target)
    reader = spark.read.option("mergeSchema", str(merge_schema).lower())
    access = lake_access(ctx.target)
    if access != "staged":
        yield reader.parquet(*map(spark_url, urls))
    else:
        with tempfile.TemporaryDirectory(prefix="framework-spark-in-") as folder:
            local = []
            for index, url in enumerate(urls):
                path = os.path.join(folder, f"{index:05d}-{os.path.basename(url)}")
                ctx.lake.fs.get(url.removeprefix("s3://"), path)
                local.append(path)
            yield reader.parquet(*local)
