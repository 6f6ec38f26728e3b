"""Mobile pages (/m/): blueprints, with their Jinja templates in templates/ and assets in static/
(served locally, never from a CDN). Sessions exist under /m/ only (bot.web.session)."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask


def init_app(app: Flask) -> None:
    from bot.web.auth import bp as auth_bp
    from bot.web.pages import bp as pages_bp
    from bot.web.portrait import bp as portrait_bp
    from bot.web.session import PagesSessions

    settings = app.extensions["zhitong"].settings
    app.session_interface = PagesSessions()
    app.config.update(
        SESSION_COOKIE_NAME="zt_session",
        SESSION_COOKIE_PATH="/m/",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings.public_base_url and settings.public_base_url.startswith("https://")),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session that holds it
    )
    app.register_blueprint(auth_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(portrait_bp)
