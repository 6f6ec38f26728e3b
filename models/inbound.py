"""Receipts of inbound callbacks: the database backstop that makes WeChat's retries harmless.

A receipt keeps the reply given, so a retry is answered alike; replies carry live one-time codes
(绑定码, 会议码), so they are stored encrypted (Fernet, keyed from SECRET_KEY): the table alone
hands out nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import datetime
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import String, Text, UniqueConstraint, bindparam, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UTCDateTime, utcnow

log = logging.getLogger(__name__)


class InboundReceipt(Base):
    __tablename__ = "inbound_receipt"
    __table_args__ = (UniqueConstraint("channel", "dedupe_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    # MsgId for messages; FromUserName + CreateTime + Event for events.
    dedupe_key: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The passive reply we gave, so a retry that slips past Redis gets the same answer; sealed
    # (`seal_reply`), never in clear.
    reply_text: Mapped[str | None] = mapped_column(Text)


def find_receipt(session: Session, channel: str, dedupe_key: str) -> InboundReceipt | None:
    return session.scalar(
        select(InboundReceipt).where(InboundReceipt.channel == channel, InboundReceipt.dedupe_key == dedupe_key)
    )


def receipt_reply(session: Session, channel: str, dedupe_key: str, *, secret: str) -> str | None:
    """The reply recorded for a message, opened: "" when it was answered with nothing, None when
    there is no receipt."""
    receipt = find_receipt(session, channel, dedupe_key)
    return None if receipt is None else open_reply(receipt.reply_text, secret)


def record_receipt(session: Session, channel: str, dedupe_key: str, received_at: datetime,
                   reply_text: str | None, *, secret: str) -> None:
    """Write the receipt in the caller's transaction, now: a plain INSERT, since nothing reads the
    row back. Its unique key raises IntegrityError for a message already received."""
    session.execute(insert(InboundReceipt.__table__), {"channel": channel, "dedupe_key": dedupe_key,
                                                      "received_at": received_at,
                                                      "reply_text": seal_reply(reply_text, secret)})


def set_reply(session: Session, channel: str, dedupe_key: str, reply_text: str, *, secret: str) -> None:
    """The reply given, on a receipt written before the handler ran."""
    session.execute(_SET_REPLY, {"k_channel": channel, "k_dedupe_key": dedupe_key,
                                 "reply_text": seal_reply(reply_text, secret)})


SEALED = "f1:"  # marks a sealed reply; the version leaves room for another scheme


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    # A key of its own, derived from SECRET_KEY: nothing else signed with it can open a reply.
    key = hmac.new(secret.encode("utf-8"), b"zhitong inbound receipt reply", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal_reply(text: str | None, secret: str) -> str | None:
    """A reply as stored: empty stays empty (nothing to hide), anything else encrypted."""
    if not text:
        return text
    return SEALED + _fernet(secret).encrypt(text.encode("utf-8")).decode("ascii")


def open_reply(stored: str | None, secret: str) -> str:
    """A stored reply in clear; "" when it cannot be opened (SECRET_KEY changed since): the retry
    then gets an empty answer, as WeChat's retry of an answered message may."""
    if not stored:
        return ""
    if not stored.startswith(SEALED):
        return ""  # never written so: replies in clear were cleared by migration 0010
    try:
        return _fernet(secret).decrypt(stored[len(SEALED):].encode("ascii")).decode("utf-8")
    except InvalidToken:
        log.warning("a receipt's reply could not be opened (SECRET_KEY changed?); answering with nothing")
        return ""


_SET_REPLY = (update(InboundReceipt.__table__)
              .where(InboundReceipt.__table__.c.channel == bindparam("k_channel"),
                     InboundReceipt.__table__.c.dedupe_key == bindparam("k_dedupe_key"))
              .values(reply_text=bindparam("reply_text")))
