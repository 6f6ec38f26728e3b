"""Working days by the Chinese calendar: public holidays (节假日) and adjusted working days (调休).

`chinese_calendar` ships the State Council's schedule year by year and raises NotImplementedError
for a year it does not know yet (the schedule is published each November or December). Then a
working day falls back to Monday–Friday, and the gap is said in Chinese: logged once per year and
shown in 概况, so someone upgrades the package instead of wondering why a reminder came on a
holiday.

Where the rules use it: the required-meetings reminder "at the start of the last week of the
period" goes out at 09:00 on the first working day of that week (a reminder on the first day of
the National Day holiday helps nobody). Other reminders are relative to a deadline or a start time
that people chose, so they keep their exact times."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger(__name__)

REMINDER_TIME = time(9, 0)  # local time of day-level reminders
_warned: set[int] = set()


def coverage_note(year: int) -> str | None:
    """A Chinese sentence when the calendar does not cover `year`, else None."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return (f"节假日数据未覆盖 {year} 年（chinesecalendar 尚无该年安排），"
                f"{year} 年的工作日暂按周一至周五计算，请管理员升级 chinesecalendar。")
    return None


def is_working_day(day: date) -> bool:
    """True on a working day: weekdays that are not public holidays, and adjusted working
    Saturdays/Sundays (调休上班)."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        if day.year not in _warned:
            _warned.add(day.year)
            log.warning(coverage_note(day.year))
        return day.weekday() < 5


def is_holiday(day: date) -> bool:
    return not is_working_day(day)


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
