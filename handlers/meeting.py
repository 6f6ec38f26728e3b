"""会议 / 会议码 / 签到 / 请假 / 批准 / 驳回 / 结束 / 纪要, and the 请假 / 批准 / 驳回 card buttons."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.access import may_manage_meeting
from bot.command import Command, as_number
from bot.context import Context
from bot.messages import Reply
from bot.texts import meeting as texts
from bot.texts.parts import part_payloads
from bot.timeparse import TimeParseError, parse_future_time, parse_time
from handlers.numbered import find, resolve
from models.cards import queue_update, update_payload
from models.identity import Channel
from models.meeting import (
    MAX_DURATION,
    MEETING_TYPE_BY_LABEL,
    MEETING_TYPE_LABELS,
    Attendance,
    AttendanceStatus,
    CheckInResult,
    DecideResult,
    LeaveRequest,
    LeaveResult,
    LeaveStatus,
    Meeting,
    MeetingClash,
    MeetingMinutes,
    MeetingStatus,
    MeetingType,
    add_minutes,
    branch_leaders,
    check_in,
    close_meeting,
    decide_leave,
    is_invitee,
    led_branches,
    meetings_of,
    notify_closed,
    pending_leaves_for,
    push,
    request_leave,
    schedule,
    window_state,
)
from models.numbers import ItemKind
from models.org import Organisation, OrgKind

USAGE = ("格式：会议 类型 时间 [地点] [时长 2小时]，例如：会议 支部党员大会 明天19:00 党员活动室 时长 2小时；"
         "线上会议在最后写「线上」；议题写在第二行起；不写时长按 90 分钟计")
TYPES = "、".join(MEETING_TYPE_LABELS.values())
# Other names people use for the same meetings; the labels above are what we show.
_ALIASES = {"党员大会": MeetingType.GENERAL_ASSEMBLY, "支部委员会": MeetingType.COMMITTEE,
            "小组会": MeetingType.GROUP, "主题党日活动": MeetingType.THEME_DAY,
            "民主评议": MeetingType.DEMOCRATIC_REVIEW, "民主评议党员大会": MeetingType.DEMOCRATIC_REVIEW}
_ONLINE_WORDS = {"线上", "在线", "网上", "线上会议"}


# -- 会议: scheduling ---------------------------------------------------------------------------

def handle_schedule(cmd: Command, ctx: Context) -> Reply:
    duration, problem = _duration(cmd.args)
    if problem:
        return Reply(f"未安排：{problem}\n{USAGE}")
    if duration is not None:  # out of the words, as typed too, so the place lines up
        cmd = replace(cmd, args=_DURATION.sub(" ", cmd.args).strip(), text=_DURATION.sub(" ", cmd.text).strip())
    topic = cmd.body.strip() or None
    if topic and len(topic) > 2000:
        return Reply("未安排：议题太长（最多 2000 字），请精简后再发。")
    meeting_type, rest = _meeting_type(cmd.args)
    if meeting_type is None:
        given = cmd.args.split(" ")[0] if cmd.args else ""
        what = f"会议类型「{given}」不认识" if given else "缺少会议类型"
        return Reply(f"未安排：{what}。可选类型：{TYPES}。\n{USAGE}")
    words = rest.split()
    if not words:
        return Reply(f"未安排：缺少时间。\n{USAGE}")
    starts_at, used, problem = _greedy_time(words, ctx)
    if problem:
        return Reply(f"未安排：{problem}。\n{USAGE}")
    typed = _typed_words(cmd, len(words))
    branch, group, online, location, problem = _scope_and_place(ctx, meeting_type, words[used:], typed[used:])
    if problem:
        return Reply(f"未安排：{problem}")
    if location and len(location) > 200:
        return Reply("未安排：地点太长（最多 200 字）。")
    try:
        meeting = schedule(ctx.session, branch=branch, meeting_type=meeting_type, starts_at=starts_at,
                           convener=ctx.person, now=ctx.now, location=location, online=online, group=group,
                           render=lambda m, channel: texts.notice(m, channel, ctx.settings.tz),
                           duration=duration, topic=topic)
    except MeetingClash as clash:
        other = clash.other
        return Reply(f"未安排：{branch.name}在 {ctx.fmt(other.starts_at)} 至 {ctx.fmt(other.ends_at)} "
                     f"已有会议 #{other.number} {other.title}（{texts.place(other)}），与这次的时间重叠（时间冲突）。请换一个时间。")
    lines = [f"已安排 #{meeting.number} {meeting.title}", f"时间：{texts.time_span(meeting, ctx.settings.tz)}",
             texts.place_line(meeting)]
    if meeting.topic:
        lines.append(f"议题：{meeting.topic}")
    lines.append(f"已通知 {meeting.invited_count} 人。")
    window = texts.checkin_window(meeting, ctx.settings.tz)
    if meeting.online:
        lines.append(f"线上会议无需签到码，签到时间 {window}，参会同志发送「签到」即可。")
    else:
        lines.append(f"签到码：{meeting.checkin_code}（请在会上公布），签到时间 {window}。"
                     f"发送「会议码 {meeting.number}」可再次查看。")
    return Reply("\n".join(lines))


# `时长 2小时`, `时长90分钟`, `时长 1.5小时`, `时长 一个半小时`, `时长 半小时`.
_DURATION = re.compile(r"时长[\s:：]*(?P<n>[0-9.]+|[一二两三四五六七八九十]+)?\s*(?:个)?(?P<half>半)?\s*"
                       r"(?P<unit>小时|钟头|h|H|分钟|min)")
_CN_NUMBERS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}


def _duration(args: str) -> tuple[timedelta | None, str | None]:
    """`时长 …` in the argument: the meeting's length (15 minutes to 12 hours), or a refusal."""
    m = _DURATION.search(args)
    if m is None:
        if "时长" in args:
            return None, "时长看不懂，请写成「时长 2小时」或「时长 90分钟」。"
        return None, None
    n = m["n"]
    try:
        amount = float(n) if n and n[0].isdigit() else float(_CN_NUMBERS.get(n, 0) if n else 0)
    except ValueError:
        return None, "时长看不懂，请写成「时长 2小时」或「时长 90分钟」。"
    if m["half"]:
        amount += 0.5
    minutes = amount * (60 if m["unit"] in ("小时", "钟头", "h", "H") else 1)
    if not 15 <= minutes <= MAX_DURATION.total_seconds() / 60:
        return None, "时长应在 15 分钟到 12 小时之间，例如：时长 2小时。"
    return timedelta(minutes=round(minutes)), None


