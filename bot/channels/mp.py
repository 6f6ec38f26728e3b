"""WeChat Official Account (公众号): plain and safe-mode callbacks, passive replies, pushes."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

from bot.channels.base import TEXT_LIMIT_BYTES, SendResult, TransientSendError, card_as_text, fit_bytes, text_number
from bot.channels.clients import ApiError, MpClient, call_api
from bot.channels.mp_window import REASON_OUTSIDE, REASON_QUOTA, spend
from bot.channels.wecom import _require, check_timestamp, render_text_xml, to_inbound
from bot.channels.xmlsafe import CallbackError, parse_message, parse_xml
from bot.messages import InboundMessage, Reply
from bot.stores import Store
from config.settings import MpSettings
from models.identity import Channel

# Recipient-level refusals: retrying will not help until the follower writes to us again.
# Shown to secretaries with the delivery: Chinese.
MP_PERMANENT_REASONS = {
    40003: "公众号用户标识无效（40003）",
    43004: "对方已取消关注公众号（43004）",
    45015: REASON_OUTSIDE,
    45047: REASON_QUOTA,
}


class MpChannel:
    name = Channel.MP
    max_recipients = 1  # customer-service messages go to one openid per call

    def __init__(self, settings: MpSettings, *, max_skew: int = 300, store: Store | None = None,
                 timeout: float = 5.0) -> None:
        self.settings = settings
        self.max_skew = max_skew
        self.crypto = WeChatCrypto(settings.token, settings.aes_key, settings.app_id) if settings.aes_key else None
        self.store = store
        self.timeout = timeout
        self._client: MpClient | None = None
        self.clock: Callable[[], float] = time.time  # seconds; the worker gives it the runtime's clock

    def _check_plain_signature(self, args: Mapping[str, str]) -> None:
        signature, timestamp, nonce = _require(args, "signature", "timestamp", "nonce")
        expected = hashlib.sha1("".join(sorted([self.settings.token, timestamp, nonce])).encode()).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise CallbackError(403, "bad signature")

    def _one_body_per_signature(self, signature: str, body: bytes) -> None:
        """Plain mode: the signature does not cover the body, so one signed URL could carry any
        number of forged messages within the timestamp window. WeChat signs each push afresh,
        so a signature seen with another body is a forgery (a retry carries the same body)."""
        if self.store is None:
            return
        key = f"mp:plain-signature:{signature}"
        digest = hashlib.sha256(body).hexdigest()
        # Remembered beyond the timestamp window, after which check_timestamp refuses it anyway.
        if self.store.set_nx(key, digest, 2 * self.max_skew + 60) is False and self.store.get(key) != digest:
            raise CallbackError(403, "plain-mode signature already used with another message")

    def verify_url(self, args: Mapping[str, str]) -> str:
        """GET /mp/callback: the server-address check answers echostr when the signature holds."""
        self._check_plain_signature(args)
        (echostr,) = _require(args, "echostr")
        return echostr

    def is_safe_mode(self, args: Mapping[str, str]) -> bool:
        return args.get("encrypt_type", "raw").lower() == "aes"

    def parse(self, args: Mapping[str, str], body: bytes, now: datetime) -> InboundMessage:
        # Plain mode is authenticated by `signature`; safe mode by `msg_signature`, which also
        # covers the ciphertext. WeChat sends `signature` in safe mode too: checked when present.
        safe = self.is_safe_mode(args)
        if not safe or args.get("signature"):
            self._check_plain_signature(args)
        if not safe and self.crypto is not None:
            # `signature` covers token, timestamp and nonce but not the body: anyone who saw one
            # signed URL could replay it with any message within the timestamp window. With a key
            # configured only `msg_signature` (安全模式 and 兼容模式) authenticates. Checked after
            # the signature, so the hint in the log means WeChat itself is sending plain mode.
            raise CallbackError(403, "plain-mode callback refused: MP_AES_KEY is set, so only safe-mode "
                                     "(encrypt_type=aes) callbacks are accepted; switch the Official "
                                     "Account to 安全模式 or unset MP_AES_KEY")
        (timestamp,) = _require(args, "timestamp")
        check_timestamp(timestamp, now, self.max_skew)
        if not safe:
            # Signed by `signature` (checked above): the body is the message as WeChat wrote it.
            self._one_body_per_signature(args["signature"], body)
            return to_inbound(Channel.MP, parse_message(body))
        if self.crypto is None:
            raise CallbackError(400, "safe-mode message but MP_AES_KEY is not configured")
        msg_signature, timestamp, nonce = _require(args, "msg_signature", "timestamp", "nonce")
        envelope = parse_xml(body)
        if not isinstance(envelope.get("Encrypt"), str) or not envelope["Encrypt"]:
            raise CallbackError(400, "no Encrypt element")
        try:
            plaintext = self.crypto.decrypt_message(envelope, msg_signature, timestamp, nonce)
        except InvalidSignatureException as exc:
            raise CallbackError(403, "bad msg_signature") from exc
        except InvalidAppIdException as exc:
            raise CallbackError(403, "ciphertext is for another appid") from exc
        except Exception as exc:
            raise CallbackError(400, f"undecryptable: {type(exc).__name__}") from exc
        # Only the decrypted message counts: in 兼容模式 the body also carries it in clear, unsigned.
        return to_inbound(Channel.MP, parse_message(plaintext))

    def render_reply(self, msg: InboundMessage, reply: Reply | None, args: Mapping[str, str]) -> str:
        if not reply:
            return ""
        timestamp = str(int(time.time()))
        xml = render_text_xml(
            to_user=msg.sender,
            from_user=str(msg.raw.get("ToUserName") or self.settings.app_id),
            text=reply.text,
            create_time=timestamp,
        )
        if self.is_safe_mode(args) and self.crypto is not None:
            return self.crypto.encrypt_message(xml, args.get("nonce", ""), timestamp)
        return xml

    # -- outbound --------------------------------------------------------------------------

    @property
    def client(self) -> MpClient:
        if self._client is None:
            self._client = MpClient(self.settings.app_id, self.settings.secret, api_base=self.settings.api_base,
                                    store=self.store, timeout=self.timeout)
        return self._client

    def send(self, recipients: list[str], payload: dict[str, Any]) -> SendResult:
        """Customer-service text to each openid (one call each). Cards become text that says which
        command to reply, since the Official Account has no card buttons.

        Raises TransientSendError only when nobody was reached; a transient error after some
        recipients were accepted leaves the rest in `deferred`."""
        text = render_text(payload)
        if text is None:
            return SendResult.all_failed(recipients, f"unsupported payload type {payload.get('type')!r} for mp")
        result = SendResult()
        for index, openid in enumerate(recipients):
            if self.store is not None:
                refused = spend(self.store, openid, self.clock())
                if refused:  # the follower's window is closed or used up: no call
                    result.failed[openid] = refused
                    continue
            body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
            try:
                call_api(lambda body=body: self.client.post("message/custom/send", data=body))
            except ApiError as exc:
                result.failed[openid] = MP_PERMANENT_REASONS.get(exc.errcode, f"{exc.errcode} {exc.errmsg}")
                continue
            except TransientSendError as exc:
                if not result.accepted and not result.failed:
                    raise
                result.deferred.update(dict.fromkeys(recipients[index:], exc.reason))
                break
            result.accepted.append(openid)
        return result


def render_text(payload: dict[str, Any]) -> str | None:
    kind = payload.get("type")
    if kind in ("text", "markdown"):
        text = str(payload.get("text") or "")
        return fit_bytes(text, TEXT_LIMIT_BYTES, text_number(text))
    if kind == "card":
        return card_as_text(payload, max_bytes=TEXT_LIMIT_BYTES)
    return None
