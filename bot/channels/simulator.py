"""Plays WeCom's and WeChat's servers: builds signed, encrypted callbacks exactly as they do and
reads the encrypted passive replies. Used by the tests, `python -m bot chat` and the benchmarks."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from wechatpy.crypto import WeChatCrypto as MpCrypto
from wechatpy.work.crypto import WeChatCrypto as WorkCrypto

from bot.channels.xmlsafe import cdata, parse_xml
from config.settings import MpSettings, WeComSettings

_msg_ids = itertools.count(int(time.time() * 1000) * 1000)


@dataclass
class SignedRequest:
    path: str
    query: dict[str, str]
    body: bytes
    #: The event WeCom would send, if this is one whose passive reply WeCom ignores (a card tap).
    ignores_passive_reply: bool = False

    @property
    def url(self) -> str:
        return f"{self.path}?{urlencode(self.query)}"


def message_xml(fields: dict[str, Any]) -> str:
    parts = []
    for name, value in fields.items():
        if isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}>{cdata(value)}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


class WeComSimulator:
    """What WeCom's server sends to `POST /wecom/callback` for a user of the self-built app."""

    path = "/wecom/callback"

    def __init__(self, settings: WeComSettings, *, now: Callable[[], int] | None = None) -> None:
        self.settings = settings
        self._now = now or (lambda: int(time.time()))
        self.crypto = WorkCrypto(settings.token, settings.aes_key, settings.corp_id)
        #: Passive replies to card taps that WeCom would have dropped (the bot should send none).
        self.dropped_passive_replies = 0

    def text(self, userid: str, content: str, *, msg_id: int | None = None, at: int | None = None) -> SignedRequest:
        return self.encrypt(
            {
                "ToUserName": self.settings.corp_id,
                "FromUserName": userid,
                "CreateTime": at or self._now(),
                "MsgType": "text",
                "Content": content,
                "MsgId": msg_id if msg_id is not None else next(_msg_ids),
                "AgentID": self.settings.agent_id,
            },
            at=at,
        )

    def event(self, userid: str, event: str, *, at: int | None = None, **extra: Any) -> SignedRequest:
        fields: dict[str, Any] = {
            "ToUserName": self.settings.corp_id,
            "FromUserName": userid,
            "CreateTime": at or self._now(),
            "MsgType": "event",
            "Event": event,
            "AgentID": self.settings.agent_id,
        }
        fields.update(extra)
        return self.encrypt(fields, at=at)

    def card_tap(self, userid: str, task_id: str, key: str, *, at: int | None = None,
                 response_code: str | None = None) -> SignedRequest:
        """A tap on a button of a template card, with the code that updates the tapped card once
        (`response_code`, e.g. one fakewx issued; else a new one). WeCom ignores a passive text
        reply to it: read the answer with `answer()`, which drops and counts one."""
        req = self.event(
            userid, "template_card_event", at=at, EventKey=key, TaskId=task_id,
            CardType="button_interaction", ResponseCode=response_code or secrets.token_hex(16),
        )
        req.ignores_passive_reply = True
        return req

    def answer(self, req: SignedRequest, body: bytes | str) -> dict[str, Any] | None:
        """What the user sees of the passive reply to `req`, as WeCom treats it: nothing for a card
        tap (the reply is dropped and counted in `dropped_passive_replies`), else the reply."""
        if req.ignores_passive_reply:
            if body:
                self.dropped_passive_replies += 1
            return None
        return self.read_reply(body)

    def encrypt(self, fields: dict[str, Any] | str, *, at: int | None = None, nonce: str | None = None) -> SignedRequest:
        xml = fields if isinstance(fields, str) else message_xml(fields)
        timestamp = str(at or self._now())
        nonce = nonce or str(secrets.randbelow(10**10))
        envelope = parse_xml(self.crypto.encrypt_message(xml, nonce, timestamp))
        body = (
            f"<xml><ToUserName>{cdata(self.settings.corp_id)}</ToUserName>"
            f"<Encrypt>{cdata(envelope['Encrypt'])}</Encrypt>"
            f"<AgentID>{cdata(str(self.settings.agent_id))}</AgentID></xml>"
        )
        query = {"msg_signature": envelope["MsgSignature"], "timestamp": timestamp, "nonce": nonce}
        return SignedRequest(self.path, query, body.encode())

    def verify_request(self, echo: str = "echo-check") -> SignedRequest:
        """The GET WeCom sends when the callback URL is saved in the admin console."""
        timestamp = str(self._now())
        nonce = str(secrets.randbelow(10**10))
        envelope = parse_xml(self.crypto.encrypt_message(echo, nonce, timestamp))
        query = {"msg_signature": envelope["MsgSignature"], "timestamp": timestamp, "nonce": nonce,
                 "echostr": envelope["Encrypt"]}
        return SignedRequest(self.path, query, b"")

    def read_reply(self, body: bytes | str, query: dict[str, str] | None = None) -> dict[str, Any] | None:
        """Decrypt an encrypted passive reply; None for the empty answer."""
        if not body:
            return None
        envelope = parse_xml(body)
        plaintext = self.crypto.decrypt_message(
            envelope, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
        )
        return parse_xml(plaintext)


