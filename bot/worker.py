"""The outbox drain: claim due rows, send them in batches through the channels, mark the outcome.

One round (`drain_once`):
1. Claim, in its own transaction, with one UPDATE … RETURNING: due rows (PENDING with
   next_attempt_at <= now, or SENDING whose lease expired), oldest first, are locked with
   `FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of workers share the queue without
   claiming a row twice, and set to SENDING with next_attempt_at = now + LEASE (the lease) and
   attempts + 1.
2. Fix the round's calls before making any (`prepare`, one transaction): per-member limits are
   applied to fresh rows (WeCom: 30 a minute and 1,000 an hour per member per app; what would
   exceed them is deferred to the next window and counted), then rows with the same (channel,
   content_key) are chunked up to the channel's per-call limit (1,000 userids on WeCom, one
   openid on the Official Account, one robot per webhook call) and each call's send key is
   written to its rows: the intent, recorded before anything is sent. A card update is one row
   listing its people (models/cards.py) and one call of its own.
3. Send, outside any transaction, under a per-minute budget shared by all processes through the
   store (a call over budget is released for the next window). A channel whose credentials the
   server refused is skipped, its rows released untried, until the hour is up.
4. Mark, in new transactions, with bulk UPDATEs by id: SENT (sent_at), FAILED (last_error, an
   event row), or back to PENDING with exponential back-off and jitter; after MAX_ATTEMPTS, FAILED.
   Deliveries record their own transitions (models.directive.mark_sent / mark_failed: one event
   per directive and mark, listing the deliveries), not one event row per push.

Crash safety. Nothing is lost: a worker that dies between send and mark leaves its rows SENDING;
when the lease expires another round reclaims them. Nothing arrives twice: a row keeps the send
key of the call it was handed to until the outcome is known. A row whose key is still set (the
worker died, the call timed out or got an HTTP 5xx) may have arrived, so it is never put into a
new call: on WeCom it is resent as that same call (same key, so the same task_id and
byte-identical content) within the duplicate-check interval, where WeCom drops it for whoever got
it and refuses a card whose task_id was taken, or a card update whose code was spent (either
proves the first call arrived: marked sent; for an update only because its row is its code's one
user, so the earlier call was this same one, with the same people);
later, it is failed with the reason instead. The Official Account and the group robot have no
duplicate check: there such a row is failed, never resent (at most once; the reason is shown).
A call refused with an errcode certainly sent nothing: its rows lose their key and go into new
calls. Rows reclaimed MAX_ATTEMPTS times (a message that kills the worker) are failed, not resent.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ARRAY, Integer, any_, bindparam, case, func, insert, select, union_all, update

from bot.channels.base import ChannelUnavailable, OutboundChannel, SendResult, TransientSendError
from bot.runtime import Runtime
from models.cards import update_people
from models.event import Event
from models.outbox import OutboxChannel, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 12
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 600.0
DEFAULT_CLAIM_LIMIT = 5000  # rows per round: five full WeCom calls
FLUSH_EVERY_CALLS = 20  # mark outcomes at least this often, so a crash resends little
ROUND_SECONDS = LEASE.total_seconds() / 2  # stop sending well before our lease runs out
ID_CHUNK = 5000  # ids per UPDATE … WHERE id IN (…)
# WeCom: each app may send one member at most 30 messages a minute and 1,000 an hour; the excess
# is dropped without an error (developer.work.weixin.qq.com/document/path/90312).
MEMBER_PER_MINUTE = 30
MEMBER_PER_HOUR = 1000
# Shown to secretaries with the delivery (Chinese): why a row was not resent.
REASON_UNKNOWN_OUTCOME = "发送中断，无法确认是否送达；为免重复，未重发"
# Stored as the row's last_error and, for a delivery, as its reason (shown in 进度): in words.
CHANNEL_NAMES = {OutboxChannel.WECOM: "企业微信", OutboxChannel.MP: "公众号", OutboxChannel.WEBHOOK: "群机器人"}


def reason_not_configured(channel: OutboxChannel) -> str:
    return f"{CHANNEL_NAMES[channel]}发送通道未配置，请联系管理员"


def reason_gave_up(attempts: int, reason: str) -> str:
    return f"已重试 {attempts} 次仍未发出：{reason}"


REASON_UNEXPECTED = "发送时程序出错，已记录，请联系管理员"
REASON_UNKNOWN_OUTCOME_LATE = "发送中断且已超过重复检查时限，无法确认是否送达；为免重复，未重发"


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    channel: OutboxChannel
    recipient: str
    content_key: str
    attempts: int  # including the attempt this claim starts
    subject_type: str | None
    subject_id: int | None
    send_key: str | None = None  # set: an earlier attempt may have delivered it (see module doc)
    send_started_at: datetime | None = None


@dataclass
class Batch:
    """One API call's worth of rows, fixed (and its send key recorded) before the call."""

    channel: OutboxChannel
    content_key: str
    send_key: str
    rows: list[ClaimedRow]
    resend: bool  # the rows were handed to this same attempt before; the outcome was never recorded


