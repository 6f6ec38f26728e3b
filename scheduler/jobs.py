"""Jobs run by the scheduler tick. Each takes the runtime, works in its own transactions, and is
safe to run in several scheduler processes at once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete

from bot.runtime import Runtime
from models.inbound import InboundReceipt

log = logging.getLogger(__name__)

# WeChat retries within seconds; receipts are kept far longer so a late retry is still caught.
RECEIPT_RETENTION = timedelta(days=3)


def prune_inbound_receipts(runtime: Runtime) -> int:
    """Forget dedupe receipts older than the retention (they are not records: events are)."""
    cutoff = runtime.now() - RECEIPT_RETENTION
    with runtime.db.session() as session:
        result = session.execute(delete(InboundReceipt).where(InboundReceipt.received_at < cutoff))
    return result.rowcount or 0


def close_meetings(runtime: Runtime) -> int:
    """Close meetings 30 minutes past their end: absentees recorded, the summary pushed to the branch."""
    from bot.texts import meeting as texts
    from models.meeting import close_due_meetings, notify_closed

    now, tz = runtime.now(), runtime.settings.tz
    with runtime.db.session() as session:
        return close_due_meetings(session, now, notify=lambda summary: notify_closed(
            session, summary, now=now, to_leaders=texts.closed_push(summary, tz),
            to_home_branch=lambda rows: texts.home_branch_copy(summary.meeting, rows, tz)))


def _reminder_jobs() -> list[Callable[[Runtime], object]]:
    # Planning first, so rows created this tick fire in the same tick when already due.
    from scheduler.reminders import fire_due_reminders, plan_meeting_reminders, plan_required_meetings

    return [plan_meeting_reminders, plan_required_meetings, fire_due_reminders]


def _points_jobs() -> list[Callable[[Runtime], object]]:
    from scheduler.publications import publish_points

    return [publish_points]


TICK_JOBS: list[Callable[[Runtime], object]] = [prune_inbound_receipts, close_meetings, *_reminder_jobs(),
                                                *_points_jobs()]


def tick(runtime: Runtime) -> None:
    """One scheduler tick: run every job; one failing job does not stop the others."""
    for job in TICK_JOBS:
        try:
            job(runtime)
        except Exception:
            log.exception("scheduler job %s failed", job.__name__)
