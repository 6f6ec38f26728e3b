"""Reminders and alerts as rows: each has a due time and is fired exactly once by the scheduler tick.

A row is keyed by (kind, subject_type, subject_id, period), so scheduling the same thing twice is
harmless. The tick claims due rows with `FOR UPDATE SKIP LOCKED` (PostgreSQL) and fires them in
the same transaction that writes the outbox rows and marks them sent/skipped, so any number of
scheduler processes fire each row once, and a restart loses nothing (the rows wait in the table).

Who gets what is decided when the row fires, from the state at that moment (who has not
acknowledged yet), never from a snapshot taken when it was scheduled."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Index, String, UniqueConstraint, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UTCDateTime, str_enum, utcnow
from models.event import Event


class ReminderKind(StrEnum):
    DIRECTIVE_24H = "directive_24h"  # to those who have not acknowledged, 24 h before the deadline
    DIRECTIVE_2H = "directive_2h"  # the same, 2 h before
    DIRECTIVE_DEADLINE = "directive_deadline"  # at the deadline: lagging branches' secretaries, liaisons
    DIRECTIVE_SUMMARY = "directive_summary"  # 24 h after: the issuing organisation's secretaries
    STUDY_24H = "study_24h"  # to those who have not confirmed, 24 h before the study's due time
    MEETING_DAY_BEFORE = "meeting_day_before"  # to invitees without approved leave, 24 h before
    MEETING_HOUR_BEFORE = "meeting_hour_before"  # the same, 1 h before
    REQUIRED_MEETING_DUE = "required_meeting_due"  # last week of a period: required meeting not scheduled
    REQUIRED_MEETING_MISSED = "required_meeting_missed"  # period over without it: the liaison

    @property
    def urgent(self) -> bool:
        """Urgent pushes go out in quiet hours too; the rest wait for the morning (SPEC §5, §7)."""
        return self in URGENT_KINDS


# A reminder whose whole point is the next two hours cannot wait for the morning; everything else
# (a day's notice, alerts about what is already late, summaries) is as useful at 07:30.
URGENT_KINDS = frozenset({ReminderKind.DIRECTIVE_2H, ReminderKind.MEETING_HOUR_BEFORE})


class ReminderStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"  # fired: outbox rows written (or the action done)
    SKIPPED = "skipped"  # not fired: its time had passed when scheduled, it was stale, or nobody needed it
    CANCELLED = "cancelled"  # its subject is gone or changed


class SkipReason(StrEnum):
    """Why a row was not fired, stored as the row's `reason` (`bot.texts.reminders` words it; a
    stale row's words depend on its kind too)."""

    PASSED_WHEN_ISSUED = "passed_when_issued"  # the step's time had passed when the directive was issued
    PASSED_WHEN_SCHEDULED = "passed_when_scheduled"  # … when the meeting was scheduled
    STALE = "stale"  # due during downtime and no longer useful; the row's kind says why
    DIRECTIVE_GONE = "directive_gone"
    DEADLINE_CHANGED = "deadline_changed"
    ALL_ACKNOWLEDGED = "all_acknowledged"
    ALL_STUDIED = "all_studied"
    ALL_ACKNOWLEDGED_BY_DEADLINE = "all_acknowledged_by_deadline"
    MEETING_GONE = "meeting_gone"
    MEETING_MOVED = "meeting_moved"
    MEETING_CLOSED = "meeting_closed"
    NOBODY_TO_REMIND = "nobody_to_remind"  # everyone has approved leave or has checked in
    BRANCH_GONE = "branch_gone"
    ALL_SCHEDULED = "all_scheduled"
    ALL_HELD = "all_held"
    NO_LIAISON = "no_liaison"
    WITHDRAWN = "withdrawn"  # 撤回 of the directive or study item
    MEETING_CANCELLED = "meeting_cancelled"  # 取消 of the meeting

    @property
    def status(self) -> ReminderStatus:
        """Cancelled when the subject is gone or changed (a new row stands for it), else skipped."""
        return ReminderStatus.CANCELLED if self in CANCELLING else ReminderStatus.SKIPPED


