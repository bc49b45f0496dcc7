"""One file to Arrow tables: every record becomes a typed row or a `Rejected` naming its file,
line and reason. Nothing is dropped silently and no malformed record becomes an all-NULL row.

CSV and JSON lines are parsed with Python's own csv and json modules: they give the exact line
of each record (quoted newlines included) and let one bad field reject its row, not the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

import pyarrow as pa

from framework.errors import FrameworkError
from framework.sources.base import Rejected
from framework.sources.files.spec import CsvOptions
from framework.sources.files.values import (
    BadValue,
    Convert,
    arrow_type,
    converter,
    localized,
)
from framework.spec.columns import NUMERIC, base_type, dlt_column_name

BATCH_ROWS = 50_000
RECORD_CHARS = 200  # of a rejected record's text kept with it
# The csv module refuses a field over 128 KiB, which failed the whole run on one long text
# (a product description, a JSON blob): a field may be as long as a line can be.
csv.field_size_limit(2**31 - 1)


class FileError(FrameworkError):
    """A file that cannot be read at all (wrong encoding, a broken header)."""


def csv_header(handle: IO[bytes], options: CsvOptions, declared: list[str]) -> list[str]:
    """The column names of a CSV file: its first record, or the declared columns."""
    if not options.header:
        return declared
    text = _text(handle, options)
    first = next(csv.reader(text, delimiter=options.delimiter, quotechar=options.quote), [])
    return header_names(first)


def header_names(fields: list[str]) -> list[str]:
    """A header record's column names. A field left empty (the index column pandas' `to_csv`
    writes) is named as DuckDB names it, `column0` (zero-padded to the widest position), the
    name `framework init` declares for it."""
    width = len(str(len(fields) - 1))
    return [field.strip() or f"column{index:0{width}d}" for index, field in enumerate(fields)]


def read_csv(handle: IO[bytes], name: str, options: CsvOptions, types: dict[str, str],
             rejected: list[Rejected]) -> Iterator[pa.Table]:
    """Typed Arrow tables of a CSV file's good records; the others appended to `rejected`."""
    reader = csv.reader(_text(handle, options), delimiter=options.delimiter,
                        quotechar=options.quote)
    nulls = set(options.null_markers)
    header: list[str] = list(types) if not options.header else []
    converters: list[Convert | None] = []
    batch: Builder | None = None
    line = 0
    try:
        for fields in reader:
            start, line = line + 1, reader.line_num
            if not header:
                header = header_names(fields)
                _check_header(header, name, start)
                continue
            if batch is None:
                converters = [_converter(types.get(dlt_column_name(column)), options)
                              for column in header]
                batch = Builder(header, types)
            where = f"{name}:{start}"
            record = options.delimiter.join(fields)[:RECORD_CHARS]
            if not any(field.strip() for field in fields):
                rejected.append(Rejected(where, "blank line" if not fields else
                                         "every field is empty", record))
                continue
            if len(fields) != len(header):
                rejected.append(Rejected(where, f"{len(fields)} field(s), the header has "
                                         f"{len(header)}", record))
                continue
            try:
                row = [None if text in nulls else convert(text) if convert else text
                       for text, convert in zip(fields, converters)]
            except BadValue as exc:
                column = header[_failed_at(fields, converters, nulls)]
                rejected.append(Rejected(where, f"column {column}: {exc}", record, by_value=True))
                continue
            batch.add(row)
            if batch.rows >= BATCH_ROWS:
                yield batch.table()
                batch = Builder(header, types)
    except UnicodeDecodeError as exc:
        # Decoding runs ahead of the parser in blocks, so no exact line is known here.
        raise FileError(f"{name}: not valid {options.encoding} text ({exc.reason}); "
                        "set csv.encoding (e.g. latin-1, cp1252)") from None
    except csv.Error as exc:
        raise FileError(f"{name}:{line + 1}: {exc}") from None
    if batch is not None and batch.rows:
        yield batch.table()


