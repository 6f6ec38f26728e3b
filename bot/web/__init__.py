"""Mobile pages (/m/): blueprints, with their Jinja templates in templates/ and assets in static/
(served locally, never from a CDN). Sessions exist under /m/ only (bot.web.session)."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, request
from werkzeug.exceptions import MethodNotAllowed, NotFound


def init_app(app: Flask) -> None:
    from bot.web.auth import bp as auth_bp
    from bot.web.files import bp as files_bp
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
    app.register_blueprint(files_bp)  # /files/<token>: generated files (一事一档)
    app.register_blueprint(portrait_bp)
    app.register_error_handler(NotFound, _unrouted)
    app.register_error_handler(MethodNotAllowed, _unrouted)


def _unrouted(exc):
    """An address under /m/ that no page answers (a mistyped or cut link) gets the Chinese error page;
    the blueprints' own handlers only see addresses that matched one of their routes."""
    if not request.path.startswith("/m/"):
        return exc
    from bot.web.auth import refuse

    if isinstance(exc, MethodNotAllowed):
        return refuse(405, "这个地址不能这样打开。", hint="请从直通车的消息或「我的」页面中打开。")
    return refuse(404, "没有找到这一页。", hint="链接可能不完整，请从直通车的消息中重新打开。")
