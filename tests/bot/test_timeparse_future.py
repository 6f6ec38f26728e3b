"""The future-bias rules of bot/timeparse.py at clocks other than the corpus's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.timefmt import format_time
from bot.timeparse import TimeParseError, parse_future_time, parse_time

TZ = ZoneInfo("Asia/Shanghai")


def at(text: str, now: datetime) -> str:
    return format_time(parse_time(text, now=now, tz=TZ), TZ)


def test_mingzao_is_tomorrow_morning_even_late_in_the_evening():
    late = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    assert at("明早9点", late) == "2026年11月22日 09:00"
    assert at("明早", late) == "2026年11月22日 09:00"


def test_a_weekday_is_the_next_one_not_yet_past():
    friday_morning = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # Friday 09:00 in Shanghai
    assert at("周五", friday_morning) == "2026年11月27日 23:59"  # today, not yet past
    assert at("周五 8点", friday_morning) == "2026年12月4日 08:00"  # today's 08:00 has passed
    assert at("周五 17:00", friday_morning) == "2026年11月27日 17:00"
    assert at("下周五", friday_morning) == "2026年12月4日 23:59"


def test_month_end_in_december_and_february():
    assert at("月底", datetime(2026, 12, 3, tzinfo=UTC)) == "2026年12月31日 23:59"
    assert at("下月底", datetime(2026, 12, 3, tzinfo=UTC)) == "2027年1月31日 23:59"
    assert at("月底", datetime(2028, 2, 3, tzinfo=UTC)) == "2028年2月29日 23:59"


@pytest.mark.parametrize("now", [datetime(2026, 11, 21, 11, 45, tzinfo=UTC), datetime(2026, 12, 31, 15, 59, tzinfo=UTC),
                                 datetime(2027, 2, 28, 10, 0, tzinfo=UTC)])
def test_a_refused_past_time_offers_an_example_in_the_future(now):
    with pytest.raises(TimeParseError) as refused:
        parse_future_time("2026-01-01 08:00", now=now, tz=TZ)
    example = re.search(r"例如：(\S+)$", str(refused.value)).group(1)
    assert parse_future_time(example, now=now, tz=TZ) > now


def test_years_ahead_and_impossible_dates_are_refused_without_a_traceback():
    now = datetime(2026, 11, 21, 11, 45, tzinfo=UTC)
    for text in ("9999-12-31 23:59", "0001-01-01 00:00", "1" * 10_000, "9999天后", "99999999分钟后"):
        with pytest.raises(TimeParseError):
            parse_future_time(text, now=now, tz=TZ)
    assert parse_future_time("2029-11-01", now=now, tz=TZ) - now < timedelta(days=3 * 366)


def test_yesterday_is_refused_as_past_not_as_unreadable():
    evening = datetime(2026, 11, 21, 11, 45, tzinfo=UTC)  # 19:45 in Shanghai
    assert at("昨天下午3点", evening) == "2026年11月20日 15:00"
    assert at("前天", evening) == "2026年11月19日 23:59"
    with pytest.raises(TimeParseError, match=r"^时间 2026年11月20日 17:00 已经过去"):
        parse_future_time("昨天17:00", now=evening, tz=TZ)