def read_jsonl(handle: IO[bytes], name: str, types: dict[str, str], options: CsvOptions,
               rejected: list[Rejected]) -> Iterator[pa.Table]:
    """Typed Arrow tables of a JSON-lines file: one object per line."""
    text = _text(handle, options)
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text, 1):
        where = f"{name}:{number}"
        if not line.strip():
            rejected.append(Rejected(where, "blank line"))
            continue
        try:
            record = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            rejected.append(Rejected(where, f"not JSON: {exc.msg}", line[:RECORD_CHARS]))
            continue
        if not isinstance(record, dict) or not record:
            rejected.append(Rejected(where, "not a JSON object with fields",
                                     line[:RECORD_CHARS]))
            continue
        try:
            rows.append(_json_row(record, types, options))
        except BadValue as exc:
            rejected.append(Rejected(where, str(exc), line[:RECORD_CHARS], by_value=True))
            continue
        if len(rows) >= BATCH_ROWS:
            yield _json_table(rows, types)
            rows = []
    if rows:
        yield _json_table(rows, types)


def _json_row(record: dict[str, Any], types: dict[str, str], options: CsvOptions
              ) -> dict[str, Any]:
    """One JSON object's values typed; a bad one names its field, as a CSV field's does."""
    row = {}
    for key, value in record.items():
        try:
            row[key] = _json_value(value, types.get(dlt_column_name(key)), options)
        except BadValue as exc:
            raise BadValue(f"column {key}: {exc}") from None
    return row


def read_parquet(handle: IO[bytes], name: str, types: dict[str, str],
                 rejected: list[Rejected]) -> Iterator[pa.Table]:
    """Parquet is typed already: declared columns are cast to their declared types. A timestamp
    finer than the declared microseconds (pandas writes nanoseconds) is truncated to them, as
    the warehouses' TIMESTAMP would; a value any other cast would change is refused with its
    row (`name row N`), as a CSV field is, and a column whose type cannot become the declared
    one at all fails the file, naming it."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(handle)
    first = 1  # the file's row number of the batch's first row
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        try:
            table = _typed(batch, name, types)
        except pa.ArrowInvalid:  # some values do not fit: the rows holding them are refused
            refused = _refused_rows(batch, name, types)
            for index, reason in sorted(refused.items()):
                record = json.dumps(batch.slice(index, 1).to_pylist()[0], default=str,
                                    ensure_ascii=False)[:RECORD_CHARS]
                rejected.append(Rejected(f"{name} row {first + index}", reason, record,
                                         by_value=True))
            table = _typed(batch.filter(pa.array([i not in refused
                                                  for i in range(batch.num_rows)])),
                           name, types)
        first += batch.num_rows
        if table.num_rows:
            yield table


def _typed(batch: pa.RecordBatch, name: str, types: dict[str, str]) -> pa.Table:
    """`batch` with its declared columns cast; pa.ArrowInvalid when a value does not fit."""
    return pa.Table.from_arrays([_cast(field, column, name, types) for field, column
                                 in zip(batch.schema, batch.columns)],
                                names=batch.schema.names)


def _cast(field: pa.Field, column: pa.Array, name: str, types: dict[str, str]) -> pa.Array:
    declared = types.get(dlt_column_name(field.name))
    if declared is None:
        return column
    wanted = arrow_type(declared)
    finer = pa.types.is_timestamp(field.type) and pa.types.is_timestamp(wanted)
    # Arrow rounds a float cast to a decimal silently (5.125 as decimal(10,2) is 5.12):
    # through the float's shortest text, a value the scale cannot hold fails as a CSV
    # field's would, and a float's binary noise (6.1 is 6.0999...) is no loss.
    as_text = pa.types.is_floating(field.type) and pa.types.is_decimal(wanted)
    try:
        cast = (column.cast(pa.string()) if as_text else column).cast(wanted, safe=not finer)
        if base_type(declared) == "integer":  # the warehouses' 32-bit INTEGER: in its range
            cast.cast(pa.int32())
        return cast
    except pa.ArrowNotImplementedError as exc:
        raise FileError(f"{name}: column {field.name} ({field.type}) cannot be read as "
                        f"{declared}: {str(exc).splitlines()[0]}") from None


def _refused_rows(batch: pa.RecordBatch, name: str, types: dict[str, str]) -> dict[int, str]:
    """The rows of `batch` holding a value its column's declared type refuses, with the first
    such column and value. Value by value: only a batch that failed as a whole comes here."""
    refused: dict[int, str] = {}
    for field, column in zip(batch.schema, batch.columns):
        declared = types.get(dlt_column_name(field.name))
        try:
            _cast(field, column, name, types)
            continue
        except pa.ArrowInvalid as exc:
            whole = str(exc).splitlines()[0]
        found = False
        for index in range(len(column)):
            try:
                _cast(field, column.slice(index, 1), name, types)
            except pa.ArrowInvalid as exc:
                found = True
                if pa.types.is_floating(field.type) and \
                        pa.types.is_decimal(arrow_type(declared or "string")):
                    # the float's shortest text, the one its scale was checked on, refused as
                    # a CSV field's (decimal places, digits, not finite)
                    why = _decimal_refusal(str(column.slice(index, 1).cast(pa.string())[0]),
                                           declared or "")
                else:
                    why = (f"{column[index].as_py()!r} cannot be read as {declared} "
                           f"({str(exc).splitlines()[0]})")
                refused.setdefault(index, f"column {field.name}: {why}")
        if not found:  # no single value fails: the column as a whole does
            raise FileError(f"{name}: column {field.name} ({field.type}) cannot be read as "
                            f"{declared}: {whole}")
    return refused


def _decimal_refusal(text: str, declared: str) -> str:
    """Why the declared decimal refuses `text`, as a CSV field's converter says it."""
    try:
        converter(declared, [], [])(text)
    except BadValue as exc:
        return str(exc)
    return f"{text!r} cannot be read as {declared}"


