"""Meeting tables and their enums: the meeting, one attendance row per invitee, wrong check-in
codes, leave requests and minutes.

Invitees are snapshotted when a meeting is scheduled: one Attendance row per person (status
`expected`). Check-in moves that row to `present`; closing moves the rest to `on_leave` (approved
leave) or `absent`."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, str_enum, utcnow
from models.numbers import ItemKind, numbered
from models.org import Organisation
from models.person import Person

CHECKIN_BEFORE = timedelta(minutes=30)
CHECKIN_AFTER = timedelta(minutes=30)
AUTO_CLOSE_AFTER = timedelta(minutes=30)  # after the meeting's end
DEFAULT_DURATION = timedelta(minutes=90)
MAX_DURATION = timedelta(hours=12)
CHECKIN_MAX_FAILURES = 5
CHECKIN_FAILURE_WINDOW = timedelta(minutes=10)
CHECKIN_LOCK = timedelta(minutes=10)
SHANGHAI = ZoneInfo("Asia/Shanghai")
MP_WINDOW = timedelta(hours=48)  # Official Account customer-service messages reach a follower only this long


class Period(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class MeetingType(StrEnum):
    GENERAL_ASSEMBLY = "general_assembly"  # 支部党员大会
    COMMITTEE = "committee"  # 支委会
    GROUP = "group"  # 党小组会
    LECTURE = "lecture"  # 党课
    THEME_DAY = "theme_day"  # 主题党日
    ORG_LIFE = "org_life"  # 组织生活会
    DEMOCRATIC_REVIEW = "democratic_review"  # 民主评议党员

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
    MeetingType.ORG_LIFE: "组织生活会",
    MeetingType.DEMOCRATIC_REVIEW: "民主评议党员",
}
MEETING_TYPE_BY_LABEL = {label: t for t, label in MEETING_TYPE_LABELS.items()}
REQUIRED_PERIOD = {
    MeetingType.GENERAL_ASSEMBLY: Period.QUARTER,
    MeetingType.COMMITTEE: Period.MONTH,
    MeetingType.GROUP: Period.MONTH,
    MeetingType.LECTURE: Period.QUARTER,
    MeetingType.THEME_DAY: Period.MONTH,
    MeetingType.ORG_LIFE: Period.YEAR,
    MeetingType.DEMOCRATIC_REVIEW: Period.YEAR,
}


class MeetingStatus(StrEnum):
    SCHEDULED = "scheduled"
    CLOSED = "closed"  # held: counts toward the branch's requirements
    CANCELLED = "cancelled"  # 取消: never held, counts toward nothing


class AttendanceStatus(StrEnum):
    EXPECTED = "expected"  # invited; not checked in (yet)
    PRESENT = "present"
    ON_LEAVE = "on_leave"  # did not come, with approved leave (set at close)
    ABSENT = "absent"  # did not come, without approved leave (set at close)


class LeaveStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CLOSED = "closed"  # still pending when its meeting was cancelled

    @property
    def label(self) -> str:
        return {"pending": "待审批", "approved": "已批准", "rejected": "已驳回", "closed": "已关闭"}[self.value]


class Meeting(Base):
    __tablename__ = "meeting"
    __table_args__ = (
        Index("ix_meeting_branch_start", "organisation_id", "starts_at"),
        Index("ix_meeting_status_start", "status", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)  # the 编号 people type, from models.numbers
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
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # 取消 (status cancelled)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    duration_minutes: Mapped[int] = mapped_column(default=90, server_default="90")
    topic: Mapped[str | None] = mapped_column(Text)  # 议题: the lines under `会议 …`

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
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes or 90)

    @property
    def closes_by_itself_at(self) -> datetime:
        """30 minutes after the end: absentees are recorded then, unless 结束 came first."""
        return self.ends_at + AUTO_CLOSE_AFTER

    @property
    def title(self) -> str:
        """`综合处党支部 支部党员大会` / `综合处党支部第一党小组 党小组会`."""
        scope = self.organisation.name + (self.group.name if self.group else "")
        return f"{scope} {self.type.label}"


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


numbered(Meeting, lambda _meeting: ItemKind.MEETING)


class LeaveRequest(Base):
    __tablename__ = "leave_request"
    __table_args__ = (Index("ix_leave_request_meeting_person", "meeting_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)  # the 编号 for 批准 / 驳回, from models.numbers
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


numbered(LeaveRequest, lambda _leave: ItemKind.LEAVE)


class MeetingMinutes(Base):
    """纪要: dated notes on a meeting; several per meeting, each with its author and time."""

    __tablename__ = "meeting_minutes"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    written_at: Mapped[datetime] = mapped_column(UTCDateTime)
    text: Mapped[str] = mapped_column(Text)

    author: Mapped[Person] = relationship()
