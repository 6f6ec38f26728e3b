"""回执 / 纪要 (no text) / 我发布的: secretaries read back what they started and what came in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select

from bot.access import may_manage_meeting, progress_scopes
from bot.command import Command, as_number
from bot.context import Context
from bot.messages import Reply
from bot.texts.directive import not_sent_to
from bot.web.links import reply_link
from handlers.numbered import find
from models.directive import Delivery, DeliveryRole, Directive, DirectiveKind
from models.meeting import Attendance, AttendanceStatus, Meeting, MeetingMinutes, MeetingStatus
from models.numbers import ItemKind
from models.org import Organisation
from models.person import Person

RECENT_SHOWN = 10


# -- 回执 ---------------------------------------------------------------------------------------

def handle_receipts(cmd: Command, ctx: Context) -> Reply:
    """`回执 12`: the 完成 notes of a directive, or the 心得 of a study item, who and when, in time order."""
    args = cmd.arg_list
    number = as_number(args[0]) if args else None
    if number is None:
        return Reply("请写明编号，例如：回执 12")
    item, wrong = find(ctx.session, number, ItemKind.DIRECTIVE, ItemKind.STUDY)
    if wrong:
        return Reply(wrong)
    if item is None:
        return Reply(f"没有编号为 #{number} 的通知或学习资料。")
    study = item.kind is DirectiveKind.STUDY
    scopes = progress_scopes(ctx.person, item)
    if not scopes:
        return Reply(f"您无权查看 #{number} 的回执：只有发布组织、所涉组织的书记和支委以及联络员可以查看。")
    in_scope = or_(*(or_(Organisation.id == o.id, Organisation.path.startswith(o.path + "/", autoescape=True))
                     for o in scopes))
    rows = ctx.session.execute(
        select(Person.name, Organisation.name, Delivery.completed_at, Delivery.note)
        .join(Person, Person.id == Delivery.person_id)
        .join(Organisation, Organisation.id == Delivery.organisation_id)
        .where(Delivery.directive_id == item.id, Delivery.role == DeliveryRole.TASK,
               Delivery.completed_at.is_not(None), in_scope)
        .order_by(Delivery.completed_at, Delivery.id)
    ).all()
    total = ctx.session.scalar(
        select(func.count()).select_from(Delivery).join(Organisation, Organisation.id == Delivery.organisation_id)
        .where(Delivery.directive_id == item.id, Delivery.role == DeliveryRole.TASK, in_scope)) or 0
    kind, done, note_word = ("学习", "已学", "心得") if study else ("通知", "已完成", "说明")
    noted = sum(1 for *_, note in rows if note)
    lines = [f"{kind} #{item.number}「{item.title}」的回执：{done} {len(rows)}/{total}，其中写了{note_word}的 {noted} 人"]
    if len(scopes) == 1 and scopes[0].id != item.organisation_id:
        lines[0] += f"（{scopes[0].name}）"
    if not total:  # a 范围 that left out the viewer's part
        lines.append(f"{not_sent_to(item.number, scopes)}（发布时限定了范围）。")
    for name, branch, at, note in rows:
        lines.append(f"· {ctx.fmt(at)} {name}（{branch}）" + (f"：{note}" if note else f"：未写{note_word}"))
    if not rows and total:
        lines.append(f"还没有人{'确认学完' if study else '报告完成'}。")
    link = reply_link(ctx, f"d/{item.id}")
    if link:
        lines.append(f"详情页：{link}")
    return Reply("\n".join(lines), link=link)


# -- 纪要 (no text) -----------------------------------------------------------------------------

def minutes_text(ctx: Context, meeting: Meeting) -> Reply:
    """`纪要 12` with no text: the meeting's minutes, each with its author and time, oldest first."""
    if not may_manage_meeting(ctx.person, meeting):
        return Reply(f"#{meeting.number} 是{meeting.organisation.name}的会议，只有该支部的书记、副书记或支委可以查看纪要。")
    rows = ctx.session.scalars(select(MeetingMinutes).where(MeetingMinutes.meeting_id == meeting.id)
                               .order_by(MeetingMinutes.written_at, MeetingMinutes.id)).all()
    head = f"#{meeting.number} {meeting.title}（{ctx.fmt(meeting.starts_at)}）"
    link = reply_link(ctx, f"meeting/{meeting.id}")
    if not rows:
        lines = [f"{head} 还没有纪要。记录纪要请发送「纪要 {meeting.number} 内容」。"]
    else:
        lines = [f"{head} 的纪要共 {len(rows)} 份："]
        for i, m in enumerate(rows, start=1):
            lines.append(f"{i}. {ctx.fmt(m.written_at)} {m.author.name}记录：\n{m.text}")
    if link:
        lines.append(f"详情页：{link}")
    return Reply("\n".join(lines), link=link)


