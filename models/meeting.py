"""Meetings (三会一课 and 主题党日): scheduling with a notice to every invitee, check-in with a code,
leave, closing with attendance recorded, minutes, and counting held meetings toward requirements.

Invitees are snapshotted when a meeting is scheduled: one Attendance row per person, written by
INSERT … SELECT (status `expected`). Check-in moves that row to `present` with one conditional
UPDATE, so concurrent check-ins of one person record exactly one; closing moves the rest to
`on_leave` (approved leave) or `absent`."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, relationship
from sqlalchemy.sql import Select

from models.base import Base, UTCDateTime, str_enum, utcnow
from models.event import Event, record
from models.identity import Channel, ChannelIdentity
from models.org import BRANCH_KINDS, Organisation, OrgKind
from models.outbox import OutboxChannel, OutboxMessage, OutboxStatus, content_key_of, enqueue, text_payload
from models.person import COMMITTEE_ROLES, Membership, MembershipKind, OrgRole, Person

CHECKIN_BEFORE = timedelta(minutes=30)
CHECKIN_AFTER = timedelta(minutes=30)
AUTO_CLOSE_AFTER = timedelta(hours=3)
CHECKIN_MAX_FAILURES = 5
CHECKIN_FAILURE_WINDOW = timedelta(minutes=10)
CHECKIN_LOCK = timedelta(minutes=10)
SHANGHAI = ZoneInfo("Asia/Shanghai")
MP_WINDOW = timedelta(hours=48)  # Official Account customer-service messages reach a follower only this long


class Period(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"


class MeetingType(StrEnum):
    GENERAL_ASSEMBLY = "general_assembly"  # 支部党员大会
    COMMITTEE = "committee"  # 支委会
    GROUP = "group"  # 党小组会
    LECTURE = "lecture"  # 党课
    THEME_DAY = "theme_day"  # 主题党日

    @property
    def label(self) -> str:
        return MEETING_TYPE_LABELS[self]

    @property
    def period(self) -> Period:
        """How often at least one must be held (DOMAIN: 三会一课, 主题党日)."""
        return REQUIRED_PERIOD[self]


MEETING_TYPE_LABELS = {
    MeetingType.GENERAL_ASSEMBLY: "支部党员大会",
    MeetingType.COMMITTEE: "支委会",
    MeetingType.GROUP: "党小组会",
    MeetingType.LECTURE: "党课",
    MeetingType.THEME_DAY: "主题党日",
}
MEETING_TYPE_BY_LABEL = {label: t for t, label in MEETING_TYPE_LABELS.items()}
REQUIRED_PERIOD = {
    MeetingType.GENERAL_ASSEMBLY: Period.QUARTER,
    MeetingType.COMMITTEE: Period.MONTH,
    MeetingType.GROUP: Period.MONTH,
    MeetingType.LECTURE: Period.QUARTER,
    MeetingType.THEME_DAY: Period.MONTH,
}


class MeetingStatus(StrEnum):
    SCHEDULED = "scheduled"
    CLOSED = "closed"  # held: counts toward the branch's requirements


class AttendanceStatus(StrEnum):
    EXPECTED = "expected"  # invited; not checked in (yet)
    PRESENT = "present"
    ON_LEAVE = "on_leave"  # did not come, with approved leave (set at close)
    ABSENT = "absent"  # did not come, without approved leave (set at close)


class LeaveStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return {"pending": "待审批", "approved": "已批准", "rejected": "已驳回"}[self.value]


class Meeting(Base):
    __tablename__ = "meeting"
    __table_args__ = (
        Index("ix_meeting_branch_start", "organisation_id", "starts_at"),
        Index("ix_meeting_status_start", "status", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)  # the 编号 people type
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))  # the branch
    group_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))  # 党小组会 of one group
    type: Mapped[MeetingType] = mapped_column(str_enum(MeetingType, 20))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    location: Mapped[str | None] = mapped_column(String(200))
    online: Mapped[bool] = mapped_column(default=False)
    checkin_code: Mapped[str | None] = mapped_column(String(4))  # none for online meetings
    status: Mapped[MeetingStatus] = mapped_column(str_enum(MeetingStatus, 12), default=MeetingStatus.SCHEDULED)
    convener_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    invited_count: Mapped[int] = mapped_column(default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))  # none: closed automatically

    organisation: Mapped[Organisation] = relationship(foreign_keys=[organisation_id])
    group: Mapped[Organisation | None] = relationship(foreign_keys=[group_id])
    convener: Mapped[Person] = relationship(foreign_keys=[convener_id])

    @property
    def checkin_opens_at(self) -> datetime:
        return self.starts_at - CHECKIN_BEFORE

    @property
    def checkin_closes_at(self) -> datetime:
        return self.starts_at + CHECKIN_AFTER

    @property
    def title(self) -> str:
        """`综合处党支部 支部党员大会` / `综合处党支部第一党小组 党小组会`."""
        scope = self.organisation.name + (self.group.name if self.group else "")
        return f"{scope} {self.type.label}"

    @property
    def place(self) -> str:
        if self.online:
            return "线上" + (f"（{self.location}）" if self.location else "")
        return self.location or "地点另行通知"


class Attendance(Base):
    """One invitee of one meeting: expected → present, or at close on_leave / absent."""

    __tablename__ = "attendance"
    __table_args__ = (
        UniqueConstraint("meeting_id", "person_id"),
        Index("ix_attendance_person_status", "person_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    # The person's home branch when invited, so a home branch sees its members' attendance in
    # temporary branches without re-deriving memberships that may since have changed.
    home_branch_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    status: Mapped[AttendanceStatus] = mapped_column(str_enum(AttendanceStatus, 12),
                                                     default=AttendanceStatus.EXPECTED)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the final status was set

    meeting: Mapped[Meeting] = relationship()
    person: Mapped[Person] = relationship()
    home_branch: Mapped[Organisation | None] = relationship()


class CheckInFailure(Base):
    """A wrong check-in code, kept in the database so the lock holds across restarts and processes."""

    __tablename__ = "checkin_failure"
    __table_args__ = (Index("ix_checkin_failure_who", "meeting_id", "person_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    locks_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # set on the failure that locks


class LeaveRequest(Base):
    __tablename__ = "leave_request"
    __table_args__ = (Index("ix_leave_request_meeting_person", "meeting_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)  # the 编号 for 批准 / 驳回
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[LeaveStatus] = mapped_column(str_enum(LeaveStatus, 10), default=LeaveStatus.PENDING)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)

    meeting: Mapped[Meeting] = relationship()
    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    decided_by: Mapped[Person | None] = relationship(foreign_keys=[decided_by_id])


class MeetingMinutes(Base):
    """纪要: dated notes on a meeting; several per meeting, each with its author and time."""

    __tablename__ = "meeting_minutes"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    written_at: Mapped[datetime] = mapped_column(UTCDateTime)
    text: Mapped[str] = mapped_column(Text)

    author: Mapped[Person] = relationship()


# -- who ----------------------------------------------------------------------------------------

def led_branches(person: Person) -> list[Organisation]:
    """Branches where the person is 书记, 副书记 or a 委员."""
    return [o for o in person.led_organisations() if o.kind in BRANCH_KINDS]


def leads(person: Person, branch: Organisation) -> bool:
    return any(r.organisation_id == branch.id and r.role.is_committee for r in person.roles)


def branch_leaders(session: Session, branch_id: int) -> list[Person]:
    """The branch's committee (书记, 副书记, 委员), each once."""
    return list(session.scalars(
        select(Person).where(Person.id.in_(
            select(OrgRole.person_id).where(OrgRole.organisation_id == branch_id,
                                            OrgRole.role.in_(COMMITTEE_ROLES))))
        .order_by(Person.id)
    ))


