"""The fake's 更新模版卡片消息 (developer.work.weixin.qq.com/document/path/94888) is as strict as the
real one where the bot depends on it: a response code updates cards once, for 72 hours from when
it was issued (by message/send or a tap), and a whole-card update must be a card WeCom accepts."""

from __future__ import annotations

from fakewx import FakeState, create_fake_app
from fakewx.state import RESPONSE_CODE_TTL
from tests.conftest import WECOM

CARD = {"card_type": "button_interaction", "main_title": {"title": "#1 报送年度总结"},
        "sub_title_text": "截止：2026年12月3日 17:00", "task_id": "directive-1-abc",
        "button_list": [{"type": 0, "text": "收到", "style": 1, "key": "ack:1"}]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _fake():
    clock = FakeClock()
    state = FakeState(clock=clock)
    state.add_wecom_app(WECOM.corp_id, WECOM.secret)
    client = create_fake_app(state).test_client()
    token = client.get("/cgi-bin/gettoken", query_string={"corpid": WECOM.corp_id,
                                                          "corpsecret": WECOM.secret}).get_json()["access_token"]
    return state, client, token, clock


def _post(client, token, path, body) -> dict:
    return client.post(f"/cgi-bin/{path}", query_string={"access_token": token}, json=body).get_json()


def _send_card(client, token, users="a|b") -> str:
    answer = _post(client, token, "message/send", {"touser": users, "agentid": 1, "msgtype": "template_card",
                                                   "template_card": dict(CARD, task_id=f"t-{users.replace('|', '')}")})
    assert answer["errcode"] == 0, answer
    return answer["response_code"]


def _update(client, token, code, **content) -> dict:
    body = {"userids": ["a"], "agentid": 1, "response_code": code,
            **(content or {"button": {"replace_name": "已确认"}})}
    return _post(client, token, "message/update_template_card", body)


def _fresh_token(client) -> str:
    return client.get("/cgi-bin/gettoken", query_string={"corpid": WECOM.corp_id,
                                                         "corpsecret": WECOM.secret}).get_json()["access_token"]


def test_a_send_code_updates_once_within_72_hours_and_never_after():
    state, client, token, clock = _fake()
    young, old = _send_card(client, token, "a"), _send_card(client, token, "b")
    clock.now += RESPONSE_CODE_TTL  # exactly 72 hours: still valid
    token = _fresh_token(client)  # the token of the first call has long expired
    assert _update(client, token, young)["errcode"] == 0
    assert _update(client, token, young)["errmsg"].startswith("invalid parameter, response_code already used")
    clock.now += 1
    expired = _update(client, token, old)
    assert expired["errcode"] == 40058 and "response_code expired" in expired["errmsg"]
    assert state.card_updates["a"] == 1 and sum(state.card_updates.values()) == 1
    assert old not in state.used_response_codes  # refused, not spent


def test_a_tap_code_the_fake_issued_expires_too_and_one_it_never_saw_is_accepted_once():
    state, client, token, clock = _fake()
    tapped = state.issue_response_code()  # what a tap's callback carries (ResponseCode)
    clock.now += RESPONSE_CODE_TTL + 60
    token = _fresh_token(client)
    assert _update(client, token, tapped)["errcode"] == 40058
    assert _update(client, token, "from-a-callback-the-fake-did-not-see")["errcode"] == 0
    assert _update(client, token, "from-a-callback-the-fake-did-not-see")["errcode"] == 40058


def test_a_whole_card_update_must_be_a_card_wecom_accepts():
    state, client, token, _clock = _fake()
    whole = dict(CARD, replace_text="已确认")
    whole.pop("task_id")
    refusals = {
        "both forms": {"button": {"replace_name": "已确认"}, "template_card": whole},
        "neither": {"button": {}},
        "unknown type": {"template_card": dict(whole, card_type="button")},
        "no buttons": {"template_card": {k: v for k, v in whole.items() if k != "button_list"}},
        "seven buttons": {"template_card": dict(whole, button_list=CARD["button_list"] * 7)},
        "button without key": {"template_card": dict(whole, button_list=[{"type": 0, "text": "收到"}])},
        "no title": {"template_card": {k: v for k, v in whole.items() if k not in ("main_title", "sub_title_text")}},
        "long title": {"template_card": dict(whole, main_title={"title": "题" * 37})},
        "long text": {"template_card": dict(whole, sub_title_text="字" * 161)},
        "bad task_id": {"template_card": dict(whole, task_id="有 空格")},
        "replace_text on a notice": {"template_card": {"card_type": "text_notice", "main_title": {"title": "通知"},
                                                       "replace_text": "已确认"}},
        "empty replace_text": {"template_card": dict(whole, replace_text="")},
    }
    code = _send_card(client, token, "a")
    for name, content in refusals.items():
        answer = _update(client, token, code, **content)
        assert answer["errcode"] == 40058, name
    assert state.card_updates["a"] == 0 and code not in state.used_response_codes  # nothing spent
    accepted = _update(client, token, code, template_card=whole)
    assert accepted["errcode"] == 0
    [call] = [m for m in state.messages_for("a") if m["msgtype"] == "update_template_card"]
    assert call["body"]["template_card"]["replace_text"] == "已确认"
    assert state.count("a") == 1  # an update is not a message
