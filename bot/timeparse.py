"""Parsing the time forms people type (SPEC §3) into aware UTC datetimes.

Accepted: `2026-12-01 17:00`, `2026/12/1 17:00`, `12/5`, `12-5`, `12.5`, `12-05 17:00`, `12月1日17:00`,
`12月5号下午3点`, `12月5日15时`, `12月5日24:00`, `今天17:00`, `今晚8点`, `明天`, `明早9点`, `后天 9点`,
`3天后`, `三天后`, `20分钟后`, `两小时后`, `周五`, `本周五`, `下周一`, `下星期三上午9点`, `月底`, `本月底`,
with a trailing `前` and a leading label (`截止`, `截止时间：`, `截止日期`). Future bias: a date
alone means 23:59 of that day; a month-day without a year is the next such date (today included);
a weekday is the next such day not yet past; `明早` is tomorrow morning whatever the hour now;
`24:00` is the end of that day (23:59)."""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

END_OF_DAY = time(23, 59)
# Anything further ahead is a typo (a year 9999 meeting), not a plan.
FURTHEST = timedelta(days=366 * 3)


class TimeParseError(ValueError):
    """The text is not a time we understand, or names a time that cannot be used; message in Chinese."""


@dataclass(frozen=True)
class _Parts:
    day: date | None
    clock: time | None
    exact: datetime | None = None  # `20分钟后`: an instant, not a day and a clock


_LABEL = re.compile(r"^(?:截止(?:时间|日期)?|截至(?:时间|日期)?|期限|时间|日期|于|在)[\s:：]*")
_BEFORE = re.compile(r"(?:之前|以前|前|为止|止)$")
_FULL_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?")
_MONTH_DAY = re.compile(r"^(\d{1,2})月(\d{1,2})[日号]?")
_SHORT_DATE = re.compile(r"^(\d{1,2})[-/.](\d{1,2})(?![\d:])")
# 昨天 and 前天 are understood so that they are refused as past, not as unreadable.
_RELATIVE_DAYS = {"大前天": -3, "前天": -2, "昨天": -1, "昨日": -1, "今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2,
                  "大后天": 3}
# Words that name a day and a part of it: (days from today, the period they imply).
_DAY_PERIODS = {"今早": (0, "上午"), "今晚": (0, "晚上"), "今天晚上": (0, "晚上"), "明早": (1, "上午"),
                "明晚": (1, "晚上"), "明天早上": (1, "上午"), "明天晚上": (1, "晚上"), "明晨": (1, "上午")}
_LATER = re.compile(r"^(\d{1,4}|半)个?(分钟|分|小时|钟头|天|日|周|星期|礼拜)(?:后|以后|之后)")
_WEEKDAY = re.compile(r"^(下下个?|下个?|本|这个?|)(?:周|星期|礼拜)([一二三四五六日天1-7])")
_MONTH_END = re.compile(r"^(本月|这个月|下个?月)?月?底")
_CLOCK = re.compile(
    r"^(上午|早上|早晨|早|中午|下午|傍晚|晚上|晚|凌晨)?(\d{1,2})(?:[:：](\d{2})|[点时](?:(\d{1,2})分?|(半)|整)?)$")
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
             "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十]+")


def parse_time(text: str, *, now: datetime, tz: ZoneInfo) -> datetime:
    """`text` → aware UTC datetime. Raises TimeParseError with a reason in Chinese."""
    raw = unicodedata.normalize("NFKC", text or "").strip()
    if not raw:
        raise TimeParseError("没有写时间")
    local_now = now.astimezone(tz)
    cleaned = _BEFORE.sub("", _LABEL.sub("", re.sub(r"\s+", " ", raw))).strip()
    if len(cleaned) > 40:
        raise TimeParseError(f"看不懂时间「{raw[:20]}…」。{_examples(now, tz)}")
    parts = _split(cleaned, local_now, raw, now, tz)
    try:
        if parts.exact is not None:
            return parts.exact.astimezone(UTC)
        day = parts.day or local_now.date()
        local = datetime.combine(day, parts.clock or END_OF_DAY, tzinfo=tz)
        return local.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise TimeParseError(f"「{raw}」不是有效的时间") from exc


def parse_future_time(text: str, *, now: datetime, tz: ZoneInfo) -> datetime:
    """Like parse_time, but a time that has already passed (or lies years ahead) is refused with
    the reason and an example that is itself in the future."""
    from bot.timefmt import format_time

    at = parse_time(text, now=now, tz=tz)
    if at <= now:
        raise TimeParseError(f"时间 {format_time(at, tz)} 已经过去（现在是 {format_time(now, tz)}），"
                             f"请写一个将来的时间，例如：{future_example(now, tz)}")
    if at - now > FURTHEST:
        raise TimeParseError(f"时间 {format_time(at, tz)} 太远了（最多 3 年内），请检查年份，"
                             f"例如：{future_example(now, tz)}")
    return at


def future_example(now: datetime, tz: ZoneInfo) -> str:
    """A time example that lies in the future from `now`: tomorrow at 17:00, as people write it."""
    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
    return f"{tomorrow.month}月{tomorrow.day}日17:00"


def _examples(now: datetime, tz: ZoneInfo) -> str:
    return f"可以这样写：{future_example(now, tz)}、明天、下周一上午9点、3天后、月底"


