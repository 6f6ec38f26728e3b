"""What one round of firing collects, one notice per person per row, and the digest that writes
them: each person's notices merged into ONE message (worded by `bot.texts.reminders.digest`) and
queued as an outbox row (several, marked （1/2）…, when the digest is longer than one message can
hold: a liaison alerted about many branches), held until quiet hours end unless one of the notices
is urgent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from bot.texts import reminders as texts
from bot.texts.parts import part_payloads
from config.settings import Settings
from models.identity import Channel, ChannelIdentity
from models.outbox import OutboxChannel, OutboxMessage, OutboxStatus, content_key_of, enqueue_parts
from models.reminder import Reminder

MP_WINDOW = timedelta(hours=48)
ID_CHUNK = 5000


# -- quiet hours -----------------------------------------------------------------------------

def quiet_release(now: datetime, window: tuple[time, time] | None, tz: ZoneInfo) -> datetime | None:
    """When quiet hours that contain `now` end (aware UTC), or None when `now` is not quiet."""
    if window is None:
        return None
    start, end = window
    local = now.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    if start < end:
        quiet = start <= t < end
    else:  # crosses midnight, e.g. 22:00–07:30
        quiet = t >= start or t < end
    if not quiet:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)


# -- what a round collects ------------------------------------------------------------------

@dataclass
class Notice:
    text: str
    urgent: bool
    reminder_id: int


@dataclass
class Firing:
    """What one round collects before writing: notices per person, and the rows it decided."""

    session: Session
    now: datetime
    settings: Settings
    notices: dict[int, list[Notice]] = field(default_factory=lambda: defaultdict(list))

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.tz

    def notify(self, row: Reminder, person_ids: Iterable[int], text: str) -> int:
        notice = Notice(text, row.kind.urgent, row.id)  # shared: the same text for everyone of a step
        count = 0
        for person_id in dict.fromkeys(person_ids):
            self.notices[person_id].append(notice)
            count += 1
        return count

    def forget(self, row: Reminder) -> None:
        for person_id in list(self.notices):
            kept = [n for n in self.notices[person_id] if n.reminder_id != row.id]
            if kept:
                self.notices[person_id] = kept
            else:
                del self.notices[person_id]


# -- the digest ------------------------------------------------------------------------------

def write_outbox(f: Firing) -> dict[int, int]:
    """One message per person (WeCom, else an Official Account follower seen within 48 h): one
    outbox row, or one per part of a digest too long for one message.
    Returns reminder id → people reached. A person whose notices are all non-urgent is held until
    quiet hours end; one urgent notice takes the others along."""
    release = quiet_release(f.now, f.settings.quiet_window, f.tz)
    addresses = resolve_addresses(f.session, list(f.notices), f.now)
    reached: dict[int, int] = defaultdict(int)
    keys: dict[tuple[str, str], str] = {}
    rows = []
    for person_id, notices in f.notices.items():
        address = addresses.get(person_id)
        if address is None:
            continue
        channel, external_id = address
        urgent = any(n.urgent for n in notices)
        due = f.now if urgent or release is None else release
        payloads = part_payloads(texts.digest([n.text for n in notices]), Channel(channel.value))
        if len(payloads) > 1:  # a long digest goes as several messages, each held behind the one before
            enqueue_parts(f.session, channel, external_id, payloads, person_id=person_id, at=f.now, due=due,
                          subject_type="reminder", subject_id=notices[0].reminder_id)
        else:
            payload = payloads[0]
            key = keys.get((channel.value, payload["text"]))
            if key is None:
                key = keys[(channel.value, payload["text"])] = content_key_of(channel, payload)
            rows.append({
                "channel": channel, "recipient": external_id, "person_id": person_id,
                "payload": payload, "content_key": key, "status": OutboxStatus.PENDING,
                "attempts": 0, "next_attempt_at": due,
                "created_at": f.now, "subject_type": "reminder", "subject_id": notices[0].reminder_id,
            })
        for n in notices:
            reached[n.reminder_id] += 1
    for chunk in chunks(rows, ID_CHUNK):
        f.session.execute(insert(OutboxMessage.__table__), chunk)
    return reached


def resolve_addresses(session: Session, person_ids: list[int], now: datetime) -> dict[int, tuple[OutboxChannel, str]]:
    found: dict[int, tuple[OutboxChannel, str]] = {}
    fresh = now - MP_WINDOW
    for chunk in chunks(sorted(person_ids), ID_CHUNK):
        for person_id, channel, external_id, last_inbound in session.execute(
            select(ChannelIdentity.person_id, ChannelIdentity.channel, ChannelIdentity.external_id,
                   ChannelIdentity.last_inbound_at)
            .where(ChannelIdentity.person_id.in_(chunk)).order_by(ChannelIdentity.id)
        ):
            if channel is Channel.WECOM:
                if person_id not in found or found[person_id][0] is not OutboxChannel.WECOM:
                    found[person_id] = (OutboxChannel.WECOM, external_id)
            elif channel is Channel.MP and last_inbound is not None and last_inbound >= fresh:
                found.setdefault(person_id, (OutboxChannel.MP, external_id))
    return found


def chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]