@dataclass
class Outcomes:
    """What happened to claimed rows, waiting to be written in one transaction."""

    sent: list[ClaimedRow] = field(default_factory=list)
    failed: list[tuple[ClaimedRow, str]] = field(default_factory=list)
    retry: list[tuple[ClaimedRow, str, float | None]] = field(default_factory=list)
    released: list[tuple[ClaimedRow, datetime]] = field(default_factory=list)  # not tried: attempt given back
    worn: list[tuple[ClaimedRow, str]] = field(default_factory=list)  # failed untried: attempt given back
    deferred: list[tuple[ClaimedRow, datetime]] = field(default_factory=list)  # per-member limit: untried
    unsent: set[int] = field(default_factory=set)  # ids certainly not delivered: their send key is cleared
    codes: dict[str, list[int]] = field(default_factory=dict)  # card response code → sent row ids
    updated: dict[int, int] = field(default_factory=dict)  # card update row id → people whose card WeCom updated
    calls: int = 0

    def __len__(self) -> int:
        return (len(self.sent) + len(self.failed) + len(self.retry) + len(self.released) + len(self.worn)
                + len(self.deferred))


# Features that own a subject keep their own record of its delivery (e.g. Delivery.sent_at); the
# worker tells them in the same transaction instead of writing an event per row.
def _delivery_sent(session, ids: list[int], at: datetime) -> None:
    from models.directive import mark_sent

    mark_sent(session, ids, at)


def _delivery_failed(session, ids: list[int], reason: str, at: datetime) -> None:
    from models.directive import mark_failed

    mark_failed(session, ids, reason, at)


SUBJECT_HOOKS = {"delivery": (_delivery_sent, _delivery_failed)}


# -- senders ---------------------------------------------------------------------------------

def build_senders(runtime: Runtime) -> dict[OutboxChannel, OutboundChannel]:
    """The configured outbound channels, sharing the runtime's store for tokens."""
    from bot.channels.webhook import WebhookChannel
    from config.settings import WECOM_DEFAULT_API_BASE

    settings = runtime.settings
    timeout = settings.http_timeout_seconds
    senders: dict[OutboxChannel, OutboundChannel] = {}
    if settings.wecom is not None:
        from bot.channels.wecom import WeComChannel

        senders[OutboxChannel.WECOM] = WeComChannel(settings.wecom, store=runtime.store, timeout=timeout)
    if settings.mp is not None:
        from bot.channels.mp import MpChannel

        mp = MpChannel(settings.mp, store=runtime.store, timeout=timeout)
        mp.clock = lambda: runtime.now().timestamp()  # the follower windows run on the runtime's clock
        senders[OutboxChannel.MP] = mp
    api_base = settings.wecom.api_base if settings.wecom is not None else WECOM_DEFAULT_API_BASE
    senders[OutboxChannel.WEBHOOK] = WebhookChannel(api_base, timeout=timeout)
    return senders


def _senders_for(runtime: Runtime) -> dict[OutboxChannel, OutboundChannel]:
    """Senders cached on the runtime (HTTP connections are reused), rebuilt if the store or
    settings were swapped."""
    cached = getattr(runtime, "_outbound_senders", None)
    if cached and cached[0] is runtime.store and cached[1] is runtime.settings:
        return cached[2]
    senders = build_senders(runtime)
    runtime._outbound_senders = (runtime.store, runtime.settings, senders)
    return senders