def _audience(meeting: Meeting):
    """SELECT person_id of everyone a meeting is for: 支委会 the branch committee; 党小组会 of a
    group its members; otherwise the branch's members (home, temporary and its groups' members)
    and its committee."""
    committee = select(OrgRole.person_id.label("person_id")).where(
        OrgRole.organisation_id == meeting.organisation_id, OrgRole.role.in_(COMMITTEE_ROLES))
    if meeting.type is MeetingType.COMMITTEE:
        return committee
    if meeting.group_id is not None:
        return select(Membership.person_id.label("person_id")).where(Membership.organisation_id == meeting.group_id)
    groups = select(Organisation.id).where(Organisation.parent_id == meeting.organisation_id,
                                           Organisation.kind == OrgKind.GROUP)
    members = select(Membership.person_id.label("person_id")).where(
        or_(Membership.organisation_id == meeting.organisation_id, Membership.organisation_id.in_(groups)))
    return union(members, committee)


def _home_branches():
    """SELECT person_id, home_branch_id: the branch of each person's home membership."""
    org = aliased(Organisation)
    branch = case((org.kind == OrgKind.GROUP, org.parent_id), else_=org.id)
    return (select(Membership.person_id.label("person_id"), func.min(branch).label("branch_id"))
            .join(org, org.id == Membership.organisation_id)
            .where(Membership.kind == MembershipKind.HOME)
            .group_by(Membership.person_id)
            .subquery())


