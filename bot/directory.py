"""Who is writing: the roster person behind a sender, loaded in one query and cached per process.

A callback that only reads (帮助, 待办, 进度…) needs the sender's roles, liaisons and memberships and
nothing else from the roster, and most of its cost used to be that query. The cache answers it
from memory. An entry is trusted only while it is younger than its time to live and the shared
directory version it was loaded under is still current: whatever changes people, roles or
identities (a roster import, a binding) calls `changed()` after its commit, which bumps the version
in the shared store for every process. Bumping after the commit matters: a reader that loads the
old rows before the commit stores them under the old version and reloads on its next message.
Each process reads the shared version at most once every `VERSION_CHECK_SECONDS`, so a change
reaches every process within that second and a busy process does not ask Redis on every message.

The version is what keeps entries right; the time to live is only a safety net for a change made
behind the bot's back (an edit straight in the database), so with Redis it is long (`SHARED_TTL`),
and each entry's is shortened by a random fifth so that entries loaded together do not all expire
together and reload in one burst. Without a shared store the version is per process, so a change
made by another process (an `import-roster` run beside a Redis-less `serve`) is seen within
`LOCAL_TTL`. Unknown senders are never cached: the first message after someone is added to the
roster finds them."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, joinedload

from bot.stores import MemoryStore, RedisStore
from models.base import Database
from models.identity import Channel, ChannelIdentity
from models.person import Liaison, Membership, OrgRole, Person

log = logging.getLogger(__name__)

VERSION_KEY = "directory:version"
SHARED_TTL = 600.0
LOCAL_TTL = 30.0
VERSION_CHECK_SECONDS = 1.0
MAX_ENTRIES = 5000  # about 10 KiB each: a bounded few tens of MiB per process


def load_sender(session: Session, channel: Channel, external_id: str) -> Person | None:
    """The roster person behind a sender, with roles, liaisons and memberships (and their
    organisations) loaded in the same query."""
    options = (
        joinedload(Person.roles).joinedload(OrgRole.organisation),
        joinedload(Person.liaisons).joinedload(Liaison.organisation),
        joinedload(Person.memberships).joinedload(Membership.organisation),
    )
    person = session.execute(
        select(Person).join(ChannelIdentity, ChannelIdentity.person_id == Person.id)
        .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id)
        .options(*options)
    ).unique().scalars().first()
    if person is None and channel is Channel.WECOM:
        # The roster's 企业微信账号 is the identity; a row may predate its ChannelIdentity. WeCom
        # userids are case-insensitive and a roster may spell one differently from WeCom: only a
        # sender with no exact match (a newcomer, a stranger) pays for this comparison.
        folded = external_id.lower()
        person = session.execute(
            select(Person).outerjoin(ChannelIdentity, and_(ChannelIdentity.person_id == Person.id,
                                                            ChannelIdentity.channel == Channel.WECOM))
            .where(or_(Person.wecom_userid == external_id, func.lower(Person.wecom_userid) == folded,
                       func.lower(ChannelIdentity.external_id) == folded))
            .options(*options)
        ).unique().scalars().first()
    return person


@dataclass(frozen=True)
class Sender:
    """What the directory says about a sender: `person` (detached) when on the roster; `trusted`
    is False when the shared version could not be read, and the caller reads the roster itself."""

    person: Person | None
    trusted: bool = True


UNTRUSTED = Sender(None, trusted=False)


@dataclass(frozen=True)
class _Entry:
    person: Person  # detached: every attribute a read-only handler's audience check needs is loaded
    version: str
    expires_at: float


class Directory:
    def __init__(self, db: Database, store: MemoryStore | RedisStore, *, ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.store = store
        self.ttl = ttl if ttl is not None else (SHARED_TTL if store.shared else LOCAL_TTL)
        self.clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._version_read: tuple[float, str | None] | None = None  # (when, value)

    def lookup(self, channel: Channel, external_id: str) -> Sender:
        """The sender, from the cache or loaded now (an unknown sender is asked for every time);
        `UNTRUSTED` when the version cannot be read."""
        version = self._version()
        if version is None:
            return UNTRUSTED
        key = (channel.value, external_id)
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and entry.version == version and now < entry.expires_at:
            return Sender(entry.person)
        try:
            with self.db.read_session() as session:
                person = load_sender(session, channel, external_id)
        except SQLAlchemyError:
            # The caller's own unit of work will meet the same trouble and answer for it.
            log.warning("sender lookup failed for %s %s", channel.value, external_id, exc_info=True)
            return UNTRUSTED
        # Leaving the block closed the session: `person` is detached with everything loaded.
        if person is None:
            return Sender(None)
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.pop(next(iter(self._entries)), None)  # the oldest insertion
            self._entries[key] = _Entry(person, version, now + self.ttl * random.uniform(0.8, 1.0))
        return Sender(person)

    def changed(self) -> None:
        """People, roles or identities changed (call after the commit): every process reloads."""
        with self._lock:
            self._entries.clear()
            self._version_read = None
        self.store.incr(VERSION_KEY)

    def _version(self) -> str | None:
        now = self.clock()
        read = self._version_read
        if read is not None and now - read[0] < VERSION_CHECK_SECONDS:
            return read[1]
        value = self.store.get(VERSION_KEY)
        if not self.store.available:
            value = None  # Redis is down: another process may have changed the roster unseen
        else:
            value = value or "0"
        self._version_read = (now, value)
        return value
