"""Receipts of inbound callbacks: the database backstop that makes WeChat's retries harmless."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UTCDateTime, utcnow


class InboundReceipt(Base):
    __tablename__ = "inbound_receipt"
    __table_args__ = (UniqueConstraint("channel", "dedupe_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    # MsgId for messages; FromUserName + CreateTime + Event for events.
    dedupe_key: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The passive reply we gave, so a retry that slips past Redis gets the same answer.
    reply_text: Mapped[str | None] = mapped_column(Text)


def find_receipt(session: Session, channel: str, dedupe_key: str) -> InboundReceipt | None:
    return session.scalar(
        select(InboundReceipt).where(InboundReceipt.channel == channel, InboundReceipt.dedupe_key == dedupe_key)
    )
