"""What the administrator is told about the working-day calendar: `python -m bot holidays` and
the start-up warning of `serve` and `scheduler`. The facts come from scheduler.calendar; the
words are here, in Chinese a secretary understands (no package names)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from scheduler.calendar import CalendarSource, Coverage, coverage

log = logging.getLogger(__name__)

HOW_TO_ADD = ("国务院公布该年放假安排后，请写入 HOLIDAYS_FILE 指定的文件（每行一个日期，"
              "例如「2027-02-06 休」表示放假、「2027-02-14 班」表示调休上班），然后重启服务。")
# Next year's schedule is published in November or December: warn about it from then on.
LOOK_AHEAD = timedelta(days=45)


def describe(cov: Coverage, holidays_file: Path | None = None) -> str:
    """One line: which calendar data is in force for the year."""
    extra = (f"，另有节假日文件中的 {cov.from_file} 个日期（放假 {cov.file_days_off} 天，"
             f"调休上班 {cov.file_working_days} 天）" if cov.from_file else "")
    if cov.source is CalendarSource.BUILT_IN:
        return f"{cov.year} 年：按内置的国务院节假日安排{extra}。"
    if cov.source is CalendarSource.FILE:
        where = f"（{holidays_file}）" if holidays_file else ""
        return (f"{cov.year} 年：按节假日文件{where}，放假 {cov.file_days_off} 天、调休上班 "
                f"{cov.file_working_days} 天；文件未列出的日子按周一至周五计算。")
    return f"{cov.year} 年：没有节假日安排，工作日暂按周一至周五计算（节假日照常提醒）。{HOW_TO_ADD}"


def coverage_note(year: int) -> str | None:
    """A Chinese sentence when no holiday data covers `year`, else None."""
    cov = coverage(year)
    return None if cov.source is not CalendarSource.WEEKDAYS else describe(cov)


def years_ahead(now: datetime, tz: ZoneInfo) -> list[int]:
    """The years whose working days matter soon: this one, and the next once it is near."""
    today = now.astimezone(tz).date()
    return sorted({today.year, (today + LOOK_AHEAD).year})


def startup_warnings(now: datetime, tz: ZoneInfo) -> list[str]:
    """For `serve` and `scheduler` at start-up: the coming years on Monday–Friday only."""
    return [note for note in map(coverage_note, years_ahead(now, tz)) if note]


def warn_at_startup(runtime) -> None:
    """Log, once at start-up, each coming year that falls back to Monday–Friday."""
    for note in startup_warnings(runtime.now(), runtime.settings.tz):
        log.warning("节假日提醒：%s", note)


def report(years: list[int], holidays_file: Path | None) -> list[str]:
    """`python -m bot holidays [YEAR]`: a line per year."""
    return [describe(coverage(year), holidays_file) for year in years]


def default_years(today: date) -> list[int]:
    return [today.year, today.year + 1]
