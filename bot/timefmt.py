"""Showing times to people: always local time, always the full date."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def format_time(at: datetime, tz: ZoneInfo = SHANGHAI) -> str:
    """`2026年11月21日 19:45` in the bot's time zone."""
    if at.tzinfo is None:
        raise ValueError("naive datetime cannot be shown")
    local = at.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
