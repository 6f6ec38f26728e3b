"""撤回 / 改期 / 取消: secretaries correct what they started. 撤回 withdraws a directive or study
item, 改期 moves its deadline or a meeting's start, 取消 cancels a meeting; each through one
model function (`models.lifecycle`, `models.meeting.lifecycle`) that records the change."""

from __future__ import annotations

from bot.access import may_correct, may_manage_meeting
from bot.command import Command, as_number
from bot.context import Context
from bot.messages import Reply
from bot.texts import lifecycle as texts
from bot.timeparse import TimeParseError, future_example, parse_future_time
from bot.web.links import page_url
from handlers.numbered import resolve
from models.directive import Directive
from models.lifecycle import Outcome, reschedule_deadline, withdraw
from models.meeting import Meeting
from models.meeting.lifecycle import MeetingChange, cancel, reschedule
from models.numbers import ItemKind

REASON_LIMIT = 500


def _number(cmd: Command, example: str) -> tuple[int | None, Reply | None]:
    args = cmd.arg_list
    number = as_number(args[0]) if args else None
    if number is None:
        return None, Reply(f"请写明编号，例如：{example}")
    return number, None


def _committee_of(directive: Directive) -> str:
    return f"{directive.organisation.name}的书记、副书记或支委（发布人：{directive.issuer.name}）"


def _meeting_committee(meeting: Meeting) -> str:
    return f"{meeting.organisation.name}的书记、副书记或支委（召集人：{meeting.convener.name}）"


# What each command acts on, the kinds it points elsewhere, and how to answer those or no number.
_KINDS = {
    "撤回": ((ItemKind.DIRECTIVE, ItemKind.STUDY), (ItemKind.MEETING,),
             "#{n} 是会议，会议请用「取消 {n} 原因」。", "没有编号为 #{n} 的通知或学习。"),
    "取消": ((ItemKind.MEETING,), (ItemKind.DIRECTIVE, ItemKind.STUDY),
             "#{n} 是通知或学习，请用「撤回 {n} 原因」。", "没有编号为 #{n} 的会议。"),
}


def _target(cmd: Command, ctx: Context, verb: str, example: str):
    """(number, item, None) for the item `verb` acts on, or (None, None, the refusal)."""
    number, problem = _number(cmd, example)
    if problem:
        return None, None, problem
    wanted, other, other_kind, missing = _KINDS[verb]
    kind, item, wrong = resolve(ctx.session, number, *wanted)
    if item is None:
        text = other_kind.format(n=number) if kind in other else wrong or missing.format(n=number)
        return None, None, Reply(text)
    return number, item, None


def handle_withdraw(cmd: Command, ctx: Context) -> Reply:
    """`撤回 12 [原因]`."""
    number, directive, problem = _target(cmd, ctx, "撤回", "撤回 12 内容有误，另行通知")
    if problem:
        return problem
    word = texts.kind_word(directive)
    if not may_correct(ctx.person, directive):
        return Reply(f"您不能撤回{word} #{number}：只有{_committee_of(directive)}可以撤回。")
    reason = cmd.after_number()[:REASON_LIMIT] or None
    done = withdraw(ctx.session, directive, by=ctx.person, reason=reason, now=ctx.now,
                    render=lambda d: texts.withdrawn(d, ctx.person.name, ctx.settings.tz),
                    card_text=texts.withdrawn_button(ctx.fmt(ctx.now)))
    d = done.directive
    if done.outcome is Outcome.ALREADY_WITHDRAWN:
        return Reply(f"{word} #{number}「{d.title}」已于 {ctx.fmt(d.withdrawn_at)} 撤回，无需再次撤回。")
    because = f"，原因：{reason}" if reason else ""
    return Reply(f"已撤回{word} #{number}「{d.title}」（{ctx.fmt(d.withdrawn_at)}{because}）。"
                 f"已通知 {done.told} 人，提醒已停止；撤回前已有 {done.acknowledged}/{d.recipient_count} 人确认，记录保留。")


def handle_cancel(cmd: Command, ctx: Context) -> Reply:
    """`取消 12 [原因]`: a meeting."""
    number, meeting, problem = _target(cmd, ctx, "取消", "取消 12 与上级会议冲突")
    if problem:
        return problem
    if not may_manage_meeting(ctx.person, meeting):
        return Reply(f"您不能取消会议 #{number}：只有{_meeting_committee(meeting)}可以取消。")
    reason = cmd.after_number()[:REASON_LIMIT] or None
    done = cancel(ctx.session, meeting, by=ctx.person, reason=reason, now=ctx.now,
                  render=lambda m: texts.meeting_cancelled(m, ctx.settings.tz))
    m = done.meeting
    name = f"会议 #{number} {m.title}（{ctx.fmt(m.starts_at)}）"
    refusal = _meeting_refusal(ctx, done.outcome, name, m, "取消")
    if refusal:
        return Reply(refusal)
    leaves = f"，{done.leaves_closed} 份待审批的请假已关闭" if done.leaves_closed else ""
    because = f"（原因：{m.cancel_reason}）" if m.cancel_reason else ""
    return Reply(f"已取消{name}{because}。已通知 {done.told} 人，提醒已停止{leaves}；该会议不计入规定会议。")


