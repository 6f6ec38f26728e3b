"""Directives straight to every branch (扁平化): one row per directive, one Delivery per recipient."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

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
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, relationship
from sqlalchemy.sql import Select, Update

from config.points_rules import RuleName
from models import points
from models.base import Base, UTCDateTime, str_enum, utcnow
from models.event import record
from models.identity import Channel, ChannelIdentity
from models.numbers import ItemKind, numbered
from models.org import BRANCH_KINDS, Organisation, OrgKind, subtree
from models.outbox import OutboxChannel, OutboxMessage, OutboxStatus, content_key_of
from models.person import COMMITTEE_ROLES, Membership, MembershipKind, OrgRole, Person
from models.reminder import schedule_directive

MP_WINDOW_HOURS = 48


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    COMPLETED = "completed"
    FAILED = "failed"
    UNREACHABLE = "unreachable"

    @property
    def is_acknowledged(self) -> bool:
        return self in (DeliveryStatus.ACKNOWLEDGED, DeliveryStatus.COMPLETED)


class DeliveryRole(StrEnum):
    TASK = "task"  # a member or branch secretary who must acknowledge
    COPY = "copy"  # 抄送: a secretary of an intermediate organisation, who watches progress


class DirectiveKind(StrEnum):
    DIRECTIVE = "directive"  # a task to acknowledge (收到) and report done (完成)
    STUDY = "study"  # study material to confirm (已学), with an optional reflection


class Directive(Base):
    """Anything pushed straight to every member beneath an organisation and tracked per person."""

    __tablename__ = "directive"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)  # the 编号 people type, from models.numbers
    kind: Mapped[DirectiveKind] = mapped_column(str_enum(DirectiveKind, 12), default=DirectiveKind.DIRECTIVE,
                                                server_default=DirectiveKind.DIRECTIVE.value)
    link: Mapped[str | None] = mapped_column(String(1000))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recipient_count: Mapped[int] = mapped_column(default=0)
    last_nudged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # 撤回: set once by `models.lifecycle.withdraw`; the item stays, with its whole history.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdraw_reason: Mapped[str | None] = mapped_column(Text)

    organisation: Mapped[Organisation] = relationship()
    issuer: Mapped[Person] = relationship()


numbered(Directive, lambda d: ItemKind.STUDY if d.kind is DirectiveKind.STUDY else ItemKind.DIRECTIVE)


class Delivery(Base):
    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("directive_id", "person_id"),
        Index("ix_delivery_person_status", "person_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The unique (directive_id, person_id) index serves lookups by directive. person_id and
    # organisation_id carry no foreign-key constraint: both are copied from existing rows by the
    # same INSERT … SELECT that creates the deliveries, people and organisations are never
    # deleted (the roster reports leavers instead), and checking two constraints per row was
    # half the cost of a 100,000-member 发布.
    directive_id: Mapped[int] = mapped_column(ForeignKey("directive.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column()
    # The organisation the person is reached through: their branch for tasks, the led org for copies.
    organisation_id: Mapped[int] = mapped_column()
    role: Mapped[DeliveryRole] = mapped_column(str_enum(DeliveryRole, 10), default=DeliveryRole.TASK)
    channel: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus, 15), default=DeliveryStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    late: Mapped[bool] = mapped_column(default=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)

    directive: Mapped[Directive] = relationship()
    person: Mapped[Person] = relationship(primaryjoin="foreign(Delivery.person_id) == Person.id", viewonly=True)
    organisation: Mapped[Organisation] = relationship(
        primaryjoin="foreign(Delivery.organisation_id) == Organisation.id", viewonly=True)


class UnreachableReason(StrEnum):
    """Why a delivery reaches nobody, stored as its `reason` (`bot.texts.directive.delivery_reason`
    words it). A failed send stores the channel's own Chinese reason there instead."""

    MP_WINDOW = "mp_window"  # an Official Account follower silent for 48 h, and no template message
    NO_CHANNEL = "no_channel"  # bound to neither WeCom nor the Official Account
    LEFT = "left"  # transferred out (models.leaving): closed, and left out of the counts


