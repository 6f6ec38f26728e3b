"""HOLIDAYS_FILE (SPEC §2.3, §5) and `python -m bot holidays [YEAR]` (SPEC §2.4): the State
Council's schedule for a year the built-in calendar does not cover yet, and plain words about
which year is on Monday–Friday only."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.holidays import warn_at_startup
from config.settings import Settings, SettingsError, read_holidays_file
from scheduler import calendar
from scheduler.calendar import CalendarSource, coverage, is_working_day, last_week_reminder_at

SH = ZoneInfo("Asia/Shanghai")

SPRING_2027 = """\
# 2027 年春节（示例）
2027-02-06 休
2027-02-08 休   # 初二
2027-02-09 休
2027/2/14 班

2027-02-20 班
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "holidays.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_extra_days():
    calendar.configure({})
    yield
    calendar.configure({})


def test_the_file_reads_days_off_and_adjusted_working_days(tmp_path):
    days = read_holidays_file(write(tmp_path, SPRING_2027))
    assert days == {date(2027, 2, 6): False, date(2027, 2, 8): False, date(2027, 2, 9): False,
                    date(2027, 2, 14): True, date(2027, 2, 20): True}


def test_bad_lines_are_refused_each_with_its_line_number_in_chinese(tmp_path):
    path = write(tmp_path, "# 注释\n2027-02-06 休\n2027-02-30 休\n2027-02-07\n2027-02-08 放\n二月八日 休\n"
                           "2027-02-06 班\n")
    with pytest.raises(SettingsError) as caught:
        read_holidays_file(path)
    message = str(caught.value)
    assert "有 5 行无法识别" in message
    assert "第 3 行「2027-02-30 休」：没有这一天" in message
    assert "第 4 行「2027-02-07」：应为「日期 休」或「日期 班」" in message
    assert "第 5 行「2027-02-08 放」：「放」应为「休」（放假）或「班」（调休上班）" in message
    assert "第 6 行「二月八日 休」：日期「二月八日」应写作 年-月-日" in message
    assert "第 7 行「2027-02-06 班」：2027-02-06 与第 2 行矛盾" in message
    assert "第 1 行" not in message and "第 2 行「" not in message


def test_a_bad_or_missing_file_stops_start_up_naming_the_setting(tmp_path):
    env = {"HOLIDAYS_FILE": str(write(tmp_path, "2027-13-01 休\n")), "BOT_INSTANCE_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match="(?s)HOLIDAYS_FILE.*第 1 行「2027-13-01 休」：没有这一天"):
        Settings.from_env(env, read_dotenv=False)
    env["HOLIDAYS_FILE"] = str(tmp_path / "absent.txt")
    with pytest.raises(SettingsError, match="HOLIDAYS_FILE 指定的文件不存在"):
        Settings.from_env(env, read_dotenv=False)
    env["HOLIDAYS_FILE"] = str(write(tmp_path, SPRING_2027))
    assert Settings.from_env(env, read_dotenv=False).holidays[date(2027, 2, 14)] is True


def test_the_files_dates_decide_the_working_days_of_an_uncovered_year(tmp_path):
    assert coverage(2027).source is CalendarSource.WEEKDAYS
    assert is_working_day(date(2027, 2, 8)) and not is_working_day(date(2027, 2, 14))  # Monday, Sunday
    calendar.configure(read_holidays_file(write(tmp_path, SPRING_2027)))
    assert coverage(2027) == calendar.Coverage(2027, CalendarSource.FILE, file_days_off=3, file_working_days=2)
    assert not is_working_day(date(2027, 2, 8))  # 休 on a Monday
    assert is_working_day(date(2027, 2, 14))  # 班 on a Sunday
    assert is_working_day(date(2027, 2, 10)) and not is_working_day(date(2027, 2, 13))  # not listed: weekdays
    # The required-meetings reminder of a period whose last week starts on a listed day off.
    file = write(tmp_path, "2027-03-25 休\n2027-03-26 休\n")
    calendar.configure(read_holidays_file(file))
    end = datetime(2027, 4, 1, tzinfo=SH)  # last week 25–31 March 2027: Thu 25, Fri 26 off → Mon 29
    assert last_week_reminder_at(end, SH) == datetime(2027, 3, 29, 9, 0, tzinfo=SH).astimezone(UTC)


def test_the_file_also_corrects_a_covered_year(tmp_path):
    assert not is_working_day(date(2026, 10, 1))
    calendar.configure(read_holidays_file(write(tmp_path, "2026-10-01 班\n")))
    assert is_working_day(date(2026, 10, 1))
    assert coverage(2026).source is CalendarSource.BUILT_IN and coverage(2026).from_file == 1


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def test_holidays_command_says_which_year_is_on_weekdays_only(cli):
    result = cli.invoke(args=["holidays"])  # the clock: 2026-11-21
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "2026 年：按内置的国务院节假日安排。"
    assert lines[1].startswith("2027 年：没有节假日安排，工作日暂按周一至周五计算")
    assert "HOLIDAYS_FILE" in lines[1] and "2027-02-06 休" in lines[1]
    assert "chinese" not in result.output.lower() and "calendar" not in result.output.lower()


def test_holidays_command_for_a_year_the_file_covers(settings, clock, tmp_path):
    from bot.app import create_app

    path = write(tmp_path, SPRING_2027)
    app = create_app(replace(settings, holidays_file=path), clock=clock)
    try:
        result = app.test_cli_runner().invoke(args=["holidays", "2027"])
    finally:
        app.extensions["zhitong"].db.dispose()
    assert result.exit_code == 0, result.output
    assert result.output == (f"2027 年：按节假日文件（{path}），放假 3 天、调休上班 2 天；"
                             "文件未列出的日子按周一至周五计算。\n")
    assert not is_working_day(date(2027, 2, 8))  # the app put the file's dates in force


def test_holidays_command_refuses_a_year_that_is_not_one(cli):
    result = cli.invoke(args=["holidays", "明年"])
    assert result.exit_code == 2
    assert result.output == "年份应为四位数字，例如 2027，现在是「明年」\n"


def test_start_up_warns_the_administrator_of_the_coming_year_on_weekdays_only(runtime, clock, caplog):
    clock.set(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    with caplog.at_level(logging.WARNING, logger="bot.holidays"):
        warn_at_startup(runtime)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "bot.holidays"]
    assert warning.startswith("节假日提醒：2027 年：没有节假日安排，工作日暂按周一至周五计算")
    caplog.clear()
    clock.set(datetime(2026, 6, 1, 1, 0, tzinfo=UTC))  # next year's schedule is months away
    with caplog.at_level(logging.WARNING, logger="bot.holidays"):
        warn_at_startup(runtime)
    assert [r for r in caplog.records if r.name == "bot.holidays"] == []