class Builder:
    """Column lists of one batch, typed on the way out."""

    def __init__(self, header: list[str], types: dict[str, str]) -> None:
        self.header, self.types = header, types
        self.columns: list[list[Any]] = [[] for _ in header]
        self.rows = 0

    def add(self, row: list[Any]) -> None:
        for values, value in zip(self.columns, row):
            values.append(value)
        self.rows += 1

    def table(self) -> pa.Table:
        arrays = [pa.array(values,
                           type=arrow_type(self.types.get(dlt_column_name(column), "string")))
                  for column, values in zip(self.header, self.columns)]
        return pa.Table.from_arrays(arrays, names=self.header)


def _text(handle: IO[bytes], options: CsvOptions) -> io.TextIOWrapper:
    encoding = options.encoding
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # a byte-order mark is not part of the first column's name
    # newline="": the csv module sees \r\n itself, so quoted line breaks survive.
    return io.TextIOWrapper(handle, encoding=encoding, newline="")


def _converter(portable: str | None, options: CsvOptions) -> Convert | None:
    if portable is None or portable == "string":
        return None
    convert = converter(portable, options.timestamp_formats, options.date_formats)
    if base_type(portable) in NUMERIC and (options.decimal != "." or options.thousands):
        return localized(convert, options.decimal, options.thousands)
    return convert


def _check_header(header: list[str], name: str, line: int) -> None:
    for index, column in enumerate(header):
        if column in header[:index]:
            raise FileError(f"{name}:{line}: column '{column}' appears twice in the header")
        same = next((c for c in header[:index]
                     if dlt_column_name(c) == dlt_column_name(column)), None)
        if same is not None:
            raise FileError(f"{name}:{line}: columns '{same}' and '{column}' both land as "
                            f"'{dlt_column_name(column)}'; rename one in the file, or set "
                            "csv.header: false and declare columns")


def _failed_at(fields: list[str], converters: list[Convert | None], nulls: set[str]) -> int:
    for index, (text, convert) in enumerate(zip(fields, converters)):
        if convert is None or text in nulls:
            continue
        try:
            convert(text)
        except BadValue:
            return index
    return 0


def _json_value(value: Any, portable: str | None, options: CsvOptions) -> Any:
    if value is None or portable is None:
        return value if value is None or isinstance(value, str) else _json_text(value)
    if isinstance(value, str):
        if value in options.null_markers:
            return None
        return _converter(portable, options)(value) if portable != "string" else value  # type: ignore[misc]
    if isinstance(value, (dict, list)):
        raise BadValue(f"a nested value where a {portable} is declared")
    if base_type(portable) == "string":  # a JSON number or boolean, as JSON writes it
        return _json_text(value)
    return converter(portable, [], [])(str(value)) if portable not in ("double",) else float(value)


def _json_text(value: Any) -> str:
    """A JSON value as its JSON text, numbers as the file wrote them (parsed as Decimal, they
    must not turn into quoted strings), other scripts' letters as themselves."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {_json_text(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_json_text(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _json_table(rows: list[dict[str, Any]], types: dict[str, str]) -> pa.Table:
    names = list(dict.fromkeys(key for row in rows for key in row))
    return pa.Table.from_arrays(
        [pa.array([row.get(n) for row in rows],
                  type=arrow_type(types.get(dlt_column_name(n), "string")))
         for n in names], names=names)
