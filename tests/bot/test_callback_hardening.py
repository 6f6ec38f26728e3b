"""Hostile and broken callbacks are refused with a 4xx and change nothing (SPEC §2.2).

Every refused request carries a message that WOULD change state if it were accepted (a secretary's
`绑定码 张伟` on WeCom, a follower's `绑定 000000` on the Official Account), and each family of
attacks has a control that shows the same message, built correctly, is accepted and does change
state; so "nothing changed" means the refusal did it, not an inert message."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto as MpCrypto
from wechatpy.work.crypto import WeChatCrypto as WorkCrypto

from bot.channels.simulator import MpSimulator, SignedRequest, WeComSimulator, message_xml
from bot.channels.xmlsafe import cdata, parse_xml
from models.event import Event
from models.identity import BindingAttempt, BindingCode, Channel, ChannelIdentity
from models.inbound import InboundReceipt
from models.outbox import OutboxMessage
from models.person import Person
from tests.conftest import MP, MP_PLAIN, WECOM
from tests.factories import small_tree

TABLES = (InboundReceipt, Event, OutboxMessage, BindingAttempt, ChannelIdentity, BindingCode, Person)
OTHER_AES_KEY = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"  # valid shape, not ours

XXE = (
    '<?xml version="1.0"?>\n'
    '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    "<xml><ToUserName>&xxe;</ToUserName><FromUserName>&xxe;</FromUserName><CreateTime>{ts}</CreateTime>"
    "<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"
)
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE xml [\n<!ENTITY lol "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % ("" if i == 1 else i - 1)) * 10}">\n' for i in range(1, 10))
    + "]>\n<xml><FromUserName>x</FromUserName><CreateTime>{ts}</CreateTime><MsgType>text</MsgType>"
    "<Content>&lol9;</Content><MsgId>2</MsgId></xml>"
)
BARE_DOCTYPE = (
    "<!DOCTYPE xml><xml><FromUserName>x</FromUserName><CreateTime>{ts}</CreateTime>"
    "<MsgType>text</MsgType><Content>帮助</Content><MsgId>3</MsgId></xml>"
)
INTERNAL_ENTITY = (
    '<!DOCTYPE xml [<!ENTITY code "000000">]><xml><FromUserName>x</FromUserName><CreateTime>{ts}</CreateTime>'
    "<MsgType>text</MsgType><Content>绑定 &code;</Content><MsgId>4</MsgId></xml>"
)
DTD_BODIES = {"xxe": XXE, "billion_laughs": BILLION_LAUGHS, "bare_doctype": BARE_DOCTYPE,
              "internal_entity": INTERNAL_ENTITY}


def counts(db) -> dict[str, int]:
    with db.session() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in TABLES}


def _sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _nonce() -> str:
    return str(secrets.randbelow(10**10))


@dataclass
class Wire:
    """Builds requests for one callback flavour as WeChat's server would, and hostile variants."""

    kind: str  # "wecom", "mp_safe", "mp_plain"
    clock: Any

    @property
    def mp_mode(self) -> str:
        """The account a flavour is posted to: plain-mode callbacks need one without MP_AES_KEY."""
        return "plain" if self.kind == "mp_plain" else "safe"

    @property
    def path(self) -> str:
        return "/wecom/callback" if self.kind == "wecom" else "/mp/callback"

    @property
    def encrypted(self) -> bool:
        return self.kind != "mp_plain"

    @property
    def token(self) -> str:
        return WECOM.token if self.kind == "wecom" else MP.token

    def sender(self) -> str:
        return "lina" if self.kind == "wecom" else "o_stranger"

    def state_changing_text(self) -> str:
        # Accepted, each changes rows: a binding code + event, or a failed attempt + event.
        return "绑定码 张伟" if self.kind == "wecom" else "绑定 000000"

    def fields(self, *, at: int | None = None, content: str | None = None) -> dict[str, Any]:
        ts = at or self.clock.timestamp()
        base: dict[str, Any] = {
            "ToUserName": WECOM.corp_id if self.kind == "wecom" else "gh_zhitong",
            "FromUserName": self.sender(),
            "CreateTime": ts,
            "MsgType": "text",
            "Content": content if content is not None else self.state_changing_text(),
            "MsgId": secrets.randbelow(10**15),
        }
        if self.kind == "wecom":
            base["AgentID"] = WECOM.agent_id
        return base

    def good(self, *, at: int | None = None, content: str | None = None) -> SignedRequest:
        fields = self.fields(at=at, content=content)
        if self.kind == "wecom":
            return WeComSimulator(WECOM, now=self.clock.timestamp).text(
                fields["FromUserName"], fields["Content"], msg_id=fields["MsgId"], at=at)
        sim = MpSimulator(MP_PLAIN if self.kind == "mp_plain" else MP, now=self.clock.timestamp)
        return sim.text(fields["FromUserName"], fields["Content"], msg_id=fields["MsgId"], at=at)

    def plaintext_request(self, plaintext: str, *, crypto=None, ts: int | None = None) -> SignedRequest:
        """A request whose message (decrypted, for the encrypted flavours) is exactly `plaintext`."""
        ts_s = str(ts or self.clock.timestamp())
        nonce = _nonce()
        if self.kind == "mp_plain":
            return self.envelope_request(plaintext.encode(), ts=ts_s, nonce=nonce)
        if crypto is None:
            crypto = (WorkCrypto(WECOM.token, WECOM.aes_key, WECOM.corp_id) if self.kind == "wecom"
                      else MpCrypto(MP.token, MP.aes_key, MP.app_id))
        envelope = parse_xml(crypto.encrypt_message(plaintext, nonce, ts_s))
        return self.ciphertext_request(envelope["Encrypt"], ts=ts_s, nonce=nonce)

    def ciphertext_request(self, encrypt: str, *, ts: str | None = None, nonce: str | None = None) -> SignedRequest:
        """An encrypted envelope around any `Encrypt` text, signed correctly over it."""
        ts = ts or str(self.clock.timestamp())
        nonce = nonce or _nonce()
        body = f"<xml><ToUserName>{cdata('x')}</ToUserName><Encrypt>{cdata(encrypt)}</Encrypt></xml>".encode()
        return self.envelope_request(body, ts=ts, nonce=nonce, encrypt=encrypt)

    def envelope_request(self, body: bytes, *, ts: str, nonce: str, encrypt: str | None = None) -> SignedRequest:
        if self.kind == "wecom":
            query = {"msg_signature": _sign(self.token, ts, nonce, encrypt or ""), "timestamp": ts, "nonce": nonce}
        else:
            query = {"signature": _sign(self.token, ts, nonce), "timestamp": ts, "nonce": nonce,
                     "openid": self.sender()}
            if self.kind == "mp_safe":
                query.update(encrypt_type="aes", msg_signature=_sign(self.token, ts, nonce, encrypt or ""))
        return SignedRequest(self.path, query, body)

    def signature_fields(self) -> list[str]:
        return {"wecom": ["msg_signature"], "mp_plain": ["signature"],
                "mp_safe": ["signature", "msg_signature"]}[self.kind]

    def required_query(self) -> list[str]:
        return {"wecom": ["msg_signature", "timestamp", "nonce"],
                "mp_plain": ["signature", "timestamp", "nonce"],
                "mp_safe": ["msg_signature", "timestamp", "nonce"]}[self.kind]


