"""WeCom (企业微信) self-built app: URL verification, encrypted callbacks, passive replies, pushes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from wechatpy.exceptions import InvalidSignatureException
from wechatpy.work.crypto import WeChatCrypto
from wechatpy.work.exceptions import InvalidCorpIdException

from bot.channels.xmlsafe import CallbackError, cdata, parse_xml
from bot.messages import InboundKind, InboundMessage, Reply
from config.settings import WeComSettings
from models.identity import Channel


class WeComChannel:
    name = Channel.WECOM

    def __init__(self, settings: WeComSettings, *, max_skew: int = 300) -> None:
        self.settings = settings
        self.max_skew = max_skew
        self.crypto = WeChatCrypto(settings.token, settings.aes_key, settings.corp_id)

    # -- inbound ---------------------------------------------------------------------------

    def verify_url(self, args: Mapping[str, str]) -> str:
        """GET /wecom/callback: check the signature over echostr and return its plaintext."""
        signature, timestamp, nonce, echostr = _require(args, "msg_signature", "timestamp", "nonce", "echostr")
        return self._decrypt(lambda: self.crypto.check_signature(signature, timestamp, nonce, echostr))

    def parse(self, args: Mapping[str, str], body: bytes, now: datetime) -> InboundMessage:
        """POST /wecom/callback: verify, decrypt and parse into a neutral message."""
        signature, timestamp, nonce = _require(args, "msg_signature", "timestamp", "nonce")
        check_timestamp(timestamp, now, self.max_skew)
        envelope = parse_xml(body)
        if not isinstance(envelope.get("Encrypt"), str) or not envelope["Encrypt"]:
            raise CallbackError(400, "no Encrypt element")
        plaintext = self._decrypt(lambda: self.crypto.decrypt_message(envelope, signature, timestamp, nonce))
        return to_inbound(Channel.WECOM, parse_xml(plaintext))

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


def _require(args: Mapping[str, str], *names: str) -> list[str]:
    values = [args.get(n, "") for n in names]
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise CallbackError(400, "missing query parameter: " + ", ".join(missing))
    return values


def check_timestamp(timestamp: str, now: datetime, max_skew: int) -> None:
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise CallbackError(400, "timestamp is not a number") from exc
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
    sender = data.get("FromUserName")
    msg_type = (data.get("MsgType") or "").lower()
    create_time = data.get("CreateTime") or ""
    if not isinstance(sender, str) or not sender or not msg_type:
        raise CallbackError(400, "message lacks FromUserName or MsgType")
    try:
        created_at = datetime.fromtimestamp(int(create_time), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise CallbackError(400, "CreateTime is not a timestamp") from exc

    msg_id = data.get("MsgId") or data.get("MsgID")
    if msg_type == "event":
        event = (data.get("Event") or "").strip()
        # WeChat's own rule for retried events: FromUserName + CreateTime (+ Event).
        dedupe_key = f"ev:{sender}:{create_time}:{event}"
        return InboundMessage(
            channel=channel,
            sender=sender,
            kind=InboundKind.EVENT,
            created_at=created_at,
            dedupe_key=dedupe_key[:200],
            event=event.lower(),
            event_key=_str(data.get("EventKey")),
            task_id=_str(data.get("TaskId")),
            response_code=_str(data.get("ResponseCode")),
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
        text=_str(data.get("Content")) or "",
        msg_id=str(msg_id),
        raw=data,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None
