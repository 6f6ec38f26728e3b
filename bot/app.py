"""Application factory: builds everything from one Settings object; nothing heavy at import."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask

from bot.runtime import Runtime
from config.settings import Settings


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

    from bot import views

    views.init_app(app)

    from bot import web

    web.init_app(app)  # the mobile pages; sessions under /m/ only

    from bot import cli

    cli.init_app(app)

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return app