FLAVOURS = ["wecom", "mp_safe", "mp_plain"]


@pytest.fixture(params=FLAVOURS)
def wire(request, clock) -> Wire:
    """Every flavour: WeCom, Official Account safe mode and plain mode."""
    return Wire(request.param, clock)


@pytest.fixture
def mp_mode(request) -> str:
    """The app's account follows the flavour under test (a safe-mode account refuses plain-mode
    callbacks, tested on its own below); tests without a flavour get the safe-mode account."""
    if "wire" in request.fixturenames:
        return request.getfixturevalue("wire").mp_mode
    return "safe"


@pytest.fixture
def seeded(db):
    with db.session() as s:
        small_tree(s)
    return counts(db)


def post(client, req: SignedRequest, **kw):
    return client.post(req.path, query_string=req.query, data=req.body, content_type="text/xml", **kw)


def assert_refused(client, db, req: SignedRequest, before: dict[str, int], *, status: int | None = None,
                   reason: str | None = None, caplog=None):
    if caplog is not None:
        caplog.clear()
    response = post(client, req)
    assert 400 <= response.status_code < 500, (response.status_code, response.data[:200])
    if status is not None:
        assert response.status_code == status
    assert response.data == b""  # nothing leaks back, not even an error text
    assert counts(db) == before
    if reason is not None:  # refused for the reason under test, not an incidental one
        assert reason in caplog.text, caplog.text
    return response


