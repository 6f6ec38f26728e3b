"""Who is looking at a page: WeCom web OAuth inside WeCom, a signed link for Official Account
followers; either starts the same signed session cookie."""

from __future__ import annotations

import logging
import secrets
from functools import wraps
from urllib.parse import urlencode

from flask import Blueprint, abort, g, redirect, render_template, request, session

from bot.channels.base import TransientSendError
from bot.runtime import current_runtime
from models.identity import Channel

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__, url_prefix="/m/auth", template_folder="templates")


def _safe_next(value: str | None) -> str:
    """Only our own pages: an open redirect would make the login a phishing tool."""
    if value and value.startswith("/m/") and not value.startswith("/m/auth/") and "//" not in value \
            and "\\" not in value:
        return value
    return "/m/"


def _base_url() -> str:
    settings = current_runtime().settings
    return settings.public_base_url or request.host_url.rstrip("/")


def refuse(status: int, message: str, *, hint: str | None = None):
    return render_template("error.html", status=status, message=message, hint=hint), status


@bp.get("/wecom")
def wecom_start():
    from bot.channels.wecom_oauth import authorize_url

    settings = current_runtime().settings
    if settings.wecom is None:
        return refuse(404, "本服务未接入企业微信。", hint="请从直通车发给您的消息中的链接打开页面。")
    state = secrets.token_urlsafe(24)
    session["oauth_state"] = state
    session["next"] = _safe_next(request.args.get("next"))
    return redirect(authorize_url(settings, redirect_uri=f"{_base_url()}/m/auth/callback", state=state))


@bp.get("/callback")
def wecom_callback():
    from bot.channels.wecom_oauth import web_user_id
    from bot.directory import load_sender

    runtime = current_runtime()
    expected = session.pop("oauth_state", None)
    state, code = request.args.get("state", ""), request.args.get("code", "")
    if not expected or not secrets.compare_digest(str(expected), state):
        return refuse(400, "登录已失效或来源不明。", hint="请重新从直通车的消息中打开页面。")
    channel = runtime.channels.get(Channel.WECOM)
    if not code or len(code) > 512 or channel is None:
        return refuse(400, "缺少企业微信登录码。", hint="请重新从直通车的消息中打开页面。")
    try:
        userid = web_user_id(channel, code)
    except TransientSendError:
        log.warning("auth/getuserinfo unavailable", exc_info=True)
        return refuse(503, "暂时无法向企业微信确认您的身份，请稍后再试。")
    if userid is None:
        return refuse(400, "企业微信登录码无效或已使用。", hint="请重新从直通车的消息中打开页面。")
    with runtime.db.read_session() as s:
        person = load_sender(s, Channel.WECOM, userid)
        person_id = person.id if person else None
    if person_id is None:
        return refuse(403, "您不在党员名册中，无法查看这些页面。", hint="如有疑问，请联系本支部书记。")
    _start_session(person_id, Channel.WECOM, userid)
    return redirect(session.pop("next", "/m/"))


def _start_session(person_id: int, channel: Channel, external_id: str) -> None:
    next_page = session.get("next")
    session.clear()  # a fresh session on every login: nothing carried over from before
    if next_page:
        session["next"] = next_page
    session.permanent = True
    session["person_id"] = person_id
    session["channel"] = channel.value
    session["external_id"] = external_id


def signed_in(view):
    """A page view: the person from the session (or a signed link, which starts one) in `g`."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        from bot.web.links import read_link

        runtime = current_runtime()
        token = request.args.get("t")
        if token:
            found = read_link(runtime.settings, token, runtime.now())
            if found is None:
                return refuse(403, "链接已过期或无效（链接有效期 24 小时）。",
                              hint="请在公众号中重新发送命令，获取新的链接。")
            _start_session(found[0], Channel.MP, found[1])
            rest = {k: v for k, v in request.args.items() if k != "t"}
            return redirect(request.path + (f"?{urlencode(rest)}" if rest else ""))
        if "person_id" not in session:
            if runtime.settings.wecom is not None:
                return redirect("/m/auth/wecom?" + urlencode({"next": request.full_path.rstrip("?")}))
            return refuse(401, "请从直通车发给您的消息中的链接打开页面。")
        g.person_id = int(session["person_id"])
        g.channel = Channel(session.get("channel", Channel.WECOM.value))
        g.external_id = str(session.get("external_id", ""))
        return view(*args, **kwargs)

    return wrapper


def forbid(message: str):
    abort(403, description=message)