def issue(
    session: Session,
    *,
    org: Organisation,
    issuer: Person,
    title: str,
    body: str,
    deadline: datetime | None,
    now: datetime,
    render: callable,
    kind: DirectiveKind = DirectiveKind.DIRECTIVE,
    link: str | None = None,
    targets: list[Organisation] | None = None,
    committees_only: bool = False,
) -> Directive:
    """Create the directive, its deliveries and their outbox rows in one transaction.

    Task deliveries and outbox rows are built inside the database (INSERT … SELECT), so a
    directive to 100,000 members never passes their rows through Python. `render(directive,
    role, channel)` gives the neutral payload for one kind of recipient; the content is the same
    for everyone of a kind, so the worker can send it in large batches. `targets` (organisations
    within `org`) narrows the recipients to those parts; `committees_only` to the branch
    committees (书记、副书记、委员) beneath."""
    parts = targets or [org]
    directive = Directive(organisation_id=org.id, issuer_id=issuer.id, title=title, body=body,
                          deadline=deadline, created_at=now, kind=kind, link=link)
    session.add(directive)
    session.flush()
    _insert_task_deliveries(session, directive, parts, now, committees_only=committees_only)
    copies = _insert_copies(session, directive, org, issuer, now, parts=parts)

    # One pass over the new deliveries gives the counts and the kinds of content to render.
    kinds = session.execute(
        select(Delivery.role, Delivery.channel, Delivery.status, func.count())
        .where(Delivery.directive_id == directive.id)
        .group_by(Delivery.role, Delivery.channel, Delivery.status)
    ).all()
    directive.recipient_count = sum(n for role, _, _, n in kinds if role is DeliveryRole.TASK)
    unreachable = sum(n for _, _, status, n in kinds if status is DeliveryStatus.UNREACHABLE)

    # One INSERT … SELECT per kind of content.
    for role, channel in sorted({(role, channel) for role, channel, _, _ in kinds if channel is not None}):
        payload = render(directive, DeliveryRole(role), channel)
        _enqueue_deliveries(session, directive.id, DeliveryRole(role), Channel(channel), payload, now)
    for group_org in subtree(session, org):
        if group_org.webhook_key and not committees_only and any(group_org.is_within(p) for p in parts):
            payload = render(directive, DeliveryRole.COPY, OutboxChannel.WEBHOOK.value)
            session.add(OutboxMessage(
                channel=OutboxChannel.WEBHOOK, recipient=group_org.webhook_key, payload=payload,
                content_key=content_key_of(OutboxChannel.WEBHOOK, payload), status=OutboxStatus.PENDING,
                attempts=0, next_attempt_at=now, created_at=now, subject_type="directive", subject_id=directive.id,
            ))
    record(session, f"{kind.value}.issued", actor=issuer, subject=directive, at=now,
           data={"organisation": org.path, "title": title, "deadline": deadline.isoformat() if deadline else None,
                 "recipients": directive.recipient_count, "copies": copies, "unreachable": unreachable,
                 "targets": [p.path for p in parts] if targets else None, "committees_only": committees_only})
    schedule_directive(session, directive, now)  # reminder rows, in the same transaction
    return directive


def _in_subtree(org: Organisation, table=Organisation):
    return or_(table.id == org.id, table.path.startswith(org.path + "/", autoescape=True))


def _in_any(parts: list[Organisation], table=Organisation):
    return or_(*(_in_subtree(p, table) for p in parts))


