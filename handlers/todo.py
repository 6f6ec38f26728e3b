"""待办: what this person still owes, from every source that can owe something, soonest first."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import union_all
from sqlalchemy.orm import Session

from bot.context import Context
from bot.messages import Reply
from bot.texts.meeting import EXCUSED_HEADING
from handlers.todo_item import TodoItem
from models.person import Person

# The delivery rows' source → (what 待办 calls it, what to send to clear it).
_DELIVERY_KINDS = {"directive": ("通知", "收到"), "study": ("学习", "已学")}


@cache
def _query():
    """Everything a person can owe, as one UNION ALL of (source, id, title, due): directives not
    yet acknowledged, study not yet confirmed, meetings whose check-in has not closed. One round
    trip: 待办 is among the commands sent most, so it is built once with bound parameters."""
    from models.directive import DirectiveKind, owed_select
    from models.meeting import coming_select

    return union_all(owed_select(DirectiveKind.DIRECTIVE), owed_select(DirectiveKind.STUDY), coming_select())


def owed_by(session: Session, person: Person, now: datetime) -> list[TodoItem]:
    from handlers import meeting, points
    from models.meeting import CHECKIN_AFTER

    # Plain rows through the session's connection: no ORM entities to build.
    rows = session.connection().execute(_query(), {"person_id": person.id, "after": now - CHECKIN_AFTER}).all()
    items = [TodoItem(_DELIVERY_KINDS[source][0], number, title, due, f"{_DELIVERY_KINDS[source][1]} {number}")
             for source, number, title, due in rows if source in _DELIVERY_KINDS]
    meetings = [number for source, number, _, _ in rows if source == "meeting"]
    if meetings:  # rare, and each needs a closer look
        items += meeting.todo_items(session, person, now, meetings)
    if person.is_secretary():
        items += meeting.leave_todo_items(session, person)
        items += points.self_report_todo_items(session, person)
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(items, key=lambda i: (i.due or far, i.kind, i.number))


def handle(_cmd, ctx: Context) -> Reply:
    found = owed_by(ctx.session, ctx.person, ctx.now)
    items = [i for i in found if i.owed]
    if items:
        lines = [f"您有 {len(items)} 项待办（截至 {ctx.fmt(ctx.now)}）："]
    else:
        lines = [f"截至 {ctx.fmt(ctx.now)}，您没有待办事项。"]
    for item in items:
        due = f"，截止 {ctx.fmt(item.due)}" if item.due else ""
        lines.append(f"· [{item.kind}] #{item.number} {item.describe(ctx.fmt)}{due}（回复「{item.hint}」）")
    excused = [i for i in found if not i.owed]
    if excused:
        lines.append(EXCUSED_HEADING)
        lines += [f"· [{item.kind}] #{item.number} {item.describe(ctx.fmt)}" for item in excused]
    return Reply("\n".join(lines))
