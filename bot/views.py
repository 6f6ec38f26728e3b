"""HTTP endpoints: the two callbacks and the health checks."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, abort, current_app, request
from sqlalchemy import text
from werkzeug.exceptions import RequestEntityTooLarge

from bot.channels.clients import credential_faults
from bot.channels.xmlsafe import CallbackError
from bot.dispatch import dispatch
from bot.runtime import current_runtime
from models.identity import Channel

log = logging.getLogger(__name__)
bp = Blueprint("callbacks", __name__)


def _channel(name: Channel):
    channel = current_runtime().channels.get(name)
    if channel is None:
        abort(404)
    return channel


def _plain(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def _body() -> bytes:
    """The request body. Werkzeug cuts a streamed (chunked) body off silently at MAX_CONTENT_LENGTH,
    so one that reaches the limit may be longer: refused like a declared long one."""
    data = request.get_data(cache=False)
    if request.content_length is None and len(data) >= current_app.config["MAX_CONTENT_LENGTH"]:
        raise RequestEntityTooLarge()
    return data


def _refuse(exc: CallbackError) -> Response:
    log.warning("refused %s %s: %s", request.method, request.path, exc.reason)
    return _plain("", exc.status)


@bp.get("/wecom/callback")
def wecom_verify():
    try:
        return _plain(_channel(Channel.WECOM).verify_url(request.args))
    except CallbackError as exc:
        return _refuse(exc)


@bp.post("/wecom/callback")
def wecom_callback():
    channel = _channel(Channel.WECOM)
    runtime = current_runtime()
    try:
        msg = channel.parse(request.args, _body(), runtime.now())
    except CallbackError as exc:
        return _refuse(exc)
    reply = dispatch(runtime, msg)
    return Response(channel.render_reply(msg, reply, request.args.get("nonce", "")), mimetype="application/xml")


@bp.get("/mp/callback")
def mp_verify():
    try:
        return _plain(_channel(Channel.MP).verify_url(request.args))
    except CallbackError as exc:
        return _refuse(exc)


@bp.post("/mp/callback")
def mp_callback():
    channel = _channel(Channel.MP)
    runtime = current_runtime()
    try:
        msg = channel.parse(request.args, _body(), runtime.now())
    except CallbackError as exc:
        return _refuse(exc)
    reply = dispatch(runtime, msg)
    return Response(channel.render_reply(msg, reply, request.args), mimetype="application/xml")


@bp.get("/healthz")
def healthz():
    return _plain("ok")


@bp.get("/readyz")
def readyz():
    runtime = current_runtime()
    problems = []
    try:
        with runtime.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        problems.append(f"数据库不可用：{type(exc).__name__}")
    if runtime.settings.redis_url and not runtime.store.ping():
        problems.append("Redis 不可用")
    if problems:
        return _plain("\n".join(problems), 503)
    # Refused credentials stop pushes, not callbacks: still ready (200), with the fault named.
    faults = [_fault_line(runtime, fault) for fault in credential_faults(runtime.store)]
    return _plain("\n".join(["ok", *faults]) if faults else "ok")


FAULT_CHANNELS = {"wecom": "企业微信", "mp": "公众号"}


def _fault_line(runtime, fault: dict) -> str:
    from datetime import UTC, datetime, timedelta

    from bot.timefmt import format_time

    since = datetime.fromtimestamp(float(fault.get("since") or 0), UTC)
    retry = since + timedelta(seconds=float(fault.get("retry_seconds") or 3600))
    setting = fault.get("setting", "")
    what = "服务器 IP 不在公众号白名单中" if setting == "IP_WHITELIST" else f"请检查设置 {setting}"
    return (f"{FAULT_CHANNELS.get(fault.get('kind'), fault.get('kind'))}推送已暂停：获取凭据被拒绝"
            f"（{fault.get('errcode')}），{what}；{format_time(retry, runtime.settings.tz)} 后自动重试一次")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc):
        log.warning("refused %s %s: body over %d bytes", request.method, request.path, app.config["MAX_CONTENT_LENGTH"])
        return _plain("", 413)