@pytest.fixture(params=["wecom", "mp_safe"])
def enc_wire(request, clock) -> Wire:
    """The flavours with a ciphertext (plain mode has none to break)."""
    return Wire(request.param, clock)


# -- control ---------------------------------------------------------------------------------------


def test_control_the_good_request_is_accepted_and_changes_state(client, db, seeded, wire):
    response = post(client, wire.good())
    assert response.status_code == 200
    after = counts(db)
    assert after["inbound_receipt"] == seeded["inbound_receipt"] + 1
    assert after["event"] == seeded["event"] + 1
    if wire.kind == "wecom":
        assert after["binding_code"] == seeded["binding_code"] + 1
    else:
        assert after["binding_attempt"] == seeded["binding_attempt"] + 1


# -- signatures ------------------------------------------------------------------------------------


def test_bad_signature_is_refused(client, db, seeded, wire):
    for name in wire.signature_fields():
        req = wire.good()
        sig = req.query[name]
        req.query[name] = ("0" if sig[0] != "0" else "1") + sig[1:]
        assert_refused(client, db, req, seeded, status=403)


def test_signature_of_another_token_is_refused(client, db, seeded, wire):
    req = wire.good()
    ts, nonce = req.query["timestamp"], req.query["nonce"]
    if wire.kind == "wecom":
        envelope = parse_xml(req.body)
        req.query["msg_signature"] = _sign("not-our-token", ts, nonce, envelope["Encrypt"])
    else:
        req.query["signature"] = _sign("not-our-token", ts, nonce)
    assert_refused(client, db, req, seeded, status=403)


def test_ciphertext_for_another_corp_or_appid_is_refused(client, db, seeded, enc_wire, caplog):
    if enc_wire.kind == "wecom":
        crypto = WorkCrypto(WECOM.token, WECOM.aes_key, "wwsomeothercorp00")
    else:
        crypto = MpCrypto(MP.token, MP.aes_key, "wxsomeotherapp000")
    # Same token and key, so the signature is right and the decryption succeeds; only the id differs.
    req = enc_wire.plaintext_request(message_xml(enc_wire.fields()), crypto=crypto)
    assert_refused(client, db, req, seeded, status=403, reason="ciphertext is for another", caplog=caplog)


# -- undecryptable ---------------------------------------------------------------------------------


def test_garbage_base64_is_refused(client, db, seeded, enc_wire, caplog):
    for garbage in ["!!!not*base64$$$", "QUJD", "AAAA" * 3, "////" * 8]:
        req = enc_wire.ciphertext_request(garbage)
        assert_refused(client, db, req, seeded, status=400, reason="undecryptable", caplog=caplog)
    assert_refused(client, db, enc_wire.ciphertext_request(""), seeded, status=400, reason="no Encrypt", caplog=caplog)


def test_wrong_key_is_refused(client, db, seeded, enc_wire):
    crypto = (WorkCrypto(WECOM.token, OTHER_AES_KEY, WECOM.corp_id) if enc_wire.kind == "wecom"
              else MpCrypto(MP.token, OTHER_AES_KEY, MP.app_id))
    for _ in range(5):  # random padding bytes: refused whichever way decoding breaks
        assert_refused(client, db, enc_wire.plaintext_request(message_xml(enc_wire.fields()), crypto=crypto), seeded)


