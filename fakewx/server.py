"""The fake server's HTTP face: Tencent's URLs under /cgi-bin/, plus /_fake/ for introspection
and fault injection from other processes (the demo's chat client, benchmarks)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

from fakewx.rules import TASK_ID_PATTERN, check_task_id, lower_ids, open_mp_window, set_credentials, spend_mp_window
from fakewx.state import MAX_DUPLICATE_CHECK_INTERVAL, MEDIA_TTL, FakeState, Media

MAX_USERS_PER_CALL = 1000  # WeCom: touser "最多支持1000个"; beyond it 40032 (invalid userid list size)
WECOM_MSGTYPES = frozenset({"text", "image", "voice", "video", "file", "textcard", "news", "mpnews",
                            "markdown", "miniprogram_notice", "template_card"})
CALLBACK_CARD_TYPES = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
MP_MSGTYPES = frozenset({"text", "image", "voice", "video", "music", "news", "mpnews", "mpnewsarticle",
                         "msgmenu", "wxcard", "miniprogrampage"})
WEBHOOK_MSGTYPES = frozenset({"text", "markdown", "markdown_v2", "image", "news", "file", "voice",
                              "template_card"})


def _error(errcode: int, errmsg: str, **extra: Any) -> Response:
    # Tencent answers API errors with HTTP 200 and a JSON errcode.
    return jsonify({"errcode": errcode, "errmsg": f"{errmsg}, hint: [{int(time.time())}-fake]", **extra})


def _ok(**extra: Any) -> Response:
    return jsonify({"errcode": 0, "errmsg": "ok", **extra})


def _json_body() -> dict[str, Any] | None:
    try:
        data = json.loads(request.get_data() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def create_fake_app(state: FakeState | None = None) -> Flask:
    """A Flask app speaking the WeCom and MP server APIs over `state` (a new one when None)."""
    state = state or FakeState()
    app = Flask("fakewx")
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["fakewx"] = state

    def api(path: str, token_kind: str | None) -> Callable:
        """Count the request, apply an injected fault, check the access token, then run the view.
        A delay fault lets the view act and answers late (the client times out, the server acted)."""

        def decorate(view: Callable[[], Response]) -> Callable[[], Response]:
            @wraps(view)
            def wrapper() -> Response:
                with state.lock:
                    state.requests[path] += 1
                fault = state.take_fault(path)
                if fault is not None and fault.http_status is not None:
                    return Response("fake server error", status=fault.http_status, mimetype="text/plain")
                if fault is not None and fault.errcode is not None:
                    extra = {}
                    if fault.errcode == 81013:
                        body = _json_body() or {}
                        extra["invaliduser"] = body.get("touser", "")
                    return _error(fault.errcode, fault.errmsg or "injected fault", **extra)
                if token_kind is not None:
                    errcode, errmsg = state.check_token(token_kind, request.args.get("access_token"))
                    if errcode:
                        return _error(errcode, errmsg)
                response = view()
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                return response

            return wrapper

        return decorate

    # -- WeCom -----------------------------------------------------------------------------

    @app.get("/cgi-bin/gettoken")
    @api("gettoken", None)
    def wecom_gettoken() -> Response:
        corp_id = request.args.get("corpid", "")
        secret = request.args.get("corpsecret", "")
        if not corp_id:
            return _error(41002, "corpid missing")
        if not secret:
            return _error(41004, "corpsecret missing")
        errcode, value = state.issue_token("wecom", corp_id, secret)
        if errcode:
            return _error(errcode, value)
        return _ok(access_token=value, expires_in=state.token_ttl)

    @app.post("/cgi-bin/message/send")
    @api("message/send", "wecom")
    def wecom_message_send() -> Response:
        body = _json_body()
        if body is None:
            return _error(40035, "invalid parameter, body is not a JSON object")
        if not str(body.get("agentid", "")).isdigit():
            return _error(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        if msgtype not in WECOM_MSGTYPES:
            return _error(40008, "invalid message type")
        problem = _check_wecom_content(msgtype, body.get(msgtype)) or _check_wecom_lengths(msgtype, body.get(msgtype))
        if problem:
            return _error(*problem)
        users = [u for u in str(body.get("touser") or "").split("|") if u]
        if "@all" in users:
            return _error(40058, "invalid parameter, the fake server does not send to @all")
        if len(users) > MAX_USERS_PER_CALL:
            return _error(40032, f"invalid userid list size, at most {MAX_USERS_PER_CALL} userids")
        invalid = state.unknown(users)
        valid = [u for u in users if u not in set(invalid)] if invalid else users
        if not valid:
            return _error(81013, "user & party & tag all invalid", invaliduser="|".join(lower_ids(invalid)))
        if msgtype == "template_card":
            problem = check_task_id(state, body["template_card"])
            if problem:
                return _error(*problem)
        if msgtype in MEDIA_MSGTYPES:
            problem = _check_media_id(state, body[msgtype].get("media_id"))
            if problem:
                return _error(*problem)
        interval = None
        if body.get("enable_duplicate_check") in (1, "1", True):
            try:
                interval = min(float(body.get("duplicate_check_interval", 1800)), MAX_DUPLICATE_CHECK_INTERVAL)
            except (TypeError, ValueError):
                return _error(40058, "invalid parameter duplicate_check_interval")
        state.deliver("message/send", body, valid, msgtype=msgtype, duplicate_check_interval=interval)
        extra: dict[str, Any] = {
            "invaliduser": "|".join(lower_ids(invalid)), "invalidparty": "", "invalidtag": "", "unlicenseduser": "",
            "msgid": secrets.token_urlsafe(24),
        }
        if msgtype == "template_card" and body["template_card"].get("card_type") in CALLBACK_CARD_TYPES:
            extra["response_code"] = state.issue_response_code()
        return _ok(**extra)

    @app.post("/cgi-bin/media/upload")
    @api("media/upload", "wecom")
    def wecom_media_upload() -> Response:
        """上传临时素材 (document/path/90253): multipart form-data, the file under "media"; every
        file must be larger than 5 bytes, a `file` at most 20 MB; the media_id lives 3 days."""
        kind = request.args.get("type", "")
        if kind not in MEDIA_LIMITS:
            return _error(40004, "invalid media type")
        upload = request.files.get("media")
        if upload is None or not upload.filename:
            return _error(41005, "media data missing")
        data = upload.read()
        if len(data) <= MEDIA_MIN_BYTES or len(data) > MEDIA_LIMITS[kind]:
            return _error(40006, f"invalid file size, must be larger than {MEDIA_MIN_BYTES} bytes "
                                 f"and at most {MEDIA_LIMITS[kind]} bytes")
        media_id = "fake-media-" + secrets.token_urlsafe(24)
        with state.lock:
            state.media[media_id] = Media(kind, upload.filename, data, state.clock())
        return jsonify({"errcode": 0, "errmsg": "", "type": kind, "media_id": media_id,
                        "created_at": str(int(time.time()))})

    @app.post("/cgi-bin/message/update_template_card")
    @api("message/update_template_card", "wecom")
    def wecom_update_template_card() -> Response:
        body = _json_body()
        if body is None:
            return _error(40035, "invalid parameter, body is not a JSON object")
        if not str(body.get("agentid", "")).isdigit():
            return _error(40056, "invalid agentid")
        code = body.get("response_code")
        if not isinstance(code, str) or not code:
            return _error(40058, "invalid parameter response_code")
        problem = _check_update_content(body)
        if problem:
            return _error(*problem)
        users = body.get("userids") or []
        if not isinstance(users, list) or len(users) > MAX_USERS_PER_CALL:
            return _error(40032, f"invalid userid list size, at most {MAX_USERS_PER_CALL} userids")
        problem = state.spend_response_code(code)
        if problem:
            return _error(*problem)
        invalid = state.unknown(users)
        valid = [u for u in users if u not in set(invalid)]
        state.deliver("message/update_template_card", body, valid, msgtype="update_template_card",
                      counter="card_updates")
        return _ok(invaliduser=lower_ids(invalid))

    @app.post("/cgi-bin/webhook/send")
    @api("webhook/send", None)
    def wecom_webhook_send() -> Response:
        key = request.args.get("key", "")
        if not key or (state.webhook_keys is not None and key not in state.webhook_keys):
            return _error(93000, "invalid webhook url")
        body = _json_body()
        if body is None:
            return _error(40035, "invalid parameter, body is not a JSON object")
        msgtype = body.get("msgtype")
        if msgtype not in WEBHOOK_MSGTYPES:
            return _error(40008, "invalid message type")
        content = body.get(msgtype)
        if msgtype in ("text", "markdown", "markdown_v2") and not (isinstance(content, dict) and content.get("content")):
            return _error(44004, "empty content")
        problem = _check_webhook_lengths(msgtype, content)
        if problem:
            return _error(*problem)
        state.deliver("webhook/send", body, [f"webhook:{key}"], msgtype=msgtype)
        return _ok()

    # -- Official Account ------------------------------------------------------------------

    @app.get("/cgi-bin/token")
    @api("token", None)
    def mp_token() -> Response:
        if request.args.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        app_id = request.args.get("appid", "")
        secret = request.args.get("secret", "")
        if not app_id:
            return _error(41002, "appid missing")
        if not secret:
            return _error(41004, "appsecret missing")
        errcode, value = state.issue_token("mp", app_id, secret)
        if errcode:
            return _error(errcode, value)
        return jsonify({"access_token": value, "expires_in": state.token_ttl})

    @app.post("/cgi-bin/message/custom/send")
    @api("message/custom/send", "mp")
    def mp_custom_send() -> Response:
        body = _json_body()
        if body is None:
            return _error(47001, "data format error")
        openid = body.get("touser")
        msgtype = body.get("msgtype")
        if not isinstance(openid, str) or not openid or state.unknown([openid]):
            return _error(40003, "invalid openid")
        if msgtype not in MP_MSGTYPES:
            return _error(40008, "invalid message type")
        if msgtype == "text" and not (body.get("text") or {}).get("content"):
            return _error(44004, "empty content")
        if msgtype == "text" and _utf8_size((body.get("text") or {}).get("content")) > TEXT_LIMIT_BYTES:
            return _error(45002, "content size out of limit")
        problem = spend_mp_window(state, openid)
        if problem:
            return _error(*problem)
        state.deliver("message/custom/send", body, [openid], msgtype=msgtype)
        return _ok()

    @app.post("/cgi-bin/message/template/send")
    @api("message/template/send", "mp")
    def mp_template_send() -> Response:
        body = _json_body()
        if body is None:
            return _error(47001, "data format error")
        openid = body.get("touser")
        if not isinstance(openid, str) or not openid or state.unknown([openid]):
            return _error(40003, "invalid openid")
        if not body.get("template_id"):
            return _error(40037, "invalid template_id")
        state.deliver("message/template/send", body, [openid], msgtype="template")
        return _ok(msgid=int(time.time() * 1000))

    from fakewx.oauth import OAuthDesk, register_oauth

    app.extensions["fakewx_oauth"] = OAuthDesk()
    register_oauth(app, app.extensions["fakewx_oauth"], api)

    # -- introspection ---------------------------------------------------------------------

    @app.get("/_fake/messages")
    def fake_messages() -> Response:
        user = request.args.get("touser", "")
        try:
            after = int(request.args.get("after", "0") or 0)
        except ValueError:
            after = 0
        return jsonify(state.messages_for(user, after))

    @app.get("/_fake/media/<media_id>")
    def fake_media(media_id: str) -> Response:
        """An uploaded temporary file, for the demo's chat client to save what a file message names."""
        with state.lock:
            media = state.media.get(media_id)
        if media is None:
            return _error(40007, "invalid media_id")
        return Response(media.data, mimetype="application/octet-stream", headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(media.filename)}"})

    @app.get("/_fake/stats")
    def fake_stats() -> Response:
        return jsonify(state.stats())

    @app.post("/_fake/reset")
    def fake_reset() -> Response:
        state.reset()
        return jsonify({"ok": True})

    @app.post("/_fake/expire_tokens")
    def fake_expire_tokens() -> Response:
        state.expire_tokens()
        return jsonify({"ok": True})

    @app.post("/_fake/fail")
    def fake_fail() -> Response:
        """{"path": "message/send", "errcode": 45009 | "http_status": 500 | "delay": 3.0, "times": 1}"""
        spec = _json_body() or {}
        path = spec.get("path")
        times = int(spec.get("times", 1))
        try:
            if not isinstance(path, str) or not path:
                raise ValueError("path is required")
            if spec.get("delay") is not None:
                state.delay_next(path, float(spec["delay"]), times=times)
            else:
                state.fail_next(path, errcode=spec.get("errcode"), errmsg=spec.get("errmsg"),
                                http_status=spec.get("http_status"), times=times)
        except (TypeError, ValueError) as exc:
            return Response(json.dumps({"ok": False, "error": str(exc)}), status=400, mimetype="application/json")
        return jsonify({"ok": True})

    @app.post("/_fake/config")
    def fake_config() -> Response:
        """{"known_users": [...] | null, "duplicate_check": bool, "enforce_mp_window": bool,
        "credentials": {"wecom": {corp_id: [secret, ...]}, "mp": {appid: [secret, ...]}}}"""
        spec = _json_body() or {}
        if "known_users" in spec:
            state.set_known_users(spec["known_users"])
        if "duplicate_check" in spec:
            state.duplicate_check = bool(spec["duplicate_check"])
        if "enforce_mp_window" in spec:
            state.enforce_mp_window = bool(spec["enforce_mp_window"])
        if isinstance(spec.get("credentials"), dict):
            set_credentials(state, spec["credentials"])  # e.g. a rotated secret: ours is now wrong
        return jsonify({"ok": True})

    @app.post("/_fake/mp_window")
    def fake_mp_window() -> Response:
        """{"openid": "...", "kind": "message" | "event"}: the follower opened a service window."""
        spec = _json_body() or {}
        if not isinstance(spec.get("openid"), str) or spec.get("kind", "message") not in ("message", "event"):
            return Response(json.dumps({"ok": False}), status=400, mimetype="application/json")
        open_mp_window(state, spec["openid"], spec.get("kind", "message"))
        return jsonify({"ok": True})

    return app


