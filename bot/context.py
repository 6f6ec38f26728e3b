"""The context a handler gets: the session of the current unit of work, the clock and who is asking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.messages import InboundMessage
from bot.timefmt import format_time
from config.settings import Settings
from models.person import Person


@dataclass
class Context:
    session: Session
    now: datetime
    settings: Settings
    msg: InboundMessage
    person: Person | None
    # Set by a handler that changed people, roles or identities: the sender cache is reloaded
    # everywhere once the change is committed (bot.directory).
    roster_changed: bool = False

    def fmt(self, at: datetime) -> str:
        return format_time(at, self.settings.tz)
