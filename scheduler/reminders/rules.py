"""The rule of each reminder kind: check the row is still wanted (its subject there and
unchanged), work out the recipients from the state now (who has still not acknowledged, who has
no approved leave), and collect one notice per recipient, worded by `bot.texts.reminders`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.texts import reminders as texts
from models.directive import Delivery, DeliveryRole, DeliveryStatus, Directive, DirectiveKind
from models.lifecycle import lock_directive
from models.meeting import (
    Attendance,
    AttendanceStatus,
    LeaveRequest,
    LeaveStatus,
    Meeting,
    MeetingStatus,
    MeetingType,
    period_bounds,
    requirement_status,
    watched_in,
)
from models.org import BRANCH_KINDS, Organisation, OrgKind, path_within
from models.person import COMMITTEE_ROLES, Liaison, OrgRole, Person, Role
from models.reminder import DIRECTIVE_STEPS, STUDY_STEPS, Reminder, ReminderKind, SkipReason, skip
from scheduler.reminders.digest import ID_CHUNK, Firing, chunks
from scheduler.reminders.planning import MEETING_STEPS, month_bounds, types_ending

UNREACHED = (DeliveryStatus.UNREACHABLE, DeliveryStatus.FAILED)
LEADING_ROLES = (Role.SECRETARY, Role.DEPUTY_SECRETARY)


# -- directives and study --------------------------------------------------------------------

def _directive_for(f: Firing, row: Reminder) -> Directive | None:
    """The directive, when it still exists, is not withdrawn and has the deadline the row was made
    for. Read FOR SHARE under the row's claim: a 撤回 or 改期 committed since the claim is seen,
    and one still running waits for this round."""
    directive = lock_directive(f.session, row.subject_id, share=True)
    if directive is None:
        skip(row, f.now, SkipReason.DIRECTIVE_GONE)
        return None
    if directive.withdrawn_at is not None:
        skip(row, f.now, SkipReason.WITHDRAWN)
        return None
    steps = STUDY_STEPS if directive.kind is DirectiveKind.STUDY else DIRECTIVE_STEPS
    offset = next((o for k, o, _ in steps if k is row.kind), None)
    if directive.deadline is None or offset is None or directive.deadline + offset != row.due_at:
        skip(row, f.now, SkipReason.DEADLINE_CHANGED)
        return None
    return directive


def _tasks(directive: Directive):
    return (Delivery.directive_id == directive.id, Delivery.role == DeliveryRole.TASK)


def _not_done(directive: Directive):
    return Delivery.completed_at if directive.kind is DirectiveKind.STUDY else Delivery.acknowledged_at


def fire_directive_reminder(f: Firing, row: Reminder) -> None:
    """24 h / 2 h before: everyone who has still not acknowledged (study: not confirmed), now."""
    directive = _directive_for(f, row)
    if directive is None:
        return
    people = f.session.scalars(
        select(Delivery.person_id).where(*_tasks(directive), _not_done(directive).is_(None),
                                         Delivery.status.not_in(UNREACHED))
    ).all()
    if not people:
        skip(row, f.now, SkipReason.ALL_ACKNOWLEDGED if directive.kind is DirectiveKind.DIRECTIVE
             else SkipReason.ALL_STUDIED)
        return
    f.notify(row, people, texts.directive_reminder(directive, row.kind, f.tz))


# -- who lags and who is told ----------------------------------------------------------------

@dataclass
class BranchLag:
    """A branch where someone has not acknowledged: the counts and the names missing, by name."""

    branch: Organisation
    total: int
    acked: int
    missing: list[str] = field(default_factory=list)

    def line(self) -> str:
        return texts.branch_lag(self.branch.name, self.total, self.acked, self.missing)


def lagging_branches(session: Session, directive: Directive) -> list[BranchLag]:
    """Branches where someone has not acknowledged, with their names, by branch path."""
    counts = session.execute(
        select(Delivery.organisation_id, func.count(), func.count(Delivery.acknowledged_at))
        .where(*_tasks(directive)).group_by(Delivery.organisation_id)
    ).all()
    lag = {org_id: (total, acked) for org_id, total, acked in counts if acked < total}
    if not lag:
        return []
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(list(lag))))}
    found = {org_id: BranchLag(orgs[org_id], total, acked) for org_id, (total, acked) in lag.items()}
    for org_id, name in session.execute(
        select(Delivery.organisation_id, Person.name).join(Person, Person.id == Delivery.person_id)
        .where(*_tasks(directive), Delivery.acknowledged_at.is_(None)).order_by(Person.name, Person.id)
    ):
        if org_id in found:
            found[org_id].missing.append(name)
    return sorted(found.values(), key=lambda b: b.branch.path)


def leaders_of(session: Session, org_ids: list[int]) -> dict[int, list[int]]:
    """Organisation → its 书记 and 副书记 (the whole committee when it has neither)."""
    by_org: dict[int, dict[Role, list[int]]] = defaultdict(lambda: defaultdict(list))
    for chunk in chunks(sorted(set(org_ids)), ID_CHUNK):
        for org_id, person_id, role in session.execute(
            select(OrgRole.organisation_id, OrgRole.person_id, OrgRole.role)
            .where(OrgRole.organisation_id.in_(chunk), OrgRole.role.in_(COMMITTEE_ROLES))
            .order_by(OrgRole.person_id)
        ):
            by_org[org_id][role].append(person_id)
    found = {}
    for org_id, roles in by_org.items():
        leading = [p for r in LEADING_ROLES for p in roles.get(r, [])]
        found[org_id] = leading or [p for people in roles.values() for p in people]
    return found


def liaisons_of(session: Session, branches: list[Organisation]) -> dict[int, list[Organisation]]:
    """Liaison person → the given organisations they look after (assigned to it or an ancestor)."""
    found: dict[int, list[Organisation]] = defaultdict(list)
    for person_id, path in session.execute(
        select(Liaison.person_id, Organisation.path).join(Organisation, Organisation.id == Liaison.organisation_id)
    ):
        for b in branches:
            if path_within(b.path, path):
                if b not in found[person_id]:
                    found[person_id].append(b)
    return found


def fire_directive_deadline(f: Firing, row: Reminder) -> None:
    """At the deadline: each lagging branch's secretaries get who is missing there; each liaison
    one message listing all their lagging organisations."""
    directive = _directive_for(f, row)
    if directive is None:
        return
    lagging = lagging_branches(f.session, directive)
    if not lagging:
        skip(row, f.now, SkipReason.ALL_ACKNOWLEDGED_BY_DEADLINE)
        return
    leaders = leaders_of(f.session, [b.branch.id for b in lagging])
    for b in lagging:
        f.notify(row, leaders.get(b.branch.id, []), texts.overdue_alert(directive, b.line(), f.tz))
    by_id = {b.branch.id: b for b in lagging}
    for person_id, branches in liaisons_of(f.session, [b.branch for b in lagging]).items():
        lags = [by_id[o.id].line() for o in branches]
        f.notify(row, [person_id], texts.liaison_alert(directive, lags, f.tz))


def fire_directive_summary(f: Firing, row: Reminder) -> None:
    """24 h after the deadline: the issuing organisation's secretaries (and the issuer)."""
    directive = _directive_for(f, row)
    if directive is None:
        return
    total, acked, late = f.session.execute(
        select(func.count(), func.count(Delivery.acknowledged_at),
               func.coalesce(func.sum(case((Delivery.late, 1), else_=0)), 0))
        .where(*_tasks(directive))
    ).one()
    lags = [b.line() for b in lagging_branches(f.session, directive)]
    people = leaders_of(f.session, [directive.organisation_id]).get(directive.organisation_id, [])
    f.notify(row, [*people, directive.issuer_id],
             texts.directive_summary(directive, total=total, acked=acked, late=late, lags=lags, tz=f.tz))


