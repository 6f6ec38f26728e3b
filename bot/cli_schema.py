"""The command line's one check that the database is upgraded, shared by every command that reads
or writes it (`@needs_current_schema`), and the quiet wrapper around the migration tool's logs.

A command on a database never upgraded (or not yet upgraded to this release) would otherwise stop
at its first query with a traceback; this stops it first with one Chinese line naming the command
to run, and exit status 1. The command modules sit beside `bot.cli`, which imports them, so the
check lives here rather than there."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import click
from flask import current_app

from config.settings import Settings

NOT_UPGRADED = "数据库尚未建立或不是最新版本，请先运行 python -m bot db upgrade"


@contextmanager
def migration_logs(verbose: bool):
    """The migration tool's English progress lines reach the terminal only with `--verbose`."""
    logger = logging.getLogger("alembic")
    level = logger.level
    if not verbose:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def schema_is_current(settings: Settings, *, verbose: bool = False) -> bool:
    with migration_logs(verbose):
        from migrations import is_current

        return is_current(settings.database_url)


def exit_unless_schema_current(settings: Settings) -> None:
    """Stop with `NOT_UPGRADED` (exit 1) unless the database is at the newest revision. Nothing is
    created: a SQLite file that is not there stays absent."""
    if not schema_is_current(settings):
        click.echo(NOT_UPGRADED, err=True)
        sys.exit(1)


def needs_current_schema(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command's callback that runs only on an upgraded database; put it under `@with_appcontext`
    (the check reads the running instance's settings)."""
    @functools.wraps(command)
    def checked(*args: Any, **kwargs: Any) -> Any:
        exit_unless_schema_current(current_app.extensions["zhitong"].settings)
        return command(*args, **kwargs)

    checked.needs_current_schema = True  # kept by `with_appcontext`'s wrapper: the CLI test reads it
    return checked
