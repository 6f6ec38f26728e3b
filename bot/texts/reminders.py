"""Reminder and alert wording: the per-person digest, deadline reminders for directives and
study, alerts at the deadline to branch secretaries and liaisons, the summary after it, meeting
reminders, and the required-meeting (三会一课, 主题党日) reminder and alert. Each function gets
what the scheduler's rule found and returns the text of one notice. Also why a row was not sent
(`skip_reason`), as the record of the matter (一事一档) names it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.texts.meeting import place_line
from bot.timefmt import format_time
from models.directive import Directive, DirectiveKind
from models.meeting import Meeting, MeetingType, Period
from models.reminder import ReminderKind, SkipReason

NAMES_SHOWN = 20
BRANCHES_SHOWN = 15

SKIP_LABELS = {
    SkipReason.PASSED_WHEN_ISSUED: "发布时提醒时间已过",
    SkipReason.PASSED_WHEN_SCHEDULED: "安排会议时提醒时间已过",
    SkipReason.STALE: "补发时已过时",
    SkipReason.DIRECTIVE_GONE: "通知已不存在",
    SkipReason.DEADLINE_CHANGED: "截止时间已变更",
    SkipReason.ALL_ACKNOWLEDGED: "所有人都已确认",
    SkipReason.ALL_STUDIED: "所有人都已学完",
    SkipReason.ALL_ACKNOWLEDGED_BY_DEADLINE: "截止时所有人都已确认",
    SkipReason.MEETING_GONE: "会议已不存在",
    SkipReason.MEETING_MOVED: "会议时间已变更",
    SkipReason.MEETING_CLOSED: "会议已结束",
    SkipReason.NOBODY_TO_REMIND: "无需提醒：都已请假或签到",
    SkipReason.BRANCH_GONE: "支部已不存在",
    SkipReason.ALL_SCHEDULED: "规定会议都已安排",
    SkipReason.ALL_HELD: "规定会议都已召开",
    SkipReason.NO_LIAISON: "该支部没有联络员",
    SkipReason.WITHDRAWN: "已撤回",
    SkipReason.MEETING_CANCELLED: "会议已取消",
}
# Why a late firing of each kind is no longer useful.
STALE_LABELS = {
    ReminderKind.DIRECTIVE_24H: "离截止已不足 2 小时，由 2 小时提醒代替",
    ReminderKind.DIRECTIVE_2H: "截止时间已过",
    ReminderKind.DIRECTIVE_DEADLINE: "截止已满 24 小时，由汇总代替",
    ReminderKind.DIRECTIVE_SUMMARY: "截止已超过 8 天",
    ReminderKind.STUDY_24H: "学习截止时间已过",
    ReminderKind.MEETING_DAY_BEFORE: "离开会已不足 1 小时，由 1 小时提醒代替",
    ReminderKind.MEETING_HOUR_BEFORE: "会议已开始",
    ReminderKind.REQUIRED_MEETING_DUE: "该周期已结束",
    ReminderKind.REQUIRED_MEETING_MISSED: "周期结束已超过 7 天",
}


def skip_reason(reason: SkipReason, kind: ReminderKind) -> str:
    """Why a row of `kind` was skipped or cancelled: `所有人都已确认`, `补发时已过时：会议已开始`."""
    if reason is SkipReason.STALE:
        return f"{SKIP_LABELS[reason]}：{STALE_LABELS[kind]}"
    return SKIP_LABELS[reason]


def digest(notices: list[str]) -> str:
    """One notice as it is; several due to one person at once as one numbered message."""
    if len(notices) == 1:
        return notices[0]
    lines = [f"【直通车提醒】您有 {len(notices)} 条提醒："]
    lines += [f"{i}. {text}" for i, text in enumerate(notices, 1)]
    return "\n".join(lines)


# -- directives and study -------------------------------------------------------------------

def directive_reminder(directive: Directive, kind: ReminderKind, tz: ZoneInfo) -> str:
    """24 h / 2 h before the deadline, to those who have not acknowledged (study: not confirmed)."""
    left = "24 小时" if kind in (ReminderKind.DIRECTIVE_24H, ReminderKind.STUDY_24H) else "2 小时"
    org = directive.organisation.name
    due = format_time(directive.deadline, tz)
    if directive.kind is DirectiveKind.STUDY:
        return (f"【学习提醒】{org}布置的学习 #{directive.number}「{directive.title}」将于 {due}"
                f" 截止（还剩 {left}），您还没有确认学完。学完后回复「已学 {directive.number}」。")
    return (f"【截止提醒】{org}发布的 #{directive.number}「{directive.title}」将于 {due}"
            f" 截止（还剩 {left}），您还没有确认。请回复「收到 {directive.number}」。")


def branch_lag(branch_name: str, total: int, acked: int, missing: list[str]) -> str:
    """`综合处党支部 未确认 2/5：张伟、刘洋`, the names cut after 20."""
    names = "、".join(missing[:NAMES_SHOWN])
    if len(missing) > NAMES_SHOWN:
        names += f" 等 {len(missing)} 人"
    return f"{branch_name} 未确认 {total - acked}/{total}：{names}"


def _overdue_head(directive: Directive, tz: ZoneInfo) -> str:
    return (f"#{directive.number}「{directive.title}」（{directive.organisation.name}发布）"
            f"已于 {format_time(directive.deadline, tz)} 截止")


def overdue_alert(directive: Directive, lag: str, tz: ZoneInfo) -> str:
    """At the deadline, to a lagging branch's secretaries: `lag` is its `branch_lag` line."""
    return f"【逾期提醒】{_overdue_head(directive, tz)}，本支部{lag}。请督促尽快回复「收到 {directive.number}」。"


