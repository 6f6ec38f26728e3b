"""The fake refuses what the real servers cut or refuse for length, with their errcodes, and our
channels never send it: 45002 content size out of limit, 40058 for a card or robot field."""

from __future__ import annotations

from bot.channels.mp import render_text
from bot.channels.webhook import render_message as render_robot
from bot.channels.wecom import render_message
from tests.conftest import MP, WECOM
from tests.fakewx.test_fake_server import _app, _send, _token


def _card(title: str, description: str) -> dict:
    return {"card_type": "button_interaction", "main_title": {"title": title}, "sub_title_text": description,
            "task_id": "directive-1-x", "button_list": [{"type": 0, "text": "收到", "style": 1, "key": "ack:1"}]}


def _send_card(client, token, card):
    body = {"touser": "zhangwei", "agentid": WECOM.agent_id, "msgtype": "template_card", "template_card": card}
    return client.post("/cgi-bin/message/send", query_string={"access_token": token}, json=body).get_json()


def test_fake_refuses_over_long_text_and_card_fields():
    _state, client = _app()
    token = _token(client)
    assert _send(client, token, "zhangwei", content="字" * 682)["errcode"] == 0  # 2,046 bytes
    assert _send(client, token, "zhangwei", content="字" * 683)["errcode"] == 45002
    assert _send_card(client, token, _card("题" * 36, "文" * 160))["errcode"] == 0
    assert _send_card(client, token, _card("题" * 37, "文"))["errcode"] == 40058
    assert _send_card(client, token, _card("题", "文" * 161))["errcode"] == 40058


def test_fake_refuses_over_long_robot_markdown_and_official_account_text():
    state, client = _app()
    state.webhook_keys = None

    def robot(content):
        return client.post("/cgi-bin/webhook/send", query_string={"key": "k"},
                           json={"msgtype": "markdown", "markdown": {"content": content}}).get_json()

    assert robot("a" * 4096)["errcode"] == 0
    assert robot("a" * 4097)["errcode"] == 40058
    mp_token = client.get("/cgi-bin/token", query_string={"grant_type": "client_credential", "appid": MP.app_id,
                                                          "secret": MP.secret}).get_json()["access_token"]

    def custom(content):
        return client.post("/cgi-bin/message/custom/send", query_string={"access_token": mp_token},
                           json={"touser": "o1", "msgtype": "text", "text": {"content": content}}).get_json()

    assert custom("a" * 2048)["errcode"] == 0
    assert custom("a" * 2049)["errcode"] == 45002


def test_channels_render_long_payloads_within_the_limits():
    long = "#12 " + "很长的正文。" * 1000
    assert len(render_message({"type": "text", "text": long})["text"]["content"].encode()) <= 2048
    robot = render_robot({"type": "markdown", "text": long})["markdown"]["content"]
    assert 2048 < len(robot.encode()) <= 4096 and robot.endswith("发送「详情 12」查看全文")
    card = {"type": "card", "title": "#12 " + "标题" * 30, "description": long, "task_id": "directive-12",
            "buttons": [{"key": "ack:12", "text": "收到"}]}
    as_text = render_text(card)
    assert len(as_text.encode()) <= 2048
    assert as_text.endswith("回复「收到 12」确认")  # the command survives the cut
    assert "发送「详情 12」查看全文" in as_text
    rendered = render_message(card, batch=["zhangwei"])["template_card"]
    assert len(rendered["main_title"]["title"]) == 36 and len(rendered["sub_title_text"]) <= 160