def _meeting_refusal(ctx: Context, outcome: MeetingChange, name: str, m: Meeting, verb: str) -> str | None:
    if outcome is MeetingChange.ALREADY_CANCELLED:
        return f"{name} 已于 {ctx.fmt(m.cancelled_at)} 取消。"
    if outcome is MeetingChange.CLOSED:
        return f"{name} 已于 {ctx.fmt(m.closed_at)} 结束，不能再{verb}。"
    if outcome is MeetingChange.STARTED:
        return f"{name} 已经开始，不能再{verb}；开完后请发送「结束 {m.number}」。"
    return None


def handle_reschedule(cmd: Command, ctx: Context) -> Reply:
    """`改期 12 时间`: a directive's or study item's deadline, or a meeting's start."""
    number, problem = _number(cmd, "改期 12 12月5日17:00")
    if problem:
        return problem
    when = cmd.after_number()
    if not when:
        return Reply(f"请写明新的时间，例如：改期 {number} {future_example(ctx.now, ctx.settings.tz)}")
    kind, item, wrong = resolve(ctx.session, number, ItemKind.DIRECTIVE, ItemKind.STUDY, ItemKind.MEETING)
    if wrong:
        return Reply(wrong)
    if item is None:
        return Reply(f"没有编号为 #{number} 的通知、学习或会议。")
    directive, meeting = (None, item) if kind is ItemKind.MEETING else (item, None)
    mine_d = directive is not None and may_correct(ctx.person, directive) and directive.withdrawn_at is None
    mine_m = meeting is not None and may_manage_meeting(ctx.person, meeting)
    if not (mine_d or mine_m):
        if directive is not None and directive.withdrawn_at is not None and may_correct(ctx.person, directive):
            return Reply(f"{texts.kind_word(directive)} #{number} 已于 {ctx.fmt(directive.withdrawn_at)} 撤回，不能改期。")
        who = _committee_of(directive) if directive is not None else _meeting_committee(meeting)
        return Reply(f"您不能改期 #{number}：只有{who}可以改期。")
    try:
        at = parse_future_time(when, now=ctx.now, tz=ctx.settings.tz)
    except TimeParseError as exc:
        # The error gives its own example of a time; the whole command follows, with a time to come.
        return Reply(f"未改期：时间有误，{exc}。完整写法：改期 {number} {future_example(ctx.now, ctx.settings.tz)}")
    if mine_d:
        return _move_deadline(ctx, directive, at)
    return _move_meeting(ctx, meeting, at)


def _move_deadline(ctx: Context, directive: Directive, at) -> Reply:
    word = texts.kind_word(directive)
    tz, url = ctx.settings.tz, page_url(ctx.settings, f"d/{directive.id}")
    done = reschedule_deadline(ctx.session, directive, by=ctx.person, deadline=at, now=ctx.now,
                               render=lambda d, old, acked: texts.deadline_moved(d, old, acked, tz),
                               card=lambda d, old: texts.deadline_moved_card(d, old, tz, url=url),
                               done_card=lambda d, old: texts.deadline_moved_done_card(d, old, tz, url=url))
    if done.outcome is Outcome.ALREADY_WITHDRAWN:
        return Reply(f"{word} #{directive.number} 已撤回，不能改期。")
    if done.outcome is Outcome.SAME_TIME:
        return Reply(f"{word} #{directive.number} 的截止时间已是 {ctx.fmt(at)}，无需改期。")
    was = f"（原 {ctx.fmt(done.old)}）" if done.old else ""
    return Reply(f"已将{word} #{directive.number}「{directive.title}」的截止时间改为 {ctx.fmt(at)}{was}。"
                 f"已通知 {done.told} 人，提醒按新时间重新安排。")


def _move_meeting(ctx: Context, meeting: Meeting, at) -> Reply:
    done = reschedule(ctx.session, meeting, by=ctx.person, starts_at=at, now=ctx.now,
                      render=lambda m, old: texts.meeting_moved(m, old, ctx.settings.tz))
    m = done.meeting
    name = f"会议 #{m.number} {m.title}（{ctx.fmt(done.old_start or m.starts_at)}）"
    refusal = _meeting_refusal(ctx, done.outcome, name, m, "改期")
    if refusal:
        return Reply(refusal)
    if done.outcome is MeetingChange.SAME_TIME:
        return Reply(f"会议 #{m.number} 已定在 {ctx.fmt(at)}，无需改期。")
    if done.outcome is MeetingChange.CLASH:
        return Reply(f"未改期：{m.organisation.name}在 {ctx.fmt(at)} 已有会议 #{done.other.number} {done.other.title}，"
                     f"时间冲突。请换一个时间。")
    code = f"签到码不变（{m.checkin_code}），" if m.checkin_code else ""
    return Reply(f"已将会议 #{m.number} {m.title} 改到 {ctx.fmt(m.starts_at)}（原 {ctx.fmt(done.old_start)}）。"
                 f"{code}签到时间随之调整；已批准的请假仍然有效。已通知 {done.told} 人，提醒按新时间重新安排。")
