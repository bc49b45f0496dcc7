"""`framework init --files 'DIR_OR_S3_GLOB'`: one `kind: files` pipeline per file pattern.

Files named alike but for a date or number (`x_2024-01.csv`, `x_2024-02.csv`) are one
pattern (`x_*.csv`), read by one pipeline. Each pattern's newest file is sampled: DuckDB's
sniffer gives the CSV dialect and the column types; US or European timestamp spellings it
does not know (`9/19/2017 9:45`) are recognised here and become `csv.timestamp_formats`. The
primary key is a column named `id` or `<table>_id` (or by the name's start) that is never
empty and unique within each sampled file; when none is, the file says TODO and
`framework validate` names what to fix.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError
from framework.onboarding.init import SCHEMA_LINE, flow_list, scalar
from framework.project import Project
from framework.sources.files.spec import EXTENSIONS
from framework.spec.columns import UNSIGNED_BIGINT, dlt_column_name

SAMPLE_BYTES = 4 * 1024 * 1024
SAMPLE_ROWS = 20_000
SAMPLE_FILES = 8
TODO_KEY = "TODO_primary_key"
# A date or number at the end of a file's stem: what varies between files of one pattern.
_VARYING = re.compile(r"(?<=[_\-. ])(\d{4}([_\-.]?\d{1,2}){0,2}|\d+)$|\d+$")
_TIMESTAMP_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
                      "%d/%m/%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S",
                      "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M")
# 1.234,56 or 1234,56 or -7: digits grouped by dots (or not), a comma before the places
_COMMA_NUMBER = re.compile(r"[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?")
_DATE_FORMATS = ("%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d")
_DUCKDB_TYPES = {"VARCHAR": "string", "BIGINT": "bigint", "INTEGER": "integer",
                 "SMALLINT": "integer", "TINYINT": "integer", "HUGEINT": "decimal(38,0)",
                 "UBIGINT": UNSIGNED_BIGINT, "UINTEGER": "bigint", "USMALLINT": "integer",
                 "UTINYINT": "integer", "DOUBLE": "double", "FLOAT": "double",
                 "BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP": "timestamp",
                 "TIMESTAMP_NS": "timestamp", "TIMESTAMP_MS": "timestamp",
                 "TIMESTAMP_S": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
                 "TIMESTAMPTZ_NS": "timestamptz", "BLOB": "binary"}


@dataclass
class FilePattern:
    """One pipeline's worth of files: their glob under the location, and what the sample said."""

    name: str
    glob: str
    files: list[str]
    fmt: str
    columns: dict[str, str] = field(default_factory=dict)
    not_null: set[str] = field(default_factory=set)
    csv: dict[str, Any] = field(default_factory=dict)
    primary_key: list[str] = field(default_factory=list)
    # Records each sampled file gave, newest first (text formats): a key is unique per file,
    # since a later export repeats the keys it updates.
    sample_records: list[int] = field(default_factory=list)


@dataclass
class OnboardedFiles:
    pattern: FilePattern
    path: Path
    problems: list[str]


def init_files(project: Project, where: str) -> list[OnboardedFiles]:
    """Write one pipeline file per file pattern under `where`; never over an existing file."""
    from framework.sources.files.adapter import FilesAdapter
    from framework.sources.files.spec import FilesSource

    location, glob = split_glob(where)
    source = FilesSource(kind="files", location=location, glob=glob, format="csv",
                         primary_key=["x"])
    adapter = FilesAdapter(source, connections=project.connection, target=project.target(),
                           env=project.variables, root=project.root)
    problem = adapter.not_set_up()
    if problem:
        raise FrameworkError(problem)
    files = [f for f in adapter.listing() if _format(f)]
    if not files:
        raise FrameworkError(f"no CSV, JSON lines or Parquet file matches {where}")
    patterns = group(files)
    paths = {p.name: project.pipelines_dir / f"{p.name}.yml" for p in patterns}
    for path in paths.values():
        if path.exists():
            raise FrameworkError(f"{project.display(path)} already exists; framework init never "
                                 "overwrites a file (remove it first)")
    for pattern in patterns:
        sample(adapter, pattern)
    done: list[OnboardedFiles] = []
    written: list[Path] = []
    try:
        for pattern in patterns:
            path = paths[pattern.name]
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8") as handle:
                handle.write(pipeline_yaml(pattern, location, where))
            written.append(path)
        for pattern in patterns:
            done.append(OnboardedFiles(pattern, paths[pattern.name],
                                       _validate(project, paths[pattern.name])))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return done


