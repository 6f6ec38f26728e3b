"""The outbox: every push is a row written in the same transaction as the change that caused it,
and sent later by the worker. Nothing is ever sent inside a request."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UTCDateTime, str_enum, utcnow


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a worker; reclaimed if the worker dies (lease expiry)
    SENT = "sent"
    FAILED = "failed"  # permanent: the reason is in last_error
    # A later part of a long text (bot/texts/parts.py): not claimed until the part before it
    # (after_id) is sent or has failed for good; the worker then makes it pending (bot/worker.py).
    HELD = "held"


class OutboxChannel(StrEnum):
    WECOM = "wecom"  # recipient: WeCom userid
    MP = "mp"  # recipient: Official Account openid
    WEBHOOK = "webhook"  # recipient: group-robot webhook key


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # The cards a 撤回 or 改期 may still update (models/cards.py): only the rows of card sends.
        Index("ix_outbox_card_code", "subject_id", postgresql_where=text("response_code IS NOT NULL"),
              sqlite_where=text("response_code IS NOT NULL")),
        # The parts waiting for the one before them.
        Index("ix_outbox_after", "after_id", postgresql_where=text("after_id IS NOT NULL"),
              sqlite_where=text("after_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[OutboxChannel] = mapped_column(str_enum(OutboxChannel, 10))
    recipient: Mapped[str] = mapped_column(String(128))
    # Informational (who the push is for); no constraint, so bulk fan-outs write fast.
    person_id: Mapped[int | None] = mapped_column()
    # A neutral message: {"type": "text", "text": ...} or {"type": "card", ...}; the channel renders it.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Rows with the same content_key carry identical content and may share one API call.
    content_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[OutboxStatus] = mapped_column(str_enum(OutboxStatus, 10), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What this message is about (e.g. "delivery", 42), for progress views and the per-matter file.
    subject_type: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[int | None] = mapped_column()
    # The send attempt this row was handed to a channel in, written BEFORE the call (bot/worker.py):
    # set and the outcome unknown (a crash, a timeout) means "may have arrived", so the row is only
    # ever resent as part of that same attempt (same task_id), never regrouped into a new one.
    send_key: Mapped[str | None] = mapped_column(String(40))
    send_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Times the per-member limit held this row back for a later window (an `outbox.deferred` event each round).
    deferrals: Mapped[int] = mapped_column(default=0, server_default="0")
    # WeCom answers a card's send with a code that updates those cards once (update_template_card):
    # kept so a 撤回 or 改期 can update the cards it sent; spent codes are in models/cards.py.
    response_code: Mapped[str | None] = mapped_column(String(128))
    # The part of a long text this row follows (HELD until that one is sent): a person reads
    # （1/3）, （2/3）, （3/3） in order even when rows of the same content share one call with
    # other people's rows, or part 1 waits out a retry.
    after_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_message.id"))


def content_key_of(channel: OutboxChannel, payload: dict[str, Any]) -> str:
    blob = json.dumps([channel.value, payload], sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


def enqueue(
    session: Session,
    channel: OutboxChannel,
    recipient: str,
    payload: dict[str, Any],
    *,
    person_id: int | None = None,
    at: datetime | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    after: int | None = None,
    due: datetime | None = None,
) -> OutboxMessage:
    """Queue one push in the caller's transaction, to go at `due` (default: now), HELD behind row
    `after` when given."""
    now = at or utcnow()
    row = OutboxMessage(
        channel=channel,
        recipient=recipient,
        person_id=person_id,
        payload=payload,
        content_key=content_key_of(channel, payload),
        status=OutboxStatus.PENDING if after is None else OutboxStatus.HELD,
        next_attempt_at=due or now,
        created_at=now,
        subject_type=subject_type,
        subject_id=subject_id,
        after_id=after,
    )
    session.add(row)
    return row


def enqueue_parts(session: Session, channel: OutboxChannel, recipient: str, payloads: list[dict[str, Any]],
                  **kwargs: Any) -> list[OutboxMessage]:
    """Queue the parts of one message to one recipient, each HELD behind the one before it."""
    rows: list[OutboxMessage] = []
    for payload in payloads:
        if rows:
            session.flush()
        rows.append(enqueue(session, channel, recipient, payload, after=rows[-1].id if rows else None, **kwargs))
    return rows


def text_payload(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def card_payload(*, title: str, description: str, task_id: str, buttons: list[tuple[str, str]],
                 url: str | None = None) -> dict[str, Any]:
    """A card with buttons (`(key, text)` pairs); a tap comes back as an event with the key."""
    payload: dict[str, Any] = {
        "type": "card",
        "title": title,
        "description": description,
        "task_id": task_id,
        "buttons": [{"key": key, "text": text} for key, text in buttons],
    }
    if url:
        payload["url"] = url
    return payload