def _insert_task_deliveries(session: Session, directive: Directive, parts: list[Organisation], now: datetime,
                            *, committees_only: bool = False) -> None:
    """Every member and secretary of every branch under `parts`, each person once: the home branch
    is preferred over a temporary one; a 党小组 member is counted in the group's branch. With
    `committees_only`, the branch committees alone."""
    parent = aliased(Organisation)
    branch_id = case(
        (Organisation.kind.in_(BRANCH_KINDS), Organisation.id),
        (and_(Organisation.kind == OrgKind.GROUP, parent.kind.in_(BRANCH_KINDS)), Organisation.parent_id),
        else_=None,
    )
    members = (
        select(Membership.person_id.label("person_id"), branch_id.label("branch_id"),
               case((Membership.kind == MembershipKind.HOME, 0), else_=1).label("priority"))
        .join(Organisation, Organisation.id == Membership.organisation_id)
        .outerjoin(parent, parent.id == Organisation.parent_id)
        .where(_in_any(parts))
    )
    # A branch secretary without a membership row is still reached through that branch.
    leaders = (
        select(OrgRole.person_id.label("person_id"), Organisation.id.label("branch_id"),
               literal(2, Integer).label("priority"))
        .join(Organisation, Organisation.id == OrgRole.organisation_id)
        .where(_in_any(parts), Organisation.kind.in_(BRANCH_KINDS), OrgRole.role.in_(COMMITTEE_ROLES))
    )
    candidates = (leaders if committees_only else union_all(members, leaders)).subquery()
    ranked = (
        select(candidates.c.person_id, candidates.c.branch_id,
               func.row_number().over(partition_by=candidates.c.person_id,
                                      order_by=(candidates.c.priority, candidates.c.branch_id)).label("rank"))
        .where(candidates.c.branch_id.is_not(None))
        .subquery()
    )
    wecom = _identity_people(Channel.WECOM)
    mp_fresh = _identity_people(Channel.MP, since=now - timedelta(hours=MP_WINDOW_HOURS))
    mp_any = _identity_people(Channel.MP)
    channel = case((wecom.c.person_id.is_not(None), Channel.WECOM.value),
                   (mp_fresh.c.person_id.is_not(None), Channel.MP.value), else_=None)
    rows = (
        select(
            literal(directive.id, Integer), ranked.c.person_id, ranked.c.branch_id,
            literal(DeliveryRole.TASK.value, String), channel,
            case((channel.is_(None), DeliveryStatus.UNREACHABLE.value), else_=DeliveryStatus.PENDING.value),
            case((channel.is_not(None), None), (mp_any.c.person_id.is_not(None), UnreachableReason.MP_WINDOW.value),
                 else_=UnreachableReason.NO_CHANNEL.value),
        )
        .outerjoin(wecom, wecom.c.person_id == ranked.c.person_id)
        .outerjoin(mp_fresh, mp_fresh.c.person_id == ranked.c.person_id)
        .outerjoin(mp_any, mp_any.c.person_id == ranked.c.person_id)
        .where(ranked.c.rank == 1)
    )
    session.execute(insert(Delivery).from_select(
        ["directive_id", "person_id", "organisation_id", "role", "channel", "status", "reason"], rows))


def _identity_people(channel: Channel, since: datetime | None = None):
    wanted = ChannelIdentity.channel == channel
    if since is not None:
        wanted &= ChannelIdentity.last_inbound_at >= since
    return select(ChannelIdentity.person_id).where(wanted).group_by(ChannelIdentity.person_id).subquery()