def _meeting_type(args: str) -> tuple[MeetingType | None, str]:
    """The type at the start of the argument (a space after it is optional) and the rest."""
    names = {**MEETING_TYPE_BY_LABEL, **_ALIASES}
    for name in sorted(names, key=len, reverse=True):
        if args.startswith(name):
            return names[name], args[len(name):].strip()
    return None, args


def _greedy_time(words: list[str], ctx: Context) -> tuple[datetime | None, int, str | None]:
    """The longest leading run of words that reads as a time (`明天 19:00` is two words)."""
    for used in range(len(words), 0, -1):
        text = " ".join(words[:used])
        try:
            parse_time(text, now=ctx.now, tz=ctx.settings.tz)
        except TimeParseError:
            continue
        try:
            return parse_future_time(text, now=ctx.now, tz=ctx.settings.tz), used, None
        except TimeParseError as exc:
            return None, used, str(exc)
    try:
        parse_time(words[0], now=ctx.now, tz=ctx.settings.tz)
    except TimeParseError as exc:
        return None, 0, str(exc)
    return None, 0, "看不懂时间"  # not reached: a single word that parses was tried above


def _typed_words(cmd: Command, count: int) -> list[str]:
    """The argument words as typed (for the place), when they line up with the normalised ones."""
    typed = cmd.text.split()
    return typed[len(typed) - count:] if len(typed) >= count else []


