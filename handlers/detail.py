"""详情 编号: the full text of an item whose card or push was too long to show it whole.

A directive or study item is shown to its recipients (task or copy) and to the committee of the
organisation that issued it; a meeting to those invited and to its branch's committee. Anyone else
is told so, without learning more than that the number exists."""

from __future__ import annotations

from sqlalchemy import select

from bot.command import Command
from bot.context import Context
from bot.messages import Reply
from handlers.numbered import find
from models.directive import Delivery, Directive, DirectiveKind
from models.meeting import Attendance, Meeting, MeetingStatus
from models.numbers import ItemKind

USAGE = "详情 12"
# Ten digits are more than any item number; longer input is not a number anyone was sent.
MAX_DIGITS = 10


def handle(cmd: Command, ctx: Context) -> Reply:
    args = cmd.arg_list
    if not args or not (args[0].isascii() and args[0].isdigit()) or len(args[0]) > MAX_DIGITS:
        return Reply(f"请写明编号，例如：{USAGE}")
    number = int(args[0])
    item, wrong = find(ctx.session, number, ItemKind.DIRECTIVE, ItemKind.STUDY, ItemKind.MEETING)
    if wrong:
        return Reply(wrong)
    if item is None:
        return Reply(f"没有编号为 #{number} 的通知、学习或会议。")
    text = _directive_text(ctx, item) if isinstance(item, Directive) else _meeting_text(ctx, item)
    if text is not None:
        return Reply(text)
    return Reply(f"您无权查看 #{number} 的详情：只有接收人和发布组织的书记、支委可以查看。")


def _may_see(ctx: Context, column, item_id: int, person_column, owner_id: int, organisation_id: int) -> bool:
    """A person sees an item they were sent (a row of `column`'s table for them), one they issued,
    and one of an organisation whose committee they sit on."""
    person = ctx.person
    if owner_id == person.id or any(r.role.is_committee and r.organisation_id == organisation_id
                                    for r in person.roles):
        return True
    return ctx.session.scalar(select(person_column).where(column == item_id, person_column == person.id)
                              .limit(1)) is not None


def _directive_text(ctx: Context, directive: Directive) -> str | None:
    """The whole directive or study item, or None when this person may not see it."""
    if not _may_see(ctx, Delivery.directive_id, directive.id, Delivery.person_id, directive.issuer_id,
                    directive.organisation_id):
        return None
    kind = "学习" if directive.kind is DirectiveKind.STUDY else "通知"
    due = f"，截止 {ctx.fmt(directive.deadline)}" if directive.deadline else ""
    lines = [f"[{kind}] #{directive.number}「{directive.title}」",
             f"{directive.organisation.name} 发布于 {ctx.fmt(directive.created_at)}{due}"]
    if directive.withdrawn_at is not None:  # an old card or push may still show it as open
        because = f"，原因：{directive.withdraw_reason}" if directive.withdraw_reason else ""
        lines.append(f"已于 {ctx.fmt(directive.withdrawn_at)} 撤回{because}。此项无需再办理。")
    if directive.body.strip():
        lines.append(directive.body.strip())
    if directive.link:
        lines.append(f"学习链接：{directive.link}")
    return "\n".join(lines)


def _meeting_text(ctx: Context, meeting: Meeting) -> str | None:
    """The meeting's type, organisation, time and place, or None when this person may not see it."""
    if not _may_see(ctx, Attendance.meeting_id, meeting.id, Attendance.person_id, meeting.convener_id,
                    meeting.organisation_id):
        return None
    where = "线上" if meeting.online else (meeting.location or "未定")
    group = f" {meeting.group.name}" if meeting.group is not None else ""
    cancelled = []
    if meeting.status is MeetingStatus.CANCELLED:  # its notice card still offers 请假
        because = f"，原因：{meeting.cancel_reason}" if meeting.cancel_reason else ""
        cancelled = [f"已于 {ctx.fmt(meeting.cancelled_at)} 取消{because}。无需参加，也无需请假。"]
    return "\n".join([
        f"[会议] #{meeting.number} {meeting.organisation.name}{group} {meeting.type.label}", *cancelled,
        f"时间：{ctx.fmt(meeting.starts_at)} 至 {ctx.fmt(meeting.ends_at)}",
        f"地点：{where}",
        f"召集人：{meeting.convener.name}",
    ] + ([f"议题：{meeting.topic}"] if meeting.topic else []))
