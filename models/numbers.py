"""One number space for every item a person can act on (SPEC §3).

Directives, study items, meetings, leave requests and self-reported points items each carry a
short number that people type (`收到 12`, `请假 15`, `核实 31`). The numbers come from one
sequence, so `#12` means one thing everywhere, and a command can ask what kind of item a number is
before acting on it. A number is allocated when its item is created, in the same transaction; no
two committed items ever share a number (a rolled-back allocation leaves a gap on PostgreSQL and
is given again on SQLite: either way nobody saw it).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from sqlalchemy import Integer, UniqueConstraint, event, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, str_enum


class ItemKind(StrEnum):
    DIRECTIVE = "directive"
    STUDY = "study"
    MEETING = "meeting"
    LEAVE = "leave"
    SELF_REPORT = "self_report"


class ItemNumber(Base):
    """Which item a number was given to. `item_id` is the item's own primary key."""

    __tablename__ = "item_number"
    __table_args__ = (UniqueConstraint("kind", "item_id"), {"sqlite_autoincrement": True})

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[ItemKind] = mapped_column(str_enum(ItemKind, 20))
    item_id: Mapped[int | None] = mapped_column()


_ALLOCATE = insert(ItemNumber.__table__).returning(ItemNumber.__table__.c.number)


def allocate(session: Session, kind: ItemKind, item_id: int | None = None) -> int:
    """A fresh number for an item of `kind` (give `item_id` now, or later with `attach`)."""
    return session.execute(_ALLOCATE, {"kind": kind.value, "item_id": item_id}).scalar_one()


def attach(session: Session, number: int, item_id: int) -> None:
    """Record the item a number was allocated for, once its primary key is known."""
    row = session.get(ItemNumber, number)
    if row is None:
        raise ValueError(f"number {number} was never allocated")
    row.item_id = item_id


def lookup(session: Session, number: int) -> ItemNumber | None:
    """What `number` was given to, or None when no item has that number."""
    return session.scalar(select(ItemNumber).where(ItemNumber.number == number))


def numbered(cls: type, kind_of: Callable[[object], ItemKind]) -> type:
    """Give every new row of `cls` a number from the one sequence, in the transaction that inserts
    it: `kind_of(row)` says which kind it is. Registered once per class, so every way an item is
    created (chat, pages, command line, demo) numbers it the same way."""

    @event.listens_for(cls, "before_insert")
    def _allocate(_mapper, connection, target) -> None:
        if target.number is None:
            target.number = connection.execute(_ALLOCATE, {"kind": kind_of(target).value,
                                                           "item_id": None}).scalar_one()

    @event.listens_for(cls, "after_insert")
    def _attach(_mapper, connection, target) -> None:
        connection.execute(update(ItemNumber.__table__).where(ItemNumber.__table__.c.number == target.number)
                           .values(item_id=target.id))

    return cls