def _scope_and_place(ctx: Context, meeting_type: MeetingType, words: list[str], typed: list[str]):
    """(branch, group, online, location, problem): a word naming one of the secretary's branches or
    their groups chooses the scope; 线上 makes it online; the remaining words are the place."""
    led = led_branches(ctx.person)
    if not led:
        return None, None, False, None, "只有党支部的书记、副书记或支委可以安排会议，您不是党支部的支委。"
    groups = list(ctx.session.scalars(select(Organisation).where(
        Organisation.parent_id.in_([b.id for b in led]), Organisation.kind == OrgKind.GROUP)))
    branch = group = None
    online = False
    place: list[str] = []
    typed = typed if len(typed) == len(words) else words
    for word, as_typed in zip(words, typed, strict=True):
        if word in _ONLINE_WORDS:
            online = True
        elif group is None and (found := next((g for g in groups if g.name == word), None)):
            group = found
        elif branch is None and (found := next((b for b in led if b.name == word), None)):
            branch = found
        else:
            place.append(as_typed)
    if group is not None:
        if meeting_type is not MeetingType.GROUP:
            return None, None, False, None, f"只有党小组会可以指定党小组（{group.name}）。"
        if branch is not None and group.parent_id != branch.id:
            return None, None, False, None, f"{group.name}不属于{branch.name}。"
        branch = next(b for b in led if b.id == group.parent_id)
    if branch is None:
        if len(led) > 1:
            names = "、".join(b.name for b in led)
            return None, None, False, None, f"您是多个支部的支委（{names}），请在最后写明支部名称。"
        branch = led[0]
    return branch, group, online, " ".join(place) or None, None


# -- 会议码 -------------------------------------------------------------------------------------

def handle_code(cmd: Command, ctx: Context) -> Reply:
    meeting, problem = _led_meeting(cmd, ctx, "会议码 12", lambda m: m.status is MeetingStatus.SCHEDULED)
    if problem:
        return Reply(problem)
    window = f"签到时间 {texts.checkin_window(meeting, ctx.settings.tz)}"
    head = f"#{meeting.number} {meeting.title}（{ctx.fmt(meeting.starts_at)}，{texts.place(meeting)}）"
    if meeting.online:
        return Reply(f"{head}是线上会议，无需签到码；{window}。")
    closed = "（会议已结束）" if meeting.status is MeetingStatus.CLOSED else ""
    return Reply(f"{head}\n签到码：{meeting.checkin_code}{closed}\n{window}。")


def _led_meeting(cmd: Command, ctx: Context, example: str, fits) -> tuple[Meeting | None, str | None]:
    """The meeting a secretary means: by number (only of a branch they lead), or the one open
    meeting of their branches that fits."""
    args = cmd.arg_list
    if args and args[0].isdigit():
        meeting, wrong = find(ctx.session, int(args[0]), ItemKind.MEETING)
        if wrong:
            return None, wrong
        if meeting is None:
            return None, f"没有编号为 #{args[0]} 的会议。"
        if not may_manage_meeting(ctx.person, meeting):
            return None, f"#{meeting.number} 是{meeting.organisation.name}的会议，只有该支部的书记、副书记或支委可以操作。"
        return meeting, None
    branch_ids = [b.id for b in led_branches(ctx.person)]
    candidates = [m for m in ctx.session.scalars(
        select(Meeting).where(Meeting.organisation_id.in_(branch_ids), Meeting.status == MeetingStatus.SCHEDULED)
        .order_by(Meeting.starts_at, Meeting.id))
        if fits(m)]
    if len(candidates) == 1:
        return candidates[0], None
    if not candidates:
        return None, f"没有找到可以操作的会议，请写明编号，例如：{example}"
    numbers = "、".join(f"#{m.number}" for m in candidates[:10])
    return None, f"您的支部有 {len(candidates)} 个会议（{numbers}），请写明编号，例如：{example}"


