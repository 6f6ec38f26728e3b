"""Export requests (导出): one row per `导出 编号`, built and sent by the worker exactly once.

A request is claimed like an outbox row: one UPDATE … RETURNING moves it to BUILDING with a lease
(`FOR UPDATE SKIP LOCKED` on PostgreSQL), so any number of workers share the queue. A worker that
dies while building leaves the row BUILDING; when the lease runs out another worker claims it again.
The file message (or link) is written to the outbox in the same transaction that marks the request
DONE, and only while the claim still holds (`attempts` unchanged), so a request is sent once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Index, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UTCDateTime, str_enum, utcnow
from models.event import record

EXPORT_LEASE = timedelta(minutes=5)  # a 100,000-recipient file takes seconds; a dead worker's row comes back
EXPORT_MAX_ATTEMPTS = 5


class ExportStatus(StrEnum):
    PENDING = "pending"
    BUILDING = "building"  # claimed by a worker until lease_until
    DONE = "done"  # the file message is in the outbox (outbox_id)
    FAILED = "failed"  # gave up: the reason is in last_error, the requester was told


class ExportRequest(Base):
    __tablename__ = "export_request"
    __table_args__ = (Index("ix_export_request_due", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column()  # the item's 编号
    person_id: Mapped[int] = mapped_column()  # who asked
    channel: Mapped[str] = mapped_column(String(10))  # the channel they asked on (wecom, mp)
    recipient: Mapped[str] = mapped_column(String(128))  # their userid or openid there
    status: Mapped[ExportStatus] = mapped_column(str_enum(ExportStatus, 10), default=ExportStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outbox_id: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True)
class ClaimedExport:
    id: int
    number: int
    person_id: int
    channel: str
    recipient: str
    attempts: int  # including this claim: the claim's token when finishing


def request_export(session: Session, *, number: int, person_id: int, channel: str, recipient: str,
                   now: datetime) -> ExportRequest:
    """Queue one export in the caller's transaction (the worker builds and sends it)."""
    row = ExportRequest(number=number, person_id=person_id, channel=channel, recipient=recipient,
                        status=ExportStatus.PENDING, attempts=0, lease_until=now, created_at=now)
    session.add(row)
    session.flush()
    record(session, "export.requested", actor_id=person_id, subject=row, at=now, data={"number": number, "channel": channel})
    return row


def claim_exports(session: Session, now: datetime, limit: int = 5) -> list[ClaimedExport]:
    """Claim due requests (pending, or building with an expired lease), oldest first."""
    table = ExportRequest.__table__
    c = table.c
    due = (select(c.id).where(c.status.in_([ExportStatus.PENDING.value, ExportStatus.BUILDING.value]),
                              c.lease_until <= now)
           .order_by(c.lease_until, c.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = session.execute(
        update(table).where(c.id.in_(due.scalar_subquery()))
        .values(status=ExportStatus.BUILDING.value, lease_until=now + EXPORT_LEASE, attempts=c.attempts + 1)
        .returning(c.id, c.number, c.person_id, c.channel, c.recipient, c.attempts)
    ).all()
    return sorted((ClaimedExport(*r) for r in rows), key=lambda r: r.id)


def _still_ours(session: Session, claim: ClaimedExport) -> ExportRequest | None:
    row = session.get(ExportRequest, claim.id, with_for_update=True, populate_existing=True)
    if row is None or row.status is not ExportStatus.BUILDING or row.attempts != claim.attempts:
        return None  # another worker took it over after our lease ran out
    return row


def finish_export(session: Session, claim: ClaimedExport, *, outbox_id: int | None, now: datetime) -> bool:
    """Mark the request done, in the transaction that wrote its outbox row; False when the claim
    was lost (the caller rolls back, so nothing is sent twice)."""
    row = _still_ours(session, claim)
    if row is None:
        return False
    row.status, row.finished_at, row.outbox_id, row.last_error = ExportStatus.DONE, now, outbox_id, None
    return True


def retry_export(session: Session, claim: ClaimedExport, reason: str, *, now: datetime,
                 delay: timedelta) -> bool:
    """Give the claim back to be tried again after `delay`; True when the attempts are used up
    (the request is then FAILED and the caller tells the requester)."""
    row = _still_ours(session, claim)
    if row is None:
        return False
    row.last_error = reason[:1000]
    if row.attempts >= EXPORT_MAX_ATTEMPTS:
        row.status, row.finished_at = ExportStatus.FAILED, now
        return True
    row.status, row.lease_until = ExportStatus.PENDING, now + delay
    return False
