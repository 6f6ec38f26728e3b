"""Receipts of inbound callbacks: the database backstop that makes WeChat's retries harmless."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint, bindparam, insert, select, update
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


def record_receipt(session: Session, channel: str, dedupe_key: str, received_at: datetime,
                   reply_text: str | None) -> None:
    """Write the receipt in the caller's transaction, now: a plain INSERT, since nothing reads the
    row back. Its unique key raises IntegrityError for a message already received."""
    session.execute(insert(InboundReceipt.__table__), {"channel": channel, "dedupe_key": dedupe_key,
                                                      "received_at": received_at, "reply_text": reply_text})


def set_reply(session: Session, channel: str, dedupe_key: str, reply_text: str) -> None:
    """The reply given, on a receipt written before the handler ran."""
    session.execute(_SET_REPLY, {"k_channel": channel, "k_dedupe_key": dedupe_key, "reply_text": reply_text})


_SET_REPLY = (update(InboundReceipt.__table__)
              .where(InboundReceipt.__table__.c.channel == bindparam("k_channel"),
                     InboundReceipt.__table__.c.dedupe_key == bindparam("k_dedupe_key"))
              .values(reply_text=bindparam("reply_text")))
