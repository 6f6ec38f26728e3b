"""Correcting a directive or study item after it went out: 撤回 (withdraw) and 改期 (a new deadline).

Both lock the directive row first (FOR UPDATE), so they serialise with each other, with a member's
收到 (which reads the row FOR SHARE before recording anything: `models.directive.acknowledge`) and
with a reminder being fired (its rule reads the row FOR SHARE under the reminder's claim). Each
writes its event with what it changed, and the pushes it causes as outbox rows, worded by the
caller (`render`), in the caller's transaction. The item is never deleted: its history stays
complete for the one-file-per-matter export.

`withdraw` is the one place a directive or study item is undone: whatever else must be undone
with it (points earned from it) is one more call there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Integer, String, and_, exists, func, insert, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from models import points
from models.base import UTCDateTime
from models.cards import queue_update, update_payload, usable_cards
from models.directive import Delivery, DeliveryRole, DeliveryStatus, Directive, DirectiveKind, guard_directive
from models.event import record
from models.identity import Channel, ChannelIdentity
from models.outbox import OutboxChannel, OutboxMessage, OutboxStatus, content_key_of
from models.person import Person
from models.reminder import SkipReason, cancel_pending, replan_directive

MP_WINDOW = timedelta(hours=48)
UNREACHED = (DeliveryStatus.UNREACHABLE, DeliveryStatus.FAILED)


class Outcome(StrEnum):
    DONE = "done"
    ALREADY_WITHDRAWN = "already_withdrawn"
    SAME_TIME = "same_time"  # 改期 to the time it already has


@dataclass(frozen=True)
class Withdrawal:
    outcome: Outcome
    directive: Directive
    told: int = 0  # recipients the 【撤回】 push was queued for
    acknowledged: int = 0  # tasks acknowledged (or, for study, confirmed) before the withdrawal
    reminders_cancelled: int = 0


@dataclass(frozen=True)
class Rescheduling:
    outcome: Outcome
    old: datetime | None = None
    new: datetime | None = None
    told: int = 0
    cards_updated: int = 0  # WeCom cards of those already done, queued to show the new deadline


def lock_directive(session: Session, directive_id: int, *, share: bool = False) -> Directive | None:
    """The directive row, re-read under its guard for this transaction (`guard_directive`:
    exclusive, and the row FOR UPDATE; shared with `share`, for what only records on it)."""
    guard_directive(session, directive_id, exclusive=not share)
    stmt = select(Directive).where(Directive.id == directive_id).execution_options(populate_existing=True)
    return session.scalar(stmt if share else stmt.with_for_update())


def _done_column(directive: Directive):
    return Delivery.completed_at if directive.kind is DirectiveKind.STUDY else Delivery.acknowledged_at


def withdraw(session: Session, directive: Directive, *, by: Person, reason: str | None, now: datetime,
             render: Callable[[Directive], list[dict[str, Any]]], card_text: str | None = None) -> Withdrawal:
    """撤回: the item is marked withdrawn, its pending reminders are cancelled, and every recipient
    who was sent it (or will be: reachable, task or copy) gets `render(directive)`; the WeCom cards
    already sent have their button turned into `card_text`. Idempotent: a second call answers
    ALREADY_WITHDRAWN and changes nothing."""
    locked = lock_directive(session, directive.id)
    if locked.withdrawn_at is not None:
        return Withdrawal(Outcome.ALREADY_WITHDRAWN, locked)
    locked.withdrawn_at = now
    locked.withdraw_reason = reason or None
    session.flush()
    cancelled = cancel_pending(session, "directive", locked.id, now, SkipReason.WITHDRAWN)
    acknowledged = session.scalar(select(func.count()).where(
        Delivery.directive_id == locked.id, Delivery.role == DeliveryRole.TASK,
        _done_column(locked).is_not(None))) or 0
    reached = select(Delivery.person_id, Delivery.id).where(
        Delivery.directive_id == locked.id, Delivery.status.not_in(UNREACHED))
    told = tell(session, reached, render(locked), now=now, subject_type="delivery")
    cards = update_cards(session, locked, card_text, now) if card_text else 0
    record(session, f"{locked.kind.value}.withdrawn", actor=by, subject=locked, at=now, data={
        "reason": reason or "", "told": told, "acknowledged": acknowledged,
        "recipients": locked.recipient_count, "reminders_cancelled": cancelled, "cards_updated": cards,
    })
    points.reverse(session, "directive", locked.id, now)  # its points, by compensating entries
    return Withdrawal(Outcome.DONE, locked, told, acknowledged, cancelled)


def reschedule_deadline(session: Session, directive: Directive, *, by: Person, deadline: datetime, now: datetime,
                        render: Callable[[Directive, datetime | None, bool], dict[str, Any]],
                        card: Callable[[Directive, datetime | None], dict[str, Any]] | None = None,
                        done_card: Callable[[Directive, datetime | None], tuple[dict[str, Any], str]] | None = None,
                        ) -> Rescheduling:
    """改期 of a directive's or study item's deadline. Everyone who has not acknowledged (study:
    confirmed) is told once, with `render(directive, old, False)`, or on WeCom with a fresh card
    `card(directive, old)` to tap; those who have are told only when the deadline moved earlier,
    with `render(directive, old, True)`, and on WeCom their card is replaced by `done_card`'s
    (their most recent card whose code is unspent and young enough). The reminder rows of the old deadline are cancelled and new ones
    planned from the new one."""
    locked = lock_directive(session, directive.id)
    if locked.withdrawn_at is not None:
        return Rescheduling(Outcome.ALREADY_WITHDRAWN, locked.deadline)
    old = locked.deadline
    if old == deadline:
        return Rescheduling(Outcome.SAME_TIME, old, deadline)
    locked.deadline = deadline
    session.flush()
    replanned = replan_directive(session, locked, now)
    done = _done_column(locked)
    reachable = and_(Delivery.directive_id == locked.id, Delivery.status.not_in(UNREACHED))
    owed = and_(reachable, done.is_(None))
    task = Delivery.role == DeliveryRole.TASK
    told = tell(session, select(Delivery.person_id, Delivery.id).where(owed, task),
                render(locked, old, False), now=now, subject_type="delivery",
                on_wecom=card(locked, old) if card else None)
    # 抄送 copies are not tasks: told in words, never sent a card to acknowledge.
    told += tell(session, select(Delivery.person_id, Delivery.id).where(owed, ~task),
                 render(locked, old, False), now=now, subject_type="delivery")
    earlier = old is None or deadline < old
    if earlier:
        told += tell(session, select(Delivery.person_id, Delivery.id).where(reachable, done.is_not(None)),
                     render(locked, old, True), now=now, subject_type="delivery")
    cards = 0
    if done_card:  # those done see the new deadline on their most recent card, greyed out as `label`
        card_now, label = done_card(locked, old)
        cards = _queue_card_updates(session, locked, now, label, purpose="rescheduled", latest_only=True,
                                    done=done.is_not(None), card=card_now)
    record(session, f"{locked.kind.value}.rescheduled", actor=by, subject=locked, at=now, data={
        "from": old.isoformat() if old else None, "to": deadline.isoformat(), "told": told,
        "earlier": earlier, "reminders": replanned, "cards_updated": cards,
    })
    return Rescheduling(Outcome.DONE, old, deadline, told, cards)


def update_cards(session: Session, directive: Directive, text: str, now: datetime) -> int:
    """Queue an update of every WeCom card of this directive that can still be updated: each unspent
    send code younger than 72 hours, once, for the people of its send; their button becomes `text`.
    Returns the cards queued."""
    return _queue_card_updates(session, directive, now, text, purpose="withdrawn", latest_only=False)


def _queue_card_updates(session: Session, directive: Directive, now: datetime, text: str, *, purpose: str,
                        latest_only: bool, done=None, card: dict[str, Any] | None = None) -> int:
    """One card update per usable code of the directive's cards (`models.cards.usable_cards`): the
    button becomes `text`, the whole card `card` when given. A code updates its send's cards in
    one call, so one content per code, the same for everyone it reaches."""
    queued = 0
    for code, people in usable_cards(session, directive.id, now, latest_only=latest_only, done=done).items():
        queued += queue_update(session, update_payload(code, text, card), people, at=now, purpose=purpose,
                               subject=("directive", directive.id))
    return queued


def tell(session: Session, people: Select, payload: dict[str, Any] | list[dict[str, Any]], *, now: datetime,
         subject_type: str, on_wecom: dict[str, Any] | None = None) -> int:
    """Queue `payload` to each person of `people` (a SELECT of person_id, subject_id), once each,
    on their best channel: WeCom (`on_wecom` there when given, e.g. a card), else an Official
    Account follower seen within 48 hours. A list is the parts of a long text: each person gets
    every part, each held behind their part before it. One INSERT … SELECT per channel (and, for
    the later parts, one INSERT of the rows read back); returns how many people were told."""
    payloads = payload if isinstance(payload, list) else [payload]
    chosen = people.subquery()
    total = 0
    for channel in (Channel.WECOM, Channel.MP):
        wanted = ChannelIdentity.channel == channel
        if channel is Channel.MP:
            wanted &= ChannelIdentity.last_inbound_at >= now - MP_WINDOW
        ident = (select(ChannelIdentity.person_id, func.min(ChannelIdentity.external_id).label("external_id"))
                 .where(wanted).group_by(ChannelIdentity.person_id).subquery())
        first = (select(chosen.c.person_id, func.min(chosen.c.id).label("subject_id"))
                 .group_by(chosen.c.person_id).subquery())
        parts = [on_wecom] if channel is Channel.WECOM and on_wecom is not None else payloads
        queue = insert(OutboxMessage).from_select(
            ["channel", "recipient", "person_id", "payload", "content_key", "status", "attempts",
             "next_attempt_at", "created_at", "subject_type", "subject_id"],
            _rows(channel, ident, first, parts[0], now, subject_type))
        if len(parts) == 1:  # the usual case, and the fan-out's: no ids read back
            told = _rows(channel, ident, first, parts[0], now, subject_type).subquery()
            total += session.scalar(select(func.count()).select_from(told)) or 0
            session.execute(queue)
            continue
        table = OutboxMessage.__table__
        back = (table.c.id, table.c.recipient, table.c.person_id, table.c.subject_id)
        before = session.execute(queue.returning(*back)).all()
        total += len(before)
        outbox_channel = OutboxChannel(channel.value)
        for part in parts[1:]:  # each part HELD behind the same person's part before it
            if not before:
                break
            key = content_key_of(outbox_channel, part)
            before = session.execute(insert(table).returning(*back, sort_by_parameter_order=True), [
                {"channel": outbox_channel, "recipient": r.recipient, "person_id": r.person_id, "payload": part,
                 "content_key": key, "status": OutboxStatus.HELD, "attempts": 0, "next_attempt_at": now,
                 "created_at": now, "subject_type": subject_type, "subject_id": r.subject_id, "after_id": r.id}
                for r in before]).all()
    return total


def _rows(channel: Channel, ident, first, payload: dict[str, Any], now: datetime, subject_type: str) -> Select:
    """The outbox rows of `tell` for one channel and one payload, as a SELECT."""
    outbox_channel = OutboxChannel(channel.value)
    rows = (
        select(literal(outbox_channel.value, String), ident.c.external_id, first.c.person_id,
               literal(payload, JSON), literal(content_key_of(outbox_channel, payload), String),
               literal(OutboxStatus.PENDING.value, String), literal(0, Integer),
               literal(now, UTCDateTime), literal(now, UTCDateTime), literal(subject_type, String),
               first.c.subject_id)
        .join(ident, ident.c.person_id == first.c.person_id)
    )
    if channel is Channel.MP:
        rows = rows.where(~exists().where(ChannelIdentity.person_id == first.c.person_id,
                                          ChannelIdentity.channel == Channel.WECOM))
    return rows