def split_glob(where: str) -> tuple[str, str]:
    """`data/x/*.csv` -> (`data/x`, `*.csv`); a folder alone means every file in it."""
    scheme = "s3://" if where.startswith("s3://") else ""
    parts = where.removeprefix(scheme).rstrip("/").split("/")
    first = next((i for i, p in enumerate(parts) if any(c in p for c in "*?[")), None)
    if first is None:
        if _format(parts[-1]):  # one file
            first = len(parts) - 1
        else:
            return scheme + "/".join(parts), "*"
    return scheme + "/".join(parts[:first]) or ".", "/".join(parts[first:])


def group(files: list[str]) -> list[FilePattern]:
    """Files whose names differ only by a trailing date or number form one pattern."""
    patterns: dict[str, FilePattern] = {}
    for relative in sorted(files):
        folder, name = posixpath.split(relative)
        stem, ext = _split_ext(name)
        varying = _VARYING.search(stem)
        prefix = stem[:varying.start()] if varying and varying.start() > 0 else stem
        glob = posixpath.join(folder, f"{prefix}*{ext}")
        if glob not in patterns:
            table = re.sub(r"[^a-z0-9]+", "_", prefix.lower()).strip("_") or "files"
            if not table[0].isalpha():
                table = f"f_{table}"
            patterns[glob] = FilePattern(table, glob, [], str(_format(name)))
        patterns[glob].files.append(relative)
    return list(patterns.values())


def sample(adapter: Any, pattern: FilePattern) -> None:
    """Fill in the pattern's columns, dialect and key from a sample: the first megabytes of
    its newest files (up to SAMPLE_FILES), so a type must fit every file, not one."""
    import duckdb

    from framework.stages.load.duckdb import connect

    newest = pattern.files[-1]
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / f"sample{_split_ext(newest)[1]}"
        if pattern.fmt == "parquet":
            with adapter.fs.open(posixpath.join(adapter.base, newest), "rb") as handle:
                local.write_bytes(handle.read())
        else:
            local.write_bytes(_text_sample(adapter, pattern))
        con = connect()
        try:
            reader = _reader(con, pattern, str(local))
            described = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
            rows = con.execute(f"SELECT * FROM {reader} LIMIT {SAMPLE_ROWS}").fetchall()
        except duckdb.Error as exc:
            raise FrameworkError(f"{newest}: cannot be sampled: "
                                 f"{str(exc).strip().splitlines()[0]}") from None
        finally:
            con.close()
    names = [d[0] for d in described]
    values = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    for name, duck in ((d[0], str(d[1])) for d in described):
        pattern.columns[name] = _portable(duck)
        if values[name] and all(v is not None and v != "" for v in values[name]):
            pattern.not_null.add(name)
        if pattern.fmt == "csv" and pattern.columns[name] == "string":
            _spelled_times(pattern, name, values[name])
    if pattern.fmt == "csv":
        _comma_numbers(pattern, values)
    pattern.primary_key = _guess_key(pattern, values)


def pipeline_yaml(pattern: FilePattern, location: str, where: str) -> str:
    key = pattern.primary_key or [TODO_KEY]
    lines = [SCHEMA_LINE, f"# Written by `framework init --files '{where}'`; edit freely.",
             f"name: {pattern.name}",
             f"description: {scalar(f'Rows of the files {pattern.glob} in {location}.')}",
             "owner: data-platform", f"tags: [{pattern.name}]", "source:", "  kind: files",
             f"  location: {scalar(location)}", f"  glob: {scalar(pattern.glob)}"]
    if pattern.csv:
        lines.append("  csv:")
        lines += [f"    {k}: {flow_list(v) if isinstance(v, list) else scalar(v)}"
                  for k, v in pattern.csv.items()]
    if not pattern.primary_key:
        lines.append("  # TODO: no column named id or <table>_id is unique in the sample; name "
                     "the key column(s).")
    lines += [f"  primary_key: {flow_list(key)}", "lake:", f"  path: {pattern.name}",
              "quality:", "  severity: error", "warehouse:", "  schema: landing",
              "  # A changed file is read again whole: merge keeps one row per key.",
              "  write_disposition: merge", "  contract: evolve", "columns:"]
    for name, portable in pattern.columns.items():
        # declared by the lake's name, which validation asks for: `Bestellnr` reads as
        # `bestellnr` (the reader matches a file's header fields by it)
        parts = [f"name: {scalar(dlt_column_name(name))}", f"type: {scalar(portable)}"]
        if name in pattern.primary_key:
            parts.append("nullable: false")
            if len(pattern.primary_key) == 1:
                parts.append("unique: true")
        lines.append("  - {" + ", ".join(parts) + "}")
    return "\n".join(lines) + "\n"


