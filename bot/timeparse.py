"""Parsing the time forms people type (SPEC §3) into aware UTC datetimes.

Accepted: `2026-12-01 17:00`, `2026/12/1 17:00`, `12月1日17:00`, `12月1日`, `今天17:00`, `明天`,
`后天 9点`, `3天后`, plus `下午3点`, `9点半`, `17:30`. A date alone means 23:59 of that day.
A month-day without a year is the next such date (today included)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

END_OF_DAY = time(23, 59)


class TimeParseError(ValueError):
    """The text is not a time we understand, or names a time that cannot be used; message in Chinese."""


@dataclass(frozen=True)
class _Parts:
    day: date | None
    clock: time | None


_FULL_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")
_MONTH_DAY = re.compile(r"^(\d{1,2})月\s*(\d{1,2})[日号]?")
_RELATIVE_WORDS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2}
_DAYS_LATER = re.compile(r"^(\d{1,3})天(?:后|以后|之后)")
_CLOCK = re.compile(r"^(上午|早上|中午|下午|晚上)?(\d{1,2})(?:[:：](\d{2})|点(?:(\d{1,2})分?|(半))?)$")


def parse_time(text: str, *, now: datetime, tz: ZoneInfo) -> datetime:
    """`text` → aware UTC datetime. Raises TimeParseError with a reason in Chinese."""
    raw = unicodedata.normalize("NFKC", text or "").strip()
    if not raw:
        raise TimeParseError("没有写时间")
    local_now = now.astimezone(tz)
    parts = _split(re.sub(r"\s+", " ", raw), local_now, raw)
    day = parts.day or local_now.date()
    clock = parts.clock or END_OF_DAY
    try:
        local = datetime.combine(day, clock, tzinfo=tz)
    except ValueError as exc:
        raise TimeParseError(f"「{raw}」不是有效的时间") from exc
    return local.astimezone(UTC)


def parse_future_time(text: str, *, now: datetime, tz: ZoneInfo) -> datetime:
    """Like parse_time, but a time that has already passed is refused with the reason."""
    from bot.timefmt import format_time

    at = parse_time(text, now=now, tz=tz)
    if at <= now:
        raise TimeParseError(f"时间 {format_time(at, tz)} 已经过去（现在是 {format_time(now, tz)}），请写一个将来的时间")
    return at


def _split(text: str, local_now: datetime, raw: str) -> _Parts:
    day: date | None = None
    rest = text
    if m := _FULL_DATE.match(rest):
        day = _date(int(m[1]), int(m[2]), int(m[3]), raw)
        rest = rest[m.end():]
    elif m := _MONTH_DAY.match(rest):
        month, dom = int(m[1]), int(m[2])
        day = _date(local_now.year, month, dom, raw)
        if day < local_now.date():
            day = _date(local_now.year + 1, month, dom, raw)
        rest = rest[m.end():]
    elif m := _DAYS_LATER.match(rest):
        day = local_now.date() + timedelta(days=int(m[1]))
        rest = rest[m.end():]
    else:
        for word, offset in _RELATIVE_WORDS.items():
            if rest.startswith(word):
                day = local_now.date() + timedelta(days=offset)
                rest = rest[len(word):]
                break
    rest = rest.replace(" ", "")
    if not rest:
        if day is None:
            raise TimeParseError(f"看不懂时间「{raw}」")
        return _Parts(day, None)
    return _Parts(day, _clock(rest, raw))


def _date(year: int, month: int, dom: int, raw: str) -> date:
    try:
        return date(year, month, dom)
    except ValueError as exc:
        raise TimeParseError(f"「{raw}」中的日期不存在") from exc


def _clock(text: str, raw: str) -> time:
    m = _CLOCK.match(text)
    if not m:
        raise TimeParseError(
            f"看不懂时间「{raw}」。可以这样写：2026-12-01 17:00、12月1日17:00、明天、后天 9点、3天后"
        )
    period, hour, minute = m[1], int(m[2]), int(m[3] or m[4] or (30 if m[5] else 0))
    if period in ("下午", "晚上") and hour < 12:
        hour += 12
    elif period == "中午" and hour < 6:
        hour += 12
    if hour > 23 or minute > 59:
        raise TimeParseError(f"「{raw}」中的钟点不存在")
    return time(hour, minute)
