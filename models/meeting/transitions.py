"""Meeting transitions: scheduling with a notice to every invitee, check-in with a code, leave
and its decision, closing with attendance recorded, and minutes. Each writes its event row; the
notices' wording comes from the caller as rendered payloads (`render`, `to_leaders`, …), so the
outbox rows are written here, in the same transaction, with the text they will be sent with.

Invitees are snapshotted when a meeting is scheduled, by INSERT … SELECT. Check-in moves a row to
`present` with one conditional UPDATE, so concurrent check-ins of one person record exactly one."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Integer, String, and_, exists, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config.points_rules import RuleName
from models import points
from models.base import UTCDateTime
from models.event import Event, record
from models.identity import Channel, ChannelIdentity
from models.meeting.queries import (
    CloseSummary,
    attendance_summary,
    audience_select,
    branch_leaders,
    clashing,
    due_to_close,
    home_branches_select,
    is_invitee,
)
from models.meeting.tables import (
    CHECKIN_FAILURE_WINDOW,
    CHECKIN_LOCK,
    CHECKIN_MAX_FAILURES,
    DEFAULT_DURATION,
    MP_WINDOW,
    Attendance,
    AttendanceStatus,
    CheckInFailure,
    LeaveRequest,
    LeaveStatus,
    Meeting,
    MeetingMinutes,
    MeetingStatus,
    MeetingType,
)
from models.org import BRANCH_KINDS, Organisation
from models.outbox import OutboxChannel, OutboxMessage, OutboxStatus, content_key_of, enqueue_parts
from models.person import Person

# -- scheduling ---------------------------------------------------------------------------------

class MeetingClash(Exception):
    """Another meeting of the same branch overlaps in time."""

    def __init__(self, other: Meeting) -> None:
        super().__init__(f"meeting #{other.id} overlaps in time")
        self.other = other


Render = Callable[[Meeting, Channel], dict[str, Any]]


def schedule(session: Session, *, branch: Organisation, meeting_type: MeetingType, starts_at: datetime,
             convener: Person, now: datetime, render: Render, location: str | None = None,
             online: bool = False, group: Organisation | None = None, duration: timedelta | None = None,
             topic: str | None = None) -> Meeting:
    """Create the meeting, snapshot its invitees and queue a notice to each, in one transaction.

    Raises MeetingClash when the branch already has a meeting at that start. `render(meeting,
    channel)` gives the notice payload, the same for every invitee on a channel."""
    if starts_at <= now:
        raise ValueError("a meeting must start in the future")
    if branch.kind not in BRANCH_KINDS:
        raise ValueError(f"{branch.path} is not a branch")
    duration = duration or DEFAULT_DURATION
    other = clashing(session, branch.id, starts_at, group.id if group else None, duration)
    if other is not None:
        raise MeetingClash(other)
    meeting = Meeting(organisation_id=branch.id, group_id=group.id if group else None, type=meeting_type,
                      starts_at=starts_at, location=location or None, online=online,
                      duration_minutes=int(duration.total_seconds() // 60), topic=topic or None,
                      checkin_code=None if online else f"{secrets.randbelow(10_000):04d}",
                      status=MeetingStatus.SCHEDULED, convener_id=convener.id, created_at=now)
    session.add(meeting)
    session.flush()
    session.refresh(meeting, ["organisation", "group"])

    audience = audience_select(meeting).subquery()
    home = home_branches_select()
    session.execute(insert(Attendance).from_select(
        ["meeting_id", "person_id", "home_branch_id", "status"],
        select(literal(meeting.id, Integer), audience.c.person_id, home.c.branch_id,
               literal(AttendanceStatus.EXPECTED.value, String))
        .outerjoin(home, home.c.person_id == audience.c.person_id)
    ))
    meeting.invited_count = session.scalar(
        select(func.count()).where(Attendance.meeting_id == meeting.id)) or 0
    record(session, "meeting.scheduled", actor=convener, subject=meeting, at=now, data={
        "organisation": branch.path, "group": group.path if group else None, "type": meeting_type.value,
        "starts_at": starts_at.isoformat(), "location": meeting.location, "online": online,
        "invited": meeting.invited_count, "duration_minutes": meeting.duration_minutes, "topic": meeting.topic,
    })
    counts = {channel.value: _enqueue_notices(session, meeting, channel, render(meeting, channel), now)
              for channel in (Channel.WECOM, Channel.MP)}
    record(session, "meeting.notified", actor=convener, subject=meeting, at=now,
           data={**counts, "unreachable": meeting.invited_count - sum(counts.values())})
    return meeting


def _identities(channel: Channel, now: datetime):
    wanted = ChannelIdentity.channel == channel
    if channel is Channel.MP:
        wanted &= ChannelIdentity.last_inbound_at >= now - MP_WINDOW
    return (select(ChannelIdentity.person_id, func.min(ChannelIdentity.external_id).label("external_id"))
            .where(wanted).group_by(ChannelIdentity.person_id).subquery())


def _enqueue_notices(session: Session, meeting: Meeting, channel: Channel, payload: dict, now: datetime) -> int:
    """Outbox rows for every invitee reachable on `channel` (WeCom preferred), by one INSERT … SELECT."""
    ident = _identities(channel, now)
    outbox_channel = OutboxChannel(channel.value)
    rows = (
        select(literal(outbox_channel.value, String), ident.c.external_id, Attendance.person_id,
               literal(payload, JSON), literal(content_key_of(outbox_channel, payload), String),
               literal(OutboxStatus.PENDING.value, String), literal(0, Integer),
               literal(now, UTCDateTime), literal(now, UTCDateTime), literal("attendance", String), Attendance.id)
        .join(ident, ident.c.person_id == Attendance.person_id)
        .where(Attendance.meeting_id == meeting.id)
    )
    if channel is Channel.MP:
        rows = rows.where(~exists().where(ChannelIdentity.person_id == Attendance.person_id,
                                          ChannelIdentity.channel == Channel.WECOM))
    session.execute(insert(OutboxMessage).from_select(
        ["channel", "recipient", "person_id", "payload", "content_key", "status", "attempts",
         "next_attempt_at", "created_at", "subject_type", "subject_id"], rows))
    # Counted, not taken from rowcount: drivers do not all report it for INSERT … SELECT.
    return session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.subject_type == "attendance", OutboxMessage.channel == outbox_channel,
        OutboxMessage.subject_id.in_(select(Attendance.id).where(Attendance.meeting_id == meeting.id)))) or 0


def push(session: Session, person_id: int,
         payload_for: Callable[[Channel], dict[str, Any] | list[dict[str, Any]]], *, now: datetime,
         subject_type: str, subject_id: int | None) -> bool:
    """Queue one push to a person on their best channel (WeCom, else a fresh Official Account
    follower). `payload_for` may give several payloads (the parts of a long text): one row each,
    in order, all in the caller's transaction. False when they cannot be reached."""
    idents = session.execute(
        select(ChannelIdentity.channel, ChannelIdentity.external_id, ChannelIdentity.last_inbound_at)
        .where(ChannelIdentity.person_id == person_id).order_by(ChannelIdentity.id)
    ).all()
    best = next((i for i in idents if i.channel is Channel.WECOM), None) or next(
        (i for i in idents if i.channel is Channel.MP and i.last_inbound_at and i.last_inbound_at >= now - MP_WINDOW),
        None)
    if best is None:
        return False
    payloads = payload_for(best.channel)
    enqueue_parts(session, OutboxChannel(best.channel.value), best.external_id,
                  payloads if isinstance(payloads, list) else [payloads],
                  person_id=person_id, at=now, subject_type=subject_type, subject_id=subject_id)
    return True