def test_truncated_ciphertext_is_refused(client, db, seeded, enc_wire, caplog):
    good = enc_wire.good()
    encrypt = parse_xml(good.body)["Encrypt"]
    for cut in [encrypt[:-4], encrypt[:-24], encrypt[:24], encrypt[:-1]]:
        req = enc_wire.ciphertext_request(cut)
        # Cut at a block boundary the AES layer still decrypts; the embedded id then no longer matches.
        response = assert_refused(client, db, req, seeded)
        assert ("undecryptable" in caplog.text) if response.status_code == 400 else ("another" in caplog.text)
        caplog.clear()


def test_no_encrypt_element_is_refused(client, db, seeded, enc_wire):
    ts, nonce = str(enc_wire.clock.timestamp()), _nonce()
    req = enc_wire.envelope_request(b"<xml><ToUserName>x</ToUserName></xml>", ts=ts, nonce=nonce)
    assert_refused(client, db, req, seeded)


# -- malformed XML ---------------------------------------------------------------------------------

MALFORMED = [
    "<xml><Encrypt>abc</Encrypt>",
    "not xml at all",
    "<xml><a></b></xml>",
    "<root><Encrypt>abc</Encrypt></root>",
    "   ",
    "<xml>\x01</xml>",
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_outer_xml_is_refused(client, db, seeded, wire, body):
    good = wire.good()
    req = SignedRequest(good.path, good.query, body.encode())
    assert_refused(client, db, req, seeded, status=400)


@pytest.mark.parametrize("plaintext", ["this is not xml", "<xml><Content>unclosed", "", "<root/>", "<xml></xml>",
                                       "<xml><MsgType>text</MsgType><Content>绑定 000000</Content></xml>"])
def test_malformed_inner_xml_is_refused(client, db, seeded, enc_wire, plaintext):
    assert_refused(client, db, enc_wire.plaintext_request(plaintext), seeded, status=400)


def test_message_without_msgid_or_bad_createtime_is_refused(client, db, seeded, wire):
    fields = wire.fields()
    del fields["MsgId"]
    assert_refused(client, db, wire.plaintext_request(message_xml(fields)), seeded, status=400)
    fields = wire.fields()
    fields["CreateTime"] = "soon"
    assert_refused(client, db, wire.plaintext_request(message_xml(fields)), seeded, status=400)


# -- DTDs and entities -----------------------------------------------------------------------------


@pytest.mark.parametrize("attack", sorted(DTD_BODIES))
def test_doctype_or_entity_in_outer_body_is_refused(client, db, seeded, wire, attack, caplog):
    good = wire.good()
    body = DTD_BODIES[attack].format(ts=wire.clock.timestamp())
    if wire.encrypted:  # an envelope with a DTD in front of a genuine Encrypt element
        encrypt = parse_xml(good.body)["Encrypt"]
        body = body.replace("<ToUserName>&xxe;</ToUserName>", "") \
                   .replace("<xml>", f"<xml><Encrypt>{cdata(encrypt)}</Encrypt>", 1)
    req = SignedRequest(good.path, good.query, body.encode())
    assert_refused(client, db, req, seeded, status=400, reason="forbidden XML construct", caplog=caplog)


@pytest.mark.parametrize("attack", sorted(DTD_BODIES))
def test_doctype_or_entity_in_decrypted_plaintext_is_refused(client, db, seeded, enc_wire, attack, caplog):
    plaintext = DTD_BODIES[attack].format(ts=enc_wire.clock.timestamp())
    assert_refused(client, db, enc_wire.plaintext_request(plaintext), seeded, status=400,
                   reason="forbidden XML construct", caplog=caplog)


# -- size ------------------------------------------------------------------------------------------


def test_body_over_64_kib_is_refused_with_413(client, db, seeded, wire):
    good = wire.good()
    padding = "<Pad>" + "x" * (64 * 1024) + "</Pad>"
    body = good.body.replace(b"</xml>", padding.encode() + b"</xml>")
    assert len(body) > 64 * 1024
    assert_refused(client, db, SignedRequest(good.path, good.query, body), seeded, status=413)


def test_body_of_just_under_64_kib_is_read(client, db, seeded, wire):
    """The limit is on size, not on being large: a padded but genuine plain message is accepted."""
    if wire.encrypted:
        fields = wire.fields()
        fields["Pad"] = "x" * (40 * 1024)  # ciphertext grows by 4/3
        req = wire.plaintext_request(message_xml(fields))
    else:
        fields = wire.fields()
        fields["Pad"] = "x" * (64 * 1024 - 400)
        req = wire.plaintext_request(message_xml(fields))
    assert len(req.body) <= 64 * 1024
    assert post(client, req).status_code == 200
    assert counts(db)["inbound_receipt"] == seeded["inbound_receipt"] + 1


# -- time ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("skew", [301, -301, 3600, -86400])
def test_timestamp_too_far_from_now_is_refused(client, db, seeded, wire, clock, skew):
    assert_refused(client, db, wire.good(at=clock.timestamp() + skew), seeded, status=403)


@pytest.mark.parametrize("skew", [300, -300])
def test_timestamp_exactly_300_seconds_away_is_accepted(client, db, seeded, wire, clock, skew):
    response = post(client, wire.good(at=clock.timestamp() + skew))
    assert response.status_code == 200
    assert counts(db)["inbound_receipt"] == seeded["inbound_receipt"] + 1


def test_timestamp_not_a_number_is_refused(client, db, seeded, wire):
    req = wire.good()
    req.query["timestamp"] = "yesterday"
    assert_refused(client, db, req, seeded)


# -- query parameters ------------------------------------------------------------------------------


def test_missing_query_parameter_is_refused(client, db, seeded, wire):
    for name in wire.required_query():
        req = wire.good()
        del req.query[name]
        assert_refused(client, db, req, seeded, status=400)
    req = wire.good()
    assert_refused(client, db, SignedRequest(req.path, {}, req.body), seeded, status=400)


@pytest.mark.parametrize(("mp_mode", "status", "reason"),
                         [("safe", 403, "plain-mode callback refused"), ("plain", 400, "lacks FromUserName")])
def test_mp_safe_mode_message_sent_as_plain_is_refused(client, db, seeded, clock, caplog, status, reason):
    """An encrypted envelope without `encrypt_type=aes`: a safe-mode account refuses it as plain
    mode; a plain-mode account reads the envelope, which carries no sender. Nothing done either way."""
    req = Wire("mp_safe", clock).good()
    del req.query["encrypt_type"]
    assert_refused(client, db, req, seeded, status=status, reason=reason, caplog=caplog)


# -- plain mode and 兼容模式 on a safe-mode account ---------------------------------------------------

PLAIN_REFUSED = "plain-mode callback refused: MP_AES_KEY is set"


@pytest.mark.parametrize("encrypt_type", [None, "raw"])
def test_plain_mode_callback_to_a_safe_mode_account_is_refused(client, db, seeded, clock, caplog, encrypt_type):
    """`signature` does not cover the body: with MP_AES_KEY set, even a correctly signed plain-mode
    post is refused, and the log tells the administrator what to do. Control: the same message in
    safe mode is accepted and acted on."""
    req = Wire("mp_plain", clock).good()
    if encrypt_type is not None:
        req.query["encrypt_type"] = encrypt_type
    assert_refused(client, db, req, seeded, status=403, reason=PLAIN_REFUSED, caplog=caplog)
    assert "安全模式 or unset MP_AES_KEY" in caplog.text

    response = post(client, Wire("mp_safe", clock).good())
    assert response.status_code == 200 and response.data
    after = counts(db)
    assert after["inbound_receipt"] == seeded["inbound_receipt"] + 1
    assert after["event"] == seeded["event"] + 1
    assert after["binding_attempt"] == seeded["binding_attempt"] + 1


def test_safe_mode_signature_replayed_with_a_plain_body_is_refused(client, db, seeded, clock, caplog):
    """The attack plain mode allows: the `signature`, timestamp and nonce of a genuine safe-mode
    callback, sent again within the window without `encrypt_type` and with a message of one's own."""
    wire = Wire("mp_safe", clock)
    genuine = wire.good(content="帮助")
    assert post(client, genuine).status_code == 200
    before = counts(db)
    query = {k: v for k, v in genuine.query.items() if k not in ("encrypt_type", "msg_signature")}
    forged = SignedRequest(genuine.path, query, message_xml(wire.fields()).encode())  # 绑定 000000
    assert_refused(client, db, forged, before, status=403, reason=PLAIN_REFUSED, caplog=caplog)


def test_compatible_mode_acts_on_the_ciphertext_not_the_plaintext_beside_it(client, db, seeded, clock):
    """兼容模式 sends the message twice, in clear and in `Encrypt`, with `encrypt_type=aes` and
    `msg_signature`; only the ciphertext is signed, so a tampered clear copy changes nothing."""
    _bind_mp(db, "o_stranger", "李娜")
    before = counts(db)
    wire = Wire("mp_safe", clock)
    genuine = wire.fields(content="帮助")
    tampered = dict(genuine, FromUserName="o_other", Content="绑定 000000", MsgId=genuine["MsgId"] + 1)
    signed = wire.plaintext_request(message_xml(genuine))
    encrypt = parse_xml(signed.body)["Encrypt"]
    body = message_xml(tampered).replace("</xml>", f"<Encrypt>{cdata(encrypt)}</Encrypt></xml>")
    reply, _raw = _read(wire, post(client, SignedRequest(signed.path, signed.query, body.encode())))
    assert reply["ToUserName"] == "o_stranger"
    assert reply["Content"].startswith("李娜您好")
    after = counts(db)
    assert after["inbound_receipt"] == before["inbound_receipt"] + 1
    assert after["binding_attempt"] == before["binding_attempt"]

    # Control: the tampered message, encrypted and signed, would have been acted on.
    reply, _raw = _read(wire, post(client, wire.plaintext_request(message_xml(tampered))))
    assert reply["ToUserName"] == "o_other"
    assert "验证码不正确" in reply["Content"]
    assert counts(db)["binding_attempt"] == before["binding_attempt"] + 1


# -- GET verification ------------------------------------------------------------------------------


@pytest.mark.parametrize("mp_mode", ["safe", "plain"])
def test_get_verification_good_and_bad_signature(client, db, seeded, clock):
    """WeChat verifies the server address with `signature` and echostr in every mode."""
    wecom = WeComSimulator(WECOM, now=clock.timestamp).verify_request("echo-5927")
    assert client.get(wecom.path, query_string=wecom.query).data == b"echo-5927"
    mp = MpSimulator(MP, now=clock.timestamp).verify_request("echo-mp")
    assert client.get(mp.path, query_string=mp.query).data == b"echo-mp"

    for req, field in [(wecom, "msg_signature"), (mp, "signature")]:
        bad = dict(req.query)
        bad[field] = "0" * 40
        response = client.get(req.path, query_string=bad)
        assert response.status_code == 403
        assert b"echo" not in response.data
        missing = dict(req.query)
        del missing["echostr"]
        assert client.get(req.path, query_string=missing).status_code == 400
    assert counts(db) == seeded


def test_get_verification_with_echostr_for_another_corp_is_refused(client, clock):
    other = WeComSimulator(replace(WECOM, corp_id="wwsomeothercorp00"), now=clock.timestamp).verify_request("x")
    assert client.get(other.path, query_string=other.query).status_code == 403


# -- CDATA cannot be broken ------------------------------------------------------------------------

EVIL = "]]><evil/>"


def _read(wire: Wire, response) -> tuple[dict[str, Any], str]:
    """The reply parsed, and its raw (decrypted) XML."""
    assert response.status_code == 200
    if wire.kind == "wecom":
        crypto = WorkCrypto(WECOM.token, WECOM.aes_key, WECOM.corp_id)
    elif wire.kind == "mp_safe":
        crypto = MpCrypto(MP.token, MP.aes_key, MP.app_id)
    else:
        raw = response.data.decode()
        return parse_xml(raw), raw
    envelope = parse_xml(response.data)
    raw = crypto.decrypt_message(envelope, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
    return parse_xml(raw), raw


def _bind_mp(db, openid: str, name: str) -> None:
    with db.session() as s:
        person = s.scalar(select(Person).where(Person.name == name))
        s.add(ChannelIdentity(channel=Channel.MP, external_id=openid, person_id=person.id))


def test_cdata_terminator_from_a_known_person_gets_help(client, db, seeded, wire):
    if wire.kind != "wecom":
        _bind_mp(db, "o_stranger", "李娜")
    reply, raw = _read(wire, post(client, wire.good(content="帮助" + EVIL)))
    assert set(reply) >= {"ToUserName", "FromUserName", "CreateTime", "MsgType", "Content"}
    assert "evil" not in reply
    assert reply["ToUserName"] == wire.sender()
    assert reply["Content"].startswith("没看懂您的消息。您是想用「帮助」吗？")  # unread text: 没看懂, not echoed


def test_cdata_terminator_from_an_unknown_person_gets_the_how_to_text(client, db, seeded, wire):
    unknown = Wire(wire.kind, wire.clock)
    unknown.sender = lambda: "stranger]]><evil/>"  # the sender id itself is echoed in ToUserName
    reply, _raw = _read(unknown, post(client, unknown.good(content="帮助" + EVIL)))
    assert reply["ToUserName"] == "stranger]]><evil/>"
    assert "evil" not in reply
    if wire.kind == "wecom":
        assert "名册中还没有您的企业微信账号" in reply["Content"]
    else:
        assert "绑定 验证码" in reply["Content"]
    after = counts(db)
    assert after["channel_identity"] == seeded["channel_identity"]
    assert after["person"] == seeded["person"]


def test_cdata_terminator_echoed_in_a_reply_stays_intact(client, db, seeded, wire):
    """`绑定码 NAME` quotes a name it cannot find: the quoted user text survives the reply XML."""
    if wire.kind != "wecom":
        _bind_mp(db, "o_stranger", "李娜")
    name = "张伟" + EVIL + "]]]]>&amp;<![CDATA["
    reply, raw = _read(wire, post(client, wire.good(content=f"绑定码 {name}")))
    assert f"「{name}」" in reply["Content"]
    assert "没有找到" in reply["Content"]
    assert list(reply) == ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", *(
        ["AgentID"] if wire.kind == "wecom" else [])]
    assert "]]]]><![CDATA[>" in raw  # the terminator was split, not passed through
    assert counts(db)["binding_code"] == seeded["binding_code"]