# -- the round -------------------------------------------------------------------------------

def drain_once(runtime: Runtime, *, limit: int | None = None,
               senders: dict[OutboxChannel, OutboundChannel] | None = None) -> int:
    """Claim due outbox rows, send them, mark them. Returns how many rows got an outcome
    (sent, failed or rescheduled); rows released untried (rate budget, round time) do not count."""
    senders = senders if senders is not None else _senders_for(runtime)
    now = runtime.now()
    rows, payloads, worn = claim(runtime, now, limit or DEFAULT_CLAIM_LIMIT)
    if not rows and not worn:
        return 0
    outcomes = Outcomes()
    outcomes.worn.extend((row, f"gave up: the worker stopped {row.attempts} times while sending") for row in worn)
    batches = prepare(runtime, rows, payloads, senders, now, outcomes)
    handled = 0
    started = time.monotonic()
    exhausted: set[str] = set()
    unavailable: dict[OutboxChannel, datetime] = {}
    for batch in batches:
        sender = senders[batch.channel]
        payload = dict(payloads[batch.content_key], send_key=batch.send_key, resend=batch.resend)
        if batch.channel in unavailable:
            _release(outcomes, batch, unavailable[batch.channel])
            continue
        if time.monotonic() - started > ROUND_SECONDS:
            _release(outcomes, batch, now)
            continue
        bucket = _rate_bucket(runtime, batch.channel, sender, batch.rows[0].recipient, now)
        if bucket is not None and (bucket[0] in exhausted or not _take(runtime, bucket)):
            exhausted.add(bucket[0])
            _release(outcomes, batch, _next_window(now))
            continue
        until = _send_batch(sender, batch, payload, outcomes, now)
        if until is not None:
            unavailable[batch.channel] = until
        if outcomes.calls >= FLUSH_EVERY_CALLS:
            handled += mark(runtime, outcomes, payloads)
            outcomes = Outcomes()
    handled += mark(runtime, outcomes, payloads)
    return handled


def _release(outcomes: Outcomes, batch: Batch, when: datetime) -> None:
    """Not tried this round: the attempt is given back; a fresh batch forgets its send key."""
    outcomes.released.extend((row, when) for row in batch.rows)
    if not batch.resend:
        outcomes.unsent.update(row.id for row in batch.rows)


# -- fixing the batches before any call -----------------------------------------------------

