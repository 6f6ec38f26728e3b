"""What every outbound channel promises: `send(recipients, payload) -> SendResult`.

Payloads are neutral dicts written by handlers and models (see models/outbox.py):
`{"type": "text", "text": ...}`, `{"type": "markdown", "text": ...}`,
`{"type": "card", "title", "description", "task_id", "buttons": [{"key", "text"}], "url"?}`,
`{"type": "card_update", "response_code", "replace_text"}`. Each channel renders them its way;
no WeChat JSON or errcode leaves bot/channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


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


def card_as_text(payload: dict[str, Any]) -> str:
    """A card for a channel without buttons: the buttons become the command to reply,
    e.g. key "ack:12" with text 收到 → 回复「收到 12」确认."""
    lines = [str(payload.get("title") or "").strip(), str(payload.get("description") or "").strip()]
    if payload.get("url"):
        lines.append(f"详情：{payload['url']}")
    commands = []
    for button in payload.get("buttons") or []:
        text = str(button.get("text") or "").strip()
        _, _, number = str(button.get("key") or "").partition(":")
        commands.append(f"「{text} {number}」" if number else f"「{text}」")
    if commands:
        lines.append(f"回复{'或'.join(commands)}确认")
    return "\n".join(line for line in lines if line)