@pytest.fixture
def live_url(app):
    """The app behind a real threaded HTTP server (the test client always sends Content-Length)."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
    server.server_close()


def post_chunked(url: str, req: SignedRequest, chunks):
    import requests

    with requests.Session() as session:  # a generator body goes out chunked, with no Content-Length
        return session.post(url + req.path, params=req.query, data=iter(chunks),
                            headers={"Content-Type": "text/xml"}, timeout=30)


def test_chunked_body_under_the_limit_is_read(live_url, db, seeded, wire):
    good = wire.good()
    response = post_chunked(live_url, good, [good.body[:50], good.body[50:]])
    assert response.status_code == 200
    assert counts(db)["inbound_receipt"] == seeded["inbound_receipt"] + 1


@pytest.mark.parametrize("where", ["inside", "after"])
def test_chunked_body_over_64_kib_without_content_length_is_refused(live_url, db, seeded, wire, where):
    """Streamed past the limit: refused, not cut off at 64 KiB and read as the valid prefix."""
    good = wire.good()
    if where == "inside":
        chunks = [good.body.replace(b"</xml>", b""), *[b"<Pad>" + b"x" * 4096 + b"</Pad>"] * 20, b"</xml>"]
    else:  # a complete, valid message followed by white space: its first 64 KiB parse fine
        chunks = [good.body, *[b" " * 4096] * 20]
    assert sum(map(len, chunks)) > 64 * 1024
    response = post_chunked(live_url, good, chunks)
    assert response.status_code == 413
    assert counts(db) == seeded