# -- check-in -----------------------------------------------------------------------------------

class CheckInResult(StrEnum):
    CHECKED_IN = "checked_in"
    ALREADY = "already"
    NOT_OPEN_YET = "not_open_yet"
    WINDOW_OVER = "window_over"
    CLOSED = "closed"
    NOT_INVITED = "not_invited"
    CODE_NEEDED = "code_needed"
    WRONG_CODE = "wrong_code"
    LOCKED = "locked"


@dataclass
class CheckIn:
    result: CheckInResult
    attendance: Attendance | None = None
    locked_until: datetime | None = None
    tries_left: int | None = None


def window_state(meeting: Meeting, at: datetime) -> CheckInResult | None:
    """None while check-in is open (30 min before to 30 min after the start, both edges included)."""
    if meeting.status is MeetingStatus.CLOSED:
        return CheckInResult.CLOSED
    if at < meeting.checkin_opens_at:
        return CheckInResult.NOT_OPEN_YET
    if at > meeting.checkin_closes_at:
        return CheckInResult.WINDOW_OVER
    return None


def locked_until(session: Session, meeting_id: int, person_id: int, at: datetime) -> datetime | None:
    return session.scalar(select(func.max(CheckInFailure.locks_until)).where(
        CheckInFailure.meeting_id == meeting_id, CheckInFailure.person_id == person_id,
        CheckInFailure.locks_until > at))


