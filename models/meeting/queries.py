"""Meeting queries: who a meeting is for and who leads it, a person's meetings, a meeting's
attendance, and the meetings held toward a branch's requirements (三会一课, 主题党日)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import String, bindparam, case, exists, func, literal_column, or_, select, union
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Select

from models.meeting.tables import (
    AUTO_CLOSE_AFTER,
    DEFAULT_DURATION,
    MAX_DURATION,
    SHANGHAI,
    Attendance,
    AttendanceStatus,
    LeaveRequest,
    LeaveStatus,
    Meeting,
    MeetingStatus,
    MeetingType,
    Period,
)
from models.org import BRANCH_KINDS, Organisation, OrgKind
from models.person import COMMITTEE_ROLES, Membership, MembershipKind, OrgRole, Person

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


def audience_select(meeting: Meeting):
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


def home_branches_select():
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
    audience = audience_select(meeting).subquery()
    return session.scalar(select(exists().where(audience.c.person_id == person.id))) or False


# -- scheduling and closing ---------------------------------------------------------------------

def clashing(session: Session, branch_id: int, starts_at: datetime, group_id: int | None,
             duration: timedelta = DEFAULT_DURATION, *, ignore_id: int | None = None) -> Meeting | None:
    """A meeting of the branch whose time overlaps [starts_at, starts_at + duration); two 党小组会
    of different groups do not clash, nor does a cancelled meeting."""
    ends_at = starts_at + duration
    nearby = session.scalars(select(Meeting).where(
        Meeting.organisation_id == branch_id, Meeting.starts_at > starts_at - MAX_DURATION,
        Meeting.starts_at < ends_at, Meeting.status != MeetingStatus.CANCELLED).order_by(Meeting.starts_at, Meeting.id))
    for other in nearby:
        if other.id == ignore_id or not (other.starts_at < ends_at and starts_at < other.ends_at):
            continue
        both_groups = group_id is not None and other.group_id is not None
        if not both_groups or other.group_id == group_id:
            return other
    return None


def due_to_close(session: Session, now: datetime) -> list[Meeting]:
    """Scheduled meetings 30 minutes past their end, locked with SKIP LOCKED, so several scheduler
    processes close each one once. The end depends on each meeting's duration: the candidates are
    those that began at least the grace period ago, and each is checked."""
    candidates = session.scalars(
        select(Meeting).where(Meeting.status == MeetingStatus.SCHEDULED,
                              Meeting.starts_at <= now - AUTO_CLOSE_AFTER)
        .order_by(Meeting.starts_at, Meeting.id)
        .with_for_update(skip_locked=True)
    ).all()
    return [m for m in candidates if m.closes_by_itself_at <= now]


# -- a person's meetings ------------------------------------------------------------------------

_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)
_ALL_STATUSES = tuple(s for s in MeetingStatus if s is not MeetingStatus.CANCELLED)  # cancelled: asked by name


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

def pending_leaves_for(session: Session, decider: Person) -> list[LeaveRequest]:
    """Pending requests of open meetings in the branches this person leads."""
    branch_ids = [b.id for b in led_branches(decider)]
    return list(session.scalars(
        select(LeaveRequest).join(Meeting, Meeting.id == LeaveRequest.meeting_id)
        .where(Meeting.organisation_id.in_(branch_ids), Meeting.status == MeetingStatus.SCHEDULED,
               LeaveRequest.status == LeaveStatus.PENDING)
        .order_by(LeaveRequest.id)
    ))


# -- attendance of one meeting ------------------------------------------------------------------

@dataclass
class CloseSummary:
    """Who came, who had approved leave and who was absent: what the attendance line counts and names."""

    meeting: Meeting
    present: list[Attendance] = field(default_factory=list)
    on_leave: list[Attendance] = field(default_factory=list)
    absent: list[Attendance] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return len(self.present) + len(self.on_leave) + len(self.absent)

def attendance_summary(session: Session, meeting: Meeting) -> CloseSummary:
    """The meeting's attendance rows by status: present in check-in order, the others in roster order."""
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
    """The calendar month, quarter or year (in local time) containing `on`, as aware UTC [start, end)."""
    day = on.astimezone(tz).date() if isinstance(on, datetime) else on
    if period is Period.YEAR:
        return (datetime(day.year, 1, 1, tzinfo=tz).astimezone(UTC),
                datetime(day.year + 1, 1, 1, tzinfo=tz).astimezone(UTC))
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
    """Per meeting type: the current period around `on_date`, required 1 (0 for a period that began
    before the branch came into the bot), and how many were held."""
    found = []
    for meeting_type in MeetingType:
        start, end = period_bounds(meeting_type.period, on_date, tz)
        held = len(held_meetings(session, branch.id, meeting_type, start, end))
        found.append(Requirement(meeting_type, meeting_type.period, start, end,
                                 1 if watched_in(branch, start) else 0, held))
    return found


def watched_in(branch: Organisation, period_start: datetime) -> bool:
    """Whether a period counts toward the branch's required meetings: only periods that began once
    the branch was in the bot (a fresh install does not report last month's meetings as missed)."""
    return branch.created_at is None or branch.created_at <= period_start
