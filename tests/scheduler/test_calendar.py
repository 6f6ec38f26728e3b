"""Working days by the Chinese calendar (chinese_calendar), and the fallback for uncovered years."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.holidays import coverage_note
from scheduler import calendar
from scheduler.calendar import first_working_day, is_working_day, last_week_reminder_at

SH = ZoneInfo("Asia/Shanghai")


def test_public_holiday_is_not_a_working_day():
    assert not is_working_day(date(2026, 10, 1))  # National Day, a Thursday
    assert not is_working_day(date(2026, 2, 23))  # Spring Festival holiday, a Monday


def test_adjusted_working_day_on_a_weekend_is_a_working_day():
    assert date(2026, 9, 20).weekday() == 6 and is_working_day(date(2026, 9, 20))  # 调休 Sunday
    assert date(2026, 10, 10).weekday() == 5 and is_working_day(date(2026, 10, 10))  # 调休 Saturday
    assert not is_working_day(date(2026, 11, 21))  # an ordinary Saturday


def test_first_working_day_skips_the_holiday():
    assert first_working_day(date(2026, 10, 1), date(2026, 10, 31)) == date(2026, 10, 8)
    assert first_working_day(date(2026, 10, 3), date(2026, 10, 7)) is None


def test_last_week_reminder_lands_on_the_first_working_day_of_the_last_week():
    # February 2026: the last week is 22–28 Feb; 22 and 23 are Spring Festival days off → Tue 24th, 09:00.
    end = datetime(2026, 3, 1, tzinfo=SH)
    assert last_week_reminder_at(end, SH) == datetime(2026, 2, 24, 9, 0, tzinfo=SH).astimezone(UTC)
    # October 2026: 25 Oct is a Sunday → Monday 26th.
    end = datetime(2026, 11, 1, tzinfo=SH)
    assert last_week_reminder_at(end, SH) == datetime(2026, 10, 26, 9, 0, tzinfo=SH).astimezone(UTC)
    # November 2026: Tuesday 24th is itself a working day.
    end = datetime(2026, 12, 1, tzinfo=SH)
    assert last_week_reminder_at(end, SH) == datetime(2026, 11, 24, 9, 0, tzinfo=SH).astimezone(UTC)


def test_uncovered_year_falls_back_to_weekdays_with_a_chinese_note_and_a_logged_warning(caplog, monkeypatch):
    monkeypatch.setattr(calendar, "_warned", set())
    assert coverage_note(2026) is None
    note = coverage_note(2031)
    assert note and "2031 年" in note and "周一至周五" in note
    with caplog.at_level(logging.WARNING, logger="scheduler.calendar"):
        assert is_working_day(date(2031, 1, 1))  # a Wednesday: no holiday data, so a working day
        assert not is_working_day(date(2031, 1, 4))  # a Saturday
        is_working_day(date(2031, 1, 6))
    warnings = [r.getMessage() for r in caplog.records if "no holiday data for 2031" in r.getMessage()]
    assert len(warnings) == 1  # once per year, not per call