def _insert_copies(session: Session, directive: Directive, org: Organisation, issuer: Person, now: datetime,
                   *, parts: list[Organisation] | None = None) -> int:
    """抄送: secretaries of the organisations between the issuer and the branches get a copy
    pointing at progress, not a task (unless they are already task recipients, or the issuer).
    A targeted directive copies only the organisations on the way to its parts and within them."""
    parts = parts or [org]
    wanted = _in_subtree(org)
    if parts != [org]:
        wanted = Organisation.id.in_([o.id for o in subtree(session, org)
                                      if any(p.is_within(o) or o.is_within(p) for p in parts)])
    leaders = session.execute(
        select(OrgRole.person_id, func.min(OrgRole.organisation_id))
        .join(Organisation, Organisation.id == OrgRole.organisation_id)
        .where(wanted, Organisation.kind.not_in(BRANCH_KINDS | {OrgKind.GROUP}),
               OrgRole.role.in_(COMMITTEE_ROLES), OrgRole.person_id != issuer.id)
        .group_by(OrgRole.person_id)
    ).all()
    if not leaders:
        return 0
    tasked = set(session.scalars(select(Delivery.person_id).where(
        Delivery.directive_id == directive.id, Delivery.person_id.in_([p for p, _ in leaders]))))
    identities = _reachable_identities(session, [p for p, _ in leaders], now)
    rows = []
    for person_id, org_id in leaders:
        if person_id in tasked:
            continue
        channel, reason = _channel_for(identities.get(person_id, {}))
        rows.append({"directive_id": directive.id, "person_id": person_id, "organisation_id": org_id,
                     "role": DeliveryRole.COPY, "channel": channel,
                     "status": DeliveryStatus.PENDING if channel else DeliveryStatus.UNREACHABLE,
                     "reason": reason.value if reason else None})
    if rows:
        session.execute(insert(Delivery.__table__), rows)
    return len(rows)


def _reachable_identities(session: Session, person_ids: list[int], now: datetime) -> dict[int, dict[str, str]]:
    """person → {channel: external id} for the channels a push can use now. An Official Account
    follower is reachable by customer-service message only within 48 h of their last message."""
    window_start = now - timedelta(hours=MP_WINDOW_HOURS)
    found: dict[int, dict[str, str]] = {}
    rows = session.execute(
        select(ChannelIdentity.person_id, ChannelIdentity.channel, ChannelIdentity.external_id,
               ChannelIdentity.last_inbound_at).where(ChannelIdentity.person_id.in_(person_ids))
    )
    for person_id, channel, external_id, last_inbound_at in rows:
        if channel is Channel.MP and (last_inbound_at is None or last_inbound_at < window_start):
            found.setdefault(person_id, {}).setdefault("mp_stale", external_id)
            continue
        found.setdefault(person_id, {}).setdefault(channel.value, external_id)
    return found


def _channel_for(idents: dict[str, str]) -> tuple[str | None, UnreachableReason | None]:
    if Channel.WECOM.value in idents:
        return Channel.WECOM.value, None
    if Channel.MP.value in idents:
        return Channel.MP.value, None
    if "mp_stale" in idents:
        return None, UnreachableReason.MP_WINDOW
    return None, UnreachableReason.NO_CHANNEL


def _enqueue_deliveries(session: Session, directive_id: int, role: DeliveryRole, channel: Channel,
                        payload: dict, now: datetime) -> None:
    """Outbox rows for every pending delivery of one kind, written by one INSERT … SELECT."""
    wanted = ChannelIdentity.channel == channel
    if channel is Channel.MP:
        wanted &= ChannelIdentity.last_inbound_at >= now - timedelta(hours=MP_WINDOW_HOURS)
    ident = (
        select(ChannelIdentity.person_id, func.min(ChannelIdentity.external_id).label("external_id"))
        .where(wanted)
        .group_by(ChannelIdentity.person_id)
        .subquery()
    )
    outbox_channel = OutboxChannel(channel.value)
    rows = (
        select(
            literal(outbox_channel.value, String), ident.c.external_id, Delivery.person_id,
            literal(payload, JSON), literal(content_key_of(outbox_channel, payload), String),
            literal(OutboxStatus.PENDING.value, String), literal(0, Integer),
            literal(now, UTCDateTime), literal(now, UTCDateTime),
            literal("delivery", String), Delivery.id,
        )
        .join(ident, ident.c.person_id == Delivery.person_id)
        .where(Delivery.directive_id == directive_id, Delivery.role == role, Delivery.channel == channel.value,
               Delivery.status == DeliveryStatus.PENDING)
    )
    session.execute(insert(OutboxMessage).from_select(
        ["channel", "recipient", "person_id", "payload", "content_key", "status", "attempts",
         "next_attempt_at", "created_at", "subject_type", "subject_id"], rows))


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def open_items(session: Session, person_id: int, kind: DirectiveKind, *,
               until_completed: bool = False) -> list[tuple[Directive, Delivery]]:
    """What this person still owes of one kind, soonest deadline first: directives not yet
    acknowledged (not yet reported done, with `until_completed`), study items not yet confirmed."""
    done = kind is DirectiveKind.STUDY or until_completed
    pending = Delivery.completed_at if done else Delivery.acknowledged_at
    return list(session.execute(
        select(Directive, Delivery).join(Delivery, Delivery.directive_id == Directive.id)
        .where(Delivery.person_id == person_id, Delivery.role == DeliveryRole.TASK,
               Directive.kind == kind, pending.is_(None), Directive.withdrawn_at.is_(None))
        .order_by(Directive.deadline.is_(None), Directive.deadline, Directive.id)
    ).all())


