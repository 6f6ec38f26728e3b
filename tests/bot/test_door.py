"""What the real servers send, and what an attacker sends, at the callback door (SPEC §2.2).

Inside a correctly signed message the user's text arrives as WeChat writes it: control characters
and a literal `]]>` unescaped in CDATA (WeRoBot #419/#420, silenceper/wechat #750). Those are
accepted; everything else odd is a cheap 4xx that changes nothing and logs no traceback."""

from __future__ import annotations

import logging

from bot.channels.simulator import SignedRequest
from tests.bot.test_callback_hardening import (  # noqa: F401  (fixtures used by name)
    Wire,
    _bind_mp,
    _read,
    assert_refused,
    counts,
    enc_wire,
    mp_mode,
    post,
    seeded,
    wire,
)

DEEP = "<xml>" + "<a>" * 1000 + "x" + "</a>" * 1000 + "</xml>"


def _raw_message(flavour: Wire, content_xml: str, *, msg_type: str = "<MsgType><![CDATA[text]]></MsgType>",
                 sender: str | None = None) -> str:
    """A message as WeChat's server writes it, with `content_xml` exactly as given (no escaping)."""
    fields = flavour.fields()
    agent = f"<AgentID>{fields['AgentID']}</AgentID>" if "AgentID" in fields else ""
    return (f"<xml><ToUserName><![CDATA[{fields['ToUserName']}]]></ToUserName>"
            f"<FromUserName>{sender or '<![CDATA[' + fields['FromUserName'] + ']]>'}</FromUserName>"
            f"<CreateTime>{fields['CreateTime']}</CreateTime>{msg_type}"
            f"<Content>{content_xml}</Content><MsgId>{fields['MsgId']}</MsgId>{agent}</xml>")


def _no_traceback(caplog) -> None:
    assert not any(record.exc_info for record in caplog.records), caplog.text
    assert "Traceback" not in caplog.text


# -- unsigned, heavy ---------------------------------------------------------------------------------


def test_deeply_nested_body_without_a_valid_signature_is_a_4xx(client, db, seeded, wire, caplog):  # noqa: F811
    good = wire.good()
    with caplog.at_level(logging.WARNING):
        assert_refused(client, db, SignedRequest(good.path, good.query, DEEP.encode()), seeded)
    _no_traceback(caplog)


def test_deeply_nested_signed_message_is_a_4xx(client, db, seeded, wire, caplog):  # noqa: F811
    with caplog.at_level(logging.WARNING):
        assert_refused(client, db, wire.plaintext_request(DEEP), seeded, status=400)
    _no_traceback(caplog)


def test_four_hundred_digit_timestamp_is_a_4xx(client, db, seeded, wire, caplog):  # noqa: F811
    good = wire.good()
    query = {**good.query, "timestamp": "9" * 400}
    with caplog.at_level(logging.WARNING):
        assert_refused(client, db, SignedRequest(good.path, query, good.body), seeded)
    _no_traceback(caplog)


def test_non_ascii_digits_in_the_timestamp_are_a_4xx(client, db, seeded, wire):  # noqa: F811
    good = wire.good()
    query = {**good.query, "timestamp": "፩" * 10}
    assert_refused(client, db, SignedRequest(good.path, query, good.body), seeded)


# -- signed, odd structure ---------------------------------------------------------------------------


def test_signed_message_with_elements_where_text_belongs_is_a_4xx(client, db, seeded, wire, caplog):  # noqa: F811
    text = wire.state_changing_text()
    odd = [
        _raw_message(wire, f"<![CDATA[{text}]]>", msg_type="<MsgType><b>text</b></MsgType>"),
        _raw_message(wire, f"<b>{text}</b>"),
        _raw_message(wire, f"<![CDATA[{text}]]>", sender="<b>lina</b>"),
    ]
    for plaintext in odd:
        with caplog.at_level(logging.WARNING):
            assert_refused(client, db, wire.plaintext_request(plaintext), seeded, status=400)
        _no_traceback(caplog)


def test_signed_message_with_a_huge_createtime_is_a_4xx(client, db, seeded, wire):  # noqa: F811
    plaintext = _raw_message(wire, f"<![CDATA[{wire.state_changing_text()}]]>").replace(
        f"<CreateTime>{wire.fields()['CreateTime']}</CreateTime>", f"<CreateTime>{'9' * 10000}</CreateTime>")
    assert_refused(client, db, wire.plaintext_request(plaintext), seeded, status=400)


# -- rule 9: the user's text as the real server sends it ---------------------------------------------


def test_control_characters_in_the_users_text_are_dropped_and_the_message_answered(client, db, seeded, wire):  # noqa: F811
    text = wire.state_changing_text()
    dirty = "\x02" + text[:3] + "\x1d" + text[3:] + "\x0b"
    response = post(client, wire.plaintext_request(_raw_message(wire, f"<![CDATA[{dirty}]]>")))
    assert response.status_code == 200
    reply, _raw = _read(wire, response)
    after = counts(db)
    if wire.kind == "wecom":
        assert "张伟" in reply["Content"] and after["binding_code"] == seeded["binding_code"] + 1
    else:
        assert "验证码不正确" in reply["Content"] and after["binding_attempt"] == seeded["binding_attempt"] + 1


def test_a_literal_cdata_terminator_in_the_users_text_is_recovered(client, db, seeded, wire):  # noqa: F811
    if wire.kind != "wecom":
        _bind_mp(db, "o_stranger", "李娜")
    name = "张伟]]>好</Content>"
    response = post(client, wire.plaintext_request(_raw_message(wire, f"<![CDATA[绑定码 {name}]]>")))
    assert response.status_code == 200
    reply, _raw = _read(wire, response)
    assert f"「{name}」" in reply["Content"] and "没有找到" in reply["Content"]
    assert counts(db)["inbound_receipt"] == seeded["inbound_receipt"] + 1


def test_control_characters_outside_the_users_text_stay_a_4xx(client, db, seeded, wire):  # noqa: F811
    plaintext = _raw_message(wire, f"<![CDATA[{wire.state_changing_text()}]]>", sender="<![CDATA[li\x02na]]>")
    assert_refused(client, db, wire.plaintext_request(plaintext), seeded, status=400)


def test_a_cdata_terminator_outside_the_users_text_stays_a_4xx(client, db, seeded, wire):  # noqa: F811
    plaintext = _raw_message(wire, f"<![CDATA[{wire.state_changing_text()}]]>", sender="<![CDATA[li]]>na]]>")
    assert_refused(client, db, wire.plaintext_request(plaintext), seeded, status=400)
