"""The points ledger (全程记录, SPEC §8): one append-only entry per fact, reversed, never updated.

An entry is written in the same transaction as the fact it counts (a confirmed study item, a
directive acknowledged in time or completed, a check-in, an absence without leave, a verified
self-report) by one INSERT … SELECT that also applies the category's monthly and yearly caps: a
cap reached records the entry at 0 (or what was left) with the cap as the reason, so the member
sees why. A fact undone (a withdrawn directive, a cancelled meeting) gets compensating entries in
the current open period (`reverse`); earlier periods are never touched, and compensations never
give cap room back.

Each month (the period, `2026-11` in the configured zone) keeps the rules it opened with: the
first time a month is opened (the scheduler's tick, a publication, `open_period`) its rules are
snapshotted into `points_period`, `points_rate` and `points_cap`; the INSERT reads the snapshot
and falls back to the current rules only while the month has none. A published month never
changes: its entries are immutable and its rules are its own.

Append-only twice over, like `event`: the ORM refuses to update or delete an entry, and on
PostgreSQL a trigger (migration 0020) refuses UPDATE, DELETE and TRUNCATE."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    and_,
    bindparam,
    case,
    event,
    exists,
    false,
    func,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from config import points_rules
from config.points_rules import Category, RuleName, Rules
from models.base import Base, UTCDateTime, str_enum, utcnow
from models.event import AppendOnlyError

_tz = ZoneInfo("Asia/Shanghai")


def configure(rules: Rules, tz: ZoneInfo) -> None:
    """The rules new months open with and the zone months are counted in (create_app sets both)."""
    global _tz
    points_rules.configure(rules)
    _tz = tz


def period_of(at: datetime) -> str:
    """The month `at` falls in, in the configured zone: `2026-11`."""
    return at.astimezone(_tz).strftime("%Y-%m")


class CapReason(StrEnum):
    MONTH = "month_cap"
    YEAR = "year_cap"


class PointsPeriod(Base):
    """A month of the ledger: the rules it opened with, and when it was first published."""

    __tablename__ = "points_period"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    rules: Mapped[dict] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the month's totals were written to `points_month_total` (after the month ended).
    summarised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PointsMonthTotal(Base):
    """A finished month's points per person and category: what reports over many months read
    instead of every entry. Written once, after the month is over (`summarise`); an ended month
    gets no new entries (compensations go into the open month), so it never drifts."""

    __tablename__ = "points_month_total"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[Category] = mapped_column(str_enum(Category, 12), primary_key=True)
    points: Mapped[int] = mapped_column(Integer)


class PointsRate(Base):
    """A month's snapshot of one rule: its category and points."""

    __tablename__ = "points_rate"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    rule: Mapped[str] = mapped_column(String(40), primary_key=True)
    category: Mapped[Category] = mapped_column(str_enum(Category, 12))
    points: Mapped[int] = mapped_column(Integer)


class PointsCap(Base):
    """A month's snapshot of one category's caps (per month, per year)."""

    __tablename__ = "points_cap"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    category: Mapped[Category] = mapped_column(str_enum(Category, 12), primary_key=True)
    month_cap: Mapped[int] = mapped_column(Integer)
    year_cap: Mapped[int] = mapped_column(Integer)


class PointsEntry(Base):
    __tablename__ = "points_entry"
    __table_args__ = (
        Index("ix_points_entry_person_category_period", "person_id", "category", "period"),
        Index("ix_points_entry_source", "source_type", "source_id"),
        Index("ix_points_entry_period", "period"),
        # One award per fact: a person, a rule, a source (reversals point at what they undo).
        Index("uq_points_entry_fact", "rule", "source_type", "source_id", "person_id", unique=True,
              postgresql_where="reverses_id IS NULL", sqlite_where="reverses_id IS NULL"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    category: Mapped[Category] = mapped_column(str_enum(Category, 12))
    points: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(40))
    # What the entry counts, traceable: a directive, a meeting or a self-report (type and id).
    source_type: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[int] = mapped_column(Integer)
    capped: Mapped[CapReason | None] = mapped_column(str_enum(CapReason, 10))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("points_entry.id"), unique=True)
    period: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@event.listens_for(PointsEntry, "before_update")
