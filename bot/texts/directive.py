"""Directive wording: the push every recipient gets (a card with 收到 in WeCom), the copy to the
secretaries in between, the group-robot summary, the 催办 reminder, and why a delivery reached
nobody."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from bot.timefmt import format_time
from models.directive import DeliveryRole, Directive, UnreachableReason
from models.outbox import OutboxChannel, card_payload, text_payload

UNREACHABLE_LABELS = {
    UnreachableReason.MP_WINDOW: "公众号 48 小时内没有互动，无法推送客服消息，且未配置模板消息",
    UnreachableReason.NO_CHANNEL: "未绑定企业微信或公众号",
    UnreachableReason.LEFT: "已转出",
}
REASON_UNKNOWN = "原因不明"


def delivery_reason(reason: str | None) -> str:
    """A delivery's stored `reason` in words: an `UnreachableReason` code by its label; a failed
    send's reason (the channel's own words) as it is."""
    if not reason:
        return REASON_UNKNOWN
    try:
        return UNREACHABLE_LABELS[UnreachableReason(reason)]
    except ValueError:
        return reason


# A platform's code and message in brackets after the Chinese words, e.g. （40058 invalid parameter, …）.
_PLATFORM_DETAIL = re.compile(r"\s*[（(][\x00-\x7f]*[）)]")
# The worker's own English lead before a channel's words, e.g. "gave up after 12 attempts: ".
_WORKER_LEAD = re.compile(r"^[A-Za-z][\x00-\x7f]*?:\s*(?=[^\x00-\x7f])")
_CJK = re.compile(r"[\u4e00-\u9fff]")
REASON_RETRIES = "多次重试仍未成功"


def plain_reason(reason: str | None) -> str:
    """A failed send's reason as a secretary files it: the channel's Chinese words without the
    platform's code and message in brackets; a reason with no Chinese words at all (the worker's
    own, e.g. after too many retries) as 多次重试仍未成功."""
    if not reason:
        return REASON_UNKNOWN
    words = _WORKER_LEAD.sub("", _PLATFORM_DETAIL.sub("", reason)).strip()
    return words if _CJK.search(words) else REASON_RETRIES


def deadline_phrase(directive: Directive, tz: ZoneInfo) -> str:
    """`截止：2026年12月1日 17:00`, or 无截止时间."""
    return f"截止：{format_time(directive.deadline, tz)}" if directive.deadline else "无截止时间"


def push(directive: Directive, role: DeliveryRole, channel: str, tz: ZoneInfo, *,
         url: str | None = None) -> dict[str, Any]:
    """The payload for one kind of recipient (`models.directive.issue`'s `render`): the same for
    everyone of a role on a channel, so the worker sends it in large batches. `url`: the item's
    page, opened by tapping the WeCom card."""
    due = deadline_phrase(directive, tz)
    org = directive.organisation.name if directive.organisation else ""
    if channel == OutboxChannel.WEBHOOK.value:
        return {"type": "markdown", "text": (
            f"**{org}发布 #{directive.number}：{directive.title}**\n"
            f"已直达 {directive.recipient_count} 位同志，无需逐级转发。{due}\n"
            f"请大家在企业微信「直通车」应用中点「收到」确认。"
        )}
    if role is DeliveryRole.COPY:
        return text_payload(
            f"【抄送】{org}发布 #{directive.number}「{directive.title}」，已直达所属各支部和党员，无需转发。\n"
            f"{due}\n发送「进度 {directive.number}」查看各支部确认情况。"
        )
    description = f"{directive.body}\n{due}".strip()
    if channel == OutboxChannel.WECOM.value:
        return card_payload(title=f"#{directive.number} {directive.title}", description=f"{org}发布 · {description}",
                            task_id=f"directive-{directive.id}", buttons=[(f"ack:{directive.id}", "收到")],
                            url=url)
    return text_payload(
        f"【{org}】#{directive.number} {directive.title}\n{description}\n回复「收到 {directive.number}」确认收到。"
    )


def nudge(directive: Directive, tz: ZoneInfo) -> dict[str, Any]:
    """催办: to everyone who has not acknowledged yet."""
    due = f"，截止 {format_time(directive.deadline, tz)}" if directive.deadline else ""
    return text_payload(f"【催办】#{directive.number}「{directive.title}」还未确认{due}。请回复「收到 {directive.number}」。")


def not_sent_to(number: int, scopes) -> str:
    """A leader inside the issuing organisation whose part a narrowed 范围 left out (进度, 回执, 催办)."""
    return f"#{number} 没有发给{'、'.join(o.name for o in scopes)}"


def note_addition(note: str, shown_at: str) -> str:
    """A second 完成/已学 note, appended to the first with the time it was added."""
    return f"{shown_at} 补充：{note}"