# -- 签到 ---------------------------------------------------------------------------------------

def handle_bare_code(cmd: Command, ctx: Context) -> Reply | None:
    """`8391` alone: a check-in code while one of the person's meetings is open for check-in;
    otherwise None (the router answers it as text it did not understand)."""
    nearby = meetings_of(ctx.session, ctx.person, starts_after=ctx.now - timedelta(days=1))
    if not any(window_state(m, ctx.now) is None for m in nearby):
        return None
    return handle_checkin(cmd, ctx)


def handle_checkin(cmd: Command, ctx: Context) -> Reply:
    code = next((a for a in cmd.arg_list if a.isdigit()), None)
    nearby = meetings_of(ctx.session, ctx.person, starts_after=ctx.now - timedelta(days=1))
    open_now = [m for m in nearby if window_state(m, ctx.now) is None]
    if not open_now:
        return Reply(_not_open(ctx, nearby))
    targets = open_now
    if len(open_now) > 1:
        targets = ([m for m in open_now if code and m.checkin_code == code]
                   or [m for m in open_now if m.online and not code]
                   or [m for m in open_now if not m.online])
    # Several candidates only when the code matches none: it counts as wrong for each of them.
    results = [(m, check_in(ctx.session, m, ctx.person, at=ctx.now, code=code)) for m in targets]
    meeting, outcome = results[0]
    return Reply(_checkin_reply(ctx, meeting, outcome))


def _checkin_reply(ctx: Context, meeting: Meeting, outcome) -> str:
    name = f"#{meeting.number} {meeting.title}"
    result = outcome.result
    if result is CheckInResult.CHECKED_IN:
        return f"签到成功：{name}（{ctx.fmt(meeting.starts_at)}，{texts.place(meeting)}），签到时间 {ctx.fmt(outcome.attendance.checked_in_at)}。"
    if result is CheckInResult.ALREADY:
        return f"您已于 {ctx.fmt(outcome.attendance.checked_in_at)} 签到 {name}，无需重复签到。"
    if result is CheckInResult.CODE_NEEDED:
        return f"{name} 签到需要会议码，请发送「签到 会议码」，例如：签到 1234。会议码由主持人在会上公布。"
    if result is CheckInResult.WRONG_CODE:
        return f"会议码不正确，{name} 签到未成功。还可尝试 {outcome.tries_left} 次，请向主持人核对会议码。"
    if result is CheckInResult.LOCKED:
        return (f"会议码错误次数过多，{name} 的签到已暂停至 {ctx.fmt(outcome.locked_until)}。"
                f"请届时再试，或请主持人协助。")
    return _window_text(ctx, meeting, result)


def _window_text(ctx: Context, meeting: Meeting, state: CheckInResult | None) -> str:
    name = f"#{meeting.number} {meeting.title}（{ctx.fmt(meeting.starts_at)} 开始）"
    if meeting.status is MeetingStatus.CANCELLED:
        return f"#{meeting.number} {meeting.title} 已于 {ctx.fmt(meeting.cancelled_at)} 取消，无需签到。"
    if state is CheckInResult.NOT_OPEN_YET:
        return f"{name} 的签到尚未开始，将于 {ctx.fmt(meeting.checkin_opens_at)} 开放（开会前 30 分钟）。"
    if state is CheckInResult.CLOSED:
        return f"{name} 已于 {ctx.fmt(meeting.closed_at)} 结束，不能再签到。"
    return f"{name} 的签到已于 {ctx.fmt(meeting.checkin_closes_at)} 截止（开会后 30 分钟），不能再签到。"


