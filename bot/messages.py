"""Channel-neutral message types: what handlers and models see instead of XML and openids."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from models.identity import Channel


class InboundKind(StrEnum):
    TEXT = "text"
    EVENT = "event"
    OTHER = "other"  # images, voice, locations…: answered with help


@dataclass(frozen=True)
class InboundMessage:
    channel: Channel
    sender: str  # WeCom userid or Official Account openid
    kind: InboundKind
    created_at: datetime
    dedupe_key: str
    text: str = ""
    event: str | None = None  # e.g. "subscribe", "template_card_event", "click"
    event_key: str | None = None  # button key or menu key
    task_id: str | None = None  # template card task id
    response_code: str | None = None  # lets us update a tapped template card once
    msg_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Reply:
    """What to say back; the channel adapter renders it. Handlers never do I/O."""

    text: str
    # The page with the whole of it: a reply too long for one message is cut and points there.
    link: str | None = None

    def __bool__(self) -> bool:
        return bool(self.text)
