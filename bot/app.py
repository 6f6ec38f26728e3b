"""The composition root: `create_app` builds everything from one Settings object (nothing heavy
at import) and `main` is `python -m bot`.

Nothing in the project imports this module back (tests/test_import_graph.py checks). The commands
that build an app of their own — the demo, with its settings, and each gunicorn worker of `web` —
are handed `create_app` through `cli.init_app` instead of importing it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import datetime

from flask import Flask

from bot.runtime import Runtime
from config.settings import Settings, SettingsError


def create_app(settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask("bot", instance_path=str(settings.instance_dir), instance_relative_config=False)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_AS_ASCII=False,
    )
    runtime = Runtime.build(settings, clock=clock)
    app.extensions["zhitong"] = runtime
    from scheduler import calendar

    calendar.configure(settings.holidays)  # HOLIDAYS_FILE's dates beside the built-in calendar
    from models import points

    points.configure(settings.points_rules, settings.tz)  # POINTS_RULES, and the zone months count in

    from bot import views

    views.init_app(app)

    from bot import web

    web.init_app(app)  # the mobile pages; sessions under /m/ only

    from bot import cli

    cli.init_app(app, create_app=create_app)

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return app


def main() -> None:
    """`python -m bot`: settings errors end start-up with the variable named."""
    import click
    from flask.cli import FlaskGroup

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        click.echo(f"启动失败：{exc}", err=True)
        sys.exit(2)

    group = FlaskGroup(create_app=lambda: create_app(settings), add_default_commands=False, load_dotenv=False,
                       help="直通车 — 党务工作机器人")
    group.main(prog_name="python -m bot")
