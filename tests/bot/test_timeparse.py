from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.timefmt import format_time
from bot.timeparse import TimeParseError, parse_future_time, parse_time

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 11, 45, tzinfo=UTC)  # 2026年11月21日 19:45 in Shanghai


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01 17:00", "2026年12月1日 17:00"),
        ("2026/12/1 17:00", "2026年12月1日 17:00"),
        ("12月1日17:00", "2026年12月1日 17:00"),
        ("12月1日", "2026年12月1日 23:59"),
        ("今天17:00", "2026年11月21日 17:00"),
        ("今天 21:30", "2026年11月21日 21:30"),
        ("明天", "2026年11月22日 23:59"),
        ("后天 9点", "2026年11月23日 09:00"),
        ("后天 下午3点", "2026年11月23日 15:00"),
        ("明天9点半", "2026年11月22日 09:30"),
        ("3天后", "2026年11月24日 23:59"),
        ("1月5日", "2027年1月5日 23:59"),  # month-day already past this year → next year
        ("２０２６－１２－０１　１７：００", "2026年12月1日 17:00"),  # full-width
        ("21:00", "2026年11月21日 21:00"),
    ],
)
def test_accepted_forms(text, expected):
    assert format_time(parse_time(text, now=NOW, tz=TZ), TZ) == expected


def test_result_is_aware_utc():
    at = parse_time("2026-12-01 17:00", now=NOW, tz=TZ)
    assert at.tzinfo is UTC
    assert at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "下周", "2026-02-30", "13月1日", "明天 25点", "abc", "今天 17:61"])
def test_unparseable_is_refused_with_reason(text):
    with pytest.raises(TimeParseError) as exc:
        parse_time(text, now=NOW, tz=TZ)
    assert str(exc.value)


def test_past_time_is_refused_with_reason():
    with pytest.raises(TimeParseError) as exc:
        parse_future_time("今天17:00", now=NOW, tz=TZ)
    assert "已经过去" in str(exc.value)
    assert "2026年11月21日 19:45" in str(exc.value)


def test_future_time_is_accepted():
    assert parse_future_time("今天 21:30", now=NOW, tz=TZ) > NOW
