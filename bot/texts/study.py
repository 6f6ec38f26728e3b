"""Study wording: the push every member gets (a card with 已学 and the link in WeCom), the copy
to the secretaries in between and the group-robot summary."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from bot.texts.directive import deadline_phrase
from models.directive import DeliveryRole, Directive
from models.outbox import OutboxChannel, card_payload, text_payload


def material(item: Directive) -> str:
    """Where the material is: its link, or for a book chapter or paper document what the secretary
    wrote about it (or nothing)."""
    return "\n".join(part for part in (item.link, item.body) if part)


def push(item: Directive, role: DeliveryRole, channel: str, tz: ZoneInfo, *,
         url: str | None = None) -> dict[str, Any]:
    """The payload for one kind of recipient of a study item (`models.directive.issue`'s `render`).
    `url`: the item's page, opened from the card when the material has no link of its own."""
    due = deadline_phrase(item, tz)
    org = item.organisation.name if item.organisation else ""
    where = material(item)
    if channel == OutboxChannel.WEBHOOK.value:
        shown = f"[学习资料]({item.link})" if item.link else (item.body or "")
        return {"type": "markdown", "text": f"**{org}布置学习 #{item.number}：{item.title}**\n{shown}\n{due}".replace("\n\n", "\n")}
    if role is DeliveryRole.COPY:
        return text_payload(f"【抄送】{org}布置学习 #{item.number}「{item.title}」，已直达各支部党员。{due}\n"
                            f"发送「学习进度 {item.number}」查看完成情况。")
    if channel == OutboxChannel.WECOM.value:
        note = f"{item.body}\n" if item.body else ""
        return card_payload(title=f"学习 #{item.number} {item.title}",
                            description=f"{org}布置 · {note}{due}\n学完后点「已学」，或回复「已学 {item.number} 心得」。",
                            task_id=f"study-{item.id}", buttons=[(f"study:{item.id}", "已学")], url=item.link or url)
    shown = f"{where}\n" if where else ""
    return text_payload(f"【{org}】学习 #{item.number} {item.title}\n{shown}{due}\n学完后回复「已学 {item.number} 心得」。")
