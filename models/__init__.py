"""SQLAlchemy 2.0 models, one module per aggregate. Importing this package registers every table."""

from models.base import Base, Database, UTCDateTime, utcnow
from models.directive import Delivery, DeliveryRole, DeliveryStatus, Directive, DirectiveKind
from models.event import Event, record
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
from models.portrait import PortraitScore
from models.reminder import Reminder, ReminderKind, ReminderStatus

__all__ = [
    "Attendance",
    "AttendanceStatus",
    "Base",
    "BindingAttempt",
    "BindingCode",
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
    "PortraitScore",
    "Reminder",
    "ReminderKind",
    "ReminderStatus",
    "Role",
    "UTCDateTime",
    "record",
    "utcnow",
]