# Temporary media (document/path/90253): "所有文件size必须大于5个字节"; 图片 10MB, 语音 2MB, 视频 10MB,
# 普通文件 20MB. A message naming a media_id that is unknown or older than 3 days gets 40007.
MEDIA_MIN_BYTES = 5
MEDIA_LIMITS = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 10 * 1024 * 1024,
                "file": 20 * 1024 * 1024}
MEDIA_MSGTYPES = frozenset({"image", "voice", "video", "file"})


def _check_media_id(state: FakeState, media_id: Any) -> tuple[int, str] | None:
    with state.lock:
        media = state.media.get(str(media_id or ""))
    if media is None or state.clock() - media.created_at > MEDIA_TTL:
        return 40007, "invalid media_id"
    return None


def _check_update_content(body: dict[str, Any]) -> tuple[int, str] | None:
    """更新模版卡片消息 (document/path/94888) takes one of two bodies: `button.replace_name` (the
    button greyed out with that text), or `template_card`, a whole card of any of the five types,
    with the fields message/send requires of it (a button_interaction card: its title and 1 to 6
    buttons, each with text and key), within the same lengths; `replace_text` (the buttons shown
    greyed out) only on the card types with buttons. The card's task stays the sent one: a task_id
    given must be well formed, and is not reserved again."""
    button, card = body.get("button"), body.get("template_card")
    if button is not None and card is not None:
        return 40058, "invalid parameter, button and template_card are two different updates"
    if card is None:
        if not (isinstance(button, dict) and isinstance(button.get("replace_name"), str) and button["replace_name"]):
            return 40058, "invalid parameter, need button.replace_name or template_card"
        return None
    problem = _check_wecom_content("template_card", card, task_id_required=False)
    problem = problem or _check_wecom_lengths("template_card", card)
    if problem:
        return problem
    if "task_id" in card and not (isinstance(card["task_id"], str) and TASK_ID_PATTERN.fullmatch(card["task_id"])):
        return 40058, "invalid task_id: 1 to 128 bytes of [0-9A-Za-z_-@]"
    replace = card.get("replace_text")
    if replace is not None:
        if card.get("card_type") not in CALLBACK_CARD_TYPES:
            return 40058, "invalid parameter, replace_text only on button, vote and multiple interaction cards"
        if not isinstance(replace, str) or not replace:
            return 40058, "invalid parameter replace_text"
    return None


