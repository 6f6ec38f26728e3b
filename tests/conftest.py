"""Shared fixtures: settings, database (PostgreSQL when reachable, else SQLite), store (Redis when
reachable, else in-process), an injectable clock, the app, and simulators of WeCom/WeChat servers."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.channels.simulator import MpSimulator, WeComSimulator
from config.settings import MpSettings, Settings, WeComSettings

# The published WeCom verify vector's keys; the corp id matches its ciphertext.
WECOM = WeComSettings(
    corp_id="wx49f0ab532d5d035a",
    agent_id=1000002,
    secret="test-secret-wecom",
    token="123456",
    aes_key="kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    api_base="http://127.0.0.1:9/cgi-bin/",
)
# Tencent's official MP sample keys.
MP = MpSettings(
    app_id="wx2c2769f8efd9abc2",
    secret="test-secret-mp",
    token="spamtest",
    aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    api_base="http://127.0.0.1:9/cgi-bin/",
)
# The same account in plain mode (明文模式): no EncodingAESKey. With one, plain-mode callbacks are refused.
MP_PLAIN = replace(MP, aes_key=None)


def _postgres_url() -> str | None:
    from config.settings import normalise_database_url

    url = normalise_database_url(os.environ.get("DATABASE_URL", ""))
    if not url.startswith("postgresql"):
        return None
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return url
    except Exception:
        return None


def _redis_url() -> str | None:
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=0.5).ping()
        return url
    except redis.RedisError:
        return None


POSTGRES_URL = _postgres_url()
REDIS_URL = _redis_url()
# Every Redis key a test run writes starts with this, so the run can remove exactly what it wrote
# (and nothing of a deployment or of another run sharing the server) when it ends.
REDIS_RUN_PREFIX = f"test:{os.getpid()}-{uuid.uuid4().hex[:6]}:"


def redis_prefix() -> str:
    """A fresh key prefix inside this run's: tests sharing one Redis do not see each other's keys."""
    return f"{REDIS_RUN_PREFIX}{uuid.uuid4().hex[:8]}:"


def remove_run_keys(url: str, prefix: str = REDIS_RUN_PREFIX) -> int:
    """Delete every key under `prefix`; the number deleted."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    removed = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) == 500:
                removed += client.delete(*batch)
                batch = []
        if batch:
            removed += client.delete(*batch)
    finally:
        client.close()
    return removed
needs_postgres = pytest.mark.skipif(POSTGRES_URL is None, reason="needs PostgreSQL (set DATABASE_URL)")
needs_redis = pytest.mark.skipif(REDIS_URL is None, reason="needs Redis (set REDIS_URL)")


@pytest.fixture(scope="session", autouse=True)
def _remove_redis_keys_at_the_end(request):
    yield
    if REDIS_URL:
        request.config.stash[_REMOVED_KEYS] = remove_run_keys(REDIS_URL)


_REMOVED_KEYS = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if REDIS_URL and _REMOVED_KEYS in config.stash:
        terminalreporter.write_line(f"Redis: removed the {config.stash[_REMOVED_KEYS]} keys this run wrote "
                                    f"(under {REDIS_RUN_PREFIX})")


def pytest_report_header(config):
    db = f"PostgreSQL ({POSTGRES_URL})" if POSTGRES_URL else "SQLite (DATABASE_URL unset or unreachable)"
    store = f"Redis ({REDIS_URL}, keys under {REDIS_RUN_PREFIX})" if REDIS_URL else "in-process store (REDIS_URL unset or unreachable)"
    lines = [f"database: {db}", f"store: {store}"]
    if not POSTGRES_URL:
        lines.append("SKIPPING tests that need PostgreSQL")
    if not REDIS_URL:
        lines.append("SKIPPING tests that need Redis")
    return lines