def _validate(project: Project, path: Path) -> list[str]:
    from framework.spec.checks import check_file

    return [e.render() for e in check_file(project, path, project.display(path))]


def _reader(con: Any, pattern: FilePattern, path: str) -> str:
    quoted = "'" + path.replace("'", "''") + "'"
    if pattern.fmt == "parquet":
        return f"read_parquet({quoted})"
    if pattern.fmt == "jsonl":
        return f"read_json_auto({quoted}, format='newline_delimited')"
    sniffed = con.execute(f"SELECT Delimiter, Quote, HasHeader FROM sniff_csv({quoted})").fetchone()
    delimiter, quote, header = sniffed
    if delimiter != ",":
        pattern.csv["delimiter"] = delimiter
    if quote not in ('"', "(empty)", ""):
        pattern.csv["quote"] = quote
    if not header:
        pattern.csv["header"] = False
    return f"read_csv({quoted})"


def _text_sample(adapter: Any, pattern: FilePattern) -> bytes:
    """Whole lines from the start of the newest files, one header; as UTF-8. Text that is
    not UTF-8 is taken as cp1252 when it holds Windows' letters at 0x80-0x9F, else as
    latin-1, and said so."""
    chunks: list[bytes] = []
    files = pattern.files[-SAMPLE_FILES:]
    for index, relative in enumerate(reversed(files)):
        with adapter.fs.open(posixpath.join(adapter.base, relative), "rb") as handle:
            data = handle.read(SAMPLE_BYTES // len(files))
        if len(data) == SAMPLE_BYTES // len(files):
            data = data[:data.rfind(b"\n") + 1]
        # one file written on Windows, the next elsewhere: DuckDB's sniffer fails on the mix
        data = data.replace(b"\r\n", b"\n")
        if index and pattern.fmt == "csv":  # the header once
            data = data.split(b"\n", 1)[1] if b"\n" in data else b""
        if data and not data.endswith(b"\n"):
            data += b"\n"
        chunks.append(data)
        lines = data.count(b"\n") - (1 if not index and pattern.fmt == "csv" else 0)
        pattern.sample_records.append(max(lines, 0))
    data = b"".join(chunks)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        # cp1252 when the sample holds a byte 0x80-0x9F, what Excel and Windows write there
        # (the euro sign, curly quotes: control characters in latin-1); else latin-1, which
        # reads every byte, so a byte cp1252 lacks later in a file cannot fail it.
        windows = any(0x80 <= byte <= 0x9F for byte in data)
        try:
            text = data.decode("cp1252") if windows else data.decode("latin-1")
            pattern.csv["encoding"] = "cp1252" if windows else "latin-1"
        except UnicodeDecodeError:
            text = data.decode("latin-1")
            pattern.csv["encoding"] = "latin-1"
        data = text.encode("utf-8")
    return data


def _portable(duck: str) -> str:
    if duck.startswith("DECIMAL"):
        return "decimal({},{})".format(*re.findall(r"\d+", duck))
    return _DUCKDB_TYPES.get(duck, "string")


def _spelled_times(pattern: FilePattern, name: str, values: list[Any]) -> None:
    """A text column whose every value is a timestamp (or date) in one known spelling."""
    present = [str(v).strip() for v in values if v not in (None, "")]
    if not present:
        return
    for portable, formats, key in (("timestamp", _TIMESTAMP_FORMATS, "timestamp_formats"),
                                   ("date", _DATE_FORMATS, "date_formats")):
        for fmt in formats:
            if all(_parses(v, fmt) for v in present):
                pattern.columns[name] = portable
                known = pattern.csv.setdefault(key, [])
                if fmt not in known:
                    known.append(fmt)
                return


def _comma_numbers(pattern: FilePattern, values: dict[str, list[Any]]) -> None:
    """Text columns whose every value is a number written with a decimal comma (`1.234,56`,
    `-7,1`), at least one with the comma: DuckDB's sniffer reads them as text. Declared
    decimals holding the sample's digits, with `csv.decimal` (and `csv.thousands` for dots
    between groups of three). Not when another column holds numbers with a decimal point
    (DuckDB typed it a double or decimal): the marks hold for the whole file, and would
    misread it."""
    pointed = any(t == "double" or t.startswith("decimal") and not t.endswith(",0)")
                  for t in pattern.columns.values())
    found: dict[str, list[str]] = {}
    for name, portable in pattern.columns.items():
        present = [str(v).strip() for v in values[name] if v not in (None, "")]
        if portable == "string" and present and any("," in v for v in present) \
                and all(_COMMA_NUMBER.fullmatch(v) for v in present):
            found[name] = present
    if not found or pointed:
        return
    grouped = False
    for name, present in found.items():
        places = max(len(v.partition(",")[2]) for v in present)
        digits = max(len(re.sub(r"\D", "", v.partition(",")[0])) for v in present)
        if digits + places <= 38:  # else text, as DuckDB read it
            pattern.columns[name] = f"decimal({max(18, digits + places)},{places})"
            grouped = grouped or any("." in v for v in present)
            pattern.csv["decimal"] = ","
    if grouped:
        pattern.csv["thousands"] = "."


def _parses(text: str, fmt: str) -> bool:
    try:
        dt.datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True


def _guess_key(pattern: FilePattern, values: dict[str, list[Any]]) -> list[str]:
    """The key by name (`id`, `<table>_id`, ...), compared by the lake's names (an export's
    `Order_ID` is `order_id`), returned as the file spells it; then a parent id and a line
    number."""
    raw = {dlt_column_name(c): c for c in values}
    words = set(re.split(r"[^a-z0-9]+", pattern.name))
    singular = {w[:-1] for w in words if w.endswith("s")}
    # `order_id` of orders, `bestell_id` of bestellungen: the name's start, 4 letters or more
    own = [c for c in raw if c.endswith("_id") and (
        c[:-3] in words | singular or len(c[:-3]) >= 4 and pattern.name.startswith(c[:-3]))]
    named = [c for c in raw if pattern.name.startswith(c)]  # `x` of `x_translation`
    for column in dict.fromkeys(["id", f"{pattern.name}_id", *own, *named]):
        if column in raw and _unique(pattern, values, [raw[column]]):
            return [raw[column]]
    # A line of something: its parent's id plus a sequence number (order_id, order_item_id).
    numbers = [c for c in values if pattern.columns[c] in ("integer", "bigint")]
    for parent in [raw[c] for c in [*own, *(c for c in raw if c.endswith("_id"))]]:
        for line in numbers:
            if line != parent and _unique(pattern, values, [parent, line]):
                return [parent, line]
    return []


def _unique(pattern: FilePattern, values: dict[str, list[Any]], columns: list[str]) -> bool:
    """Never empty, and unique within each sampled file: a later export repeats the keys it
    updates (merge keeps the last file's row). Where the sample's records do not match its
    lines (a quoted field holding a line break), unique across the whole sample."""
    if not all(c in pattern.not_null for c in columns):
        return False
    keys = list(zip(*(values[c] for c in columns)))
    counts = pattern.sample_records
    # the sample's first SAMPLE_ROWS records were read: the newest files', in order
    if not keys or sum(counts) != len(keys) and not (len(keys) == SAMPLE_ROWS
                                                     and sum(counts) > len(keys)):
        counts = [len(keys)]
    start = 0
    for count in counts:
        part = keys[start:start + count]
        if len(set(part)) != len(part):
            return False
        start += count
    return True


def _split_ext(name: str) -> tuple[str, str]:
    lower = name.lower()
    for suffix in (".gz",):
        if lower.endswith(suffix):
            stem, ext = _split_ext(name[: -len(suffix)])
            return stem, ext + name[-len(suffix):]
    stem, dot, ext = name.rpartition(".")
    return (stem, f".{ext}") if dot else (name, "")


def _format(name: str) -> str | None:
    ext = _split_ext(name)[1]
    return EXTENSIONS.get(ext.lower().removesuffix(".gz"))