def _not_open(ctx: Context, nearby: list[Meeting]) -> str:
    """No meeting open for check-in: name the nearest one, whether it is coming or past."""
    if not nearby:
        return "您目前没有需要签到的会议。发送「待办」查看即将召开的会议。"

    def distance(m: Meeting) -> timedelta:
        if window_state(m, ctx.now) is CheckInResult.NOT_OPEN_YET:
            return m.checkin_opens_at - ctx.now
        return ctx.now - min(m.checkin_closes_at, m.closed_at or m.checkin_closes_at)

    nearest = min(nearby, key=distance)
    mine = ctx.session.scalar(select(Attendance).where(Attendance.meeting_id == nearest.id,
                                                       Attendance.person_id == ctx.person.id))
    if mine is not None and mine.status is AttendanceStatus.PRESENT:
        return f"您已于 {ctx.fmt(mine.checked_in_at)} 签到 #{nearest.number} {nearest.title}，无需重复签到。"
    return _window_text(ctx, nearest, window_state(nearest, ctx.now))


# -- 请假, 批准, 驳回 --------------------------------------------------------------------------

def handle_leave(cmd: Command, ctx: Context) -> Reply:
    args = cmd.arg_list
    if args and args[0].isdigit():
        meeting, wrong = find(ctx.session, int(args[0]), ItemKind.MEETING)
        if wrong:
            return Reply(wrong)
        if meeting is None:
            return Reply(f"没有编号为 #{args[0]} 的会议。发送「待办」查看即将召开的会议。")
        reason = cmd.after_number()
        if meeting.status is MeetingStatus.CANCELLED:
            return Reply(f"#{meeting.number} {meeting.title} 已于 {ctx.fmt(meeting.cancelled_at)} 取消，无需请假。")
    else:
        coming = [m for m in meetings_of(ctx.session, ctx.person, statuses=(MeetingStatus.SCHEDULED,),
                                         starts_after=ctx.now)]
        if not coming:
            return Reply("您目前没有即将召开的会议，无需请假。")
        if len(coming) > 1:
            numbers = "、".join(f"#{m.number} {m.title}（{ctx.fmt(m.starts_at)}）" for m in coming[:10])
            return Reply(f"您有 {len(coming)} 个即将召开的会议：{numbers}。请写明编号，例如：请假 {coming[0].number} 出差在外")
        meeting = coming[0]
        reason = cmd.free_text
    reason = reason.strip()
    if not reason:
        return Reply(f"请写明请假理由，例如：请假 {meeting.number} 出差在外")
    result, leave = request_leave(ctx.session, meeting, ctx.person, reason=reason[:500], now=ctx.now)
    name = f"#{meeting.number} {meeting.title}（{ctx.fmt(meeting.starts_at)}）"
    if result is LeaveResult.CLOSED:
        return Reply(f"{name} 已于 {ctx.fmt(meeting.closed_at)} 结束，不能再请假。")
    if result is LeaveResult.STARTED:
        return Reply(f"{name} 已于 {ctx.fmt(meeting.starts_at)} 开始，会前才能请假，现在不能再请假。"
                     f"如有特殊情况请直接联系支部书记。")
    if result is LeaveResult.NOT_INVITED:
        return Reply(f"{name} 不是您需要参加的会议，无需请假。")
    if result is LeaveResult.CHECKED_IN:
        return Reply(f"您已签到 {name}，签到后不能再请假。如需提前离会，请当面向支部书记说明。")
    if result is LeaveResult.ALREADY:
        if leave.status is LeaveStatus.APPROVED:
            return Reply(f"您对 {name} 的请假 #{leave.number} 已于 {ctx.fmt(leave.decided_at)} 批准，无需再次请假。")
        return Reply(f"您已于 {ctx.fmt(leave.requested_at)} 提交 {name} 的请假 #{leave.number}，正在等待审批。")
    leaders = [p for p in branch_leaders(ctx.session, meeting.organisation_id) if p.id != ctx.person.id] or \
        branch_leaders(ctx.session, meeting.organisation_id)
    for leader in leaders:
        push(ctx.session, leader.id, lambda channel: texts.leave_request(leave, channel, ctx.settings.tz), now=ctx.now,
             subject_type="leave_request", subject_id=leave.id)
    return Reply(f"已提交请假 #{leave.number}：{name}，理由：{reason}。已转支部书记审批，结果会通知您。")