def _no_update(*_args) -> None:
    raise AppendOnlyError("points entries are never updated")


@event.listens_for(PointsEntry, "before_delete")
def _no_delete(*_args) -> None:
    raise AppendOnlyError("points entries are never deleted")


# -- periods and their rules --------------------------------------------------------------------

def open_period(session: Session, period: str, *, at: datetime) -> Rules:
    """The rules of `period`, snapshotting the current ones when the month has none yet.
    Two openers at once: the second's INSERT waits on the first's key and then finds it."""
    row = session.get(PointsPeriod, period)
    if row is not None:
        return points_rules.parse(row.rules)
    rules = points_rules.current()
    try:
        with session.begin_nested():
            session.add(PointsPeriod(period=period, rules=rules.source, opened_at=at))
            session.flush()
    except IntegrityError:  # a concurrent opener won: theirs is the snapshot
        row = session.get(PointsPeriod, period, populate_existing=True)
        if row is None:
            raise
        return points_rules.parse(row.rules)
    session.execute(insert(PointsRate.__table__), [
        {"period": period, "rule": r.name, "category": r.category.value, "points": r.points}
        for r in rules.rules.values()])
    session.execute(insert(PointsCap.__table__), [
        {"period": period, "category": c.value, "month_cap": caps.month, "year_cap": caps.year}
        for c, caps in rules.caps.items()])
    return rules


def rules_for(session: Session, period: str) -> Rules:
    """The rules `period` opened with, or the current ones when it has not opened yet."""
    row = session.get(PointsPeriod, period)
    return points_rules.parse(row.rules) if row is not None else points_rules.current()


# -- awarding ------------------------------------------------------------------------------------

@cache
def _award_insert():
    """INSERT … SELECT of one entry with the caps applied, reading the month's snapshot (with the
    current rules as parameters for a month not opened yet). Built once: `收到` comes in bursts."""
    entry = PointsEntry.__table__
    prior = entry.alias("prior")
    rate, cap = PointsRate.__table__.alias("rate"), PointsCap.__table__.alias("cap")
    period = bindparam("period", type_=String)
    one = select(literal(1).label("one")).subquery("one")
    category = func.coalesce(rate.c.category, bindparam("category", type_=String))
    # The rule's own points; `points_override` (a verified self-report's value) takes precedence.
    wanted = func.coalesce(bindparam("points_override", type_=Integer), rate.c.points,
                           bindparam("points", type_=Integer))
    month_cap = func.coalesce(cap.c.month_cap, bindparam("month_cap", type_=Integer))
    year_cap = func.coalesce(cap.c.year_cap, bindparam("year_cap", type_=Integer))

    def earned(*where):
        return (select(func.coalesce(func.sum(prior.c.points), 0))
                .where(prior.c.person_id == bindparam("person_id"), prior.c.category == category,
                       prior.c.points > 0, prior.c.reverses_id.is_(None), *where)
                .scalar_subquery())

    month_room = month_cap - earned(prior.c.period == period)
    year_room = year_cap - earned(prior.c.period >= bindparam("year_first"), prior.c.period <= period)
    points = case(
        (wanted <= 0, wanted),
        (and_(month_room >= wanted, year_room >= wanted), wanted),
        (month_room <= 0, 0), (year_room <= 0, 0),
        (month_room < year_room, month_room),
        else_=year_room)
    capped = case(
        (wanted <= 0, None),
        (month_room < wanted, CapReason.MONTH.value),
        (year_room < wanted, CapReason.YEAR.value),
        else_=None)
    source = (select(bindparam("person_id"), category, points, bindparam("rule"), bindparam("source_type"),
                     bindparam("source_id"), capped, period, bindparam("at", type_=UTCDateTime))
              .select_from(one)
              .outerjoin(rate, and_(rate.c.period == period, rate.c.rule == bindparam("rule")))
              .outerjoin(cap, and_(cap.c.period == period, cap.c.category == category))
              # One award per fact, quietly: a fact recorded again (a task acknowledged anew after
              # its acknowledgement was reset) adds nothing instead of failing the person's message.
              .where(~exists().where(entry.c.rule == bindparam("rule"), entry.c.source_type == bindparam("source_type"),
                                     entry.c.source_id == bindparam("source_id"),
                                     entry.c.person_id == bindparam("person_id"), entry.c.reverses_id.is_(None))))
    columns = ["person_id", "category", "points", "rule", "source_type", "source_id", "capped", "period",
               "created_at"]
    return insert(entry).from_select(columns, source)