def check_in(session: Session, meeting: Meeting, person: Person, *, at: datetime, code: str | None) -> CheckIn:
    """Record `person` present. Idempotent: a second check-in answers ALREADY with the first one's
    row, also when two arrive at once (the conditional UPDATE lets one through)."""
    earlier = _attendance(session, meeting.id, person.id)
    if earlier is not None and earlier.status is AttendanceStatus.PRESENT:
        return CheckIn(CheckInResult.ALREADY, earlier)
    state = window_state(meeting, at)
    if state is not None:
        return CheckIn(state, earlier)
    if earlier is None and not is_invitee(session, meeting, person):
        return CheckIn(CheckInResult.NOT_INVITED)
    if not meeting.online:
        until = locked_until(session, meeting.id, person.id, at)
        if until is not None:
            return CheckIn(CheckInResult.LOCKED, locked_until=until)
        if not code:
            return CheckIn(CheckInResult.CODE_NEEDED)
        if code != meeting.checkin_code:
            return _wrong_code(session, meeting, person, at, code)

    # FOR SHARE: check-ins do not wait for each other, but a concurrent close waits for them (and
    # they for it), so no one is recorded present in a meeting already closed.
    status = session.scalar(select(Meeting.status).where(Meeting.id == meeting.id).with_for_update(read=True))
    if status is not MeetingStatus.SCHEDULED:  # closed, or cancelled meanwhile
        session.refresh(meeting)
        return CheckIn(CheckInResult.CLOSED, earlier)
    moved = session.execute(
        update(Attendance).execution_options(synchronize_session=False)
        .where(Attendance.meeting_id == meeting.id, Attendance.person_id == person.id,
               Attendance.status == AttendanceStatus.EXPECTED)
        .values(status=AttendanceStatus.PRESENT, checked_in_at=at, recorded_at=at)
        .returning(Attendance.id)
    ).first()
    if moved is None and earlier is None:
        # Joined the audience after the meeting was scheduled: add their row now.
        try:
            with session.begin_nested():
                homes = home_branches_select()
                home = session.scalar(select(homes.c.branch_id).where(homes.c.person_id == person.id))
                session.add(Attendance(meeting_id=meeting.id, person_id=person.id, home_branch_id=home,
                                       status=AttendanceStatus.PRESENT, checked_in_at=at, recorded_at=at))
                session.flush()
            moved = True
        except IntegrityError:
            moved = None
    row = _attendance(session, meeting.id, person.id, fresh=True)
    if moved is None:
        # Either a concurrent check-in won, or the meeting was closed meanwhile (row now absent).
        won = row is not None and row.status is AttendanceStatus.PRESENT
        if not won:
            session.refresh(meeting)  # show when it was closed
        return CheckIn(CheckInResult.ALREADY if won else CheckInResult.CLOSED, row)
    record(session, "checkin.recorded", actor=person, subject=row, at=at,
           data={"meeting_id": meeting.id, "online": meeting.online})
    points.award(session, person.id, RuleName.MEETING_ATTENDED, "meeting", meeting.id, at=at)
    return CheckIn(CheckInResult.CHECKED_IN, row)


def _attendance(session: Session, meeting_id: int, person_id: int, *, fresh: bool = False) -> Attendance | None:
    stmt = select(Attendance).where(Attendance.meeting_id == meeting_id, Attendance.person_id == person_id)
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    return session.scalar(stmt)


