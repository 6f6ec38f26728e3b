"""WeCom (企业微信) self-built app: URL verification, encrypted callbacks, passive replies, pushes."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from wechatpy.exceptions import InvalidSignatureException
from wechatpy.work.crypto import WeChatCrypto
from wechatpy.work.exceptions import InvalidCorpIdException

from bot.channels.base import (
    CARD_SUBTITLE_LIMIT_CHARS,
    CARD_TITLE_LIMIT_CHARS,
    TEXT_LIMIT_BYTES,
    SendResult,
    card_number,
    fit_bytes,
    fit_chars,
    text_number,
)
from bot.channels.clients import ApiError, WeComClient, call_api
from bot.channels.xmlsafe import CallbackError, cdata, parse_message, parse_xml
from bot.messages import InboundKind, InboundMessage, Reply
from bot.stores import Store
from config.settings import WeComSettings
from models.identity import Channel

# WeCom suppresses the same content to the same user within this window; a resend after a
# worker crash is therefore harmless (see bot/worker.py).
DUPLICATE_CHECK_SECONDS = 1800
# Recipient-level reasons (kept short, English: they are stored in outbox.last_error).
# Reasons are stored on the delivery and shown to secretaries in progress views: Chinese.
MEDIA_MIN_BYTES = 5  # "所有文件size必须大于5个字节" (document/path/90253)
FILE_MAX_BYTES = 20 * 1024 * 1024  # 普通文件(file): 20MB


class UploadRefused(Exception):
    """WeCom refused the file for good (size, type, permissions); the reason is Chinese."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


REASON_INVALID_USER = "企业微信账号不存在或不在应用可见范围内（invaliduser）"
REASON_UNLICENSED = "企业微信账号未激活（unlicenseduser）"