def _params(rule: str, category: Category, points: int, person_id: int, source_type: str, source_id: int,
            at: datetime, *, override: int | None = None) -> dict:
    rules = points_rules.current()
    period = period_of(at)
    caps = rules.caps[category]
    return {"person_id": person_id, "rule": rule, "category": category.value, "points": points,
            "points_override": override, "month_cap": caps.month, "year_cap": caps.year,
            "source_type": source_type, "source_id": source_id, "period": period,
            "year_first": period[:4] + "-01", "at": at}


def award(session: Session, person_id: int, rule: RuleName, source_type: str, source_id: int, *,
          at: datetime) -> None:
    """Append the entry `rule` gives `person_id` for the fact (`source_type`, `source_id`), capped;
    one statement in the caller's transaction."""
    current = points_rules.current().rule(rule.value)
    session.execute(_award_insert(), _params(rule.value, current.category, current.points, person_id,
                                             source_type, source_id, at))


def award_claim(session: Session, person_id: int, category: Category, points: int, report_id: int, *,
                at: datetime) -> None:
    """Append a verified self-report's entry: the secretary's value in the report's category, capped."""
    session.execute(_award_insert(), _params(RuleName.SELF_REPORT.value, category, points, person_id,
                                             "self_report", report_id, at, override=points))


def deduct_many(session: Session, person_ids: list[int], rule: RuleName, source_type: str, source_id: int, *,
                at: datetime) -> None:
    """Append `rule`'s entry for each person at once (deductions: never capped), e.g. a meeting's
    absentees when it closes."""
    if not person_ids:
        return
    period = period_of(at)
    snap = session.get(PointsRate, (period, rule.value))
    current = points_rules.current().rule(rule.value)
    category, points = (snap.category, snap.points) if snap is not None else (current.category, current.points)
    if points > 0:  # caps apply to gains: go through the capped INSERT one by one
        for person_id in person_ids:
            award(session, person_id, rule, source_type, source_id, at=at)
        return
    session.execute(insert(PointsEntry.__table__), [
        {"person_id": p, "category": category.value, "points": points, "rule": rule.value,
         "source_type": source_type, "source_id": source_id, "capped": None, "period": period, "created_at": at}
        for p in person_ids])


def reverse(session: Session, source_type: str, source_id: int, at: datetime, *,
            person_id: int | None = None) -> int:
    """Undo the entries of a fact that no longer stands (a withdrawn directive, a cancelled
    meeting, optionally one person's): a compensating entry for each, in the current open period
    (the month of `at`), pointing at what it undoes. Entries already undone are left; returns how
    many compensations were written. Idempotent."""
    entry = PointsEntry.__table__
    undone = select(entry.c.reverses_id).where(entry.c.reverses_id.is_not(None))
    stmt = select(entry).where(entry.c.source_type == source_type, entry.c.source_id == source_id,
                               entry.c.reverses_id.is_(None), entry.c.id.not_in(undone))
    if person_id is not None:
        stmt = stmt.where(entry.c.person_id == person_id)
    period = period_of(at)
    rows = [
        {"person_id": r.person_id, "category": r.category, "points": -r.points, "rule": r.rule,
         "source_type": source_type, "source_id": source_id, "capped": None, "reverses_id": r.id,
         "period": period, "created_at": at}
        for r in session.execute(stmt.order_by(entry.c.id)).all() if r.points != 0
    ]
    if rows:
        session.execute(insert(entry), rows)
    return len(rows)