def _split(text: str, local_now: datetime, raw: str, now: datetime, tz: ZoneInfo) -> _Parts:
    day: date | None = None
    period: str | None = None
    rest = text
    today = local_now.date()
    if m := _FULL_DATE.match(rest):
        day = _date(int(m[1]), int(m[2]), int(m[3]), raw)
        rest = rest[m.end():]
    elif m := _WEEKDAY.match(rest):
        parts = _day_and_clock(_weekday(m, today), None, rest[m.end():], today, raw, now, tz)
        if not m[1] and datetime.combine(parts.day, parts.clock or END_OF_DAY, tzinfo=local_now.tzinfo) <= local_now:
            return _Parts(parts.day + timedelta(days=7), parts.clock)  # `周五` said on a Saturday: the coming one
        return parts
    elif m := _MONTH_END.match(rest):
        year, month = today.year, today.month
        if m[1] and m[1].startswith("下"):
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        day = date(year, month, calendar.monthrange(year, month)[1])
        rest = rest[m.end():]
    else:
        rest = _cn_numbers(rest)
        if m := _LATER.match(rest):
            return _later(m, rest[m.end():], local_now, raw, now, tz)
        compact = rest.replace(" ", "")
        if _MONTH_DAY.match(compact):
            rest = compact  # `12月 5日` as `12月5日`
        if m := _MONTH_DAY.match(rest) or _SHORT_DATE.match(rest):
            month, dom = int(m[1]), int(m[2])
            day = _date(today.year, month, dom, raw)
            if day < today:
                day = _date(today.year + 1, month, dom, raw)
            rest = rest[m.end():]
        else:
            for word, (offset, implied) in sorted(_DAY_PERIODS.items(), key=lambda kv: -len(kv[0])):
                if rest.startswith(word):
                    day, period, rest = today + timedelta(days=offset), implied, rest[len(word):]
                    break
            else:
                for word, offset in sorted(_RELATIVE_DAYS.items(), key=lambda kv: -len(kv[0])):
                    if rest.startswith(word):
                        day, rest = today + timedelta(days=offset), rest[len(word):]
                        break
    return _day_and_clock(day, period, rest, today, raw, now, tz)


def _day_and_clock(day: date | None, period: str | None, rest: str, today: date, raw: str, now: datetime,
                   tz: ZoneInfo) -> _Parts:
    """The clock after the day (`下午3点`, `24:00`), or the day alone (23:59; `明早` 09:00)."""
    rest = _cn_numbers(rest.replace(" ", ""))
    if not rest:
        if day is None:
            raise TimeParseError(f"看不懂时间「{raw}」。{_examples(now, tz)}")
        return _Parts(day, time(9, 0) if period == "上午" else None)
    if rest in ("24:00", "24点", "24时"):
        return _Parts(day or today, END_OF_DAY)
    return _Parts(day, _clock(rest, raw, now, tz, period))


def _weekday(m: re.Match, today: date) -> date:
    target = _WEEKDAYS[m[2]]
    monday = today - timedelta(days=today.weekday())
    weeks = {"": 0, "本": 0, "这": 0, "这个": 0}.get(m[1], 2 if m[1].startswith("下下") else 1)
    return monday + timedelta(weeks=weeks, days=target)


def _later(m: re.Match, rest: str, local_now: datetime, raw: str, now: datetime, tz: ZoneInfo) -> _Parts:
    amount = 0.5 if m[1] == "半" else int(m[1])
    unit = m[2]
    if unit in ("分钟", "分"):
        delta = timedelta(minutes=amount)
    elif unit in ("小时", "钟头"):
        delta = timedelta(hours=amount)
    else:
        days = amount * (7 if unit in ("周", "星期", "礼拜") else 1)
        if days != int(days) or days > 3650:
            raise TimeParseError(f"看不懂时间「{raw}」。{_examples(now, tz)}")
        day = local_now.date() + timedelta(days=int(days))
        return _Parts(day, _clock(rest, raw, now, tz, None) if rest else None)
    if rest or delta > timedelta(days=3650):
        raise TimeParseError(f"看不懂时间「{raw}」。{_examples(now, tz)}")
    return _Parts(None, None, exact=(local_now + delta).replace(second=0, microsecond=0))


def _cn_numbers(text: str) -> str:
    """Chinese numerals up to 99 as digits (`三天后` → `3天后`, `下午三点半` → `下午3点半`)."""
    def value(m: re.Match) -> str:
        s = m[0]
        if "十" in s:
            tens, _, ones = s.partition("十")
            if len(tens) > 1 or len(ones) > 1 or "十" in ones:
                return s
            return str((_CN_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CN_DIGITS.get(ones, 0) if ones else 0))
        return "".join(str(_CN_DIGITS[ch]) for ch in s)
    return _CN_NUMBER.sub(value, text)


def _date(year: int, month: int, dom: int, raw: str) -> date:
    try:
        return date(year, month, dom)
    except ValueError as exc:
        raise TimeParseError(f"「{raw}」中的日期不存在") from exc


def _clock(text: str, raw: str, now: datetime, tz: ZoneInfo, period: str | None) -> time:
    m = _CLOCK.match(text)
    if not m:
        raise TimeParseError(f"看不懂时间「{raw}」。{_examples(now, tz)}")
    period = m[1] or period
    hour, minute = int(m[2]), int(m[3] or m[4] or (30 if m[5] else 0))
    if period in ("下午", "傍晚", "晚上", "晚") and hour < 12:
        hour += 12
    elif period == "中午" and hour < 6:
        hour += 12
    if hour > 23 or minute > 59:
        raise TimeParseError(f"「{raw}」中的钟点不存在")
    return time(hour, minute)