class WeComChannel:
    name = Channel.WECOM
    max_recipients = 1000  # touser takes at most 1,000 userids per message/send call
    duplicate_check_seconds = DUPLICATE_CHECK_SECONDS  # a resend within it reaches nobody twice

    def __init__(self, settings: WeComSettings, *, max_skew: int = 300, store: Store | None = None,
                 timeout: float = 5.0) -> None:
        self.settings = settings
        self.max_skew = max_skew
        self.crypto = WeChatCrypto(settings.token, settings.aes_key, settings.corp_id)
        self.store = store
        self.timeout = timeout
        self._client: WeComClient | None = None

    # -- inbound ---------------------------------------------------------------------------

    def verify_url(self, args: Mapping[str, str]) -> str:
        """GET /wecom/callback: check the signature over echostr and return its plaintext."""
        signature, timestamp, nonce, echostr = _require(args, "msg_signature", "timestamp", "nonce", "echostr")
        return self._decrypt(lambda: self.crypto.check_signature(signature, timestamp, nonce, echostr))

    def parse(self, args: Mapping[str, str], body: bytes, now: datetime) -> InboundMessage:
        """POST /wecom/callback: verify, decrypt and parse into a neutral message."""
        signature, timestamp, nonce = _require(args, "msg_signature", "timestamp", "nonce")
        check_timestamp(timestamp, now, self.max_skew)
        # The envelope's parse stops at the first level too deep; nothing else is parsed or
        # decrypted before the signature over the ciphertext holds.
        envelope = parse_xml(body)
        if not isinstance(envelope.get("Encrypt"), str) or not envelope["Encrypt"]:
            raise CallbackError(400, "no Encrypt element")
        plaintext = self._decrypt(lambda: self.crypto.decrypt_message(envelope, signature, timestamp, nonce))
        return to_inbound(Channel.WECOM, parse_message(plaintext))

    def _decrypt(self, fn) -> str:
        try:
            return fn()
        except InvalidSignatureException as exc:
            raise CallbackError(403, "bad signature") from exc
        except InvalidCorpIdException as exc:
            raise CallbackError(403, "ciphertext is for another corp id") from exc
        except Exception as exc:  # base64, padding, length, UTF-8: all mean "not from WeCom"
            raise CallbackError(400, f"undecryptable: {type(exc).__name__}") from exc

    # -- passive reply ---------------------------------------------------------------------

    def render_reply(self, msg: InboundMessage, reply: Reply | None, nonce: str) -> str:
        """The encrypted passive reply, or "" when there is nothing to say."""
        if not reply:
            return ""
        timestamp = str(int(time.time()))
        xml = render_text_xml(
            to_user=msg.sender,
            from_user=self.settings.corp_id,
            text=reply.text,
            create_time=timestamp,
            extra=f"<AgentID>{self.settings.agent_id}</AgentID>",
        )
        return self.crypto.encrypt_message(xml, nonce, timestamp)

    # -- outbound --------------------------------------------------------------------------

    @property
    def client(self) -> WeComClient:
        if self._client is None:
            self._client = WeComClient(self.settings.corp_id, self.settings.secret, api_base=self.settings.api_base,
                                       store=self.store, timeout=self.timeout)
        return self._client

    def send(self, recipients: list[str], payload: dict[str, Any]) -> SendResult:
        """Push one neutral payload to up to 1,000 userids in one API call.

        Raises TransientSendError when nothing was sent and a retry may work."""
        if not recipients:
            return SendResult()
        if len(recipients) > self.max_recipients:
            raise ValueError(f"at most {self.max_recipients} recipients per WeCom call, got {len(recipients)}")
        kind = payload.get("type")
        if kind == "card_update":
            return self._update_card(recipients, payload)
        message = render_message(payload, batch=recipients)
        if message is None:
            return SendResult.all_failed(recipients, f"unsupported payload type {kind!r} for wecom")
        body = {
            "touser": "|".join(recipients),
            "agentid": self.settings.agent_id,
            **message,
            "enable_duplicate_check": 1,
            "duplicate_check_interval": DUPLICATE_CHECK_SECONDS,
        }
        try:
            result = call_api(lambda: self.client.post("message/send", data=body))
        except ApiError as exc:
            if payload.get("resend") and is_task_id_taken(exc):
                # This exact card (same task_id) was accepted before: the first attempt arrived.
                return SendResult(accepted=list(recipients))
            return SendResult.all_failed(recipients, _reason(exc))
        # WeCom answers userids lower-cased, whatever case we sent them in.
        refused = {r.lower() for r in _split(result.get("invaliduser"))}
        unlicensed = {r.lower() for r in _split(result.get("unlicenseduser"))}
        failed = {r: REASON_INVALID_USER for r in recipients if r.lower() in refused}
        failed.update({r: REASON_UNLICENSED for r in recipients if r.lower() in unlicensed})
        return SendResult(accepted=[r for r in recipients if r not in failed], failed=failed,
                          response_code=_str(result.get("response_code")))

    def upload_file(self, filename: str, data: bytes) -> str:
        """上传临时素材 (media/upload, type file; developer.work.weixin.qq.com/document/path/90253):
        the media_id a `file` message names, valid 3 days. A file must be larger than 5 bytes and
        at most 20 MB. Raises TransientSendError when a retry may work, UploadRefused otherwise."""
        if not MEDIA_MIN_BYTES < len(data) <= FILE_MAX_BYTES:
            raise UploadRefused(f"文件大小 {len(data)} 字节超出企业微信的限制（须大于 5 字节、不超过 20 MB）")
        try:
            result = call_api(lambda: self.client.post(
                "media/upload", params={"type": "file"},
                files={"media": (filename, data, "application/octet-stream")}))
        except ApiError as exc:
            raise UploadRefused(_reason(exc)) from exc
        media_id = result.get("media_id")
        if not media_id:
            raise UploadRefused("企业微信未返回文件标识（media_id）")
        return str(media_id)

    def _update_card(self, recipients: list[str], payload: dict[str, Any]) -> SendResult:
        """更新模版卡片消息 (developer.work.weixin.qq.com/document/path/94888), one call per code:
        the button becomes grey, unclickable text (e.g. 已确认 2026年11月21日 19:45), or, with
        `payload["card"]`, the whole card is replaced (按钮交互型: its buttons greyed out as
        `replace_text`). On a resend, a code already spent proves the update arrived: the
        update is the code's only outbox row (models/cards.queue_update spends a code on one row
        listing every userid of its call), so the call that spent it was an earlier attempt of
        this same call, with these same userids (it timed out, or the worker died, after WeCom
        acted)."""
        code, text = payload.get("response_code"), payload.get("replace_text")
        if not code or not text:
            return SendResult.all_failed(recipients, "card_update needs response_code and replace_text")
        body: dict[str, Any] = {"userids": list(recipients), "agentid": self.settings.agent_id, "response_code": code}
        if isinstance(payload.get("card"), dict):
            card = render_message({"type": "card", **payload["card"]})["template_card"]
            card.pop("task_id", None)  # the card keeps its task; an update names it by the code
            card["replace_text"] = str(text)
            body["template_card"] = card
        else:
            body["button"] = {"replace_name": str(text)}
        try:
            result = call_api(lambda: self.client.post("message/update_template_card", data=body))
        except ApiError as exc:
            if payload.get("resend") and is_code_spent(exc):
                return SendResult(accepted=list(recipients))
            return SendResult.all_failed(recipients, _update_reason(exc))
        refused = {r.lower() for r in _split(result.get("invaliduser"))}
        failed = {r: REASON_INVALID_USER for r in recipients if r.lower() in refused}
        return SendResult(accepted=[r for r in recipients if r not in failed], failed=failed)