def handle_approve(cmd: Command, ctx: Context) -> Reply:
    return _decide_by_text(cmd, ctx, approve=True)


def handle_reject(cmd: Command, ctx: Context) -> Reply:
    return _decide_by_text(cmd, ctx, approve=False)


def _decide_leave_text(cmd: Command, ctx: Context, leave: LeaveRequest, *, approve: bool) -> Reply:
    return Reply(_decide(ctx, leave, approve=approve, note=cmd.after_number().strip()))


# What 批准 / 驳回 do with a number, by the kind the number is: each kind that can be decided adds
# its row (self-reported points items: `ItemKind.SELF_REPORT: <its handler>`, same signature).
DECIDERS = {ItemKind.LEAVE: _decide_leave_text}


def _decide_by_text(cmd: Command, ctx: Context, *, approve: bool) -> Reply:
    word = "批准" if approve else "驳回"
    args = cmd.arg_list
    if args and args[0].isdigit():
        kind, item, wrong = resolve(ctx.session, int(args[0]), *DECIDERS)
        if wrong:
            return Reply(wrong)
        if item is None:
            return Reply(f"没有编号为 #{args[0]} 的请假申请。")
        return DECIDERS[kind](cmd, ctx, item, approve=approve)
    pending = pending_leaves_for(ctx.session, ctx.person)
    if len(pending) != 1:
        if not pending:
            return Reply("您的支部目前没有待审批的请假。")
        numbers = "、".join(f"#{x.number} {x.person.name}" for x in pending[:10])
        return Reply(f"有 {len(pending)} 份待审批的请假（{numbers}），请写明编号，例如：{word} {pending[0].number}")
    return Reply(_decide(ctx, pending[0], approve=approve, note=cmd.free_text.strip()))


def _decide(ctx: Context, leave: LeaveRequest, *, approve: bool, note: str) -> str:
    meeting = leave.meeting
    if not may_manage_meeting(ctx.person, meeting):
        return f"请假 #{leave.number} 属于{meeting.organisation.name}的会议，只有该支部的书记、副书记或支委可以审批。"
    result = decide_leave(ctx.session, leave, ctx.person, approve=approve, now=ctx.now, note=note or None)
    name = f"#{meeting.number} {meeting.title}（{ctx.fmt(meeting.starts_at)}）"
    if result is DecideResult.ALREADY and leave.status is LeaveStatus.CLOSED:
        return f"请假 #{leave.number}（{leave.person.name}）已于 {ctx.fmt(leave.decided_at)} 因会议取消而关闭，无需审批。"
    if result is DecideResult.ALREADY:
        by = leave.decided_by.name if leave.decided_by else ""
        done = "批准" if leave.status is LeaveStatus.APPROVED else "驳回"
        return f"请假 #{leave.number}（{leave.person.name}）已于 {ctx.fmt(leave.decided_at)} 由{by}{done}，无需再次审批。"
    if result is DecideResult.CLOSED:
        return f"{name} 已于 {ctx.fmt(meeting.closed_at)} 结束，请假 #{leave.number} 不能再审批。"
    word = "批准" if approve else "驳回"
    because = texts.decision_note(note, approve=approve)
    tell = texts.leave_decided(leave, approve=approve, by=ctx.person.name, note=note, tz=ctx.settings.tz)
    reached = push(ctx.session, leave.person_id, lambda channel: part_payloads(tell, channel), now=ctx.now,
                   subject_type="leave_request", subject_id=leave.id)
    told = "已通知本人" if reached else "本人未绑定可推送的账号，请另行告知"
    return f"已{word} {leave.person.name} 的请假 #{leave.number}：{name}{because}。{told}。"