def _check_wecom_content(msgtype: str, content: Any, *, task_id_required: bool = True) -> tuple[int, str] | None:
    if not isinstance(content, dict):
        return 40058, f"invalid parameter, {msgtype} missing"
    if msgtype in ("text", "markdown") and not content.get("content"):
        return 44004, "empty content"
    if msgtype in MEDIA_MSGTYPES and not content.get("media_id"):
        return 40007, "invalid media_id"
    if msgtype == "textcard" and not (content.get("title") and content.get("description") and content.get("url")):
        return 40058, "invalid parameter, textcard needs title, description and url"
    if msgtype == "template_card":
        card_type = content.get("card_type")
        if card_type not in {"text_notice", "news_notice", *CALLBACK_CARD_TYPES}:
            return 40058, "invalid parameter card_type"
        if card_type in CALLBACK_CARD_TYPES and task_id_required and not content.get("task_id"):
            return 40058, "invalid parameter, task_id required"
        if card_type == "button_interaction":
            buttons = content.get("button_list")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
                return 40058, "invalid parameter, button_list needs 1 to 6 buttons"
            for button in buttons:
                if not isinstance(button, dict) or not button.get("text"):
                    return 40058, "invalid parameter, button text missing"
                if button.get("type", 0) == 0 and not button.get("key"):
                    return 40058, "invalid parameter, button key missing"
        if not (content.get("main_title") or {}).get("title") and not content.get("sub_title_text"):
            return 40058, "invalid parameter, main_title.title missing"
    return None


