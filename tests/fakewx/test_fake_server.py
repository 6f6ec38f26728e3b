"""The fake behaves like WeCom/MP where our code depends on it: tokens, the 1,000-userid cap,
errcodes, duplicate check, fault injection and the introspection endpoints."""

from __future__ import annotations

import requests

from fakewx import FakeState, create_fake_app
from tests.conftest import MP, WECOM


def _token(client, corp_id=WECOM.corp_id, secret=WECOM.secret) -> str:
    body = client.get("/cgi-bin/gettoken", query_string={"corpid": corp_id, "corpsecret": secret}).get_json()
    assert body["errcode"] == 0, body
    return body["access_token"]


def _send(client, token, touser, content="你好", **extra):
    body = {"touser": touser, "agentid": WECOM.agent_id, "msgtype": "text", "text": {"content": content}, **extra}
    return client.post("/cgi-bin/message/send", query_string={"access_token": token}, json=body).get_json()


def _app(**config):
    state = FakeState()
    state.add_wecom_app(WECOM.corp_id, WECOM.secret)
    state.add_mp_app(MP.app_id, MP.secret)
    for name, value in config.items():
        setattr(state, name, value)
    return state, create_fake_app(state).test_client()


def test_gettoken_checks_credentials_and_reuses_a_valid_token():
    state, client = _app()
    bad_corp = client.get("/cgi-bin/gettoken", query_string={"corpid": "nope", "corpsecret": "x"}).get_json()
    bad_secret = client.get("/cgi-bin/gettoken", query_string={"corpid": WECOM.corp_id, "corpsecret": "x"}).get_json()
    assert bad_corp["errcode"] == 40013
    assert bad_secret["errcode"] == 40001
    first, second = _token(client), _token(client)
    assert first == second  # WeCom hands out the same token while it is valid
    assert state.tokens_issued["wecom"] == 1


def test_unknown_and_expired_tokens_get_40014_and_42001():
    state, client = _app()
    assert _send(client, "forged", "zhangsan")["errcode"] == 40014
    token = _token(client)
    state.expire_tokens()
    assert _send(client, token, "zhangsan")["errcode"] == 42001
    fresh = _token(client)
    assert fresh != token
    assert _send(client, fresh, "zhangsan")["errcode"] == 0
    assert state.count("zhangsan") == 1


def test_more_than_1000_userids_is_refused_whole():
    state, client = _app()
    token = _token(client)
    answer = _send(client, token, "|".join(f"u{i}" for i in range(1001)))
    assert answer["errcode"] == 40032
    assert state.stats()["delivered"] == 0
    assert _send(client, token, "|".join(f"u{i}" for i in range(1000)))["errcode"] == 0
    assert state.stats()["delivered"] == 1000


def test_unknown_users_are_reported_as_invaliduser_and_all_unknown_is_81013():
    state, client = _app()
    state.set_known_users(["zhangsan", "lisi"])
    token = _token(client)
    partly = _send(client, token, "zhangsan|ghost")
    assert partly["errcode"] == 0 and partly["invaliduser"] == "ghost"
    nobody = _send(client, token, "ghost|phantom")
    assert nobody["errcode"] == 81013 and nobody["invaliduser"] == "ghost|phantom"
    assert state.count("zhangsan") == 1 and state.count("ghost") == 0


def test_duplicate_check_drops_the_same_content_within_the_interval():
    now = [1000.0]
    state = FakeState(clock=lambda: now[0])
    client = create_fake_app(state).test_client()
    token = _token(client)
    check = {"enable_duplicate_check": 1, "duplicate_check_interval": 1800}
    assert _send(client, token, "a|b", **check)["errcode"] == 0
    assert _send(client, token, "a|b|c", **check)["errcode"] == 0  # a and b: dropped, c: new
    assert _send(client, token, "a", "另一条", **check)["errcode"] == 0  # other content goes through
    assert _send(client, token, "b")["errcode"] == 0  # without the check WeCom sends again
    assert [state.count(u) for u in "abc"] == [2, 2, 1]
    now[0] += 1801
    assert _send(client, token, "a", **check)["errcode"] == 0
    assert state.count("a") == 3
    assert state.stats()["suppressed_duplicates"] == 2


def test_injected_errcodes_http_errors_and_delays():
    state, client = _app()
    token = _token(client)
    state.fail_next("message/send", errcode=45009, times=2)
    state.fail_next("/cgi-bin/message/send", http_status=502)
    assert _send(client, token, "a")["errcode"] == 45009
    assert _send(client, token, "a")["errcode"] == 45009
    response = client.post("/cgi-bin/message/send", query_string={"access_token": token}, json={})
    assert response.status_code == 502
    assert _send(client, token, "a")["errcode"] == 0
    assert state.count("a") == 1
    assert state.requests["message/send"] == 4


def test_81013_fault_names_the_recipients():
    state, client = _app()
    token = _token(client)
    state.fail_next("message/send", errcode=81013)
    answer = _send(client, token, "a|b")
    assert answer["errcode"] == 81013 and answer["invaliduser"] == "a|b"


