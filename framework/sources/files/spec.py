"""The `files` source kind in a pipeline file: CSV, JSON lines or Parquet files by glob, in a
local folder or under an S3 prefix (reached with the target lake's S3 settings)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from framework.spec.base import ProblemAt, SpecModel, no_duplicates

FORMATS = ("csv", "jsonl", "parquet")
# A glob's extension and the format it means (`.json` files are read as JSON lines too).
EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl",
              ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


class CsvOptions(SpecModel):
    """How the CSV files are written: Python's csv dialect words, plus the value formats."""

    delimiter: str = Field(default=",", min_length=1, max_length=1,
                           description="Field separator, one character.", examples=[";"])
    quote: str = Field(default='"', min_length=1, max_length=1,
                       description="Quote character around fields holding the separator.",
                       examples=['"'])
    header: bool = Field(default=True, description="`true`: the first line names the columns; "
                         "`false`: the fields are the declared `columns:` in order.",
                         examples=[True])
    encoding: str = Field(default="utf-8", description="Text encoding of the files (any "
                          "Python codec name).", examples=["latin-1"])
    null_markers: list[str] = Field(default_factory=lambda: [""],
                                    description="Field texts that mean NULL.",
                                    examples=[["", "NULL", "\\N"]])
    timestamp_formats: list[str] = Field(
        default_factory=list,
        description="strptime formats tried in order for `timestamp`/`timestamptz` columns, "
        "after ISO 8601 (`2017-10-02 10:56:33`), which is always understood.",
        examples=[["%m/%d/%Y %H:%M"]])
    date_formats: list[str] = Field(
        default_factory=list,
        description="strptime formats tried in order for `date` columns, after ISO "
        "(`2017-10-02`).", examples=[["%d/%m/%Y"]])

    decimal: Literal[".", ","] = Field(
        default=".", description="Decimal mark of numbers: `,` for exports written as "
        "`1234,56` (with `thousands: \".\"` for `1.234,56`); a number with the other mark "
        "is refused, never read as another value.", examples=[","])
    thousands: str | None = Field(
        default=None, min_length=1, max_length=1,
        description="Thousands separator in numbers (`.`, `,`, a space), dropped where it "
        "groups three digits; none by default, so `1,234` is refused rather than read as "
        "1.234 or 1234.", examples=["."])

    @model_validator(mode="after")
    def _marks_differ(self) -> CsvOptions:
        if self.thousands == self.decimal:
            raise ProblemAt("thousands", f"'{self.thousands}' is the decimal mark too; a "
                            "number could be read two ways")
        return self

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding '{value}'; e.g. utf-8, latin-1, cp1252") from None
        return value


class FilesSource(SpecModel):
    """Rows of files matched by a glob: each file is read once, and again whole when it changes."""

    kind: Literal["files"] = Field(
        description="Source kind: `files` reads CSV, JSON lines or Parquet files from a folder "
        "or an S3 prefix.", examples=["files"])
    # Listing every current key would mean reading every file on every reconcile: the lake's
    # raw zone already holds each file's last read, so `deletes.reconcile` is not offered.
    reads_keys: ClassVar[bool] = False
    # A changed file is read again whole, so its rows reach the lake a second time.
    rereads_rows: ClassVar[bool] = True
    # No cursor column, yet not a full refresh: what `list` and `plan` show in its place.
    new_rows_by: ClassVar[str] = "(new and changed files)"

    location: str = Field(
        min_length=1,
        description="Folder (relative to the project, or absolute) or `s3://bucket/prefix`; an "
        "S3 location is read with the target lake's S3 endpoint, keys and region. "
        "`${VAR}` and `${VAR:-default}` take the place from the environment.",
        examples=["data/olist", "s3://shop-exports/olist", "${OLIST_CSV:-data/olist}"])
    glob: str = Field(
        min_length=1,
        description="File name pattern under `location` (`*`, `?`, `[..]`, `**` for sub-folders).",
        examples=["olist_orders_dataset*.csv"])
    format: Literal["csv", "jsonl", "parquet"] | None = Field(
        default=None,
        description="File format; inferred from the glob's extension when omitted.",
        examples=["csv"])
    csv: CsvOptions = Field(default_factory=CsvOptions,
                            description="CSV dialect and value formats (CSV files only).",
                            examples=[{"delimiter": ";", "encoding": "latin-1"}])
    primary_key: list[str] = Field(
        min_length=1,
        description="Column(s) that identify a row; the warehouse merges on them, so a file "
        "read again after a change replaces its rows instead of adding them twice.",
        examples=[["order_id"]],
        json_schema_extra={"uniqueItems": True})

    @field_validator("primary_key")
    @classmethod
    def _unique_key(cls, value: list[str]) -> list[str]:
        return no_duplicates(value)

    @model_validator(mode="after")
    def _format_known(self) -> FilesSource:
        if self.format is None and self.file_format is None:
            raise ProblemAt("glob", f"cannot tell the file format from '{self.glob}'; name it "
                            f"with format: ({' | '.join(FORMATS)})")
        return self

    @property
    def file_format(self) -> str | None:
        """The format given, or the one the glob's extension names."""
        if self.format:
            return self.format
        name = self.glob.lower().removesuffix(".gz")
        return next((fmt for ext, fmt in EXTENSIONS.items() if name.endswith(ext)), None)

    @property
    def incremental(self) -> None:
        """Files have no cursor column: they are incremental by file (see the adapter)."""
        return None