@dataclass
class Clock:
    """An injected clock: tests move time instead of sleeping."""

    current: datetime

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **kwargs) -> datetime:
        self.current += timedelta(**kwargs)
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when

    def timestamp(self) -> int:
        return int(self.current.timestamp())


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 21, 11, 45, tzinfo=UTC))  # 19:45 in Shanghai


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """One schema per test session, built by the real migrations. On PostgreSQL each session gets
    its own schema (via search_path), so concurrent runs on one server do not disturb each other."""
    from migrations import upgrade

    schema = None
    if POSTGRES_URL:
        schema = f"test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        engine = create_engine(POSTGRES_URL)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        sep = "&" if "?" in POSTGRES_URL else "?"
        url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    upgrade(url)
    yield url
    if schema:
        engine = create_engine(POSTGRES_URL)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _truncate(url: str) -> None:
    from models.base import Base

    engine = create_engine(url)
    tables = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # `event` is append-only by trigger (migration 0010); ordinary triggers do not fire in
            # replica mode, which only a superuser (the tests' own role, never the app's) may set.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                conn.execute(text(f'DELETE FROM "{name}"'))
    engine.dispose()


@pytest.fixture
def mp_mode() -> str:
    """The Official Account's message mode: "safe" (MP_AES_KEY set) or "plain" (unset). A test
    covers both with `@pytest.mark.parametrize("mp_mode", ["safe", "plain"])`."""
    return "safe"


@pytest.fixture
def settings(database_url, tmp_path, mp_mode) -> Settings:
    _truncate(database_url)
    return Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        wecom=WECOM,
        mp={"safe": MP, "plain": MP_PLAIN}[mp_mode],
        secret_key="test-secret-key",
        instance_dir=tmp_path / "instance",
        redis_prefix=redis_prefix(),
    )


@pytest.fixture
def app(settings, clock):
    from bot.app import create_app

    app = create_app(settings, clock=clock)
    runtime = app.extensions["zhitong"]
    app.config["TESTING"] = True
    yield app
    runtime.db.dispose()


@pytest.fixture
def runtime(app):
    return app.extensions["zhitong"]


@pytest.fixture
def db(runtime):
    return runtime.db


@pytest.fixture
def client(app):
    return app.test_client()


class Chat:
    """Talk to the app through the real callback endpoints with real encryption."""

    def __init__(self, client, clock: Clock, mp: MpSettings = MP) -> None:
        self.client = client
        self.wecom = WeComSimulator(WECOM, now=clock.timestamp)
        self.mp = MpSimulator(mp, now=clock.timestamp)  # in the app's mode: safe with a key, else plain

    def post(self, req):
        return self.client.post(req.path, query_string=req.query, data=req.body, content_type="text/xml")

    def say(self, userid: str, text: str) -> str | None:
        """Send `text` as WeCom user `userid`; return the passive reply's text (None when empty)."""
        response = self.post(self.wecom.text(userid, text))
        assert response.status_code == 200, response.status_code
        reply = self.wecom.read_reply(response.data)
        return reply["Content"] if reply else None

    def tap(self, userid: str, task_id: str, key: str, *, at: int | None = None,
            response_code: str | None = None) -> str | None:
        """Tap a card button as WeCom user `userid`; return the answer pushed to them (None when
        nothing was queued). WeCom ignores a passive reply to a tap: the bot must send none."""
        from sqlalchemy import func, select

        from models.outbox import OutboxMessage

        db = self.client.application.extensions["zhitong"].db
        with db.session() as s:
            before = s.scalar(select(func.max(OutboxMessage.id))) or 0
        req = self.wecom.card_tap(userid, task_id, key, at=at, response_code=response_code)
        response = self.post(req)
        assert response.status_code == 200, response.status_code
        dropped = self.wecom.dropped_passive_replies
        assert self.wecom.answer(req, response.data) is None
        assert self.wecom.dropped_passive_replies == dropped, "a passive reply to a card tap"
        with db.session() as s:
            texts = [m.payload["text"] for m in s.scalars(
                select(OutboxMessage).where(OutboxMessage.id > before, OutboxMessage.recipient == userid)
                .order_by(OutboxMessage.id)) if m.payload.get("type") == "text"]
        return "\n".join(texts) if texts else None

    def say_mp(self, openid: str, text: str) -> str | None:
        """Send `text` as follower `openid`, in the app's mode (see `mp_mode`); return the reply's text."""
        response = self.post(self.mp.text(openid, text))
        assert response.status_code == 200, response.status_code
        assert not response.data or (b"<Encrypt>" in response.data) == self.mp.safe  # replied in kind
        reply = self.mp.read_reply(response.data)
        return reply["Content"] if reply else None


@pytest.fixture
def chat(client, clock, settings) -> Chat:
    return Chat(client, clock, settings.mp)


FIXTURES = Path(__file__).parent / "fixtures"
