"""`member leave 姓名|账号 [--date]`: one member transferred out, found by name or WeCom account."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.leaving import mark_left
from models.person import Person


class LeaveError(ValueError):
    """The member cannot be marked as left; the message says why and what to give instead."""


def _describe(person: Person) -> str:
    home = person.home_branch()
    where = home.path if home else "、".join(sorted({r.organisation.path for r in person.roles})) or "无组织"
    return f"{person.name}（{person.wecom_userid or '无企业微信账号'}，{where}）"


def find_member(session: Session, who: str) -> Person:
    """The one person with this WeCom account (without case) or, failing that, this name."""
    text = who.strip()
    if not text:
        raise LeaveError("请给出要转出的人的姓名或企业微信账号")
    by_account = session.scalar(select(Person).where(func.lower(Person.wecom_userid) == text.lower()))
    if by_account is not None:
        return by_account
    named = list(session.scalars(select(Person).where(Person.name == text).order_by(Person.id)))
    if not named:
        raise LeaveError(f"找不到「{text}」：请给出名册中的姓名或企业微信账号")
    active = [p for p in named if p.left_on is None] or named
    if len(active) > 1:
        shown = "\n".join(f"· {_describe(p)}" for p in active)
        raise LeaveError(f"名为「{text}」的有 {len(active)} 人，请改用企业微信账号指明是哪一位：\n{shown}")
    return active[0]


def parse_day(text: str | None, today: date) -> date:
    if text is None:
        return today
    cleaned = text.strip().replace("/", "-").replace(".", "-")
    for pattern in ("%Y-%m-%d", "%Y年%m月%d日"):
        try:
            return datetime.strptime(cleaned, pattern).date()  # noqa: DTZ007 (a calendar day, no time)
        except ValueError:
            continue
    raise LeaveError(f"日期「{text}」看不懂：请写成 2026-11-30 这样的年-月-日")


def leave(session: Session, who: str, *, on: str | None, now: datetime, tz: ZoneInfo) -> str:
    """Mark the member as transferred out and say so in Chinese."""
    today = now.astimezone(tz).date()
    day = parse_day(on, today)
    if day > today:
        raise LeaveError(f"转出日期 {day.isoformat()} 还没到：请在转出当天或之后办理")
    person = find_member(session, who)
    described = _describe(person)
    departure = mark_left(session, person, on=day, now=now)
    if departure.already:
        return f"{described}已于 {departure.left_on.year}年{departure.left_on.month}月{departure.left_on.day}日转出，未作改动。"
    return (f"已将 {described}标记为 {day.year}年{day.month}月{day.day}日转出：此后不再向其推送，"
            "未确认的事项不再计入未确认人数，历史记录保留。")