# -- month totals --------------------------------------------------------------------------------

# A month is summarised this long after it ends, so a transaction that began in it has committed.
SUMMARY_GRACE = timedelta(hours=1)


def month_start(period: str) -> datetime:
    year, month = (int(x) for x in period.split("-"))
    return datetime(year, month, 1, tzinfo=_tz)


def next_month(period: str) -> str:
    year, month = (int(x) for x in period.split("-"))
    return f"{year + 1}-01" if month == 12 else f"{year}-{month + 1:02d}"


def summarise(session: Session, period: str, *, at: datetime) -> bool:
    """Write the month's totals per person and category once it is over (and the grace passed);
    True when they are there. Several callers at once: the period row's lock lets one write."""
    if at < month_start(next_month(period)) + SUMMARY_GRACE:
        return False
    open_period(session, period, at=at)
    row = session.get(PointsPeriod, period, with_for_update=True, populate_existing=True)
    if row.summarised_at is not None:
        return True
    entry = PointsEntry.__table__
    session.execute(insert(PointsMonthTotal.__table__).from_select(
        ["period", "person_id", "category", "points"],
        select(entry.c.period, entry.c.person_id, entry.c.category, func.sum(entry.c.points))
        .where(entry.c.period == period).group_by(entry.c.period, entry.c.person_id, entry.c.category)))
    row.summarised_at = at
    return True


def summarised(session: Session, first: str, last: str) -> set[str]:
    return set(session.scalars(select(PointsPeriod.period).where(
        PointsPeriod.period >= first, PointsPeriod.period <= last, PointsPeriod.summarised_at.is_not(None))))


def period_points(session: Session, first: str, last: str, *, with_month: bool = False):
    """(person_id, category, points) over the months `first`..`last`: the totals of summarised
    months and the entries of the others, as one selectable to group further; `with_month` adds
    each row's month (`period`, `2026-11`) as a fourth column."""
    done = summarised(session, first, last)
    months, month = [], first
    while month <= last:
        months.append(month)
        month = next_month(month)
    entry, total = PointsEntry.__table__, PointsMonthTotal.__table__
    raw = select(entry.c.person_id, entry.c.category, entry.c.points, *([entry.c.period] if with_month else []))
    summed = select(total.c.person_id, total.c.category, total.c.points, *([total.c.period] if with_month else [])
                    ).where(total.c.period.in_(sorted(done)))
    rest = [m for m in months if m not in done]
    if not done:
        return raw.where(entry.c.period >= first, entry.c.period <= last)
    if not rest:  # every month summarised: the entries are not read at all
        return summed
    return union_all(summed, raw.where(entry.c.period.in_(rest)))


# -- reading -------------------------------------------------------------------------------------

@dataclass
class Totals:
    """One person's points in a span, by category; `total` is their sum."""

    by_category: dict[Category, int] = field(default_factory=lambda: {c: 0 for c in Category})

    @property
    def total(self) -> int:
        return sum(self.by_category.values())


def totals(session: Session, person_ids: list[int] | None, first: str, last: str) -> dict[int, Totals]:
    """Points per person and category over the months `first`..`last` (keys like `2026-11`)."""
    entry = PointsEntry.__table__
    stmt = (select(entry.c.person_id, entry.c.category, func.sum(entry.c.points))
            .where(entry.c.period >= first, entry.c.period <= last)
            .group_by(entry.c.person_id, entry.c.category))
    if person_ids is not None:
        stmt = stmt.where(entry.c.person_id.in_(person_ids)) if person_ids else stmt.where(false())
    found: dict[int, Totals] = {}
    for person_id, category, points in session.execute(stmt):
        found.setdefault(person_id, Totals()).by_category[Category(category)] = int(points or 0)
    return found


def recent(session: Session, person_id: int, limit: int = 5) -> list[PointsEntry]:
    """A person's last entries, newest first."""
    return list(session.scalars(select(PointsEntry).where(PointsEntry.person_id == person_id)
                                .order_by(PointsEntry.created_at.desc(), PointsEntry.id.desc()).limit(limit)))