def owed_select(kind: DirectiveKind) -> Select:
    """SELECT source, number, title, due of what a person (`:person_id`) still owes of one kind: the
    directive rows of 待办's single query."""
    pending = Delivery.completed_at if kind is DirectiveKind.STUDY else Delivery.acknowledged_at
    return (
        select(literal_column(f"'{kind.value}'", String).label("source"), Directive.number, Directive.title,
               Directive.deadline.label("due"))
        .join(Delivery, Delivery.directive_id == Directive.id)
        .where(Delivery.person_id == bindparam("person_id"), Delivery.role == DeliveryRole.TASK,
               Directive.kind == kind, pending.is_(None), Directive.withdrawn_at.is_(None))
    )


class AckResult(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    ALREADY = "already"
    NOT_RECIPIENT = "not_recipient"
    NOTE_ADDED = "note_added"  # a second 完成 with a note: appended to the first
    WITHDRAWN = "withdrawn"  # 撤回 before this acknowledgement: nothing recorded


@dataclass(frozen=True)
class Acknowledgement:
    """What `acknowledge` found and did: the directive as the reply names it, and the person's task
    on it (`delivery_id` None when they are not a recipient)."""

    result: AckResult
    directive_id: int
    number: int  # the directive's 编号, as the reply shows it
    title: str
    delivery_id: int | None = None
    acknowledged_at: datetime | None = None
    late: bool = False
    withdrawn_at: datetime | None = None


# The advisory-lock class of a directive's guard (pg_advisory_xact_lock(class, id)): the two-int
# key space, apart from the roster import's one-int key.
DIRECTIVE_GUARD = 0x5A54


def guard_directive(session: Session, directive_id: int, *, exclusive: bool) -> None:
    """Serialise what records on a directive (`收到`, 完成, a reminder's tick: shared) with what
    changes it for everyone (撤回, 改期: exclusive), for the rest of the transaction. On
    PostgreSQL a transaction-scoped advisory lock: shared holders cost no row lock, so a burst of
    收到 on one directive writes no lock to its row (FOR SHARE by many at once makes PostgreSQL
    build a multixact per locker). Taken before reading the directive, so the statements after it
    see a 撤回 that committed while it waited. SQLite has one writer at a time: nothing to take."""
    if session.get_bind().dialect.name != "postgresql":
        return
    lock = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
    session.execute(select(lock(DIRECTIVE_GUARD, directive_id)))


@cache
def _ack_update() -> Update:
    """The first acknowledgement of one person's task, as one compare-and-set that also returns what
    the reply needs; the directive is read by correlated subqueries (SQLite's RETURNING may not name
    an UPDATE's FROM table). `收到` comes in bursts after every broadcast: the statement is built once."""
    row, directive = Delivery.__table__.c, Directive.__table__.c
    at = bindparam("at", type_=UTCDateTime)
    of_this = directive.id == row.directive_id
    deadline = select(directive.deadline).where(of_this).scalar_subquery()
    return (
        update(Delivery.__table__)
        .where(row.directive_id == bindparam("task_directive"), row.person_id == bindparam("task_person"),
               row.role == DeliveryRole.TASK.value, row.acknowledged_at.is_(None),
               select(directive.withdrawn_at).where(of_this).scalar_subquery().is_(None))
        .values(acknowledged_at=at,
                late=case((deadline < at, True), else_=False),  # no deadline: NULL, so not late
                status=case((row.status == DeliveryStatus.COMPLETED.value, row.status),
                            else_=DeliveryStatus.ACKNOWLEDGED.value))
        .returning(row.id, select(directive.number).where(of_this).scalar_subquery(),
                   select(directive.title).where(of_this).scalar_subquery(), row.late,
                   select(directive.kind).where(of_this).scalar_subquery())
    )


@cache
def _task_lookup() -> Select:
    """The directive and, when the person has one, their task on it (built once, like `_ack_update`)."""
    task = and_(Delivery.directive_id == Directive.id, Delivery.person_id == bindparam("task_person"),
                Delivery.role == DeliveryRole.TASK)
    return (select(Directive.number, Directive.title, Directive.withdrawn_at, Delivery.id, Delivery.acknowledged_at,
                   Delivery.late)
            .select_from(Directive).outerjoin(Delivery, task).where(Directive.id == bindparam("task_directive")))


def acknowledge(session: Session, directive_id: int, person_id: int, *, at: datetime,
                via: str = "text") -> Acknowledgement | None:
    """Record the person's acknowledgement of directive `directive_id`; None when there is no such
    directive. Idempotent: a second one answers with the first's time. Two concurrent ones record
    one, the first: the compare-and-set decides (row locks on PostgreSQL, one writer on SQLite)."""
    params = {"task_directive": directive_id, "task_person": person_id, "at": at}
    guard_directive(session, directive_id, exclusive=False)
    won = session.execute(_ack_update(), params).first()
    if won is not None:
        delivery_id, number, title, late, kind = won
        record(session, "delivery.acknowledged", actor_id=person_id, subject_type="delivery", subject_id=delivery_id,
               at=at, data={"directive_id": directive_id, "late": bool(late), "via": via})
        if not late and kind == DirectiveKind.DIRECTIVE.value:
            points.award(session, person_id, RuleName.DIRECTIVE_ACKNOWLEDGED, "directive", directive_id, at=at)
        return Acknowledgement(AckResult.ACKNOWLEDGED, directive_id, number, title, delivery_id, at, bool(late))
    found = session.execute(_task_lookup(), params).first()
    if found is None:
        return None
    number, title, withdrawn_at, delivery_id, acknowledged_at, late = found
    if withdrawn_at is not None:
        return Acknowledgement(AckResult.WITHDRAWN, directive_id, number, title, withdrawn_at=withdrawn_at)
    if delivery_id is None:
        return Acknowledgement(AckResult.NOT_RECIPIENT, directive_id, number, title)
    return Acknowledgement(AckResult.ALREADY, directive_id, number, title, delivery_id, acknowledged_at, bool(late))


def complete(session: Session, directive: Directive, person: Person, *, at: datetime,
             note: str | None, addition: str | None = None) -> tuple[AckResult, Delivery | None]:
    """Report the task done (回执); it acknowledges too when not yet acknowledged. Reported again
    with a note, `addition` (the note as the caller words it, with its time) is appended to the
    first, and a `delivery.note_added` event records the note."""
    ack = acknowledge(session, directive.id, person.id, at=at, via="complete")
    if ack is not None and ack.result is AckResult.WITHDRAWN:
        return AckResult.WITHDRAWN, None
    if ack is None or ack.delivery_id is None:
        return AckResult.NOT_RECIPIENT, None
    # Loaded after the acknowledgement's UPDATE (and locked): the identity map's copy may predate it.
    delivery = session.get(Delivery, ack.delivery_id, with_for_update=True, populate_existing=True)
    if delivery.completed_at is not None:
        if not note:
            return AckResult.ALREADY, delivery
        added = (addition or note).strip()
        delivery.note = f"{delivery.note}\n{added}" if delivery.note else added
        kind = "study.note_added" if directive.kind is DirectiveKind.STUDY else "delivery.note_added"
        record(session, kind, actor=person, subject=delivery, at=at, data={"directive_id": directive.id, "note": note})
        return AckResult.NOTE_ADDED, delivery
    delivery.completed_at = at
    delivery.note = note or None
    delivery.status = DeliveryStatus.COMPLETED
    kind = "study.confirmed" if directive.kind is DirectiveKind.STUDY else "delivery.completed"
    record(session, kind, actor=person, subject=delivery, at=at,
           data={"directive_id": directive.id, "note": note or ""})
    study = directive.kind is DirectiveKind.STUDY
    points.award(session, person.id, RuleName.STUDY_CONFIRMED if study else RuleName.DIRECTIVE_COMPLETED,
                 "directive", directive.id, at=at)
    return AckResult.ACKNOWLEDGED, delivery


def mark_sent(session: Session, delivery_ids: list[int], at: datetime) -> None:
    """The channel accepted these deliveries' pushes: pending → sent, in bulk; one `delivery.sent`
    event per directive lists the deliveries that moved."""
    _bulk_events(session, "delivery.sent", delivery_ids, at, {},
                 only=[DeliveryStatus.PENDING], values={"status": DeliveryStatus.SENT, "sent_at": at})


def mark_failed(session: Session, delivery_ids: list[int], reason: str, at: datetime) -> None:
    """The channel refused these deliveries for good (e.g. not in the app's visible range); one
    `delivery.failed` event per directive lists them with the reason."""
    _bulk_events(session, "delivery.failed", delivery_ids, at, {"reason": reason},
                 only=[DeliveryStatus.PENDING, DeliveryStatus.SENT],
                 values={"status": DeliveryStatus.FAILED, "reason": reason})


def _bulk_events(session: Session, kind: str, delivery_ids: list[int], at: datetime, extra: dict, *,
                 only: list[DeliveryStatus], values: dict) -> None:
    """Move the deliveries still in one of the `only` statuses (Core UPDATE … RETURNING by id, no
    ORM objects), then write ONE event per directive, not one per delivery (a 100k fan-out is
    marked 5,000 rows at a time): subject the directive, data {"deliveries": [ids…], "count": n,
    **extra}. A delivery's transitions are read back from its directive's events."""
    from sqlalchemy import ARRAY, Integer, any_, bindparam, insert, update

    from models.event import Event

    table = Delivery.__table__
    postgres = session.get_bind().dialect.name == "postgresql"
    moved: dict[int, list[int]] = {}
    ordered = sorted(set(delivery_ids))
    for chunk in (ordered[i:i + 5000] for i in range(0, len(ordered), 5000)):
        # One array parameter on PostgreSQL: an IN list of 5,000 is rendered and bound per call.
        wanted = table.c.id == any_(bindparam(None, chunk, type_=ARRAY(Integer))) if postgres else table.c.id.in_(chunk)
        for delivery_id, directive_id in session.execute(
            update(table).where(wanted, table.c.status.in_(only)).values(**values)
            .returning(table.c.id, table.c.directive_id)
        ):
            moved.setdefault(directive_id, []).append(delivery_id)
    if moved:
        session.execute(insert(Event.__table__), [
            {"at": at, "actor_id": None, "subject_type": "directive", "subject_id": directive_id, "kind": kind,
             "data": {"deliveries": sorted(ids), "count": len(ids), **extra}}
            for directive_id, ids in sorted(moved.items())
        ])
