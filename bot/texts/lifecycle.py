"""Wording of corrections: the 【撤回】 push of a directive or study item, the 【改期】 push of a
new deadline or start, and the 【取消】 push of a meeting. The two that carry a reason (up to 500
characters, beside a title of up to 200) are returned as the parts of `bot.texts.parts`."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.texts import directive as directive_texts
from bot.texts import study as study_texts
from bot.texts.parts import part_payloads
from bot.timefmt import format_time
from models.directive import DeliveryRole, Directive, DirectiveKind
from models.meeting import Meeting
from models.outbox import OutboxChannel, text_payload


def kind_word(directive: Directive) -> str:
    return "学习" if directive.kind is DirectiveKind.STUDY else "通知"


def _because(reason: str | None) -> str:
    return f"，原因：{reason}" if reason else ""


def withdrawn(directive: Directive, by: str, tz: ZoneInfo) -> list[dict[str, Any]]:
    """To every recipient: the item is withdrawn and nothing more is owed. A long reason beside a
    long title can pass one message: then it goes in parts."""
    org = directive.organisation.name
    return part_payloads(
        f"【撤回】{org}于 {format_time(directive.withdrawn_at, tz)} 撤回了{kind_word(directive)} #{directive.number}"
        f"「{directive.title}」{_because(directive.withdraw_reason)}（{by}）。此项无需再办理，已从待办中移除。")


def deadline_moved(directive: Directive, old: datetime | None, already_done: bool, tz: ZoneInfo) -> dict[str, Any]:
    """To those who still owe it (and, when it moved earlier, to those who are done)."""
    was = f"（原截止 {format_time(old, tz)}）" if old else ""
    head = (f"【改期】{kind_word(directive)} #{directive.number}「{directive.title}」的截止时间改为 "
            f"{format_time(directive.deadline, tz)}{was}。")
    if already_done:
        return text_payload(head + "您已确认，无需再办；如有相关安排请按新时间调整。")
    verb = "已学" if directive.kind is DirectiveKind.STUDY else "收到"
    return text_payload(head + f"请在新的截止时间前回复「{verb} {directive.number}」。")


def _moved_line(directive: Directive, old: datetime | None, tz: ZoneInfo) -> str:
    was = f"（原截止 {format_time(old, tz)}）" if old else ""
    return f"【改期】截止时间改为 {format_time(directive.deadline, tz)}{was}"


def deadline_moved_card(directive: Directive, old: datetime | None, tz: ZoneInfo, *,
                        url: str | None = None) -> dict[str, Any]:
    """On WeCom, to those who still owe it: the item's card once more, with the new deadline and
    its button (收到 / 已学), marked 改期 with the old deadline."""
    push = study_texts.push if directive.kind is DirectiveKind.STUDY else directive_texts.push
    card = push(directive, DeliveryRole.TASK, OutboxChannel.WECOM.value, tz, url=url)
    return dict(card, description=f"{_moved_line(directive, old, tz)}\n{card['description']}")


def deadline_moved_done_card(directive: Directive, old: datetime | None, tz: ZoneInfo, *,
                             url: str | None = None) -> tuple[dict[str, Any], str]:
    """On WeCom, what replaces the card of those already done: the same card with the new deadline,
    its button greyed out as 已确认 (study: 已学). One card for everyone (a send's code updates all
    its cards at once), so without each person's own time."""
    done = "已学" if directive.kind is DirectiveKind.STUDY else "已确认"
    return deadline_moved_card(directive, old, tz, url=url), done


def meeting_moved(meeting: Meeting, old: datetime, tz: ZoneInfo) -> dict[str, Any]:
    where = "线上" if meeting.online else (meeting.location or "地点未定")
    return text_payload(
        f"【改期】会议 #{meeting.number} {meeting.title} 改到 {format_time(meeting.starts_at, tz)}"
        f"（原定 {format_time(old, tz)}，{where}）。签到时间随之调整为开会前后 30 分钟；已批准的请假仍然有效。")


def meeting_cancelled(meeting: Meeting, tz: ZoneInfo) -> list[dict[str, Any]]:
    """To every invitee; in parts when the reason makes it longer than one message."""
    return part_payloads(
        f"【取消】原定 {format_time(meeting.starts_at, tz)} 的会议 #{meeting.number} {meeting.title} 已取消"
        f"{_because(meeting.cancel_reason)}。无需参加，也无需请假。")


def withdrawn_answer(number: int, title: str, shown_at: str) -> str:
    """收到 / 完成 / 已学 of an item withdrawn before it: nothing is recorded."""
    return f"#{number}「{title}」已于 {shown_at} 撤回，无需确认或办理，本次回复未记录。"


def withdrawn_button(shown_at: str) -> str:
    """What a withdrawn directive's card button turns into."""
    return f"已撤回 {shown_at}"
