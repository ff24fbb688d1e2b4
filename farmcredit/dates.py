"""Days and seasons as farmcredit reads them, whatever form a caller gives: ``START/END`` text, dates, datetimes,
pandas Timestamps or ISO date strings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from farmcredit.errors import InputError

# The crop calendars are days of the year: dates a year apart fall on the same days, so a second year's dates would
# count as more clear dates of one season (and its peak NDVI as this season's).
MAX_SEASON_DAYS = 366
ISO_DAY = re.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}")


def as_season(
    season: str | Sequence[date | str] | None, max_days: int | None = MAX_SEASON_DAYS
) -> tuple[date, date] | None:
    """A season as its first and last day, from ``START/END`` or a pair of dates, datetimes (pandas Timestamps
    too: their day) or ISO date strings; None passes through. ``max_days=None`` takes a span of any length (what
    ``fetch`` downloads: several seasons, each assessed on its own).

    Raises:
        InputError: not such a pair, a season that ends before it starts, or one longer than ``max_days`` days.
    """
    if season is None:
        return None
    named = f"season {season!r} (--season START/END, season= in Python)"
    unread = f"{named} is not START/END, e.g. 2024-03-01/2024-10-31, nor a pair of dates"
    try:
        start, end = season.split("/") if isinstance(season, str) else season
    except (TypeError, ValueError) as exc:
        raise InputError(unread) from exc
    try:
        start, end = as_day(start), as_day(end)
    except (TypeError, ValueError) as exc:  # why a day is unreadable: day is out of range for month, say
        raise InputError(f"{unread} ({exc})") from exc
    if end < start:
        raise InputError(f"{named} ends before it starts")
    days = (end - start).days + 1
    if max_days is not None and (days > max_days or (clash := day_of_year_clash(start, end))):
        why = f"is {days} days long" if days > max_days else _clash_text(*clash)
        raise InputError(f"season {season!r} {why}: the crop calendars are days of one year, so a season is at most "
                         "a year, no day of the year in it twice; assess each year with its own --season START/END "
                         "(season= in Python)")
    return start, end


def _clash_text(earlier: date, later: date) -> str:
    """Why a season holding ``earlier`` and ``later`` (``day_of_year_clash``) holds a day of the year twice."""
    if (earlier.month, earlier.day) == (later.month, later.day):
        return f"holds {later.day} {later:%B} twice ({earlier} and {later})"
    return f"holds {later}, day {day_of_year(later)} of the year as {earlier} is"


def day_of_year(day: date) -> int:
    """The day of the year the crop calendars read a date as (1 January is 1; 1 March 60, or 61 in a leap year)."""
    return day.timetuple().tm_yday


def day_of_year_clash(first: date, last: date) -> tuple[date, date] | None:
    """The first day from ``first`` to ``last`` that a day before it in the span shares its day of the year (as the
    crop calendars count it) or its date with, a year earlier, and that earlier day: 2022-03-01 to 2023-03-01 (1 March
    twice, both day 60), 2024-03-01 to 2025-03-01 (days 61 and 60), 2023-07-01 to 2024-06-30 (both day 182); else
    None."""
    seen: dict[int | tuple[int, int], date] = {}
    for offset in range(min((last - first).days, MAX_SEASON_DAYS) + 1):
        day = first + timedelta(days=offset)
        for key in (day_of_year(day), (day.month, day.day)):
            if key in seen:
                return seen[key], day
            seen[key] = day
    return None


def iso_date(text: str) -> date:
    """A ``YYYY-MM-DD`` date, and only that form: Python 3.11's ``fromisoformat`` also reads ``20240301`` and week
    dates, 3.10's does not, so the same input would be read or refused by the Python version.

    Raises:
        ValueError: another form, or no such day.
    """
    if not ISO_DAY.fullmatch(text := text.strip()):
        raise ValueError(f"{text!r} is not a date written YYYY-MM-DD")
    return date.fromisoformat(text)


def as_day(value: date | str) -> date:
    """A date from a date, a datetime (its day) or an ISO date string (``iso_date``)."""
    if isinstance(value, str):
        return iso_date(value)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise TypeError(f"{value!r} is not a date")