CANCELLING = frozenset({SkipReason.DIRECTIVE_GONE, SkipReason.DEADLINE_CHANGED, SkipReason.MEETING_GONE,
                        SkipReason.MEETING_MOVED, SkipReason.BRANCH_GONE, SkipReason.WITHDRAWN,
                        SkipReason.MEETING_CANCELLED})


class Reminder(Base):
    __tablename__ = "reminder"
    __table_args__ = (
        UniqueConstraint("kind", "subject_type", "subject_id", "period"),
        Index("ix_reminder_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ReminderKind] = mapped_column(str_enum(ReminderKind, 30))
    subject_type: Mapped[str] = mapped_column(String(20))  # directive, meeting, organisation
    subject_id: Mapped[int] = mapped_column()
    # Which period a required-meetings row watches (`2026-11`); empty for the others.
    period: Mapped[str] = mapped_column(String(16), default="", server_default="")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # After this a late firing (after downtime) is no longer useful and is skipped; None: always useful.
    useful_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[ReminderStatus] = mapped_column(str_enum(ReminderStatus, 10), default=ReminderStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recipients: Mapped[int] = mapped_column(default=0)
    reason: Mapped[SkipReason | None] = mapped_column(str_enum(SkipReason, 30))  # skipped or cancelled: why

    def __repr__(self) -> str:
        return f"<Reminder {self.id} {self.kind.value} {self.subject_type}#{self.subject_id} {self.status.value}>"


# Offsets from the deadline (directive / study) and how long a late firing stays useful.
DIRECTIVE_STEPS: tuple[tuple[ReminderKind, timedelta, timedelta | None], ...] = (
    # kind, due relative to the deadline, useful until relative to the deadline
    (ReminderKind.DIRECTIVE_24H, -timedelta(hours=24), -timedelta(hours=2)),  # then the 2 h one takes over
    (ReminderKind.DIRECTIVE_2H, -timedelta(hours=2), timedelta(0)),  # after the deadline: pointless
    (ReminderKind.DIRECTIVE_DEADLINE, timedelta(0), timedelta(hours=24)),  # then the summary says it all
    (ReminderKind.DIRECTIVE_SUMMARY, timedelta(hours=24), timedelta(days=7)),
)
STUDY_STEPS = ((ReminderKind.STUDY_24H, -timedelta(hours=24), timedelta(0)),)
# Offsets from a meeting's start (planned by the scheduler for new meetings, anew here when one moves).
MEETING_STEPS: tuple[tuple[ReminderKind, timedelta, timedelta], ...] = (
    # kind, due relative to the start, useful until relative to the start
    (ReminderKind.MEETING_DAY_BEFORE, -timedelta(hours=24), -timedelta(hours=1)),  # then the 1 h one
    (ReminderKind.MEETING_HOUR_BEFORE, -timedelta(hours=1), timedelta(0)),
)


def schedule_directive(session: Session, directive, now: datetime) -> list[Reminder]:
    """The reminder rows of a directive or study item with a deadline, in the caller's transaction
    (called by `issue()`). A step whose time has already passed is stored as skipped, with an event."""
    if directive.deadline is None:
        return []
    steps = STUDY_STEPS if directive.kind.value == "study" else DIRECTIVE_STEPS
    rows = []
    for kind, offset, useful in steps:
        due = directive.deadline + offset
        rows.append(Reminder(kind=kind, subject_type="directive", subject_id=directive.id, period="",
                             due_at=due, useful_until=directive.deadline + useful if useful is not None else None,
                             status=ReminderStatus.PENDING, created_at=now))
        if due <= now:
            skip(rows[-1], now, SkipReason.PASSED_WHEN_ISSUED)
    session.add_all(rows)
    session.flush()
    skipped = [r for r in rows if r.status is ReminderStatus.SKIPPED]
    if skipped:
        write_events(session, skipped, now)
    return rows


def skip(row: Reminder, now: datetime, reason: SkipReason) -> None:
    """Decide the row without firing it: skipped, or cancelled when its subject is gone or changed."""
    row.status = reason.status
    row.fired_at = now
    row.reason = reason


def claim_due(session: Session, now: datetime, limit: int) -> list[Reminder]:
    """Due pending rows, locked for this transaction. On PostgreSQL `SKIP LOCKED` lets another
    scheduler process take the next rows instead of waiting or taking the same; the WHERE is
    re-checked after the lock, so a row fired meanwhile is not returned. SQLite has one writer."""
    stmt = (select(Reminder).where(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now)
            .order_by(Reminder.due_at, Reminder.id).limit(limit)
            .execution_options(populate_existing=True))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    for row in rows:
        row.claimed_at = now
    return rows


def write_events(session: Session, rows: list[Reminder], now: datetime) -> None:
    """One event per fired, skipped or cancelled row, on the matter it is about (一事一档)."""
    if not rows:
        return
    session.execute(insert(Event.__table__), [
        {"at": now, "actor_id": None, "subject_type": r.subject_type, "subject_id": r.subject_id,
         "kind": f"reminder.{r.status.value}",
         "data": {"reminder_id": r.id, "step": r.kind.value, "period": r.period, "due_at": r.due_at.isoformat(),
                  "recipients": r.recipients, "reason": r.reason.value if r.reason else ""}}
        for r in rows
    ])


def cancel_pending(session: Session, subject_type: str, subject_id: int, now: datetime, reason: SkipReason) -> int:
    """Cancel the subject's reminder rows not yet fired, each with its event. Called with the
    subject's row locked FOR UPDATE. A row a scheduler has claimed this moment is skipped here
    (SKIP LOCKED: waiting for it could deadlock with its rule): that rule reads the subject FOR
    SHARE, so it waits for this transaction and then sees the change and fires nothing."""
    rows = list(session.scalars(
        select(Reminder).where(Reminder.subject_type == subject_type, Reminder.subject_id == subject_id,
                               Reminder.status == ReminderStatus.PENDING)
        .order_by(Reminder.id).with_for_update(skip_locked=True).execution_options(populate_existing=True)))
    for row in rows:
        skip(row, now, reason)
    session.flush()
    write_events(session, rows, now)
    return len(rows)


def _plan_version(session: Session, subject_type: str, subject_id: int) -> str:
    """The period key of a new plan: `v1`, `v2`, … (the first plan's rows keep the empty key)."""
    periods = session.scalars(select(Reminder.period).where(
        Reminder.subject_type == subject_type, Reminder.subject_id == subject_id).distinct())
    versions = [int(p[1:]) for p in periods if p.startswith("v") and p[1:].isdigit()]
    return f"v{max(versions, default=0) + 1}"


def _replan(session: Session, subject_type: str, subject_id: int, anchor: datetime, steps, now: datetime,
            changed: SkipReason, passed: SkipReason) -> int:
    cancel_pending(session, subject_type, subject_id, now, changed)
    period = _plan_version(session, subject_type, subject_id)
    rows = []
    for kind, offset, useful in steps:
        due = anchor + offset
        rows.append(Reminder(kind=kind, subject_type=subject_type, subject_id=subject_id, period=period,
                             due_at=due, useful_until=anchor + useful if useful is not None else None,
                             status=ReminderStatus.PENDING, created_at=now))
        if due <= now:
            skip(rows[-1], now, passed)
    session.add_all(rows)
    session.flush()
    write_events(session, [r for r in rows if r.status is not ReminderStatus.PENDING], now)
    return sum(r.status is ReminderStatus.PENDING for r in rows)


def replan_directive(session: Session, directive, now: datetime) -> int:
    """改期: the old deadline's pending rows are cancelled and the steps planned anew from the new
    deadline (a step already past is stored as skipped). Returns the rows left pending."""
    steps = STUDY_STEPS if directive.kind.value == "study" else DIRECTIVE_STEPS
    return _replan(session, "directive", directive.id, directive.deadline, steps, now,
                   SkipReason.DEADLINE_CHANGED, SkipReason.PASSED_WHEN_ISSUED)


def replan_meeting(session: Session, meeting, now: datetime) -> int:
    """改期 of a meeting: the same, from the new start."""
    return _replan(session, "meeting", meeting.id, meeting.starts_at, MEETING_STEPS, now,
                   SkipReason.MEETING_MOVED, SkipReason.PASSED_WHEN_SCHEDULED)