def _wrong_code(session: Session, meeting: Meeting, person: Person, at: datetime, code: str) -> CheckIn:
    """Count a wrong code; the fifth within 10 minutes locks the person out of this meeting for 10 minutes."""
    failure = CheckInFailure(meeting_id=meeting.id, person_id=person.id, at=at)
    session.add(failure)
    session.flush()
    # Failures before the end of an earlier lock were already punished.
    last_lock_end = session.scalar(select(func.max(CheckInFailure.locks_until)).where(
        CheckInFailure.meeting_id == meeting.id, CheckInFailure.person_id == person.id,
        CheckInFailure.locks_until <= at))
    since = max(at - CHECKIN_FAILURE_WINDOW, last_lock_end) if last_lock_end else at - CHECKIN_FAILURE_WINDOW
    recent = session.scalar(select(func.count()).where(
        CheckInFailure.meeting_id == meeting.id, CheckInFailure.person_id == person.id,
        CheckInFailure.at > since)) or 0
    data = {"meeting_id": meeting.id, "failures": recent}
    if recent >= CHECKIN_MAX_FAILURES:
        failure.locks_until = at + CHECKIN_LOCK
        record(session, "checkin.locked", actor=person, subject=meeting, at=at,
               data={**data, "locks_until": failure.locks_until.isoformat()})
        return CheckIn(CheckInResult.LOCKED, locked_until=failure.locks_until)
    record(session, "checkin.failed", actor=person, subject=meeting, at=at, data=data)
    return CheckIn(CheckInResult.WRONG_CODE, tries_left=CHECKIN_MAX_FAILURES - recent)


# -- leave --------------------------------------------------------------------------------------

class LeaveResult(StrEnum):
    REQUESTED = "requested"
    ALREADY = "already"  # a pending or approved request exists
    STARTED = "started"
    CLOSED = "closed"
    NOT_INVITED = "not_invited"
    CHECKED_IN = "checked_in"  # already checked in (check-in opens before the start)


def request_leave(session: Session, meeting: Meeting, person: Person, *, reason: str,
                  now: datetime) -> tuple[LeaveResult, LeaveRequest | None]:
    """Ask leave before the start; a pending or approved request is not duplicated."""
    if meeting.status is MeetingStatus.CLOSED:
        return LeaveResult.CLOSED, None
    if now >= meeting.starts_at:
        return LeaveResult.STARTED, None
    if not is_invitee(session, meeting, person):
        return LeaveResult.NOT_INVITED, None
    if session.scalar(select(Attendance.id).where(Attendance.meeting_id == meeting.id,
                                                  Attendance.person_id == person.id,
                                                  Attendance.status == AttendanceStatus.PRESENT)) is not None:
        return LeaveResult.CHECKED_IN, None
    open_request = session.scalar(select(LeaveRequest).where(
        LeaveRequest.meeting_id == meeting.id, LeaveRequest.person_id == person.id,
        LeaveRequest.status.in_([LeaveStatus.PENDING, LeaveStatus.APPROVED])).order_by(LeaveRequest.id.desc()))
    if open_request is not None:
        return LeaveResult.ALREADY, open_request
    leave = LeaveRequest(meeting_id=meeting.id, person_id=person.id, reason=reason, requested_at=now,
                         status=LeaveStatus.PENDING)
    session.add(leave)
    session.flush()
    record(session, "leave.requested", actor=person, subject=leave, at=now,
           data={"meeting_id": meeting.id, "reason": reason})
    return LeaveResult.REQUESTED, leave


class DecideResult(StrEnum):
    DECIDED = "decided"
    ALREADY = "already"
    CLOSED = "closed"


def decide_leave(session: Session, leave: LeaveRequest, decider: Person, *, approve: bool, now: datetime,
                 note: str | None = None) -> DecideResult:
    """批准 / 驳回 a pending request; a decided one is left as it is. Allowed until the meeting closes."""
    leave = session.scalar(select(LeaveRequest).where(LeaveRequest.id == leave.id).with_for_update()
                           .execution_options(populate_existing=True))
    if leave.status is not LeaveStatus.PENDING:
        return DecideResult.ALREADY
    if leave.meeting.status is MeetingStatus.CLOSED:
        return DecideResult.CLOSED
    leave.status = LeaveStatus.APPROVED if approve else LeaveStatus.REJECTED
    leave.decided_at = now
    leave.decided_by_id = decider.id
    leave.decision_note = note or None
    record(session, "leave.approved" if approve else "leave.rejected", actor=decider, subject=leave, at=now,
           data={"meeting_id": leave.meeting_id, "person_id": leave.person_id, "note": note or ""})
    return DecideResult.DECIDED


# -- closing ------------------------------------------------------------------------------------

