"""The points publications on schedule (SPEC §8): 月度公示 at 09:00 on the first working day of
each month, 季度通报 on the first working day of each quarter, the yearly summary on the first
working day of the year; and each month's rules fixed when the month begins.

Catching up. A publication is due from 09:00 on its day until the end of that calendar month,
and it is sent by the first tick in that time that falls within working hours: a working day
(holidays and 调休 honoured), 09:00–18:00, outside quiet hours. So when every scheduler was down
at 09:00 on the day, the next one to run sends what was due and not yet sent, once; a scheduler
back at 20:00 or on a Saturday waits for 09:00 of the next working day. The window is the
month for all three: the quarterly and yearly ones are reports on the period just ended, opened
at the start of the new one, and one arriving a month late or more would surprise more than it
informs; after the month it is sent only by hand (`report quarterly --period 2026Q3 --send`).

A period with no points entries at all is not published, on its day or later: the bot has no
record of it (a fresh install, or a tree that recorded nothing yet), and a table of zeros would
read as a verdict. It sends nothing, says so once in the log, and the first publication people
get is that of the first period with records.

Every scheduler may run this at once: each recipient's copy is claimed by a unique row in the
transaction that queues all its parts (bot/reports/publish.py), so it goes out once, whole."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from bot.reports.points import last_complete
from bot.reports.publish import PUBLISH_AT, has_records, send, was_published
from bot.runtime import Runtime
from models.points import open_period, period_of, summarise
from models.publication import PublicationKind
from scheduler.calendar import first_working_day, is_working_day
from scheduler.reminders import quiet_release

log = logging.getLogger(__name__)

SEND_UNTIL = time(18, 0)  # end of working hours: a catch-up after this waits for the next working day
_reported_empty: set[tuple[str, str]] = set()  # (kind, period) already logged as not published


def publication_day(month_start: date) -> date | None:
    """The first working day of the month that begins on `month_start` (None: no working day)."""
    month_end = (month_start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first_working_day(month_start, month_end)


def due_kinds(today: date) -> list[PublicationKind]:
    """The publications due on `today`: those of this month's publication day, from that day to
    the month's end (the first working day of a month; of a quarter, a year, too)."""
    day = publication_day(today.replace(day=1))
    if day is None or today < day:
        return []
    kinds = [PublicationKind.MONTHLY]
    if today.month in (1, 4, 7, 10):
        kinds.append(PublicationKind.QUARTERLY)
    if today.month == 1:
        kinds.append(PublicationKind.YEARLY)
    return kinds


def may_send_now(runtime: Runtime, now: datetime) -> bool:
    """Working hours: a working day, 09:00–18:00 local, not in quiet hours."""
    settings = runtime.settings
    local = now.astimezone(settings.tz)
    return (is_working_day(local.date()) and PUBLISH_AT <= local.time() < SEND_UNTIL
            and quiet_release(now, settings.quiet_window, settings.tz) is None)


def publish_points(runtime: Runtime) -> int:
    """Open the current month's rules; within working hours, from the publication day to the end
    of its month, send each due publication not sent yet, once."""
    now, settings = runtime.now(), runtime.settings
    tz = settings.tz
    with runtime.db.session() as session:
        open_period(session, period_of(now), at=now)
    with runtime.db.session() as session:  # last month's totals, once, an hour into the new month
        summarise(session, last_complete(PublicationKind.MONTHLY, now, tz).key, at=now)
    if not may_send_now(runtime, now):
        return 0
    sent = 0
    for kind in due_kinds(now.astimezone(tz).date()):
        period = last_complete(kind, now, tz)
        with runtime.db.session() as session:
            if was_published(session, period):
                continue
            if not has_records(session, period):
                if (kind.value, period.key) not in _reported_empty:
                    _reported_empty.add((kind.value, period.key))
                    log.info("points publication %s %s not sent: no points recorded in the period",
                             kind.value, period.key)
                continue
            sent += send(session, period, None, now=now, tz=tz)
    return sent