def prepare(runtime: Runtime, rows: list[ClaimedRow], payloads: dict[str, dict[str, Any]],
            senders: dict[OutboxChannel, OutboundChannel], now: datetime, outcomes: Outcomes) -> list[Batch]:
    """Decide every call of the round before making any, and record it (one transaction).

    - A row with a send key whose outcome was never recorded (a crash, a timeout) may have
      arrived. On WeCom it is resent only as part of that same attempt: same send key, hence
      the same task_id and byte-identical content, within the duplicate-check interval; WeCom
      drops it for whoever already got it (and refuses a card whose task_id was taken, which
      proves the first attempt arrived). Later than that, or on a channel with no such check
      (Official Account, group robot), it is failed, never resent: at most once.
    - Fresh messages pass the per-member limit (WeCom: 30 a minute, 1,000 an hour per member
      per app; the excess would be dropped silently; card updates are not messages): what would
      exceed it is deferred to the window where it fits, and counted (`deferrals`, an
      `outbox.deferred` event).
    - Fresh rows are then chunked into calls; each call gets a new send key, written to its rows
      before the call is made."""
    fresh: list[ClaimedRow] = []
    resend: dict[tuple[OutboxChannel, str, str], list[ClaimedRow]] = defaultdict(list)
    is_update = {key for key, payload in payloads.items() if payload.get("type") == "card_update"}
    # A card update row is its code's one call: its resend is harmless whenever it comes (the
    # code, spent by the first attempt, gets it refused as arrived; expired, refused as failed).
    whole_updates = {key for key in is_update if "recipients" in payloads[key]}
    for row in rows:
        sender = senders.get(row.channel)
        # The channel drops a repeat of the same content to the same person within this many seconds.
        guard = getattr(sender, "duplicate_check_seconds", 0)
        if sender is None:
            outcomes.failed.append((row, reason_not_configured(row.channel)))
        elif row.send_key is None:
            fresh.append(row)
        elif not guard:
            outcomes.failed.append((row, REASON_UNKNOWN_OUTCOME))
        elif row.content_key not in whole_updates and (
                row.send_started_at is None or now - row.send_started_at > timedelta(seconds=guard) - LEASE):
            outcomes.failed.append((row, REASON_UNKNOWN_OUTCOME_LATE))
        else:
            resend[(row.channel, row.content_key, row.send_key)].append(row)
    updates = [row for row in fresh if row.content_key in is_update]
    messages = [row for row in fresh if row.content_key not in is_update]
    fresh = sorted(_within_member_limits(runtime, messages, now, outcomes) + updates, key=lambda r: r.id)

    batches: list[Batch] = []
    for (channel, content_key, send_key), group in resend.items():
        batches.extend(Batch(channel, content_key, send_key, chunk, True)
                       for chunk in _chunks(group, senders[channel].max_recipients))
    round_key = uuid.uuid4().hex[:24]
    for (channel, content_key), group in _groups(fresh):
        one_update = content_key in whole_updates  # a call of its own: its payload lists the call's people
        size = 1 if one_update else max(1, senders[channel].max_recipients)
        for chunk in _chunks(group, size):
            # One call per key on WeCom (it becomes the task_id); one-recipient channels share the round's.
            key = uuid.uuid4().hex[:24] if size > 1 or one_update else round_key
            batches.append(Batch(channel, content_key, key, chunk, False))
    fresh_batches = [b for b in batches if not b.resend]
    if fresh_batches:
        table = OutboxMessage.__table__
        postgres = runtime.db.dialect == "postgresql"
        by_key: dict[str, list[int]] = defaultdict(list)
        for batch in fresh_batches:
            by_key[batch.send_key].extend(row.id for row in batch.rows)
        with runtime.db.session() as session:
            for key, ids in by_key.items():
                for chunk in _chunks(ids, ID_CHUNK):
                    session.execute(update(table).where(_id_in(table.c.id, chunk, postgres),
                                                        table.c.status == OutboxStatus.SENDING)
                                    .values(send_key=key, send_started_at=now))
    return batches


