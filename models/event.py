"""The append-only event table: every change, with UTC time, actor and subject.

Append-only twice over: the ORM refuses to update or delete an Event, and on PostgreSQL a trigger
(migration 0010) refuses UPDATE, DELETE and TRUNCATE from any connection that is not a superuser's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, event, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UTCDateTime, utcnow


class Event(Base):
    __tablename__ = "event"
    __table_args__ = (Index("ix_event_subject", "subject_type", "subject_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[int | None] = mapped_column()
    kind: Mapped[str] = mapped_column(String(60))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    def __repr__(self) -> str:
        return f"<Event {self.kind} {self.subject_type}#{self.subject_id} at {self.at:%Y-%m-%d %H:%M:%S}>"


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(Event, "before_update")
def _no_update(*_args) -> None:
    raise AppendOnlyError("events are never updated")


@event.listens_for(Event, "before_delete")
def _no_delete(*_args) -> None:
    raise AppendOnlyError("events are never deleted")


def record(
    session: Session,
    kind: str,
    *,
    actor=None,
    actor_id: int | None = None,
    subject=None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one event in the caller's transaction; `subject` may be any mapped object with an id,
    `actor` a person (or give the ids: `actor_id`, `subject_type` and `subject_id`).

    Written at once as a plain INSERT: nothing reads an event back in the transaction that
    writes it, so the ORM's bookkeeping (and a RETURNING of the new id) would be pure cost, and
    `收到`, which writes one, comes in bursts."""
    if subject is not None:
        subject_type = subject_type or subject.__tablename__
        subject_id = subject.id
    session.execute(_INSERT, {
        "at": at or utcnow(),
        "actor_id": getattr(actor, "id", None) if actor is not None else actor_id,
        "subject_type": subject_type or "system",
        "subject_id": subject_id,
        "kind": kind,
        "data": data or {},
    })


_INSERT = insert(Event.__table__)