def is_invitee(session: Session, meeting: Meeting, person: Person) -> bool:
    """Invited when scheduled, or in the meeting's audience now (joined since)."""
    if session.scalar(select(Attendance.id).where(Attendance.meeting_id == meeting.id,
                                                  Attendance.person_id == person.id)) is not None:
        return True
    audience = _audience(meeting).subquery()
    return session.scalar(select(exists().where(audience.c.person_id == person.id))) or False


# -- scheduling ---------------------------------------------------------------------------------

class MeetingClash(Exception):
    """Another meeting of the same branch starts at the same time."""

    def __init__(self, other: Meeting) -> None:
        super().__init__(f"meeting #{other.id} starts at the same time")
        self.other = other


def clashing(session: Session, branch_id: int, starts_at: datetime, group_id: int | None) -> Meeting | None:
    """A meeting of the branch at the same start; two 党小组会 of different groups do not clash."""
    for other in session.scalars(select(Meeting).where(Meeting.organisation_id == branch_id,
                                                       Meeting.starts_at == starts_at).order_by(Meeting.id)):
        both_groups = group_id is not None and other.group_id is not None
        if not both_groups or other.group_id == group_id:
            return other
    return None


Render = Callable[[Meeting, Channel], dict[str, Any]]


def schedule(session: Session, *, branch: Organisation, meeting_type: MeetingType, starts_at: datetime,
             convener: Person, now: datetime, render: Render, location: str | None = None,
             online: bool = False, group: Organisation | None = None) -> Meeting:
    """Create the meeting, snapshot its invitees and queue a notice to each, in one transaction.

    Raises MeetingClash when the branch already has a meeting at that start. `render(meeting,
    channel)` gives the notice payload, the same for every invitee on a channel."""
    if starts_at <= now:
        raise ValueError("a meeting must start in the future")
    if branch.kind not in BRANCH_KINDS:
        raise ValueError(f"{branch.path} is not a branch")
    other = clashing(session, branch.id, starts_at, group.id if group else None)
    if other is not None:
        raise MeetingClash(other)
    meeting = Meeting(organisation_id=branch.id, group_id=group.id if group else None, type=meeting_type,
                      starts_at=starts_at, location=location or None, online=online,
                      checkin_code=None if online else f"{secrets.randbelow(10_000):04d}",
                      status=MeetingStatus.SCHEDULED, convener_id=convener.id, created_at=now)
    session.add(meeting)
    session.flush()
    session.refresh(meeting, ["organisation", "group"])

    audience = _audience(meeting).subquery()
    home = _home_branches()
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
        "invited": meeting.invited_count,
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


def push(session: Session, person_id: int, payload_for: Callable[[Channel], dict[str, Any]], *, now: datetime,
         subject_type: str, subject_id: int) -> bool:
    """Queue one push to a person on their best channel (WeCom, else a fresh Official Account
    follower). False when they cannot be reached."""
    idents = session.execute(
        select(ChannelIdentity.channel, ChannelIdentity.external_id, ChannelIdentity.last_inbound_at)
        .where(ChannelIdentity.person_id == person_id).order_by(ChannelIdentity.id)
    ).all()
    best = next((i for i in idents if i.channel is Channel.WECOM), None) or next(
        (i for i in idents if i.channel is Channel.MP and i.last_inbound_at and i.last_inbound_at >= now - MP_WINDOW),
        None)
    if best is None:
        return False
    enqueue(session, OutboxChannel(best.channel.value), best.external_id, payload_for(best.channel),
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
    if status is MeetingStatus.CLOSED:
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
                homes = _home_branches()
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


_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)
_ALL_STATUSES = tuple(MeetingStatus)


