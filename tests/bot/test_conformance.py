"""Published vectors, verbatim, through the real endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.channels.xmlsafe import parse_xml

WECOM_VERIFY = {
    "msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
    "timestamp": "1411443780",
    "nonce": "437374425",
    "echostr": "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
}

MP_SAMPLE = {
    "timestamp": "1409735669",
    "nonce": "1320562132",
    "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
    "encrypt": (
        "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHF"
        "VAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVti"
        "cbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpA"
        "e+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumE"
        "Po5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
    ),
}


def test_wecom_verify_vector_answers_plaintext_alone(client):
    response = client.get("/wecom/callback", query_string=WECOM_VERIFY)
    assert response.status_code == 200
    assert response.data == b"5927782489442352469"


def test_wecom_verify_vector_with_other_nonce_fails(client):
    response = client.get("/wecom/callback", query_string={**WECOM_VERIFY, "nonce": "437374424"})
    assert 400 <= response.status_code < 500
    assert b"5927782489442352469" not in response.data


def test_mp_official_sample_decrypts_to_text(runtime):
    from bot.channels.mp import MpChannel

    channel: MpChannel = runtime.channels[MpChannel.name]
    body = f"<xml><ToUserName><![CDATA[toUser]]></ToUserName><Encrypt><![CDATA[{MP_SAMPLE['encrypt']}]]></Encrypt></xml>"
    plaintext = channel.crypto.decrypt_message(
        parse_xml(body), MP_SAMPLE["msg_signature"], MP_SAMPLE["timestamp"], MP_SAMPLE["nonce"]
    )
    message = parse_xml(plaintext)
    assert message["MsgType"] == "text"
    assert message["Content"] == "abcdteT"


def test_mp_official_sample_through_endpoint(client, clock):
    """The sample posted as WeChat would, at the time it was made: accepted and answered."""
    clock.set(datetime.fromtimestamp(int(MP_SAMPLE["timestamp"]), UTC))
    body = f"<xml><ToUserName><![CDATA[toUser]]></ToUserName><Encrypt><![CDATA[{MP_SAMPLE['encrypt']}]]></Encrypt></xml>"
    query = {"encrypt_type": "aes", "timestamp": MP_SAMPLE["timestamp"], "nonce": MP_SAMPLE["nonce"],
             "msg_signature": MP_SAMPLE["msg_signature"]}
    response = client.post("/mp/callback", query_string=query, data=body, content_type="text/xml")
    assert response.status_code == 200
    # The sender is not bound: the encrypted reply explains how to bind.
    from bot.channels.simulator import MpSimulator
    from tests.conftest import MP

    reply = MpSimulator(MP).read_reply(response.data)
    assert "绑定" in reply["Content"]


@pytest.mark.parametrize("field", ["msg_signature", "timestamp", "nonce"])
def test_mp_sample_with_a_changed_field_is_refused(client, clock, field):
    clock.set(datetime.fromtimestamp(int(MP_SAMPLE["timestamp"]), UTC))
    body = f"<xml><ToUserName><![CDATA[toUser]]></ToUserName><Encrypt><![CDATA[{MP_SAMPLE['encrypt']}]]></Encrypt></xml>"
    query = {"encrypt_type": "aes", "timestamp": MP_SAMPLE["timestamp"], "nonce": MP_SAMPLE["nonce"],
             "msg_signature": MP_SAMPLE["msg_signature"]}
    query[field] = str(int(query[field]) + 1) if query[field].isdigit() else "0" * 40
    response = client.post("/mp/callback", query_string=query, data=body, content_type="text/xml")
    assert 400 <= response.status_code < 500
