"""What a running instance holds: settings, database, shared store, channels and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app

from bot.directory import Directory
from bot.stores import MemoryStore, RedisStore, make_store
from config.settings import Settings
from models.base import Database, utcnow


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: MemoryStore | RedisStore
    clock: Callable[[], datetime] = utcnow
    channels: dict = field(default_factory=dict)
    directory: Directory = field(init=False)

    def __post_init__(self) -> None:
        self.directory = Directory(self.db, self.store)

    @classmethod
    def build(cls, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> Runtime:
        from bot.channels import build_channels

        if settings.database_url.startswith("sqlite:///"):
            settings.instance_dir.mkdir(parents=True, exist_ok=True)
        runtime = cls(
            settings=settings,
            db=Database(settings.database_url),
            store=make_store(settings.redis_url, prefix=settings.redis_prefix),
            clock=clock or utcnow,
        )
        runtime.channels = build_channels(settings, store=runtime.store)
        return runtime

    def now(self) -> datetime:
        return self.clock()


def current_runtime() -> Runtime:
    return current_app.extensions["zhitong"]
