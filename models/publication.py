"""Which points publication went to whom (SPEC §8): one row per period, kind and recipient.

The row is claimed in the same transaction that queues the push (INSERT … ON CONFLICT DO NOTHING
… RETURNING): any number of schedulers, or a `report … --send` beside them, push each recipient's
copy once. `--force` writes a second push deliberately and records it as an event instead."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UTCDateTime, str_enum, utcnow


class PublicationKind(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


class Publication(Base):
    __tablename__ = "points_publication"
    __table_args__ = (UniqueConstraint("period", "kind", "recipient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(7))  # 2026-11, 2026Q4, 2026
    kind: Mapped[PublicationKind] = mapped_column(str_enum(PublicationKind, 10))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PublicationRun(Base):
    """A publication sent to everyone it is for (the scheduler's, or `report … --send` for the whole
    tree), in the transaction of its copies: what tells a scheduler the period is done. A send for
    one organisation (`--org`) writes none, so it never stops the others' copies."""

    __tablename__ = "points_publication_run"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    kind: Mapped[PublicationKind] = mapped_column(str_enum(PublicationKind, 10), primary_key=True)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def finish(session: Session, period: str, kind: PublicationKind, *, at: datetime) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(PublicationRun.__table__)
                    .values(period=period, kind=kind.value, finished_at=at)
                    .on_conflict_do_nothing(index_elements=["period", "kind"]))


def finished(session: Session, period: str, kind: PublicationKind) -> bool:
    return session.get(PublicationRun, (period, kind)) is not None


def claim(session: Session, period: str, kind: PublicationKind, recipient_id: int, *, at: datetime) -> bool:
    """True when this call is the one that sends `recipient_id` their copy of the publication."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = (dialect.insert(Publication.__table__)
            .values(period=period, kind=kind.value, recipient_id=recipient_id, sent_at=at)
            .on_conflict_do_nothing(index_elements=["period", "kind", "recipient_id"])
            .returning(Publication.__table__.c.id))
    return session.execute(stmt).first() is not None


def already_sent(session: Session, period: str, kind: PublicationKind) -> bool:
    return bool(session.scalar(select(exists().where(Publication.period == period, Publication.kind == kind))))
