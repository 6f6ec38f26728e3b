"""The points publications on schedule (SPEC §8): 月度公示 at 09:00 on the first working day of
each month, 季度通报 on the first working day of each quarter, the yearly summary on the first
working day of the year; and each month's rules fixed when the month begins.

Every scheduler may run this at once: each recipient's copy is claimed by a unique row in the
transaction that queues it (bot/reports/publish.py), so it goes out once."""

from __future__ import annotations

from datetime import date, timedelta

from bot.reports.points import last_complete
from bot.reports.publish import PUBLISH_AT, send, was_sent
from bot.runtime import Runtime
from models.points import open_period, period_of, summarise
from models.publication import PublicationKind
from scheduler.calendar import first_working_day
from scheduler.reminders import quiet_release


def _due_kinds(today: date) -> list[PublicationKind]:
    """The publications whose day `today` is: the first working day of a month (and of a quarter, a year)."""
    month_end = (today.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    if first_working_day(today.replace(day=1), month_end) != today:
        return []
    kinds = [PublicationKind.MONTHLY]
    if today.month in (1, 4, 7, 10):
        kinds.append(PublicationKind.QUARTERLY)
    if today.month == 1:
        kinds.append(PublicationKind.YEARLY)
    return kinds


def publish_points(runtime: Runtime) -> int:
    """Open the current month's rules; on a publication day from 09:00, send what is due once."""
    now, settings = runtime.now(), runtime.settings
    tz = settings.tz
    local = now.astimezone(tz)
    with runtime.db.session() as session:
        open_period(session, period_of(now), at=now)
    with runtime.db.session() as session:  # last month's totals, once, an hour into the new month
        summarise(session, last_complete(PublicationKind.MONTHLY, now, tz).key, at=now)
    if local.time() < PUBLISH_AT:
        return 0
    sent = 0
    for kind in _due_kinds(local.date()):
        period = last_complete(kind, now, tz)
        with runtime.db.session() as session:
            if was_sent(session, period):
                continue
            sent += send(session, period, None, now=now, tz=tz,
                         release=lambda at: quiet_release(at, settings.quiet_window, tz))
    return sent
