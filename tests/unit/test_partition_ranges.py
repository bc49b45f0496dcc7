"""How `source.partitions` cuts a column's range (framework/sources/sql/readers.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from framework.sources.sql.readers import split_points


def test_integer_dates_and_decimals_are_cut_into_increasing_points() -> None:
    assert split_points((1, 10), 3) == [4, 7]
    assert split_points((dt.date(2024, 1, 1), dt.date(2024, 1, 3)), 4) == [dt.date(2024, 1, 2)]
    assert split_points((Decimal("0.00"), Decimal("1.00")), 4) == [
        Decimal("0.25"), Decimal("0.5"), Decimal("0.75")]


def test_timestamps_in_a_zone_with_a_dst_change_are_cut_in_absolute_time() -> None:
    """psycopg hands timestamptz over in the session's zone; cutting in wall-clock time across
    the spring-forward hour gave a cut after its successor, and two parts overlapped."""
    berlin = ZoneInfo("Europe/Berlin")
    low = dt.datetime(2024, 3, 30, 23, tzinfo=dt.UTC).astimezone(berlin)
    high = dt.datetime(2024, 3, 31, 3, tzinfo=dt.UTC).astimezone(berlin)

    cuts = split_points((low, high), 8)

    assert len(cuts) == 7 and cuts == sorted(cuts)
    assert [c - low for c in cuts] == [dt.timedelta(minutes=30 * i) for i in range(1, 8)]


@pytest.mark.parametrize("bounds", [
    (None, None), (5, 5), (Decimal(1), Decimal("NaN")), (0.0, float("inf")),
    ("a", "z"), (1, 1.5)], ids=["empty", "one-value", "nan", "infinity", "text", "mixed"])
def test_a_range_that_cannot_be_cut_is_read_in_one_part(bounds: tuple[object, object]) -> None:
    assert split_points(bounds, 4) == []