def _of_person():
    """Invited (an attendance row for `:person_id`), or held by a branch the person belongs to
    (a 党小组 counts in its branch) or sits on the committee of. Worked out in SQL: meetings are
    held only by branches, so an organisation id that is not a branch simply matches none."""
    pid = bindparam("person_id")
    memberships = select(Membership.organisation_id).where(Membership.person_id == pid)
    branches = union(
        memberships,
        select(Organisation.parent_id).where(Organisation.id.in_(memberships), Organisation.kind == OrgKind.GROUP),
        select(OrgRole.organisation_id).where(OrgRole.person_id == pid, OrgRole.role.in_(COMMITTEE_ROLES)),
    )
    return or_(Meeting.id.in_(select(Attendance.meeting_id).where(Attendance.person_id == pid)),
               Meeting.organisation_id.in_(branches))


# Built once with bound parameters: 待办 runs it on every call, and building the expression costs
# more than running it.
_MEETINGS_OF = (
    select(Meeting)
    .where(_of_person(), Meeting.status.in_(bindparam("statuses", expanding=True)),
           Meeting.starts_at >= bindparam("after"), Meeting.starts_at <= bindparam("before"))
    .order_by(Meeting.starts_at, Meeting.id)
)


def meetings_of(session: Session, person: Person, *, statuses: tuple[MeetingStatus, ...] | None = None,
                starts_after: datetime | None = None, starts_before: datetime | None = None) -> list[Meeting]:
    """Meetings this person is invited to (or, when scheduled before they joined, in the audience
    of: checked per meeting), soonest first."""
    found = session.scalars(_MEETINGS_OF, {
        "person_id": person.id, "statuses": list(statuses or _ALL_STATUSES),
        "after": starts_after or _EARLIEST, "before": starts_before or _LATEST,
    }).all()
    return [m for m in found if is_invitee(session, m, person)]


def coming_select() -> Select:
    """SELECT source, id, title, due of scheduled meetings that may be this person's (`:person_id`)
    and whose check-in has not closed (starting at or after `:after`): the meeting rows of 待办's
    single query. The caller checks each one (audience, attendance, leave)."""
    return (
        select(literal_column("'meeting'", String).label("source"), Meeting.id,
               literal_column("NULL", String).label("title"), Meeting.starts_at.label("due"))
        .where(_of_person(), Meeting.status == MeetingStatus.SCHEDULED, Meeting.starts_at >= bindparam("after"))
    )


# -- leave --------------------------------------------------------------------------------------

class LeaveResult(StrEnum):
    REQUESTED = "requested"
    ALREADY = "already"  # a pending or approved request exists
    STARTED = "started"
    CLOSED = "closed"
    NOT_INVITED = "not_invited"


def request_leave(session: Session, meeting: Meeting, person: Person, *, reason: str,
                  now: datetime) -> tuple[LeaveResult, LeaveRequest | None]:
    """Ask leave before the start; a pending or approved request is not duplicated."""
    if meeting.status is MeetingStatus.CLOSED:
        return LeaveResult.CLOSED, None
    if now >= meeting.starts_at:
        return LeaveResult.STARTED, None
    if not is_invitee(session, meeting, person):
        return LeaveResult.NOT_INVITED, None
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


def pending_leaves_for(session: Session, decider: Person) -> list[LeaveRequest]:
    """Pending requests of open meetings in the branches this person leads."""
    branch_ids = [b.id for b in led_branches(decider)]
    return list(session.scalars(
        select(LeaveRequest).join(Meeting, Meeting.id == LeaveRequest.meeting_id)
        .where(Meeting.organisation_id.in_(branch_ids), Meeting.status == MeetingStatus.SCHEDULED,
               LeaveRequest.status == LeaveStatus.PENDING)
        .order_by(LeaveRequest.id)
    ))


# -- closing ------------------------------------------------------------------------------------

@dataclass
class CloseSummary:
    meeting: Meeting
    present: list[Attendance] = field(default_factory=list)
    on_leave: list[Attendance] = field(default_factory=list)
    absent: list[Attendance] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return len(self.present) + len(self.on_leave) + len(self.absent)

    def line(self) -> str:
        return (f"应到 {self.expected} 实到 {len(self.present)} "
                f"请假 {len(self.on_leave)} 缺席 {len(self.absent)}")


