"""One round of firing (`fire_due_reminders`, run by every tick): claim due rows, decide each by
its kind's rule, write the digests, mark the rows and write their events, in one transaction per
batch."""

from __future__ import annotations

import logging
import time as monotime
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from bot.runtime import Runtime
from config.settings import Settings
from models.reminder import Reminder, ReminderStatus, SkipReason, claim_due, skip, write_events
from scheduler.reminders.digest import Firing, write_outbox
from scheduler.reminders.rules import RULES

log = logging.getLogger(__name__)

CLAIM_LIMIT = 200  # rows per transaction; a row may fan out to many people
ROUND_SECONDS = 40.0  # stop claiming new batches after this; the next tick goes on


def fire_due_reminders(runtime: Runtime, *, limit: int = CLAIM_LIMIT,
                       between: Callable[[Session, list[Reminder]], None] | None = None) -> int:
    """Claim and fire due rows, batch by batch, until none is due. Returns rows decided.
    `between(session, rows)` runs after the claim and before firing (tests use it to act in that gap)."""
    decided = 0
    started = monotime.monotonic()
    while True:
        now = runtime.now()
        with runtime.db.session() as session:
            rows = claim_due(session, now, limit)
            if not rows:
                break
            if between is not None:
                between(session, rows)
            fire(session, rows, now, runtime.settings)
        decided += len(rows)
        if len(rows) < limit or monotime.monotonic() - started > ROUND_SECONDS:
            break
    return decided


def fire(session: Session, rows: list[Reminder], now: datetime, settings: Settings) -> None:
    """Decide every claimed row, write the digests, mark the rows, write the events."""
    f = Firing(session, now, settings)
    decided: list[Reminder] = []
    for row in rows:
        if row.useful_until is not None and now > row.useful_until:
            skip(row, now, SkipReason.STALE)
            decided.append(row)
            continue
        try:
            with session.begin_nested():
                RULES[row.kind](f, row)
        except Exception:
            # Left pending (unclaimed) for the next tick; its notices are dropped.
            log.exception("reminder %s (%s %s#%s) failed", row.id, row.kind.value, row.subject_type, row.subject_id)
            f.forget(row)
            row.claimed_at = None
            continue
        decided.append(row)
    reached = write_outbox(f)
    for row in decided:
        if row.status is ReminderStatus.PENDING:
            row.recipients = reached.get(row.id, 0)
            row.status = ReminderStatus.SENT
            row.fired_at = now
    session.flush()
    write_events(session, decided, now)
    if decided:
        log.info("reminders: %d rows decided (%d sent), %d people notified", len(decided),
                 sum(r.status is ReminderStatus.SENT for r in decided), len(f.notices))