def test_button_card_returns_a_response_code_and_the_card_can_be_updated_once():
    state, client = _app()
    token = _token(client)
    card = {"card_type": "button_interaction", "main_title": {"title": "#1 学习"}, "task_id": "directive-1",
            "button_list": [{"type": 0, "text": "收到", "style": 1, "key": "ack:1"}]}
    sent = client.post("/cgi-bin/message/send", query_string={"access_token": token}, json={
        "touser": "a", "agentid": 1, "msgtype": "template_card", "template_card": card}).get_json()
    assert sent["errcode"] == 0 and sent["response_code"]
    broken = dict(card, button_list=[{"text": "收到"}])
    refused = client.post("/cgi-bin/message/send", query_string={"access_token": token}, json={
        "touser": "a", "agentid": 1, "msgtype": "template_card", "template_card": broken}).get_json()
    assert refused["errcode"] == 40058
    update = {"userids": ["a"], "agentid": 1, "response_code": "rc-1", "button": {"replace_name": "已确认"}}
    first = client.post("/cgi-bin/message/update_template_card", query_string={"access_token": token}, json=update)
    again = client.post("/cgi-bin/message/update_template_card", query_string={"access_token": token}, json=update)
    assert first.get_json()["errcode"] == 0
    assert again.get_json()["errcode"] != 0
    assert state.card_updates["a"] == 1 and state.count("a") == 1


def test_webhook_and_official_account_endpoints():
    state, client = _app()
    hook = client.post("/cgi-bin/webhook/send", query_string={"key": "k1"},
                       json={"msgtype": "markdown", "markdown": {"content": "**通知**"}}).get_json()
    assert hook["errcode"] == 0 and state.count("webhook:k1") == 1
    assert client.post("/cgi-bin/webhook/send", json={"msgtype": "text"}).get_json()["errcode"] == 93000

    bad = client.get("/cgi-bin/token", query_string={"grant_type": "client_credential", "appid": MP.app_id,
                                                      "secret": "wrong"}).get_json()
    assert bad["errcode"] == 40125
    token = client.get("/cgi-bin/token", query_string={"grant_type": "client_credential", "appid": MP.app_id,
                                                        "secret": MP.secret}).get_json()["access_token"]
    wecom_token = _token(client)
    custom = {"touser": "openid-1", "msgtype": "text", "text": {"content": "你好"}}
    assert client.post("/cgi-bin/message/custom/send", query_string={"access_token": wecom_token},
                       json=custom).get_json()["errcode"] == 40001  # a WeCom token is no MP token
    assert client.post("/cgi-bin/message/custom/send", query_string={"access_token": token},
                       json=custom).get_json()["errcode"] == 0
    template = {"touser": "openid-1", "template_id": "t1", "data": {"first": {"value": "x"}}}
    assert client.post("/cgi-bin/message/template/send", query_string={"access_token": token},
                       json=template).get_json()["errcode"] == 0
    assert state.count("openid-1") == 2


def test_introspection_over_http_from_another_process(fake_wechat):
    root = fake_wechat.root_url
    token = requests.get(fake_wechat.base_url + "gettoken",
                         params={"corpid": WECOM.corp_id, "corpsecret": WECOM.secret}, timeout=5).json()["access_token"]
    for text in ("一", "二"):
        requests.post(fake_wechat.base_url + "message/send", params={"access_token": token}, timeout=5,
                      json={"touser": "zhangsan", "agentid": 1, "msgtype": "text", "text": {"content": text}})
    messages = requests.get(f"{root}/_fake/messages", params={"touser": "zhangsan"}, timeout=5).json()
    assert [m["body"]["text"]["content"] for m in messages] == ["一", "二"]
    later = requests.get(f"{root}/_fake/messages", params={"touser": "zhangsan", "after": messages[0]["seq"]},
                         timeout=5).json()
    assert [m["seq"] for m in later] == [messages[1]["seq"]]

    assert requests.post(f"{root}/_fake/fail", json={"path": "message/send", "errcode": 45009}, timeout=5).ok
    limited = requests.post(fake_wechat.base_url + "message/send", params={"access_token": token}, timeout=5,
                            json={"touser": "zhangsan", "agentid": 1, "msgtype": "text", "text": {"content": "三"}})
    assert limited.json()["errcode"] == 45009
    stats = requests.get(f"{root}/_fake/stats", timeout=5).json()
    assert stats["delivered"] == 2 and stats["same_content_twice"] == 0
    assert requests.post(f"{root}/_fake/reset", timeout=5).ok
    assert requests.get(f"{root}/_fake/messages", params={"touser": "zhangsan"}, timeout=5).json() == []


def test_delay_answers_late_after_acting(fake_wechat):
    token = requests.get(fake_wechat.base_url + "gettoken",
                         params={"corpid": WECOM.corp_id, "corpsecret": WECOM.secret}, timeout=5).json()["access_token"]
    fake_wechat.state.delay_next("message/send", 0.5)
    try:
        requests.post(fake_wechat.base_url + "message/send", params={"access_token": token}, timeout=0.1,
                      json={"touser": "a", "agentid": 1, "msgtype": "text", "text": {"content": "x"}})
        raise AssertionError("expected a client timeout")
    except requests.Timeout:
        pass
    assert fake_wechat.state.count("a") == 1  # the server acted although the client gave up
