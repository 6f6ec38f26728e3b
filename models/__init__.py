"""SQLAlchemy 2.0 models, one module per aggregate. Importing this package registers every table."""

from models.base import Base, Database, UTCDateTime, utcnow
from models.directive import Delivery, DeliveryRole, DeliveryStatus, Directive, DirectiveKind
from models.event import Event, record
from models.identity import BindingAttempt, BindingCode, Channel, ChannelIdentity
from models.inbound import InboundReceipt
from models.org import Organisation, OrgKind
from models.outbox import OutboxChannel, OutboxMessage, OutboxStatus
from models.person import Liaison, Membership, MembershipKind, OrgRole, Person, Role

__all__ = [
    "Base",
    "BindingAttempt",
    "BindingCode",
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
    "Liaison",
    "Membership",
    "MembershipKind",
    "OrgKind",
    "OrgRole",
    "Organisation",
    "OutboxChannel",
    "OutboxMessage",
    "OutboxStatus",
    "Person",
    "Role",
    "UTCDateTime",
    "record",
    "utcnow",
]
