"""Channel identities (WeCom userid, Official Account openid) and one-time binding codes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from models.base import Base, UTCDateTime, str_enum, utcnow
from models.event import record
from models.person import Person

BINDING_CODE_TTL = timedelta(hours=24)
BINDING_MAX_FAILURES = 5
BINDING_FAILURE_WINDOW = timedelta(hours=1)
# Guessing from many followers at once (invented openids cost nothing in plain mode) meets two more
# limits: all followers together get BINDING_GLOBAL_MAX_FAILURES wrong tries an hour, then 绑定 is
# paused for everyone until the hour has passed; and a code outlives at most BINDING_CODE_MAX_EXPOSURE
# wrong tries made while it was live (any of them may have aimed at it), then it is void and the
# secretary issues a new one. So one code is guessed with odds of at most 1 in 10,000.
BINDING_GLOBAL_MAX_FAILURES = 30
BINDING_CODE_MAX_EXPOSURE = 100


class Channel(StrEnum):
    WECOM = "wecom"
    MP = "mp"


# WeCom treats userids without case (its answers lower-case them): one WeCom identity per folded
# userid. Official Account openids are case-sensitive: their folded value stays NULL, which a unique
# index never compares. Migration 0008 fills it; rows that already differed only in case are left
# NULL there and reported. A plain column index, so both databases reflect it.
WECOM_FOLDED_INDEX = "uq_channel_identity_wecom_folded"


def _folded(context) -> str | None:
    params = context.get_current_parameters()
    external_id = params.get("external_id")
    return external_id.lower() if str(params.get("channel")) == Channel.WECOM.value and external_id else None


class ChannelIdentity(Base):
    __tablename__ = "channel_identity"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index(WECOM_FOLDED_INDEX, "wecom_userid_folded", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, 10))
    external_id: Mapped[str] = mapped_column(String(128))
    # lower(external_id) for WeCom identities, set on insert (external ids are never changed).
    wecom_userid_folded: Mapped[str | None] = mapped_column(String(128), default=_folded)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Last time the person wrote to us on this channel (MP: the 48-hour customer-service window).
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship()


def person_for(session: Session, channel: Channel, external_id: str) -> Person | None:
    return session.scalar(
        select(Person)
        .join(ChannelIdentity, ChannelIdentity.person_id == Person.id)
        .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id)
    )


def identity_of(session: Session, person: Person, channel: Channel) -> ChannelIdentity | None:
    return session.scalar(
        select(ChannelIdentity)
        .where(ChannelIdentity.person_id == person.id, ChannelIdentity.channel == channel)
        .order_by(ChannelIdentity.id.desc())
        .limit(1)
    )


class BindingCode(Base):
    """A one-time 6-digit code a secretary issues so a follower can link to a roster person."""

    __tablename__ = "binding_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    # Only a keyed hash is stored: a leaked table does not hand out live codes.
    code_hash: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_external_id: Mapped[str | None] = mapped_column(String(128))

    person: Mapped[Person] = relationship(foreign_keys=[person_id])


class BindingAttempt(Base):
    """Failed `绑定` tries, counted per follower, for all followers and over a code's life to lock
    out guessing."""

    __tablename__ = "binding_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def _hash_code(code: str, secret: str) -> str:
    return hmac.new(secret.encode(), code.encode(), hashlib.sha256).hexdigest()


def issue_binding_code(
    session: Session, person: Person, *, issued_by: Person | None, now: datetime, secret: str
) -> tuple[str, BindingCode]:
    """Issue a fresh code for `person`; earlier unused codes for them stop working."""
    for old in session.scalars(
        select(BindingCode).where(BindingCode.person_id == person.id, BindingCode.used_at.is_(None))
    ):
        old.expires_at = min(old.expires_at, now)
    while True:
        code = f"{secrets.randbelow(1_000_000):06d}"
        digest = _hash_code(code, secret)
        clash = session.scalar(
            select(BindingCode.id).where(
                BindingCode.code_hash == digest, BindingCode.used_at.is_(None), BindingCode.expires_at > now
            )
        )
        if clash is None:
            break
    row = BindingCode(
        person_id=person.id,
        issued_by_id=issued_by.id if issued_by else None,
        code_hash=digest,
        created_at=now,
        expires_at=now + BINDING_CODE_TTL,
    )
    session.add(row)
    session.flush()
    record(session, "binding_code.issued", actor=issued_by, subject=person, at=now,
           data={"binding_code_id": row.id, "expires_at": row.expires_at.isoformat()})
    return code, row


class BindingResult(StrEnum):
    BOUND = "bound"
    ALREADY_BOUND = "already_bound"
    WRONG_CODE = "wrong_code"
    LOCKED = "locked"  # this follower: too many wrong tries within the hour
    PAUSED = "paused"  # everyone: too many wrong tries within the hour, from all followers together
    CODE_VOID = "code_void"  # the code was live through too many wrong tries: a new one is needed


def failures_in_window(session: Session, external_id: str | None, now: datetime) -> int:
    """Wrong tries within the last hour: by one follower, or by all (`external_id` None)."""
    query = select(func.count(BindingAttempt.id)).where(BindingAttempt.at > now - BINDING_FAILURE_WINDOW)
    if external_id is not None:
        query = query.where(BindingAttempt.external_id == external_id)
    return session.scalar(query) or 0


def failures_since(session: Session, since: datetime) -> int:
    """Wrong tries by anyone since `since` (a code's issue)."""
    return session.scalar(select(func.count(BindingAttempt.id)).where(BindingAttempt.at >= since)) or 0


def redeem_binding_code(
    session: Session, channel: Channel, external_id: str, code: str, *, now: datetime, secret: str
) -> tuple[BindingResult, Person | None]:
    """Link `external_id` to the person the code was issued for; single use, 24 h, rate-limited."""
    existing = person_for(session, channel, external_id)
    if existing is not None:
        return BindingResult.ALREADY_BOUND, existing
    if failures_in_window(session, external_id, now) >= BINDING_MAX_FAILURES:
        return BindingResult.LOCKED, None
    if failures_in_window(session, None, now) >= BINDING_GLOBAL_MAX_FAILURES:
        return BindingResult.PAUSED, None  # the code is not even looked at: guessing gains nothing
    row = session.scalar(
        select(BindingCode)
        .where(
            BindingCode.code_hash == _hash_code(code, secret),
            BindingCode.used_at.is_(None),
            BindingCode.expires_at > now,
        )
        .with_for_update()
    )
    if row is None:
        session.add(BindingAttempt(external_id=external_id, at=now))
        record(session, "binding.failed", subject_type="channel_identity", subject_id=None, at=now,
               data={"channel": channel.value, "external_id": external_id})
        session.flush()
        if failures_in_window(session, external_id, now) >= BINDING_MAX_FAILURES:
            return BindingResult.LOCKED, None
        return BindingResult.WRONG_CODE, None
    if failures_since(session, row.created_at) >= BINDING_CODE_MAX_EXPOSURE:
        row.expires_at = min(row.expires_at, now)
        record(session, "binding_code.voided", subject_type="person", subject_id=row.person_id, at=now,
               data={"binding_code_id": row.id, "channel": channel.value, "external_id": external_id,
                     "reason": "too_many_wrong_tries"})
        return BindingResult.CODE_VOID, None
    # Compare-and-set, so two followers racing for one code cannot both win (also on SQLite).
    won = session.execute(
        update(BindingCode).where(BindingCode.id == row.id, BindingCode.used_at.is_(None))
        .values(used_at=now, used_by_external_id=external_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        session.add(BindingAttempt(external_id=external_id, at=now))
        return BindingResult.WRONG_CODE, None
    session.add(ChannelIdentity(channel=channel, external_id=external_id, person_id=row.person_id,
                                created_at=now, last_inbound_at=now))
    person = session.get(Person, row.person_id)
    record(session, "binding.bound", actor=person, subject=person, at=now,
           data={"channel": channel.value, "external_id": external_id, "binding_code_id": row.id})
    return BindingResult.BOUND, person
