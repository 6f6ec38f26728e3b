"""Correcting a meeting before it is held: 取消 (cancel) and 改期 (a new start).

Both lock the meeting row (FOR UPDATE) first, so they serialise with each other, with closing
(`close_meeting` locks it too), with check-in (FOR SHARE) and with its reminders being fired
(their rule reads it FOR SHARE). The meeting keeps its number and its check-in code; its check-in
window is derived from the start, so it follows a new start. Each writes its event; the pushes
are worded by the caller (`render`) and queued in the caller's transaction.

`cancel` is the one place a meeting is undone: whatever else must be undone with it (points from
it) is one more call there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from models import points
from models.event import Event, record
from models.lifecycle import tell
from models.meeting.queries import clashing
from models.meeting.tables import Attendance, LeaveRequest, LeaveStatus, Meeting, MeetingStatus
from models.person import Person
from models.reminder import SkipReason, cancel_pending, replan_meeting


class MeetingChange(StrEnum):
    DONE = "done"
    ALREADY_CANCELLED = "already_cancelled"
    CLOSED = "closed"  # already held
    STARTED = "started"  # under way: 结束 it instead
    CLASH = "clash"  # another meeting of the branch at the new time
    SAME_TIME = "same_time"


@dataclass(frozen=True)
class MeetingChangeResult:
    outcome: MeetingChange
    meeting: Meeting
    told: int = 0
    leaves_closed: int = 0
    old_start: datetime | None = None
    other: Meeting | None = None  # the clashing meeting


def _lock(session: Session, meeting: Meeting) -> Meeting:
    return session.scalar(select(Meeting).where(Meeting.id == meeting.id).with_for_update()
                          .execution_options(populate_existing=True))


def _refusal(meeting: Meeting, now: datetime) -> MeetingChange | None:
    if meeting.status is MeetingStatus.CANCELLED:
        return MeetingChange.ALREADY_CANCELLED
    if meeting.status is MeetingStatus.CLOSED:
        return MeetingChange.CLOSED
    if now >= meeting.starts_at:
        return MeetingChange.STARTED
    return None


def _invitees(meeting: Meeting):
    return select(Attendance.person_id, Attendance.id).where(Attendance.meeting_id == meeting.id)


def cancel(session: Session, meeting: Meeting, *, by: Person, reason: str | None, now: datetime,
           render: Callable[[Meeting], list[dict[str, Any]]]) -> MeetingChangeResult:
    """取消 before the start: the meeting is marked cancelled (it counts toward no requirement),
    its pending reminders are cancelled, pending leave requests are closed, and every invitee gets
    `render(meeting)`."""
    locked = _lock(session, meeting)
    refused = _refusal(locked, now)
    if refused is not None:
        return MeetingChangeResult(refused, locked)
    locked.status = MeetingStatus.CANCELLED
    locked.cancelled_at = now
    locked.cancel_reason = reason or None
    session.flush()
    cancelled = cancel_pending(session, "meeting", locked.id, now, SkipReason.MEETING_CANCELLED)
    closed = session.execute(
        update(LeaveRequest).execution_options(synchronize_session=False)
        .where(LeaveRequest.meeting_id == locked.id, LeaveRequest.status == LeaveStatus.PENDING)
        .values(status=LeaveStatus.CLOSED, decided_at=now, decided_by_id=by.id)
        .returning(LeaveRequest.id, LeaveRequest.person_id)).all()
    if closed:
        session.execute(insert(Event.__table__), [
            {"at": now, "actor_id": by.id, "subject_type": "leave_request", "subject_id": leave_id,
             "kind": "leave.closed", "data": {"meeting_id": locked.id, "person_id": person_id,
                                              "because": "meeting.cancelled"}}
            for leave_id, person_id in closed
        ])
    told = tell(session, _invitees(locked), render(locked), now=now, subject_type="attendance")
    record(session, "meeting.cancelled", actor=by, subject=locked, at=now, data={
        "reason": reason or "", "told": told, "leaves_closed": len(closed), "reminders_cancelled": cancelled,
        "starts_at": locked.starts_at.isoformat(),
    })
    points.reverse(session, "meeting", locked.id, now)  # a check-in in the window before the start
    return MeetingChangeResult(MeetingChange.DONE, locked, told, len(closed))


def reschedule(session: Session, meeting: Meeting, *, by: Person, starts_at: datetime, now: datetime,
               render: Callable[[Meeting, datetime], dict[str, Any]]) -> MeetingChangeResult:
    """改期 of a meeting not yet started to a later or earlier start in the future: same number,
    same code, same invitees, leave already granted stays; reminders planned anew from the new
    start; every invitee gets `render(meeting, old_start)`."""
    locked = _lock(session, meeting)
    refused = _refusal(locked, now)
    if refused is not None:
        return MeetingChangeResult(refused, locked)
    old = locked.starts_at
    if old == starts_at:
        return MeetingChangeResult(MeetingChange.SAME_TIME, locked, old_start=old)
    other = clashing(session, locked.organisation_id, starts_at, locked.group_id,
                     timedelta(minutes=locked.duration_minutes), ignore_id=locked.id)
    if other is not None:
        return MeetingChangeResult(MeetingChange.CLASH, locked, old_start=old, other=other)
    locked.starts_at = starts_at
    session.flush()
    planned = replan_meeting(session, locked, now)
    told = tell(session, _invitees(locked), render(locked, old), now=now, subject_type="attendance")
    record(session, "meeting.rescheduled", actor=by, subject=locked, at=now, data={
        "from": old.isoformat(), "to": starts_at.isoformat(), "told": told, "reminders": planned,
    })
    return MeetingChangeResult(MeetingChange.DONE, locked, told, old_start=old)
