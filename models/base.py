"""Declarative base, UTC-aware column type and the database handle bound to the app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy import Enum as SAEnum
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Database:
    """Engine and session factory; created by `create_app` and reached through `app.extensions`."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        kwargs: dict = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            # No ping before each checkout (a round trip on every unit of work): a connection
            # that died with a database restart fails its first statement, SQLAlchemy then
            # discards the pool's stale connections, and the caller tries again on a fresh one
            # (the callback dispatcher once at once; the worker and scheduler on their next round).
            kwargs.update(pool_size=10, max_overflow=20, pool_recycle=1800)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.read_engine = self.engine
        if self.engine.dialect.name != "sqlite":
            # Reads get their own pool of autocommit connections: no BEGIN and ROLLBACK round trips
            # around a one-query answer, and no ping (a read that meets a dead connection is
            # answered again on the path that writes).
            self.read_engine = create_engine(url, echo=echo, isolation_level="AUTOCOMMIT", pool_size=10,
                                             max_overflow=20, pool_recycle=1800)
            event.listen(self.read_engine, "connect", _generic_plans)
        self.read_sessionmaker = sessionmaker(self.read_engine, class_=ReadOnlySession)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A unit of work that only reads: never committed, and any write raises ReadOnlyError.
        Closing it returns the connection; there is no transaction to end (autocommit)."""
        with self.read_sessionmaker() as session:
            yield session

    def create_all(self) -> None:
        Base.metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()


class ReadOnlyError(RuntimeError):
    """Something tried to write in a read-only session; the write would have been lost."""


class ReadOnlySession(Session):
    pass


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(session, _flush_context, _instances) -> None:
    raise ReadOnlyError("flush in a read-only session")


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_dml(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlyError("INSERT, UPDATE or DELETE in a read-only session")


def _generic_plans(dbapi_connection, _record) -> None:
    """The read pool serves short point queries keyed by a person or an organisation (待办 above
    all), which psycopg prepares after a few runs. PostgreSQL kept planning 待办 afresh on every
    run (a custom plan: about 1 ms of server CPU against 0.2 ms with the prepared generic plan),
    on the same cores as the web workers; the generic plan is the same index lookup."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
    dbapi_connection.commit()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def str_enum(enum_cls, length: int = 20) -> SAEnum:
    """A StrEnum column stored as its value in a VARCHAR, read back as the enum member."""
    return SAEnum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda e: [member.value for member in e],
        validate_strings=True,
    )
