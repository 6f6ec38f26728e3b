"""Working days by the Chinese calendar: public holidays (节假日) and adjusted working days (调休).

Two sources, in this order: the administrator's `HOLIDAYS_FILE` (dates the State Council has
published, entered the day they are; a date there wins over the built-in data, so it can correct
it too), then the `chinese_calendar` package, which ships the schedule year by year and raises
NotImplementedError for a year it does not know yet. A year neither covers falls back to
Monday–Friday. This module states the facts (`coverage`); the words for people are the command
line's (`python -m bot holidays`, the start-up warning of `serve` and `scheduler`).

Where the rules use it: the required-meetings reminder "at the start of the last week of the
period" goes out at 09:00 on the first working day of that week (a reminder on the first day of
the National Day holiday helps nobody). Other reminders are relative to a deadline or a start time
that people chose, so they keep their exact times."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger(__name__)

REMINDER_TIME = time(9, 0)  # local time of day-level reminders
_warned: set[int] = set()
# The administrator's dates (HOLIDAYS_FILE): True for a working day (班), False for a day off (休).
_extra: dict[date, bool] = {}


class CalendarSource(StrEnum):
    """Where a year's holidays and adjusted working days come from."""

    BUILT_IN = "built-in"  # the package's State Council schedule
    FILE = "file"  # HOLIDAYS_FILE only
    WEEKDAYS = "weekdays"  # nothing: Monday–Friday


@dataclass(frozen=True)
class Coverage:
    year: int
    source: CalendarSource
    file_days_off: int = 0  # dates of the year the file marks 休
    file_working_days: int = 0  # and 班

    @property
    def from_file(self) -> int:
        return self.file_days_off + self.file_working_days


def configure(days: Mapping[date, bool]) -> None:
    """Use these dates (from `HOLIDAYS_FILE`; True: a working day) beside the built-in data, in
    place of any set before. Called when the app is built, before any rule asks."""
    _extra.clear()
    _extra.update(days)
    _warned.clear()


def builtin_covers(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def coverage(year: int) -> Coverage:
    """Which data decides `year`'s working days."""
    marks = [working for day, working in _extra.items() if day.year == year]
    off, working = marks.count(False), marks.count(True)
    if builtin_covers(year):
        source = CalendarSource.BUILT_IN
    elif marks:
        source = CalendarSource.FILE
    else:
        source = CalendarSource.WEEKDAYS
    return Coverage(year, source, off, working)


def is_working_day(day: date) -> bool:
    """True on a working day: weekdays that are not public holidays, and adjusted working
    Saturdays/Sundays (调休上班)."""
    if day in _extra:
        return _extra[day]
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        if day.year not in _warned and not any(d.year == day.year for d in _extra):
            _warned.add(day.year)
            # For operators (a log line); the administrator reads the same fact in Chinese from
            # `python -m bot holidays` and the start-up warning.
            log.warning("no holiday data for %s: its working days are Monday to Friday until the "
                        "State Council's schedule is entered in HOLIDAYS_FILE", day.year)
        return day.weekday() < 5


def first_working_day(start: date, end: date) -> date | None:
    """The first working day in [start, end], or None when the whole span is off work."""
    day = start
    while day <= end:
        if is_working_day(day):
            return day
        day += timedelta(days=1)
    return None


def last_week_reminder_at(period_end: datetime, tz: ZoneInfo) -> datetime:
    """When the "last week of the period" reminder is due: 09:00 local on the first working day of
    the period's last seven days (`period_end` is the exclusive end, aware). When those seven days
    are all off work (a long holiday), the first of them."""
    last_day = period_end.astimezone(tz).date() - timedelta(days=1)
    week_start = last_day - timedelta(days=6)
    day = first_working_day(week_start, last_day) or week_start
    return datetime.combine(day, REMINDER_TIME, tzinfo=tz).astimezone(UTC)