def render_message(payload: dict[str, Any], batch: list[str] | None = None, *,
                   markdown_limit: int = TEXT_LIMIT_BYTES) -> dict[str, Any] | None:
    """A neutral payload as the msgtype part of a WeCom message/send body (None: unsupported).

    WeCom wants a card's task_id unique within the app (at most 128 bytes of [A-Za-z0-9_-@]),
    and one directive's card goes out in several calls of up to 1,000 userids: each call's
    task_id is the payload's base plus the worker's send attempt key (`payload["send_key"]`,
    fresh for every new call and kept for a resend of that same call). Without a key (a direct
    call) the suffix is derived from the recipients."""
    kind = payload.get("type")
    if kind in ("text", "markdown"):
        text = str(payload.get("text") or "")
        limit = markdown_limit if kind == "markdown" else TEXT_LIMIT_BYTES
        return {"msgtype": kind, kind: {"content": fit_bytes(text, limit, text_number(text))}}
    if kind == "file":
        # 文件消息 (document/path/90236): {"msgtype": "file", "file": {"media_id": …}} from media/upload.
        return {"msgtype": "file", "file": {"media_id": str(payload.get("media_id") or "")}}
    if kind == "card":
        # 按钮交互型模板卡片: the tap comes back as a template_card_event with the button's key.
        # Over-long title or text: a summary, and the 详情 command for the full text.
        title = str(payload.get("title") or "")
        number = card_number(payload)
        card: dict[str, Any] = {
            "card_type": "button_interaction",
            "main_title": {"title": fit_chars(title, CARD_TITLE_LIMIT_CHARS, None)},
            "sub_title_text": fit_chars(str(payload.get("description") or ""), CARD_SUBTITLE_LIMIT_CHARS, number,
                                        hint=len(title) > CARD_TITLE_LIMIT_CHARS),
            "task_id": _task_id(str(payload.get("task_id") or "task"), batch or [], payload.get("send_key")),
            "button_list": [
                {"type": 0, "text": str(b.get("text") or ""), "style": 1, "key": str(b.get("key") or "")}
                for b in (payload.get("buttons") or [])[:6]
            ],
        }
        if payload.get("url"):
            card["card_action"] = {"type": 1, "url": str(payload["url"])}
        return {"msgtype": "template_card", "template_card": card}
    return None


TASK_ID_MAX_BYTES = 128
_TASK_ID_BAD = re.compile(r"[^0-9A-Za-z_\-@]")


def _task_id(base: str, batch: list[str], send_key: str | None = None) -> str:
    suffix = send_key or hashlib.sha256("|".join(sorted(batch)).encode()).hexdigest()[:10]
    suffix = _TASK_ID_BAD.sub("_", str(suffix))[:40]
    base = _TASK_ID_BAD.sub("_", base)[:TASK_ID_MAX_BYTES - len(suffix) - 1]
    return f"{base}-{suffix}"


def is_task_id_taken(exc: ApiError) -> bool:
    """The server refused a card because its task_id was used before. WeCom documents no errcode
    for this; fakewx answers 40058 naming task_id (see fakewx/README)."""
    return exc.errcode == 40058 and "task_id" in exc.errmsg and "exists" in exc.errmsg


def is_code_spent(exc: ApiError) -> bool:
    """WeCom refused a card update because its response code was used before. The errcode is not
    documented; fakewx answers 40058 naming response_code (see fakewx/README)."""
    return exc.errcode == 40058 and "response_code" in exc.errmsg and "used" in exc.errmsg


def _update_reason(exc: ApiError) -> str:
    if exc.errcode == 40058 and "response_code" in exc.errmsg:
        return f"卡片更新码已用过或已超过 72 小时，企业微信未更新卡片（{exc.errcode} {exc.errmsg}）"
    return f"企业微信拒绝更新卡片（{exc.errcode} {exc.errmsg}）"