def close_meeting(session: Session, meeting: Meeting, *, by: Person | None, now: datetime) -> CloseSummary | None:
    """Close a held meeting: invitees who did not check in are recorded on leave (approved leave)
    or absent. Returns None when it was already closed (the meeting row is locked first, so the
    scheduler and `结束` cannot both close it)."""
    locked = session.scalar(select(Meeting).where(Meeting.id == meeting.id).with_for_update()
                            .execution_options(populate_existing=True))
    if locked is None or locked.status is MeetingStatus.CLOSED:
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
    locked.status = MeetingStatus.CLOSED
    locked.closed_at = now
    locked.closed_by_id = by.id if by else None
    summary = attendance_summary(session, locked)
    record(session, "meeting.closed", actor=by, subject=locked, at=now, data={
        "automatic": by is None, "expected": summary.expected, "present": len(summary.present),
        "on_leave": len(summary.on_leave), "absent": len(summary.absent),
    })
    return summary


def attendance_summary(session: Session, meeting: Meeting) -> CloseSummary:
    rows = session.scalars(
        select(Attendance).join(Person, Person.id == Attendance.person_id)
        .where(Attendance.meeting_id == meeting.id)
        .order_by(Attendance.checked_in_at, Person.id)  # check-in order, then roster order
        .execution_options(populate_existing=True)
    ).all()
    summary = CloseSummary(meeting)
    for row in rows:
        if row.status is AttendanceStatus.PRESENT:
            summary.present.append(row)
        elif row.status is AttendanceStatus.ON_LEAVE:
            summary.on_leave.append(row)
        else:
            summary.absent.append(row)
    return summary


def summary_text(summary: CloseSummary, tz: ZoneInfo = SHANGHAI) -> str:
    """`应到 X 实到 Y 请假 Z 缺席 W`, then the names per category; people from another home
    branch (members of a temporary branch) carry their home branch's name."""
    from bot.timefmt import format_time  # here, not at import: the bot package imports the models

    meeting = summary.meeting

    def names(rows: list[Attendance]) -> str:
        return "、".join(_name(meeting, r) for r in rows) or "无"

    how = "自动结束" if meeting.closed_by_id is None else "已结束"
    closed = f"，{format_time(meeting.closed_at, tz)}{how}" if meeting.closed_at else ""
    return "\n".join([
        f"#{meeting.id} {meeting.title}（{format_time(meeting.starts_at, tz)}）{closed}",
        summary.line(),
        f"实到：{names(summary.present)}",
        f"请假：{names(summary.on_leave)}",
        f"缺席：{names(summary.absent)}",
    ])


def _name(meeting: Meeting, row: Attendance) -> str:
    if row.home_branch is not None and row.home_branch_id != meeting.organisation_id:
        return f"{row.person.name}（{row.home_branch.name}）"
    return row.person.name


def notify_closed(session: Session, summary: CloseSummary, *, now: datetime, tz: ZoneInfo = SHANGHAI,
                  to_leaders: bool = True) -> int:
    """Push the attendance summary to the branch committee (and the convener), and to each home
    branch's committee the part about its members who attended a temporary branch. Returns pushes."""
    from bot.timefmt import format_time

    meeting = summary.meeting
    pushes = 0
    if to_leaders:
        text = "【会议结束】" + summary_text(summary, tz)
        people = {p.id for p in branch_leaders(session, meeting.organisation_id)} | {meeting.convener_id}
        for person_id in sorted(people):
            pushes += push(session, person_id, lambda _c: text_payload(text), now=now,
                           subject_type="meeting", subject_id=meeting.id)
    by_home: dict[int, list[Attendance]] = {}
    for row in summary.present + summary.on_leave + summary.absent:
        if row.home_branch_id is not None and row.home_branch_id != meeting.organisation_id:
            by_home.setdefault(row.home_branch_id, []).append(row)
    labels = {AttendanceStatus.PRESENT: "签到", AttendanceStatus.ON_LEAVE: "请假", AttendanceStatus.ABSENT: "缺席"}
    for home_id, rows in sorted(by_home.items()):
        parts = []
        for row in rows:
            at = f" {format_time(row.checked_in_at, tz)}" if row.checked_in_at else ""
            parts.append(f"{row.person.name} {labels[row.status]}{at}")
        text = (f"【抄送】本支部党员参加{meeting.organisation.name}#{meeting.id} {meeting.type.label}"
                f"（{format_time(meeting.starts_at, tz)}）的情况：\n" + "\n".join(parts))
        for leader in branch_leaders(session, home_id):
            pushes += push(session, leader.id, lambda _c, t=text: text_payload(t), now=now,
                           subject_type="meeting", subject_id=meeting.id)
    return pushes