# -- buttons --------------------------------------------------------------------------------------

def handle_card_tap(cmd: Command, ctx: Context) -> Reply | None:
    """Buttons on meeting cards: `leave:<meeting>`, `approve:<leave>`, `reject:<leave>`."""
    prefix, _, arg = (cmd.args or "").partition(":")
    if as_number(arg) is None:
        return None
    if prefix == "leave":
        meeting = ctx.session.get(Meeting, int(arg))
        if meeting is None:
            return None
        name = f"#{meeting.number} {meeting.title}（{ctx.fmt(meeting.starts_at)}）"
        if meeting.status is MeetingStatus.CLOSED or ctx.now >= meeting.starts_at:
            return Reply(f"{name} 已于 {ctx.fmt(meeting.starts_at)} 开始，会前才能请假，现在不能再请假。")
        if not is_invitee(ctx.session, meeting, ctx.person):
            return Reply(f"{name} 不是您需要参加的会议，无需请假。")
        return Reply(f"请回复「请假 {meeting.number} 理由」说明请假理由，例如：请假 {meeting.number} 出差在外。")
    if prefix in ("approve", "reject"):
        leave = ctx.session.get(LeaveRequest, int(arg))
        if leave is None:
            return None
        if prefix == "reject" and leave.status is LeaveStatus.PENDING and may_manage_meeting(ctx.person, leave.meeting):
            # A rejection carries a reason: asked for in words, with no state kept between the two.
            return Reply(f"请回复「驳回 {leave.number} 理由」驳回 {leave.person.name} 的请假 #{leave.number}，"
                         f"例如：驳回 {leave.number} 会议重要，请调整安排。")
        text = _decide(ctx, leave, approve=prefix == "approve", note="")
        if ctx.msg.response_code and ctx.msg.channel is Channel.WECOM and leave.decided_at is not None:
            queue_update(ctx.session, update_payload(ctx.msg.response_code,
                                                     f"{leave.status.label} {ctx.fmt(leave.decided_at)}"),
                         [(ctx.msg.sender, ctx.person.id)], at=ctx.now, purpose="tap",
                         subject=("leave_request", leave.id))
        return Reply(text)
    return None


# -- 结束, 纪要 ----------------------------------------------------------------------------------

def handle_close(cmd: Command, ctx: Context) -> Reply:
    meeting, problem = _led_meeting(cmd, ctx, "结束 12", lambda m: m.status is MeetingStatus.SCHEDULED
                                    and m.starts_at <= ctx.now)
    if problem:
        return Reply(problem)
    name = f"#{meeting.number} {meeting.title}（{ctx.fmt(meeting.starts_at)}）"
    if meeting.status is MeetingStatus.CLOSED:
        return Reply(f"{name} 已于 {ctx.fmt(meeting.closed_at)} 结束。")
    if meeting.status is MeetingStatus.CANCELLED:
        return Reply(f"{name} 已于 {ctx.fmt(meeting.cancelled_at)} 取消。")
    if ctx.now < meeting.starts_at:
        return Reply(f"{name} 尚未开始，开始后才能结束；如需取消请发送「取消 {meeting.number} 原因」，"
                     f"如需改时间请发送「改期 {meeting.number} 时间」。")
    summary = close_meeting(ctx.session, meeting, by=ctx.person, now=ctx.now)
    if summary is None:
        return Reply(f"{name} 已结束。")
    # The leaders get the summary as this reply; home branches of temporary members get their part.
    notify_closed(ctx.session, summary, now=ctx.now, to_leaders=None,
                  to_home_branch=lambda rows: texts.home_branch_copy(meeting, rows, ctx.settings.tz))
    return Reply(texts.close_summary(summary, ctx.settings.tz) + f"\n可发送「纪要 {meeting.number} 内容」记录会议纪要。")