# -- meetings --------------------------------------------------------------------------------

def _meeting_for(f: Firing, row: Reminder) -> Meeting | None:
    """The meeting, read FOR SHARE under the row's claim (a 取消 or 改期 meanwhile is seen)."""
    meeting = f.session.scalar(select(Meeting).where(Meeting.id == row.subject_id).with_for_update(read=True)
                               .execution_options(populate_existing=True))
    if meeting is None:
        skip(row, f.now, SkipReason.MEETING_GONE)
        return None
    if meeting.status is MeetingStatus.CANCELLED:
        skip(row, f.now, SkipReason.MEETING_CANCELLED)
        return None
    offset = next(o for k, o, _ in MEETING_STEPS if k is row.kind)
    if meeting.starts_at + offset != row.due_at:
        skip(row, f.now, SkipReason.MEETING_MOVED)
        return None
    if meeting.status is MeetingStatus.CLOSED:
        skip(row, f.now, SkipReason.MEETING_CLOSED)
        return None
    return meeting


def fire_meeting_reminder(f: Firing, row: Reminder) -> None:
    """The day before / 1 h before: invitees not checked in and without approved leave."""
    meeting = _meeting_for(f, row)
    if meeting is None:
        return
    approved = select(LeaveRequest.person_id).where(LeaveRequest.meeting_id == meeting.id,
                                                    LeaveRequest.status == LeaveStatus.APPROVED)
    people = f.session.scalars(
        select(Attendance.person_id).where(Attendance.meeting_id == meeting.id,
                                           Attendance.status == AttendanceStatus.EXPECTED,
                                           Attendance.person_id.not_in(approved))
    ).all()
    if not people:
        skip(row, f.now, SkipReason.NOBODY_TO_REMIND)
        return
    f.notify(row, people, texts.meeting_reminder(meeting, row.kind, f.tz))


