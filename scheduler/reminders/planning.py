"""Planning the rows that no request creates: meeting reminders (the meetings module schedules
meetings without knowing about reminders) and the required-meetings watch per period. Both insert
with the unique key and ON CONFLICT DO NOTHING, so several schedulers are harmless."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.runtime import Runtime
from models.meeting import Meeting, MeetingStatus, MeetingType, Period, period_bounds
from models.org import BRANCH_KINDS, Organisation
from models.reminder import MEETING_STEPS, Reminder, ReminderKind, ReminderStatus, SkipReason, write_events
from scheduler.calendar import last_week_reminder_at
from scheduler.reminders.digest import ID_CHUNK, chunks

# Closing 3 h after the start is the meetings' own tick job (`close_meetings`, claiming meeting
# rows with SKIP LOCKED), so it is not a reminder row here.
MISSED_USEFUL_FOR = timedelta(days=7)


# -- meetings --------------------------------------------------------------------------------

def plan_meeting_reminders(runtime: Runtime) -> int:
    """Rows for meetings scheduled since the last tick: the day before and 1 h before. A
    reminder whose time had passed when the meeting was scheduled is stored as skipped."""
    now = runtime.now()
    with runtime.db.session() as session:
        planned = select(Reminder.subject_id).where(Reminder.kind == ReminderKind.MEETING_HOUR_BEFORE,
                                                    Reminder.subject_type == "meeting")
        meetings = session.execute(
            select(Meeting.id, Meeting.starts_at, Meeting.created_at)
            .where(Meeting.status == MeetingStatus.SCHEDULED, Meeting.id.not_in(planned))
        ).all()
        rows = []
        for meeting_id, starts_at, created_at in meetings:
            for kind, offset, useful in MEETING_STEPS:
                due = starts_at + offset
                late = due <= created_at
                rows.append({"kind": kind, "subject_type": "meeting", "subject_id": meeting_id, "period": "",
                             "due_at": due, "useful_until": starts_at + useful,
                             "status": ReminderStatus.SKIPPED if late else ReminderStatus.PENDING,
                             "created_at": now, "fired_at": now if late else None, "recipients": 0,
                             "reason": SkipReason.PASSED_WHEN_SCHEDULED if late else None})
        inserted = insert_ignore(session, rows)
        skipped = [r for r in inserted if r.status is ReminderStatus.SKIPPED]
        write_events(session, skipped, now)
    return len(inserted)


# -- required meetings (三会一课, 主题党日) -----------------------------------------------------

def period_key(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local.year}-{local.month:02d}"


def month_bounds(key: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    year, month = (int(x) for x in key.split("-"))
    return period_bounds(Period.MONTH, datetime(year, month, 15, 12, tzinfo=tz), tz)


def types_ending(key: str, tz: ZoneInfo) -> list[MeetingType]:
    """The meeting types whose period ends with this month: monthly ones always, quarterly ones
    in March, June, September and December, yearly ones (组织生活会, 民主评议党员) in December."""
    month = int(key.split("-")[1])
    return [t for t in MeetingType if t.period is Period.MONTH or (t.period is Period.QUARTER and month % 3 == 0)
            or (t.period is Period.YEAR and month == 12)]


def plan_required_meetings(runtime: Runtime) -> int:
    """For the current month, one `due` and one `missed` row per branch (created lazily, once:
    the unique key holds). Cheap when nothing is missing: two counts."""
    now = runtime.now()
    tz = runtime.settings.tz
    key = period_key(now, tz)
    _start, end = month_bounds(key, tz)
    with runtime.db.session() as session:
        branches = select(Organisation.id).where(Organisation.kind.in_(BRANCH_KINDS))
        wanted = session.scalar(select(func.count()).select_from(branches.subquery())) or 0
        have = session.scalar(select(func.count()).where(
            Reminder.kind == ReminderKind.REQUIRED_MEETING_MISSED, Reminder.period == key)) or 0
        if have >= wanted:
            return 0
        branch_ids = session.scalars(branches).all()
        rows = []
        for kind, due, useful in (
            (ReminderKind.REQUIRED_MEETING_DUE, last_week_reminder_at(end, tz), end),
            (ReminderKind.REQUIRED_MEETING_MISSED, end, end + MISSED_USEFUL_FOR),
        ):
            rows += [{"kind": kind, "subject_type": "organisation", "subject_id": branch_id, "period": key,
                      "due_at": due, "useful_until": useful, "status": ReminderStatus.PENDING, "created_at": now,
                      "fired_at": None, "recipients": 0, "reason": None} for branch_id in branch_ids]
        return insert_ignore(session, rows, fetch=False)


def insert_ignore(session: Session, rows: list[dict], *, fetch: bool = True):
    """INSERT … ON CONFLICT DO NOTHING on the unique key; returns the rows actually inserted
    (only how many with `fetch=False`)."""
    if not rows:
        return [] if fetch else 0
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    inserted: list[int] = []
    for chunk in chunks(rows, 2000):
        stmt = dialect_insert(Reminder).values(chunk).on_conflict_do_nothing().returning(Reminder.id)
        inserted += session.scalars(stmt).all()
    if not fetch:
        return len(inserted)
    if not inserted:
        return []
    found = []
    for chunk in chunks(inserted, ID_CHUNK):
        found += session.scalars(select(Reminder).where(Reminder.id.in_(chunk))).all()
    return found
