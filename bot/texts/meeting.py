"""Meeting wording: the notice to invitees, where and when, the leave-request card and the
decision sent back, the attendance line and the closing summary, and a meeting's line in 待办."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.timefmt import format_time
from models.identity import Channel
from models.meeting import Attendance, AttendanceStatus, CloseSummary, LeaveRequest, LeaveStatus, Meeting, Payload
from models.outbox import card_payload, text_payload

PLACE_TBD = "地点另行通知"
ATTENDANCE_LABELS = {AttendanceStatus.PRESENT: "签到", AttendanceStatus.ON_LEAVE: "请假",
                     AttendanceStatus.ABSENT: "缺席"}


# -- where and when -----------------------------------------------------------------------------

def place(meeting: Meeting) -> str:
    """Where, as a phrase: `党员活动室`, `线上（腾讯会议 123-456）`, or 地点另行通知."""
    if meeting.online:
        return "线上" + (f"（{meeting.location}）" if meeting.location else "")
    return meeting.location or PLACE_TBD


def place_line(meeting: Meeting) -> str:
    """`地点：党员活动室`, or 地点另行通知 alone when no place was given."""
    where = place(meeting)
    return PLACE_TBD if where == PLACE_TBD else f"地点：{where}"


def checkin_window(meeting: Meeting, tz: ZoneInfo) -> str:
    """`2026年11月22日 18:30 至 2026年11月22日 19:30`."""
    return f"{format_time(meeting.checkin_opens_at, tz)} 至 {format_time(meeting.checkin_closes_at, tz)}"


def time_span(meeting: Meeting, tz: ZoneInfo) -> str:
    """`2026年11月22日 19:00 至 2026年11月22日 20:30（90 分钟）`."""
    minutes = meeting.duration_minutes
    length = f"{minutes // 60} 小时" if minutes % 60 == 0 else f"{minutes} 分钟"
    return f"{format_time(meeting.starts_at, tz)} 至 {format_time(meeting.ends_at, tz)}（{length}）"


# -- the notice ---------------------------------------------------------------------------------

def notice(meeting: Meeting, channel: Channel, tz: ZoneInfo) -> Payload:
    """The notice every invitee gets: a card with a 请假 button in WeCom, text elsewhere."""
    how = "发送「签到」" if meeting.online else "发送「签到 会议码」（会议码在会上公布）"
    topic = f"\n议题：{meeting.topic}" if meeting.topic else ""
    details = (f"时间：{time_span(meeting, tz)}\n{place_line(meeting)}{topic}\n"
               f"签到：{checkin_window(meeting, tz)}，{how}")
    if channel is Channel.WECOM:
        return card_payload(title=f"会议通知 #{meeting.number} {meeting.title}",
                            description=f"{details}\n不能参加请点「请假」，或回复「请假 {meeting.number} 理由」。",
                            task_id=f"meeting-{meeting.id}", buttons=[(f"leave:{meeting.id}", "请假")])
    return text_payload(f"【会议通知】#{meeting.number} {meeting.title}\n{details}\n"
                        f"不能参加请回复「请假 {meeting.number} 理由」。")


# -- leave --------------------------------------------------------------------------------------

def leave_request(leave: LeaveRequest, channel: Channel, tz: ZoneInfo) -> Payload:
    """The request as the branch committee gets it: a card with 批准 / 驳回 in WeCom, text elsewhere."""
    meeting = leave.meeting
    details = (f"{leave.person.name} 申请不参加 #{meeting.number} {meeting.title}（{format_time(meeting.starts_at, tz)}）\n"
               f"理由：{leave.reason}\n申请时间：{format_time(leave.requested_at, tz)}")
    if channel is Channel.WECOM:
        return card_payload(title=f"请假审批 #{leave.number} {leave.person.name}",
                            description=f"{details}\n也可回复「批准 {leave.number}」或「驳回 {leave.number} 理由」。",
                            task_id=f"leave-{leave.id}",
                            buttons=[(f"approve:{leave.id}", "批准"), (f"reject:{leave.id}", "驳回")])
    return text_payload(f"【请假审批】#{leave.number}\n{details}\n回复「批准 {leave.number}」或「驳回 {leave.number} 理由」。")


# 待办's heading over the meetings the person is excused from (approved leave): nothing to do.
EXCUSED_HEADING = "已准假的会议（无需签到）："


def leave_in_todo(leave: LeaveRequest) -> str:
    """Where a member's own leave request stands, on the meeting's line in their 待办:
    `请假待批（#2）`, `已准假（#2）`, or the refusal with its reason."""
    if leave.status is LeaveStatus.APPROVED:
        return f"已准假（#{leave.number}）"
    if leave.status is LeaveStatus.REJECTED:
        because = f"，理由：{leave.decision_note}" if leave.decision_note else ""
        return f"请假未获批准（#{leave.number}{because}）"
    return f"请假待批（#{leave.number}）"


def decision_note(note: str, *, approve: bool) -> str:
    """`，理由：…` for a rejection, `，说明：…` for an approval, nothing without a note."""
    if not note:
        return ""
    return f"，说明：{note}" if approve else f"，理由：{note}"


def leave_decided(leave: LeaveRequest, *, approve: bool, by: str, note: str, tz: ZoneInfo) -> str:
    """What the member is told when their request is decided (at `leave.decided_at`)."""
    meeting = leave.meeting
    name = f"#{meeting.number} {meeting.title}（{format_time(meeting.starts_at, tz)}）"
    word = "批准" if approve else "驳回"
    return (f"您对 {name} 的请假 #{leave.number} 已{word}（{by}，{format_time(leave.decided_at, tz)}）"
            f"{decision_note(note, approve=approve)}。" + ("" if approve else "请按时参加。"))


# -- closing ------------------------------------------------------------------------------------

def attendance_line(summary: CloseSummary) -> str:
    """`应到 X 实到 Y 请假 Z 缺席 W`."""
    return (f"应到 {summary.expected} 实到 {len(summary.present)} "
            f"请假 {len(summary.on_leave)} 缺席 {len(summary.absent)}")


def close_summary(summary: CloseSummary, tz: ZoneInfo) -> str:
    """The meeting, when it closed, the attendance line, then the names per category; people from
    another home branch (members of a temporary branch) carry their home branch's name."""
    meeting = summary.meeting

    def names(rows: list[Attendance]) -> str:
        return "、".join(_name(meeting, r) for r in rows) or "无"

    how = "自动结束" if meeting.closed_by_id is None else "结束"
    closed = f"，已于 {format_time(meeting.closed_at, tz)} {how}" if meeting.closed_at else ""
    return "\n".join([
        f"#{meeting.number} {meeting.title}（{format_time(meeting.starts_at, tz)}）{closed}",
        attendance_line(summary),
        f"实到：{names(summary.present)}",
        f"请假：{names(summary.on_leave)}",
        f"缺席：{names(summary.absent)}",
    ])


def _name(meeting: Meeting, row: Attendance) -> str:
    if row.home_branch is not None and row.home_branch_id != meeting.organisation_id:
        return f"{row.person.name}（{row.home_branch.name}）"
    return row.person.name


def closed_push(summary: CloseSummary, tz: ZoneInfo) -> Payload:
    """The summary as the branch committee gets it when the meeting closes by itself."""
    return text_payload("【会议结束】" + close_summary(summary, tz))


def home_branch_copy(meeting: Meeting, rows: list[Attendance], tz: ZoneInfo) -> Payload:
    """To a home branch's committee: how its members fared in another branch's meeting."""
    parts = []
    for row in rows:
        at = f" {format_time(row.checked_in_at, tz)}" if row.checked_in_at else ""
        parts.append(f"{row.person.name} {ATTENDANCE_LABELS[row.status]}{at}")
    return text_payload(f"【抄送】本支部党员参加{meeting.organisation.name}#{meeting.number} {meeting.type.label}"
                        f"（{format_time(meeting.starts_at, tz)}）的情况：\n" + "\n".join(parts))