def close_meeting(session: Session, meeting: Meeting, *, by: Person | None, now: datetime) -> CloseSummary | None:
    """Close a held meeting: invitees who did not check in are recorded on leave (approved leave)
    or absent. Returns None when it was already closed (the meeting row is locked first, so the
    scheduler and `结束` cannot both close it)."""
    locked = session.scalar(select(Meeting).where(Meeting.id == meeting.id).with_for_update()
                            .execution_options(populate_existing=True))
    if locked is None or locked.status is not MeetingStatus.SCHEDULED:  # closed, or cancelled
        return None
    approved = select(LeaveRequest.person_id).where(LeaveRequest.meeting_id == meeting.id,
                                                    LeaveRequest.status == LeaveStatus.APPROVED)
    expected = and_(Attendance.meeting_id == meeting.id, Attendance.status == AttendanceStatus.EXPECTED)
    session.execute(update(Attendance).execution_options(synchronize_session=False)
                    .where(expected, Attendance.person_id.in_(approved))
                    .values(status=AttendanceStatus.ON_LEAVE, recorded_at=now))
    absent = session.execute(update(Attendance).execution_options(synchronize_session=False)
                             .where(expected).values(status=AttendanceStatus.ABSENT, recorded_at=now)
                             .returning(Attendance.id, Attendance.person_id)).all()
    if absent:
        session.execute(insert(Event.__table__), [
            {"at": now, "actor_id": None, "subject_type": "attendance", "subject_id": attendance_id,
             "kind": "attendance.absent", "data": {"meeting_id": meeting.id, "person_id": person_id}}
            for attendance_id, person_id in absent
        ])
        points.deduct_many(session, sorted(p for _a, p in absent), RuleName.MEETING_ABSENT, "meeting", meeting.id,
                           at=now)
    locked.status = MeetingStatus.CLOSED
    locked.closed_at = now
    locked.closed_by_id = by.id if by else None
    summary = attendance_summary(session, locked)
    record(session, "meeting.closed", actor=by, subject=locked, at=now, data={
        "automatic": by is None, "expected": summary.expected, "present": len(summary.present),
        "on_leave": len(summary.on_leave), "absent": len(summary.absent),
    })
    return summary


Payload = dict[str, Any]


def notify_closed(session: Session, summary: CloseSummary, *, now: datetime, to_leaders: Payload | None,
                  to_home_branch: Callable[[list[Attendance]], Payload]) -> int:
    """Queue the pushes of a closed meeting, worded by the caller: `to_leaders` (the attendance
    summary; None when the closer reads it as the reply) to the branch committee and the convener,
    and `to_home_branch(rows)` to the committee of each other home branch, about its members who
    attended (a temporary branch's meeting). Returns pushes."""
    meeting = summary.meeting
    pushes = 0
    if to_leaders is not None:
        people = {p.id for p in branch_leaders(session, meeting.organisation_id)} | {meeting.convener_id}
        for person_id in sorted(people):
            pushes += push(session, person_id, lambda _c: to_leaders, now=now,
                           subject_type="meeting", subject_id=meeting.id)
    by_home: dict[int, list[Attendance]] = {}
    for row in summary.present + summary.on_leave + summary.absent:
        if row.home_branch_id is not None and row.home_branch_id != meeting.organisation_id:
            by_home.setdefault(row.home_branch_id, []).append(row)
    for home_id, rows in sorted(by_home.items()):
        payload = to_home_branch(rows)
        for leader in branch_leaders(session, home_id):
            pushes += push(session, leader.id, lambda _c, p=payload: p, now=now,
                           subject_type="meeting", subject_id=meeting.id)
    return pushes


def close_due_meetings(session: Session, now: datetime, *,
                       notify: Callable[[CloseSummary], object] | None = None) -> int:
    """Close every meeting 30 minutes past its end; `notify(summary)` queues each one's pushes in
    this transaction. Returns how many closed. Rows are claimed with SKIP LOCKED, so several
    scheduler processes close each meeting once."""
    closed = 0
    for meeting in due_to_close(session, now):
        summary = close_meeting(session, meeting, by=None, now=now)
        if summary is not None:
            if notify is not None:
                notify(summary)
            closed += 1
    return closed


# -- minutes ------------------------------------------------------------------------------------

def add_minutes(session: Session, meeting: Meeting, author: Person, *, text: str, now: datetime) -> MeetingMinutes:
    minutes = MeetingMinutes(meeting_id=meeting.id, author_id=author.id, written_at=now, text=text)
    session.add(minutes)
    session.flush()
    record(session, "meeting.minutes", actor=author, subject=meeting, at=now,
           data={"minutes_id": minutes.id, "text": text})
    return minutes