def liaison_alert(directive: Directive, lags: list[str], tz: ZoneInfo) -> str:
    """At the deadline, to a liaison: one `branch_lag` line per lagging organisation they look after."""
    lines = lags[:BRANCHES_SHOWN]
    if len(lags) > BRANCHES_SHOWN:
        lines.append(f"……另有 {len(lags) - BRANCHES_SHOWN} 个支部未列出，发送「进度 {directive.number}」查看。")
    return (f"【联络员预警】{_overdue_head(directive, tz)}，您联系的组织中有 {len(lags)} 个支部未全部确认：\n"
            + "\n".join(lines))


def directive_summary(directive: Directive, *, total: int, acked: int, late: int, lags: list[str],
                      tz: ZoneInfo) -> str:
    """24 h after the deadline, to the issuing organisation: the rate and the branches still lagging."""
    lines = [f"【汇总】#{directive.number}「{directive.title}」截止 {format_time(directive.deadline, tz)}，已过 24 小时：",
             f"已确认 {acked}/{total}，其中逾期确认 {late} 人。"]
    if lags:
        lines.append(f"未全部确认的支部 {len(lags)} 个：")
        lines += lags[:BRANCHES_SHOWN]
        if len(lags) > BRANCHES_SHOWN:
            lines.append(f"……其余 {len(lags) - BRANCHES_SHOWN} 个见「进度 {directive.number}」。")
    else:
        lines.append("各支部均已全部确认。")
    return "\n".join(lines)


# -- meetings -------------------------------------------------------------------------------

def meeting_reminder(meeting: Meeting, kind: ReminderKind, tz: ZoneInfo) -> str:
    """The day before or 1 h before, to invitees not checked in and without approved leave."""
    what = f"#{meeting.number} {meeting.title}"
    starts = format_time(meeting.starts_at, tz)
    if kind is ReminderKind.MEETING_DAY_BEFORE:
        return (f"【会议提醒】{what} 将于 {starts} 召开，{place_line(meeting)}。"
                f"不能参加请回复「请假 {meeting.number} 理由」。")
    how = "发送「签到」" if meeting.online else "发送「签到 会议码」"
    return f"【会议提醒】{what} 1 小时后（{starts}）开始，{place_line(meeting)}。会前 30 分钟起可{how}。"


def required_meeting(meeting_type: MeetingType, period_key: str) -> str:
    """`2026年11月的支委会` / `2026年第4季度的党课`, for the period `2026-11` its type is counted in."""
    year, month = (int(x) for x in period_key.split("-"))
    if meeting_type.period is Period.YEAR:
        return f"{year}年的{meeting_type.label}"
    if meeting_type.period is Period.QUARTER:
        return f"{year}年第{(month - 1) // 3 + 1}季度的{meeting_type.label}"
    return f"{year}年{month}月的{meeting_type.label}"


def required_due(branch_name: str, missing: list[str], period_ends: datetime, tz: ZoneInfo) -> str:
    """The period's last week, to the branch's secretaries: `missing` from `required_meeting`;
    `period_ends` is the period's last minute."""
    return (f"【规定动作提醒】{branch_name}尚未安排{'、'.join(missing)}，本周期将于 "
            f"{format_time(period_ends, tz)} 结束。请发送「会议 类型 时间 [地点]」安排。")


def required_missed(branch_name: str, missed: list[str]) -> str:
    """Period over, to the branch's liaisons: `missed` from `required_meeting`."""
    return f"【联络员预警】{branch_name}未按期召开：{'、'.join(missed)}。"