# Length limits as documented; the real server cuts some of these silently (text "超过将截断"), the
# fake refuses them so a regression shows. Errcodes: 45002 "content size out of limit" (global
# errcodes, developer.work.weixin.qq.com/document/path/90313; the Official Account's customer-service
# answers the same), 40058 "invalid parameter" naming the field (what WeCom answers for a template
# card or robot field over its limit, e.g. "markdown.content exceed max length 4096").
TEXT_LIMIT_BYTES = 2048
ROBOT_MARKDOWN_LIMIT_BYTES = 4096
CARD_TITLE_LIMIT_CHARS = 36
CARD_SUBTITLE_LIMIT_CHARS = 160


def _utf8_size(value: Any) -> int:
    return len(str(value or "").encode("utf-8"))


def _check_wecom_lengths(msgtype: str, content: Any) -> tuple[int, str] | None:
    """message/send: text and markdown ≤ 2,048 bytes; a template card's title ≤ 36 characters and
    sub_title_text ≤ 160 (document/path/90236)."""
    if not isinstance(content, dict):
        return None
    if msgtype in ("text", "markdown") and _utf8_size(content.get("content")) > TEXT_LIMIT_BYTES:
        return 45002, "content size out of limit"
    if msgtype == "template_card":
        title = str((content.get("main_title") or {}).get("title") or "")
        if len(title) > CARD_TITLE_LIMIT_CHARS:
            return 40058, f"main_title.title exceed max length {CARD_TITLE_LIMIT_CHARS}. invalid Request Parameter"
        if len(str(content.get("sub_title_text") or "")) > CARD_SUBTITLE_LIMIT_CHARS:
            return 40058, f"sub_title_text exceed max length {CARD_SUBTITLE_LIMIT_CHARS}. invalid Request Parameter"
    return None