class MpSimulator:
    """What WeChat's server sends to `POST /mp/callback`, in plain or safe mode."""

    path = "/mp/callback"

    def __init__(self, settings: MpSettings, *, safe: bool = True, now: Callable[[], int] | None = None) -> None:
        self.settings = settings
        self._now = now or (lambda: int(time.time()))
        self.safe = safe and settings.aes_key is not None
        self.crypto = MpCrypto(settings.token, settings.aes_key, settings.app_id) if settings.aes_key else None

    def _signature(self, timestamp: str, nonce: str) -> str:
        return hashlib.sha1("".join(sorted([self.settings.token, timestamp, nonce])).encode()).hexdigest()

    def text(self, openid: str, content: str, *, msg_id: int | None = None, at: int | None = None) -> SignedRequest:
        return self.send(
            {
                "ToUserName": "gh_zhitong",
                "FromUserName": openid,
                "CreateTime": at or self._now(),
                "MsgType": "text",
                "Content": content,
                "MsgId": msg_id if msg_id is not None else next(_msg_ids),
            },
            openid=openid,
            at=at,
        )

    def event(self, openid: str, event: str, *, at: int | None = None, **extra: Any) -> SignedRequest:
        fields: dict[str, Any] = {
            "ToUserName": "gh_zhitong",
            "FromUserName": openid,
            "CreateTime": at or self._now(),
            "MsgType": "event",
            "Event": event,
        }
        fields.update(extra)
        return self.send(fields, openid=openid, at=at)

    def send(self, fields: dict[str, Any], *, openid: str, at: int | None = None) -> SignedRequest:
        xml = message_xml(fields)
        timestamp = str(at or self._now())
        nonce = str(secrets.randbelow(10**10))
        query = {"signature": self._signature(timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                 "openid": openid}
        if not self.safe:
            return SignedRequest(self.path, query, xml.encode())
        envelope = parse_xml(self.crypto.encrypt_message(xml, nonce, timestamp))
        body = f"<xml><ToUserName>{cdata('gh_zhitong')}</ToUserName><Encrypt>{cdata(envelope['Encrypt'])}</Encrypt></xml>"
        query.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"])
        return SignedRequest(self.path, query, body.encode())

    def verify_request(self, echo: str = "echo-check") -> SignedRequest:
        timestamp = str(self._now())
        nonce = str(secrets.randbelow(10**10))
        query = {"signature": self._signature(timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                 "echostr": echo}
        return SignedRequest(self.path, query, b"")

    def read_reply(self, body: bytes | str) -> dict[str, Any] | None:
        if not body:
            return None
        data = parse_xml(body)
        if "Encrypt" not in data:
            return data
        plaintext = self.crypto.decrypt_message(data, data["MsgSignature"], data["TimeStamp"], data["Nonce"])
        return parse_xml(plaintext)
