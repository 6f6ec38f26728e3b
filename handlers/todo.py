"""待办: what this person still owes, from every source that can owe something, soonest first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.context import Context
from bot.messages import Reply
from models.person import Person


@dataclass(frozen=True)
class TodoItem:
    kind: str  # 指示 / 学习 / 会议
    number: int
    title: str
    due: datetime | None
    hint: str  # what to send to clear it


TodoSource = Callable[[Session, Person, datetime], list[TodoItem]]


def sources() -> list[TodoSource]:
    """Every capability that creates obligations contributes one query, listed here explicitly."""
    from handlers import ack, meeting, study

    return [ack.todo_source, study.todo_source, meeting.todo_source]


def owed_by(session: Session, person: Person, now: datetime) -> list[TodoItem]:
    items = [item for source in sources() for item in source(session, person, now)]
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(items, key=lambda i: (i.due or far, i.kind, i.number))


def handle(_cmd, ctx: Context) -> Reply:
    items = owed_by(ctx.session, ctx.person, ctx.now)
    if not items:
        return Reply(f"截至 {ctx.fmt(ctx.now)}，您没有待办事项。")
    lines = [f"您有 {len(items)} 项待办（截至 {ctx.fmt(ctx.now)}）："]
    for item in items:
        due = f"，截止 {ctx.fmt(item.due)}" if item.due else ""
        lines.append(f"· [{item.kind}] #{item.number} {item.title}{due}（回复「{item.hint}」）")
    return Reply("\n".join(lines))