def _check_webhook_lengths(msgtype: str, content: Any) -> tuple[int, str] | None:
    """webhook/send: text ≤ 2,048 bytes, markdown ≤ 4,096 (document/path/99110)."""
    if not isinstance(content, dict):
        return None
    limit = {"text": TEXT_LIMIT_BYTES, "markdown": ROBOT_MARKDOWN_LIMIT_BYTES,
             "markdown_v2": ROBOT_MARKDOWN_LIMIT_BYTES}.get(msgtype)
    if limit is not None and _utf8_size(content.get("content")) > limit:
        return 40058, f"{msgtype}.content exceed max length {limit}. invalid Request Parameter"
    return None


class _QuietHandler(WSGIRequestHandler):
    """No access log: benchmarks make tens of thousands of requests."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class FakeServer:
    """The fake running on 127.0.0.1 in a background thread; started on construction.

        with FakeServer() as fake:
            settings = replace(settings, wecom=replace(WECOM, api_base=fake.base_url))
            fake.state.fail_next("message/send", errcode=45009)
    """

    def __init__(self, state: FakeState | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state or FakeState()
        self.app = create_fake_app(self.state)
        self.oauth = self.app.extensions["fakewx_oauth"]  # the web OAuth desk (fakewx.oauth)
        self.host = host
        self._server = make_server(host, port, self.app, threaded=True, request_handler=_QuietHandler)
        self.port: int = self._server.server_port
        self._thread: threading.Thread | None = None
        self.start()

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def oauth_url(self) -> str:
        """What WECOM_OAUTH_URL should be set to."""
        return f"{self.root_url}/connect/oauth2/authorize"

    @property
    def base_url(self) -> str:
        """What WECOM_API_BASE / MP_API_BASE should be set to."""
        return f"{self.root_url}/cgi-bin/"

    def start(self) -> None:
        """Serve in a daemon thread (idempotent)."""
        if self._thread is None:
            # A short poll interval: stop() returns in milliseconds, not half a second.
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"fakewx:{self.port}", daemon=True)
            self._thread.start()

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C in `python -m fakewx`)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