def _within_member_limits(runtime: Runtime, rows: list[ClaimedRow], now: datetime,
                          outcomes: Outcomes) -> list[ClaimedRow]:
    """The rows that fit WeCom's per-member limits; the rest go to `outcomes.deferred`, until the
    window where they fit. Counted in the store (Redis: shared by every process, one round trip)."""
    wecom = [row for row in rows if row.channel is OutboxChannel.WECOM]
    if not wecom:
        return rows
    ts = now.timestamp()
    over = runtime.store.take_budgets([f"member:{row.recipient.lower()}" for row in wecom],
                                      [(60, MEMBER_PER_MINUTE), (3600, MEMBER_PER_HOUR)], ts)
    kept: list[ClaimedRow] = [row for row in rows if row.channel is not OutboxChannel.WECOM]
    for row, seconds in zip(wecom, over, strict=True):
        if not seconds:
            kept.append(row)
            continue
        # The window after next: the one where the current window is the "previous" one.
        until = (int(ts // seconds) + 2) * seconds
        outcomes.deferred.append((row, datetime.fromtimestamp(until, UTC)))
    kept.sort(key=lambda r: r.id)
    return kept


def claim(runtime: Runtime, now: datetime, limit: int
          ) -> tuple[list[ClaimedRow], dict[str, dict[str, Any]], list[ClaimedRow]]:
    """Claim due rows under a lease (one transaction). Returns (rows to send, payload by
    content_key, rows reclaimed too often to try again).

    One statement takes the lease and returns the rows:

        UPDATE outbox_message SET status = 'sending', next_attempt_at = :lease, attempts = …
        WHERE id = ANY(ARRAY(SELECT id FROM (due PENDING rows UNION ALL due SENDING rows)
                             ORDER BY next_attempt_at LIMIT :n))
        RETURNING …

    Each branch is a range of the (status, next_attempt_at) index read in order and locked with
    FOR UPDATE SKIP LOCKED on PostgreSQL (so concurrent workers never claim a row twice and skip
    rows another claim holds instead of waiting); LIMIT stops each after n rows, whatever the size
    of the backlog or of the table. `id = ANY(ARRAY(…))` keeps the UPDATE on the primary key
    (a plain `IN (subquery)` is planned as a hash join over the whole table). Oldest due first, as
    before: an expired lease is not starved by a backlog of pending rows (its resend must fall
    within WeCom's duplicate-check window). Rows a branch locked but the outer LIMIT left out stay
    pending (their locks end with this short transaction). SQLite (one process) runs the same
    statement with `IN (subquery)` and without the locks.

    A card update is one row (models/cards.py: its code serves one call), so a claim takes it
    whole or not at all: no two workers can split it.

    A row already claimed MAX_ATTEMPTS times is claimed once more (attempts + 1, capped at
    MAX_ATTEMPTS + 1, which is how it is recognised in the RETURNING) and handed back as worn:
    it is failed without sending, and the attempt is given back when it is marked."""
    table = OutboxMessage.__table__
    c = table.c
    postgres = runtime.db.dialect == "postgresql"

    def due(status: OutboxStatus):
        branch = (select(c.id, c.next_attempt_at)
                  .where(c.status == status, c.next_attempt_at <= now)
                  .order_by(c.next_attempt_at)
                  .limit(limit))
        if postgres:
            branch = branch.with_for_update(skip_locked=True)
        return select(branch.subquery())

    both = union_all(due(OutboxStatus.PENDING), due(OutboxStatus.SENDING)).subquery()
    chosen = select(both.c.id).order_by(both.c.next_attempt_at).limit(limit)
    if postgres:
        wanted = c.id == any_(func.array(chosen.scalar_subquery()))
    else:
        wanted = c.id.in_(chosen)
    take = (
        update(table).where(wanted)
        .values(status=OutboxStatus.SENDING, next_attempt_at=now + LEASE,
                attempts=case((c.attempts > MAX_ATTEMPTS, c.attempts), else_=c.attempts + 1))
        .returning(*_claimed_columns())
    )
    with runtime.db.session() as session:
        found = sorted(session.execute(take).all(), key=lambda r: r.id)  # ids keep one directive's rows together
        if not found:
            return [], {}, []
        rows = [_claimed(r) for r in found if r.attempts <= MAX_ATTEMPTS]
        worn = [_claimed(r, r.attempts - 1) for r in found if r.attempts > MAX_ATTEMPTS]
        # One payload per content key: rows sharing a key share their content.
        first: dict[str, int] = {}
        for r in found:
            first.setdefault(r.content_key, r.id)
        payloads: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(list(first.values()), ID_CHUNK):
            for content_key, payload in session.execute(
                select(c.content_key, c.payload).where(c.id.in_(chunk))
            ):
                payloads[content_key] = payload
    return rows, payloads, worn


def _claimed_columns() -> tuple:
    c = OutboxMessage.__table__.c
    return (c.id, c.channel, c.recipient, c.content_key, c.attempts, c.subject_type, c.subject_id,
            c.send_key, c.send_started_at)


def _claimed(r, attempts: int | None = None) -> ClaimedRow:
    """A row the claim's RETURNING gave (`_claimed_columns`); `attempts` instead of its own."""
    return ClaimedRow(r.id, OutboxChannel(r.channel), r.recipient, r.content_key,
                      r.attempts if attempts is None else attempts, r.subject_type, r.subject_id, r.send_key,
                      _aware(r.send_started_at))


def _send_batch(sender: OutboundChannel, batch: Batch, payload: dict[str, Any], outcomes: Outcomes,
                now: datetime) -> datetime | None:
    """Make one call; returns when to try the channel again if it is unavailable (credentials)."""
    rows = batch.rows
    one_update = payload.get("type") == "card_update" and len(rows) == 1
    if one_update:
        recipients = update_people(payload, rows[0].recipient)
    else:
        recipients = list(dict.fromkeys(row.recipient for row in rows))
    outcomes.calls += len(recipients) if sender.max_recipients == 1 else 1
    try:
        result = sender.send(recipients, payload)
    except ChannelUnavailable as exc:
        until = now + timedelta(seconds=exc.retry_after)
        _release(outcomes, batch, until)
        return until
    except TransientSendError as exc:
        log.warning("send of %d rows deferred: %s", len(rows), exc.reason)
        outcomes.retry.extend((row, exc.reason, exc.retry_after) for row in rows)
        if not exc.ambiguous and not batch.resend:
            outcomes.unsent.update(row.id for row in rows)
        return None
    except Exception:  # a bug in rendering or in a channel: back off like a transient error
        log.exception("channel %s raised while sending %d rows", getattr(sender, "name", "?"), len(rows))
        reason = REASON_UNEXPECTED  # the exception is in the log above
        outcomes.retry.extend((row, reason, None) for row in rows)
        return None
    if one_update:
        _apply_update(result, rows[0], outcomes)
        return None
    _apply(result, rows, outcomes)
    if not batch.resend:
        outcomes.unsent.update(row.id for row in rows if row.recipient in result.deferred)
    return None


def _apply(result: SendResult, batch: list[ClaimedRow], outcomes: Outcomes) -> None:
    accepted = set(result.accepted)
    for row in batch:
        if row.recipient in result.failed:
            outcomes.failed.append((row, result.failed[row.recipient]))
        elif row.recipient in result.deferred:
            outcomes.retry.append((row, result.deferred[row.recipient], None))
        elif row.recipient in accepted:
            outcomes.sent.append(row)
            if result.response_code:
                outcomes.codes.setdefault(result.response_code, []).append(row.id)
        else:
            outcomes.retry.append((row, "channel reported no outcome for this recipient", None))


def _apply_update(result: SendResult, row: ClaimedRow, outcomes: Outcomes) -> None:
    """The outcome of a card update row's one call: sent when WeCom updated anyone's card (those
    it refused, e.g. outside the app's visible range, are counted in its event), failed when it
    updated nobody's for good, retried when the call reported no outcome."""
    if result.accepted:
        outcomes.sent.append(row)
        outcomes.updated[row.id] = len(result.accepted)
    elif result.deferred:
        outcomes.retry.append((row, next(iter(result.deferred.values())), None))
    elif result.failed:
        outcomes.failed.append((row, next(iter(result.failed.values()))))
    else:
        outcomes.retry.append((row, "channel reported no outcome for this card update", None))


# -- marking ---------------------------------------------------------------------------------

def mark(runtime: Runtime, outcomes: Outcomes, payloads: dict[str, dict[str, Any]]) -> int:
    """Write the outcomes in one transaction with bulk UPDATEs. Returns the rows with an outcome."""
    if not len(outcomes):
        return 0
    at = runtime.now()
    failed = list(outcomes.failed)
    retry: dict[tuple[int, float | None], list[ClaimedRow]] = defaultdict(list)
    retry_reason: dict[tuple[int, float | None], str] = {}
    for row, reason, retry_after in outcomes.retry:
        if row.attempts >= MAX_ATTEMPTS:
            failed.append((row, reason_gave_up(row.attempts, reason)))
            continue
        key = (row.attempts, retry_after)
        retry[key].append(row)
        retry_reason.setdefault(key, reason)

    def hooked(row: ClaimedRow) -> bool:
        return row.subject_type in SUBJECT_HOOKS and payloads.get(row.content_key, {}).get("type") != "card_update"

    table = OutboxMessage.__table__
    postgres = runtime.db.dialect == "postgresql"

    def set_where(ids: list[int], **values: Any) -> None:
        # Core UPDATEs (no ORM session bookkeeping), only while our claim still holds the row.
        for chunk in _chunks(ids, ID_CHUNK):
            session.execute(update(table).where(_id_in(table.c.id, chunk, postgres),
                                                table.c.status == OutboxStatus.SENDING).values(**values))

    with runtime.db.session() as session:
        for code, ids in outcomes.codes.items():
            set_where(ids, response_code=code)
        set_where([r.id for r in outcomes.sent], status=OutboxStatus.SENT, sent_at=at, last_error=None)
        for reason, rows in _by_reason(failed).items():
            set_where([r.id for r in rows], status=OutboxStatus.FAILED, last_error=reason)
        for reason, rows in _by_reason(outcomes.worn).items():
            set_where([r.id for r in rows], status=OutboxStatus.FAILED, last_error=reason,
                      attempts=table.c.attempts - 1)
        for (attempts, retry_after), rows in retry.items():
            next_at = at + timedelta(seconds=backoff_seconds(attempts, retry_after))
            set_where([r.id for r in rows], status=OutboxStatus.PENDING, next_attempt_at=next_at,
                      last_error=retry_reason[(attempts, retry_after)])
        released: dict[datetime, list[int]] = defaultdict(list)
        for row, when in outcomes.released:
            released[when].append(row.id)
        for when, ids in released.items():
            set_where(ids, status=OutboxStatus.PENDING, next_attempt_at=when, attempts=table.c.attempts - 1)
        deferred: dict[datetime, list[int]] = defaultdict(list)
        for row, when in outcomes.deferred:
            deferred[when].append(row.id)
        for when, ids in deferred.items():
            set_where(ids, status=OutboxStatus.PENDING, next_attempt_at=when, attempts=table.c.attempts - 1,
                      deferrals=table.c.deferrals + 1)
        # The next part of each long text whose part ended (sent, or failed for good) may go now.
        ended = [r.id for r in outcomes.sent] + [r.id for r, _reason in failed] + [r.id for r, _reason in outcomes.worn]
        for chunk in _chunks(ended, ID_CHUNK):
            session.execute(update(table).where(_id_in(table.c.after_id, chunk, postgres),
                                                table.c.status == OutboxStatus.HELD)
                            .values(status=OutboxStatus.PENDING))
        if outcomes.unsent:
            # Certainly not delivered (refused with an errcode, or never tried): no attempt to resolve.
            for chunk in _chunks(sorted(outcomes.unsent), ID_CHUNK):
                session.execute(update(table).where(_id_in(table.c.id, chunk, postgres))
                                .values(send_key=None, send_started_at=None))

        # The owning feature's record, then events: one per failure; one per sent row only when
        # it has a subject no feature keeps a record for.
        failed += outcomes.worn
        for subject_type, (on_sent, on_failed) in SUBJECT_HOOKS.items():
            sent_ids = [r.subject_id for r in outcomes.sent if r.subject_type == subject_type and hooked(r)]
            if sent_ids:
                on_sent(session, sent_ids, at)
            for reason, rows in _by_reason(failed).items():
                ids = [r.subject_id for r in rows if r.subject_type == subject_type and hooked(r)]
                if ids:
                    on_failed(session, ids, reason, at)
        events = [_event(row, "outbox.failed", at, reason=reason, payload=payloads.get(row.content_key))
                  for row, reason in failed]
        for when, ids in deferred.items():
            # One event per window, not per row: a 100k fan-out to busy members defers many at once.
            events.append({"at": at, "actor_id": None, "kind": "outbox.deferred", "subject_type": "outbox_message",
                           "subject_id": None, "data": {"outbox_ids": sorted(ids), "count": len(ids),
                                                        "until": when.isoformat(), "reason": "per-member limit"}})
        events += [_event(row, "outbox.sent", at, payload=payloads.get(row.content_key),
                          updated=outcomes.updated.get(row.id))
                   for row in outcomes.sent if row.subject_type and row.subject_type not in SUBJECT_HOOKS]
        for chunk in _chunks(events, ID_CHUNK):
            session.execute(insert(Event), chunk)
    if failed:
        log.warning("%d outbox rows failed permanently (first: %s)", len(failed), failed[0][1])
    if outcomes.deferred:
        log.info("%d outbox rows deferred by the per-member limit", len(outcomes.deferred))
    return len(outcomes.sent) + len(failed) + sum(len(rows) for rows in retry.values())


def backoff_seconds(attempts: int, retry_after: float | None = None) -> float:
    """Exponential back-off after the `attempts`-th try: 5 s, 10 s, 20 s … capped at 10 min,
    ±20 % jitter so that rows and workers spread out; never sooner than the server asked."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    delay *= random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0.0)


def _event(row: ClaimedRow, kind: str, at: datetime, *, reason: str | None = None,
           payload: dict[str, Any] | None = None, updated: int | None = None) -> dict[str, Any]:
    """An outbox row's event. A card update's (one row per call) is `card.updated` or
    `card.update_failed`, saying what the cards now show and for how many people, so the
    item's record words it as one line."""
    # Bulk-inserted rather than models.event.record() one by one: a drain may fail 100k rows at once.
    data: dict[str, Any] = {"outbox_id": row.id, "channel": row.channel.value, "attempts": row.attempts}
    if reason is not None:
        data["reason"] = reason
    if payload is not None and payload.get("type") == "card_update":
        kind = "card.updated" if kind == "outbox.sent" else "card.update_failed"
        people = len(update_people(payload, row.recipient))
        done = updated if updated is not None else (0 if reason is not None else people)
        data.update(response_code=payload.get("response_code"), text=payload.get("replace_text"),
                    whole_card="card" in payload, people=people, updated=done)
    return {
        "at": at, "actor_id": None, "kind": kind, "data": data,
        "subject_type": row.subject_type or "outbox_message",
        "subject_id": row.subject_id if row.subject_type else row.id,
    }


# -- rate limit ------------------------------------------------------------------------------

def _rate_bucket(runtime: Runtime, channel: OutboxChannel, sender: OutboundChannel, recipient: str,
                 now: datetime) -> tuple[str, int] | None:
    """(store key, budget) of the per-minute window this call counts against, or None."""
    minute = int(now.timestamp() // 60)
    if channel is OutboxChannel.WECOM:
        budget = runtime.settings.wecom_rate_per_minute
        return (f"rate:wecom:{minute}", budget) if budget > 0 else None
    if channel is OutboxChannel.WEBHOOK:
        budget = getattr(sender, "rate_per_minute", 0)
        robot = hashlib.sha256(recipient.encode()).hexdigest()[:12]  # the key is a credential
        return (f"rate:webhook:{robot}:{minute}", budget) if budget > 0 else None
    return None


def _take(runtime: Runtime, bucket: tuple[str, int]) -> bool:
    key, budget = bucket
    # Redis when configured (shared by all processes); the store falls back to process memory.
    return runtime.store.incr_window(key, 120) <= budget


def _next_window(now: datetime) -> datetime:
    return datetime.fromtimestamp((int(now.timestamp() // 60) + 1) * 60, UTC)


# -- loop ------------------------------------------------------------------------------------

def run_worker(runtime: Runtime, stop: threading.Event, *, idle_sleep: float = 0.25, limit: int | None = None) -> None:
    """Drain until `stop` is set; sleep `idle_sleep` seconds whenever a round finds nothing to do.
    A failing round (database down…) is logged and retried after the sleep."""
    from bot.exports import export_once

    senders = build_senders(runtime)
    while not stop.is_set():
        try:
            # Export requests (导出) first: the file message they write goes out in this same round.
            handled = export_once(runtime, senders) + drain_once(runtime, limit=limit, senders=senders)
        except Exception:
            log.exception("outbox drain failed; retrying in %.1fs", idle_sleep)
            handled = 0
        if not handled:
            stop.wait(idle_sleep)


# -- helpers ---------------------------------------------------------------------------------

def _groups(rows: list[ClaimedRow]) -> Iterator[tuple[tuple[OutboxChannel, str], list[ClaimedRow]]]:
    groups: dict[tuple[OutboxChannel, str], list[ClaimedRow]] = {}
    for row in rows:
        groups.setdefault((row.channel, row.content_key), []).append(row)
    return iter(groups.items())


def _by_reason(items: Iterable[tuple[ClaimedRow, str]]) -> dict[str, list[ClaimedRow]]:
    grouped: dict[str, list[ClaimedRow]] = defaultdict(list)
    for row, reason in items:
        grouped[reason[:1000]].append(row)
    return grouped


def _id_in(column, ids: list[int], postgres: bool):
    """`column = ANY(:ids)` on PostgreSQL (one array parameter, one cached statement) rather
    than `IN (:id_1, …, :id_5000)`, which is rendered and bound afresh for every list."""
    if postgres:
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return column.in_(ids)


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