# -- 我发布的 -----------------------------------------------------------------------------------

def handle_mine(_cmd: Command, ctx: Context) -> Reply:
    """One's recent directives, study items and meetings, newest first, with their rates."""
    items: list[tuple[datetime, int, str]] = []
    task = (Delivery.directive_id == Directive.id) & (Delivery.role == DeliveryRole.TASK)
    directives = ctx.session.execute(
        select(Directive.number, Directive.kind, Directive.title, Directive.created_at, Directive.deadline,
               Directive.withdrawn_at, select(func.count()).where(task).scalar_subquery(),
               select(func.count(Delivery.acknowledged_at)).where(task).scalar_subquery(),
               select(func.count(Delivery.completed_at)).where(task).scalar_subquery())
        .where(Directive.issuer_id == ctx.person.id)
        .order_by(Directive.created_at.desc(), Directive.id.desc()).limit(RECENT_SHOWN)).all()
    for number, kind, title, created_at, deadline, withdrawn_at, total, acked, completed in directives:
        due = f"，截止 {ctx.fmt(deadline)}" if deadline else ""
        if withdrawn_at is not None:  # the rate as it stood, after the withdrawal
            due += f"，已于 {ctx.fmt(withdrawn_at)} 撤回"
        if kind is DirectiveKind.STUDY:
            rate = f"已学 {completed}/{total}{_percent(completed, total)}"
            items.append((created_at, number, f"· [学习] #{number} {title}（{ctx.fmt(created_at)} 布置{due}）{rate}"))
        else:
            rate = f"已确认 {acked}/{total}{_percent(acked, total)}，已完成 {completed}"
            items.append((created_at, number, f"· [通知] #{number} {title}（{ctx.fmt(created_at)} 发布{due}）{rate}"))
    meetings = ctx.session.scalars(
        select(Meeting).where(Meeting.convener_id == ctx.person.id)
        .order_by(Meeting.created_at.desc(), Meeting.id.desc()).limit(RECENT_SHOWN)).all()
    for m in meetings:
        items.append((m.created_at, m.number, f"· [会议] #{m.number} {m.title}（{ctx.fmt(m.starts_at)}）{_attendance(ctx, m)}"))
    if not items:
        return Reply("您还没有发布过通知、学习资料或会议。")
    items.sort(key=lambda it: (it[0], it[1]), reverse=True)
    shown = items[:RECENT_SHOWN]
    lines = [f"您最近发布的 {len(shown)} 项："] + [line for *_, line in shown]
    lines.append("查看明细：通知发「进度 编号」，学习发「学习进度 编号」，回执发「回执 编号」，会议纪要发「纪要 编号」。")
    return Reply("\n".join(lines))


def _percent(part: int, total: int) -> str:
    return f"（{round(100 * part / total)}%）" if total else "（无接收人）"


def _attendance(ctx: Context, meeting: Meeting) -> str:
    counts = dict(ctx.session.execute(
        select(Attendance.status, func.count()).where(Attendance.meeting_id == meeting.id)
        .group_by(Attendance.status)).all())
    present = counts.get(AttendanceStatus.PRESENT, 0)
    if meeting.status is MeetingStatus.CANCELLED:
        return f"已于 {ctx.fmt(meeting.cancelled_at)} 取消"
    if meeting.status is MeetingStatus.CLOSED:
        return (f"应到 {meeting.invited_count} 实到 {present} 请假 {counts.get(AttendanceStatus.ON_LEAVE, 0)} "
                f"缺席 {counts.get(AttendanceStatus.ABSENT, 0)}")
    if ctx.now < meeting.starts_at:
        return f"未开始，已通知 {meeting.invited_count} 人"
    return f"进行中，已签到 {present}/{meeting.invited_count}"
