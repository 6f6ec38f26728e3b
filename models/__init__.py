"""SQLAlchemy 2.0 models, one module per aggregate. Importing this package registers every table."""

from models.base import Base, Database, UTCDateTime, utcnow
from models.cards import CardCodeUse
from models.directive import Delivery, DeliveryRole, DeliveryStatus, Directive, DirectiveKind
from models.event import Event, record
from models.export import ExportRequest, ExportStatus
from models.identity import BindingAttempt, BindingCode, Channel, ChannelIdentity
from models.inbound import InboundReceipt
from models.meeting import (
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
from models.numbers import ItemKind, ItemNumber
from models.options import OrgOption
from models.org import Organisation, OrgKind
from models.outbox import OutboxChannel, OutboxMessage, OutboxStatus
from models.person import Liaison, Membership, MembershipKind, OrgRole, Person, Role
from models.points import PointsCap, PointsEntry, PointsMonthTotal, PointsPeriod, PointsRate
from models.portrait import PortraitScore
from models.publication import Publication
from models.reminder import Reminder, ReminderKind, ReminderStatus
from models.self_report import SelfReport

__all__ = [
    "Attendance",
    "AttendanceStatus",
    "Base",
    "BindingAttempt",
    "BindingCode",
    "CardCodeUse",
    "CheckInFailure",
    "Channel",
    "ChannelIdentity",
    "Database",
    "Delivery",
    "DeliveryRole",
    "DeliveryStatus",
    "Directive",
    "DirectiveKind",
    "Event",
    "ExportRequest",
    "ExportStatus",
    "InboundReceipt",
    "ItemKind",
    "ItemNumber",
    "LeaveRequest",
    "LeaveStatus",
    "Liaison",
    "Meeting",
    "MeetingMinutes",
    "MeetingStatus",
    "MeetingType",
    "Membership",
    "MembershipKind",
    "OrgKind",
    "OrgOption",
    "OrgRole",
    "Organisation",
    "OutboxChannel",
    "OutboxMessage",
    "OutboxStatus",
    "Person",
    "PointsCap",
    "PointsEntry",
    "PointsMonthTotal",
    "PointsPeriod",
    "PointsRate",
    "Publication",
    "PortraitScore",
    "Reminder",
    "ReminderKind",
    "ReminderStatus",
    "Role",
    "SelfReport",
    "UTCDateTime",
    "record",
    "utcnow",
]