def close_due_meetings(session: Session, now: datetime, *, tz: ZoneInfo = SHANGHAI) -> int:
    """Close every meeting 3 hours past its start and push each summary; returns how many closed.
    Rows are claimed with SKIP LOCKED, so several scheduler processes close each meeting once."""
    due = session.scalars(
        select(Meeting).where(Meeting.status == MeetingStatus.SCHEDULED,
                              Meeting.starts_at <= now - AUTO_CLOSE_AFTER)
        .order_by(Meeting.starts_at, Meeting.id)
        .with_for_update(skip_locked=True)
    ).all()
    closed = 0
    for meeting in due:
        summary = close_meeting(session, meeting, by=None, now=now)
        if summary is not None:
            notify_closed(session, summary, now=now, tz=tz)
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


# -- attendance across branches and requirements ------------------------------------------------

def attendance_of(session: Session, person_id: int, period_start: datetime,
                  period_end: datetime) -> list[tuple[Meeting, Attendance]]:
    """A person's meetings that started in [period_start, period_end), in any branch (home,
    temporary or group), with their attendance, in time order."""
    return list(session.execute(
        select(Meeting, Attendance).join(Attendance, Attendance.meeting_id == Meeting.id)
        .where(Attendance.person_id == person_id, Meeting.starts_at >= period_start,
               Meeting.starts_at < period_end)
        .order_by(Meeting.starts_at, Meeting.id)
    ).all())


def attendance_elsewhere(session: Session, home_branch_id: int, period_start: datetime,
                         period_end: datetime) -> list[tuple[Meeting, Attendance]]:
    """What the home branch sees of its members' meetings in other (temporary) branches."""
    return list(session.execute(
        select(Meeting, Attendance).join(Attendance, Attendance.meeting_id == Meeting.id)
        .where(Attendance.home_branch_id == home_branch_id, Meeting.organisation_id != home_branch_id,
               Meeting.starts_at >= period_start, Meeting.starts_at < period_end)
        .order_by(Meeting.starts_at, Meeting.id, Attendance.person_id)
    ).all())


def period_bounds(period: Period, on: date | datetime, tz: ZoneInfo = SHANGHAI) -> tuple[datetime, datetime]:
    """The calendar month or quarter (in local time) containing `on`, as aware UTC [start, end)."""
    day = on.astimezone(tz).date() if isinstance(on, datetime) else on
    first_month = day.month if period is Period.MONTH else 3 * ((day.month - 1) // 3) + 1
    months = 1 if period is Period.MONTH else 3
    start = datetime(day.year, first_month, 1, tzinfo=tz)
    end_month = first_month + months
    end = datetime(day.year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def held_meetings(session: Session, branch_id: int, meeting_type: MeetingType, period_start: datetime,
                  period_end: datetime) -> list[Meeting]:
    """Closed (held) meetings of a type in a branch that started in [period_start, period_end)."""
    return list(session.scalars(
        select(Meeting).where(Meeting.organisation_id == branch_id, Meeting.type == meeting_type,
                              Meeting.status == MeetingStatus.CLOSED, Meeting.starts_at >= period_start,
                              Meeting.starts_at < period_end)
        .order_by(Meeting.starts_at, Meeting.id)
    ))


@dataclass(frozen=True)
class Requirement:
    meeting_type: MeetingType
    period: Period
    period_start: datetime  # aware UTC, inclusive
    period_end: datetime  # aware UTC, exclusive
    required: int
    held: int

    @property
    def met(self) -> bool:
        return self.held >= self.required


def requirement_status(session: Session, branch: Organisation, on_date: date | datetime, *,
                       tz: ZoneInfo = SHANGHAI) -> list[Requirement]:
    """Per meeting type: the current period around `on_date`, required 1, and how many were held."""
    found = []
    for meeting_type in MeetingType:
        start, end = period_bounds(meeting_type.period, on_date, tz)
        held = len(held_meetings(session, branch.id, meeting_type, start, end))
        found.append(Requirement(meeting_type, meeting_type.period, start, end, 1, held))
    return found