# -- required meetings (三会一课, 主题党日) -----------------------------------------------------

def _branch_for(f: Firing, row: Reminder) -> Organisation | None:
    branch = f.session.get(Organisation, row.subject_id)
    if branch is None or branch.kind not in BRANCH_KINDS:
        skip(row, f.now, SkipReason.BRANCH_GONE)
        return None
    return branch


def applicable_types(session: Session, branch: Organisation, key: str, tz: ZoneInfo) -> list[MeetingType]:
    """党小组会 only where the branch has groups."""
    types = types_ending(key, tz)
    if MeetingType.GROUP in types:
        has_groups = session.scalar(select(func.count()).where(Organisation.parent_id == branch.id,
                                                               Organisation.kind == OrgKind.GROUP)) or 0
        if not has_groups:
            types.remove(MeetingType.GROUP)
    return types


def fire_required_due(f: Firing, row: Reminder) -> None:
    """Start of the period's last week: the branch's secretaries, for each required meeting not
    scheduled (nor held) in its period."""
    branch = _branch_for(f, row)
    if branch is None:
        return
    missing = []
    for meeting_type in applicable_types(f.session, branch, row.period, f.tz):
        start, end = period_bounds(meeting_type.period, month_bounds(row.period, f.tz)[0], f.tz)
        if not watched_in(branch, start):
            continue
        scheduled = f.session.scalar(select(func.count()).where(
            Meeting.organisation_id == branch.id, Meeting.type == meeting_type,
            Meeting.status != MeetingStatus.CANCELLED,
            Meeting.starts_at >= start, Meeting.starts_at < end)) or 0
        if not scheduled:
            missing.append(texts.required_meeting(meeting_type, row.period))
    if not missing:
        skip(row, f.now, SkipReason.ALL_SCHEDULED)
        return
    _, end = month_bounds(row.period, f.tz)
    f.notify(row, leaders_of(f.session, [branch.id]).get(branch.id, []),
             texts.required_due(branch.name, missing, end - timedelta(minutes=1), f.tz))


def fire_required_missed(f: Firing, row: Reminder) -> None:
    """Period over: for each required meeting not held, the branch's liaison officers."""
    branch = _branch_for(f, row)
    if branch is None:
        return
    _, end = month_bounds(row.period, f.tz)
    last_day = end - timedelta(minutes=1)
    types = applicable_types(f.session, branch, row.period, f.tz)
    missed = [texts.required_meeting(r.meeting_type, row.period)
              for r in requirement_status(f.session, branch, last_day, tz=f.tz)
              if r.meeting_type in types and r.required and not r.met]
    if not missed:
        skip(row, f.now, SkipReason.ALL_HELD)
        return
    liaisons = [p for p, orgs in liaisons_of(f.session, [branch]).items() if orgs]
    if not liaisons:
        skip(row, f.now, SkipReason.NO_LIAISON)
        return
    f.notify(row, liaisons, texts.required_missed(branch.path.split("/")[-1], missed))


RULES: dict[ReminderKind, Callable[[Firing, Reminder], None]] = {
    ReminderKind.DIRECTIVE_24H: fire_directive_reminder,
    ReminderKind.DIRECTIVE_2H: fire_directive_reminder,
    ReminderKind.STUDY_24H: fire_directive_reminder,
    ReminderKind.DIRECTIVE_DEADLINE: fire_directive_deadline,
    ReminderKind.DIRECTIVE_SUMMARY: fire_directive_summary,
    ReminderKind.MEETING_DAY_BEFORE: fire_meeting_reminder,
    ReminderKind.MEETING_HOUR_BEFORE: fire_meeting_reminder,
    ReminderKind.REQUIRED_MEETING_DUE: fire_required_due,
    ReminderKind.REQUIRED_MEETING_MISSED: fire_required_missed,
}
