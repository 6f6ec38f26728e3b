"""What every outbound channel promises: `send(recipients, payload) -> SendResult`.

Payloads are neutral dicts written by handlers and models (see models/outbox.py):
`{"type": "text", "text": ...}`, `{"type": "markdown", "text": ...}`,
`{"type": "card", "title", "description", "task_id", "buttons": [{"key", "text"}], "url"?}`,
`{"type": "card_update", "response_code", "replace_text"}`. Each channel renders them its way;
no WeChat JSON or errcode leaves bot/channels."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

# The platforms' length limits (developer.work.weixin.qq.com/document/path/90236 and 99110; the
# Official Account's customer-service text): longer text is cut there, or the call refused.
TEXT_LIMIT_BYTES = 2048  # WeCom app text and markdown; Official Account text; group robot text
ROBOT_MARKDOWN_LIMIT_BYTES = 4096  # group robot markdown
CARD_TITLE_LIMIT_CHARS = 36  # template card main_title.title
CARD_SUBTITLE_LIMIT_CHARS = 160  # template card sub_title_text
ELLIPSIS = "…"


@dataclass
class SendResult:
    """The outcome of one send, per recipient.

    accepted: the server took the message for these recipients.
    failed: recipient → reason; retrying will not help (unknown user, outside visible range…).
    deferred: recipient → reason; not sent this time, worth retrying (only when part of a
    multi-call send hit a transient error after other recipients were already accepted)."""

    accepted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    deferred: dict[str, str] = field(default_factory=dict)
    # WeCom: the code that updates the cards this call sent (once), for the accepted recipients.
    response_code: str | None = None

    @classmethod
    def all_failed(cls, recipients: list[str], reason: str) -> SendResult:
        return cls(failed=dict.fromkeys(recipients, reason))


class TransientSendError(Exception):
    """Nothing was sent, and trying again later may work: rate limit, server error, timeout,
    connection error, a token still refused after one refresh, a misconfigured app."""

    def __init__(self, retry_after: float | None, reason: str, *, ambiguous: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.reason = reason
        # True when the request may have reached the server and been acted on (a timeout, an
        # HTTP 5xx, a connection lost mid-call): the message may have arrived.
        self.ambiguous = ambiguous


class ChannelUnavailable(TransientSendError):
    """Nothing can be sent on this channel before `retry_after` seconds: the server refused the
    configured credentials (`setting` names the variable to fix). Not an attempt at any row."""

    def __init__(self, retry_after: float, reason: str, setting: str) -> None:
        super().__init__(retry_after, reason)
        self.setting = setting


class OutboundChannel(Protocol):
    #: How many recipients one `send` call may carry (one API call's worth).
    max_recipients: int

    def send(self, recipients: list[str], payload: dict[str, Any]) -> SendResult: ...


def card_as_text(payload: dict[str, Any], *, max_bytes: int | None = None) -> str:
    """A card for a channel without buttons: the buttons become the command to reply,
    e.g. key "ack:12" with text 收到 → 回复「收到 12」确认. With `max_bytes`, the description is
    shortened (to a summary and the 详情 command) so the whole fits, the reply command kept."""
    title = str(payload.get("title") or "").strip()
    description = str(payload.get("description") or "").strip()
    tail = []
    if payload.get("url"):
        tail.append(f"详情：{payload['url']}")
    commands = []
    for button in payload.get("buttons") or []:
        text = str(button.get("text") or "").strip()
        _, _, number = str(button.get("key") or "").partition(":")
        commands.append(f"「{text} {number}」" if number else f"「{text}」")
    if commands:
        tail.append(f"回复{'或'.join(commands)}确认")

    def joined(desc: str) -> str:
        return "\n".join(line for line in [title, desc, *tail] if line)

    whole = joined(description)
    if max_bytes is None or _size(whole) <= max_bytes:
        return whole
    room = max_bytes - _size(joined("")) - 1
    return fit_bytes(joined(fit_bytes(description, max(room, 0), card_number(payload))), max_bytes, None)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def detail_hint(number: int) -> str:
    return f"发送「详情 {number}」查看全文"


def card_number(payload: dict[str, Any]) -> int | None:
    """The item a card is about: its buttons' number (key "ack:12"), else the `#12` in its title."""
    for button in payload.get("buttons") or []:
        _, _, tail = str(button.get("key") or "").partition(":")
        if tail.isascii() and tail.isdigit():
            return int(tail)
    return text_number(str(payload.get("title") or ""))


def text_number(text: str) -> int | None:
    """The first item number (`#12`) a message names, if any: every message about an item shows it."""
    found = re.search(r"#([0-9]{1,9})", text)
    return int(found.group(1)) if found else None


def fit_bytes(text: str, limit: int, number: int | None) -> str:
    """`text` if it fits in `limit` UTF-8 bytes; else its beginning, an ellipsis and (when the item
    is known) the 详情 command that shows the full text, together within the limit."""
    if _size(text) <= limit:
        return text
    suffix = ELLIPSIS + (f"\n{detail_hint(number)}" if number is not None else "")
    room = limit - _size(suffix)
    if room <= 0:
        return text.encode("utf-8")[:limit].decode("utf-8", "ignore")
    return text.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip() + suffix


def fit_chars(text: str, limit: int, number: int | None, *, hint: bool = False) -> str:
    """As `fit_bytes`, counting characters (what a card field limits); `hint` adds the 详情 command
    even when the text fits (because another field of the card was cut)."""
    if len(text) <= limit and not (hint and number is not None):
        return text
    suffix = (f"\n{detail_hint(number)}" if number is not None else "")
    if len(text) + len(suffix) <= limit:
        return text + suffix
    suffix = ELLIPSIS + suffix
    if len(suffix) >= limit:
        return text[:limit - 1] + ELLIPSIS
    return text[:limit - len(suffix)].rstrip() + suffix