def handle_minutes(cmd: Command, ctx: Context) -> Reply:
    args = cmd.arg_list
    if not args or not args[0].isdigit():
        return Reply("请写明会议编号和纪要内容，例如：纪要 12 学习了全会精神，讨论了下季度工作。")
    meeting, problem = _led_meeting(cmd, ctx, "纪要 12 内容", lambda _m: False)
    if problem:
        return Reply(problem)
    if meeting.status is MeetingStatus.CANCELLED:  # cancelled before its start: it will never be held
        return Reply(f"#{meeting.number} {meeting.title}（{ctx.fmt(meeting.starts_at)}）已于 "
                     f"{ctx.fmt(meeting.cancelled_at)} 取消，没有召开，不记录纪要。")
    text = "\n".join(part for part in (cmd.after_number(), cmd.body) if part).strip()
    if not text:  # `纪要 12` alone reads the minutes back
        from handlers.readback import minutes_text

        return minutes_text(ctx, meeting)
    if ctx.now < meeting.starts_at:
        return Reply(f"#{meeting.number} {meeting.title} 将于 {ctx.fmt(meeting.starts_at)} 开始，会议开始后才能记录纪要。")
    add_minutes(ctx.session, meeting, ctx.person, text=text, now=ctx.now)
    count = len(ctx.session.scalars(select(MeetingMinutes.id).where(MeetingMinutes.meeting_id == meeting.id)).all())
    return Reply(f"已记录 #{meeting.number} {meeting.title}（{ctx.fmt(meeting.starts_at)}）的第 {count} 份纪要，"
                 f"记录人 {ctx.person.name}，时间 {ctx.fmt(ctx.now)}。")


# -- 待办 ---------------------------------------------------------------------------------------

def todo_items(session, person, now, ids: list[int]):
    """待办: of the candidate meetings 待办's query found, those this person is invited to, can
    still check in to and has not checked in to, each with where the person's leave request
    stands (请假待批, or refused). A meeting with approved leave is owed no more: it comes back as
    an item that is not owed (已准假), for 待办 to list apart."""
    from handlers.todo_item import TodoItem

    coming = [m for m in session.scalars(select(Meeting).where(Meeting.id.in_(ids)).order_by(Meeting.starts_at))
              if now <= m.checkin_closes_at and is_invitee(session, m, person)]
    if not coming:
        return []
    leaves = {leave.meeting_id: leave for leave in session.scalars(  # the latest request per meeting
        select(LeaveRequest).where(LeaveRequest.person_id == person.id,
                                   LeaveRequest.meeting_id.in_([m.id for m in coming]),
                                   LeaveRequest.status != LeaveStatus.CLOSED)
        .order_by(LeaveRequest.requested_at, LeaveRequest.id))}
    items = []
    for m in coming:
        mine = session.scalar(select(Attendance.status).where(Attendance.meeting_id == m.id,
                                                              Attendance.person_id == person.id))
        if mine is AttendanceStatus.PRESENT:
            continue
        leave = leaves.get(m.id)
        approved = leave is not None and leave.status is LeaveStatus.APPROVED
        items.append(TodoItem("会议", m.number, m.title, m.checkin_closes_at, "签到" if m.online else "签到 会议码",
                              starts_at=m.starts_at, place=texts.place(m),
                              checkin_opens_at=None if approved else m.checkin_opens_at,
                              note=texts.leave_in_todo(leave) if leave else None, owed=not approved))
    return items


def leave_todo_items(session, person):
    """待办 of a branch secretary: the leave requests waiting for her decision, with the meeting's start
    as their 截止 (a request not decided by then is moot)."""
    from handlers.todo_item import TodoItem

    if not led_branches(person):
        return []
    return [TodoItem("请假", leave.number, f"{leave.person.name} 请假：{leave.meeting.title}，理由：{leave.reason}",
                     leave.meeting.starts_at, f"批准 {leave.number}」或「驳回 {leave.number} 理由")
            for leave in pending_leaves_for(session, person)]
