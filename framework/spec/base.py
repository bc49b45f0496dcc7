"""The pieces every part of a pipeline file is built from: the strict frozen model, the error
that points at one key, and the cursor settings sources share."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

DURATION_PATTERN = r"^\d+(\.\d+)?(us|ms|s|m|h|d)$"
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class ProblemAt(ValueError):
    """A rule broken by the value of one key: the error points at `key`, not at its parent."""

    def __init__(self, key: str | int | tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.key: tuple[str | int, ...] = key if isinstance(key, tuple) else (key,)


def no_duplicates(values: list[str]) -> list[str]:
    for index, value in enumerate(values):
        if value in values[:index]:
            raise ProblemAt(index, f"'{value}' is listed twice; remove one")
    return values


class SpecModel(BaseModel):
    """Unknown keys are errors and a loaded spec never changes.

    Defaults are validated too, so an enum setting is the same plain string whether the file
    wrote it or the default filled it in.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True,
                              validate_default=True)


class NullCursorPolicy(StrEnum):
    include = "include"
    exclude = "exclude"
    fail = "fail"


class Incremental(SpecModel):
    """How new and changed rows are found: a cursor column that only grows."""

    cursor: str = Field(
        description="Column that the source sets on every insert and update; rows above the last "
        "run's maximum (minus `lag`) are extracted.",
        examples=["updated_at"],
    )
    initial_value: str | int | None = Field(
        default=None,
        description="Cursor value the first run starts from (ISO timestamp or number); "
        "omit to take every row.",
        examples=["2016-01-01T00:00:00"],
    )
    lag: Annotated[float, Field(ge=0)] | Annotated[str, StringConstraints(pattern=DURATION_PATTERN)] = Field(
        default=0,
        description="Look-back window re-read on every run to catch rows committed late below "
        "the cursor boundary, in the cursor's unit: for a timestamp cursor seconds or a duration "
        "such as `10m`, `2h`, `1d`; for a date cursor the same, rounded up to whole days; for a "
        "number cursor a number of cursor units (a duration is refused). Re-read rows are merged "
        "on the primary key, so `lag` needs `warehouse.write_disposition: merge`.",
        examples=["10m", 0],
    )
    on_null: NullCursorPolicy = Field(
        default=NullCursorPolicy.fail,
        description="What to do with a row whose cursor is NULL: `include` it in every run "
        "(merged on the primary key, so it needs `warehouse.write_disposition: merge`), "
        "`exclude` it, or `fail` the run naming the row.",
        examples=["fail"],
    )

    @property
    def lag_seconds(self) -> float:
        if isinstance(self.lag, str):
            number, unit = re.match(r"^([\d.]+)(\w+)$", self.lag).groups()  # type: ignore[union-attr]
            return float(number) * _DURATION_UNITS[unit]
        return float(self.lag)