def _split(value: Any) -> set[str]:
    if isinstance(value, list):
        return {str(v) for v in value}
    return {v for v in str(value or "").split("|") if v}


def _reason(exc: ApiError) -> str:
    if exc.errcode == 81013:
        return "接收人均不在企业微信应用可见范围内（81013）"
    return f"企业微信拒绝发送（{exc.errcode} {exc.errmsg}）"


def _require(args: Mapping[str, str], *names: str) -> list[str]:
    values = [args.get(n, "") for n in names]
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise CallbackError(400, "missing query parameter: " + ", ".join(missing))
    return values


def check_timestamp(timestamp: str, now: datetime, max_skew: int) -> None:
    # Ten ASCII digits today; at most twelve accepted, so no float conversion can overflow.
    if not re.fullmatch(r"[0-9]{1,12}", timestamp):
        raise CallbackError(400, "timestamp is not a number")
    ts = int(timestamp)
    if abs(ts - now.timestamp()) > max_skew:
        raise CallbackError(403, f"timestamp {ts} is more than {max_skew}s from now")


def render_text_xml(*, to_user: str, from_user: str, text: str, create_time: str, extra: str = "") -> str:
    return (
        "<xml>"
        f"<ToUserName>{cdata(to_user)}</ToUserName>"
        f"<FromUserName>{cdata(from_user)}</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(text)}</Content>"
        f"{extra}"
        "</xml>"
    )


def to_inbound(channel: Channel, data: dict[str, Any]) -> InboundMessage:
    """Decrypted message XML (as a dict) → InboundMessage. Shared by WeCom and the Official Account."""
    fields = _text_fields(data)
    sender = fields.get("FromUserName")
    msg_type = (fields.get("MsgType") or "").lower()
    create_time = fields.get("CreateTime") or ""
    if not sender or not msg_type:
        raise CallbackError(400, "message lacks FromUserName or MsgType")
    if not re.fullmatch(r"[0-9]{1,12}", create_time):
        raise CallbackError(400, "CreateTime is not a timestamp")
    try:
        created_at = datetime.fromtimestamp(int(create_time), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise CallbackError(400, "CreateTime is not a timestamp") from exc

    msg_id = fields.get("MsgId") or fields.get("MsgID")
    if msg_type == "event":
        event = (fields.get("Event") or "").strip()
        event_key, task_id = _str(fields.get("EventKey")), _str(fields.get("TaskId"))
        return InboundMessage(
            channel=channel,
            sender=sender,
            kind=InboundKind.EVENT,
            created_at=created_at,
            dedupe_key=event_dedupe_key(sender, create_time, event, event_key, task_id),
            event=event.lower(),
            event_key=event_key,
            task_id=task_id,
            response_code=_str(fields.get("ResponseCode")),
            raw=data,
        )
    if not msg_id:
        raise CallbackError(400, "message lacks MsgId")
    kind = InboundKind.TEXT if msg_type == "text" else InboundKind.OTHER
    return InboundMessage(
        channel=channel,
        sender=sender,
        kind=kind,
        created_at=created_at,
        dedupe_key=f"msg:{msg_id}"[:200],
        text=_str(fields.get("Content")) or "",
        msg_id=str(msg_id),
        raw=data,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


# The fields read from a message: each must be text. `<MsgType><b>text</b></MsgType>` is not WeChat's.
_TEXT_FIELDS = ("FromUserName", "ToUserName", "MsgType", "CreateTime", "MsgId", "MsgID", "Event", "EventKey",
                "TaskId", "ResponseCode", "Content")


def _text_fields(data: dict[str, Any]) -> dict[str, str]:
    odd = [name for name in _TEXT_FIELDS if name in data and not isinstance(data[name], str)]
    if odd:
        raise CallbackError(400, "element with children where text belongs: " + ", ".join(odd))
    return {name: data[name] for name in _TEXT_FIELDS if name in data}


def event_dedupe_key(sender: str, create_time: str, event: str, event_key: str | None, task_id: str | None) -> str:
    """WeChat's rule for a retried event is FromUserName + CreateTime (+ Event); two taps by one
    person on two cards in the same second differ only in EventKey/TaskId, so those count too.
    Long keys are hashed to fit the receipt's column."""
    key = f"ev:{sender}:{create_time}:{event}:{event_key or ''}:{task_id or ''}"
    if len(key) <= 200:
        return key
    return f"ev:{sender[:64]}:{create_time}:" + hashlib.sha256(key.encode()).hexdigest()
