"""A member who transfers out (状态 已转出): no more pushes, history kept, not counted as missing.

Leaving removes the person's memberships, roles and liaison assignments (each recorded in the
`person.left` event, so where they were is kept), which takes them out of every later directive,
study item and meeting. What was already addressed to them is closed, not deleted: their open task
deliveries become unreachable with the reason `UnreachableReason.LEFT` (reminders skip them; 进度 and 概况 leave
them out of the counts through `counted_delivery()`), and their invitations to meetings that have
not started are withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from models.directive import Delivery, DeliveryRole, DeliveryStatus, UnreachableReason
from models.event import record
from models.meeting import Attendance, AttendanceStatus, Meeting, MeetingStatus
from models.person import Liaison, Membership, OrgRole, Person


def counted_delivery():
    """The deliveries that count in progress and overview figures: all but those of people who left."""
    return or_(Delivery.reason.is_(None), Delivery.reason != UnreachableReason.LEFT.value)


def withdraw_open_items(session: Session, person_ids: list[int], *, now: datetime) -> None:
    """Close what is still addressed to people who left: open task deliveries, future invitations."""
    if not person_ids:
        return
    session.execute(
        update(Delivery)
        .where(Delivery.person_id.in_(person_ids), Delivery.role == DeliveryRole.TASK,
               Delivery.acknowledged_at.is_(None), Delivery.completed_at.is_(None))
        .values(status=DeliveryStatus.UNREACHABLE, reason=UnreachableReason.LEFT.value)
        .execution_options(synchronize_session=False)
    )
    future = select(Meeting.id).where(Meeting.status == MeetingStatus.SCHEDULED, Meeting.starts_at > now)
    session.execute(
        delete(Attendance)
        .where(Attendance.person_id.in_(person_ids), Attendance.status == AttendanceStatus.EXPECTED,
               Attendance.meeting_id.in_(future))
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class Departure:
    person: Person
    left_on: date
    already: bool  # the person had left before: nothing changed


def mark_left(session: Session, person: Person, *, on: date, now: datetime, actor: Person | None = None) -> Departure:
    """Mark `person` as transferred out on `on`; idempotent."""
    if person.left_on is not None:
        return Departure(person, person.left_on, already=True)
    places = {
        "memberships": [{"path": m.organisation.path, "kind": m.kind.value} for m in person.memberships],
        "roles": [{"path": r.organisation.path, "role": r.role.value} for r in person.roles],
        "liaisons": sorted(link.organisation.path for link in person.liaisons),
    }
    for model in (Membership, OrgRole, Liaison):
        session.execute(delete(model).where(model.person_id == person.id).execution_options(synchronize_session=False))
    person.left_on = on
    withdraw_open_items(session, [person.id], now=now)
    record(session, "person.left", actor=actor, subject=person, at=now, data={"left_on": on.isoformat(), **places})
    session.flush()
    session.expire(person)
    return Departure(person, on, already=False)
