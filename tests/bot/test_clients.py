"""wechatpy clients: our API base for every call (token too), a timeout on every HTTP call, the
token shared through the store, exactly one refresh on a refused token."""

from __future__ import annotations

import threading
import time

import pytest

from bot.channels.base import TransientSendError
from bot.channels.clients import MpClient, WeComClient, call_api
from bot.stores import MemoryStore, RedisStore
from tests.conftest import MP, REDIS_URL, WECOM, redis_prefix

TEXT = {"touser": "zhangsan", "agentid": WECOM.agent_id, "msgtype": "text", "text": {"content": "你好"}}


@pytest.fixture
def store():
    if REDIS_URL:
        shared = RedisStore(REDIS_URL)
        shared.prefix = redis_prefix()
        return shared
    return MemoryStore()


def _wecom(fake, store, timeout=1.5) -> WeComClient:
    return WeComClient(WECOM.corp_id, WECOM.secret, api_base=fake.base_url, store=store, timeout=timeout)


def _spy_timeouts(client) -> list:
    seen = []
    original = client._http.request

    def request(method, url, **kwargs):
        seen.append((url.split("/cgi-bin/")[-1], kwargs.get("timeout")))
        return original(method, url, **kwargs)

    client._http.request = request
    return seen


def test_every_call_goes_to_the_configured_base_with_a_timeout(fake_wechat, store):
    client = _wecom(fake_wechat, store, timeout=1.5)
    seen = _spy_timeouts(client)
    call_api(lambda: client.post("message/send", data=TEXT))
    assert [path for path, _ in seen] == ["gettoken", "message/send"]
    assert all(timeout == 1.5 for _, timeout in seen)
    assert fake_wechat.state.requests["gettoken"] == 1 and fake_wechat.state.count("zhangsan") == 1


def test_mp_token_fetch_uses_the_base_and_timeout_too(fake_wechat, store):
    client = MpClient(MP.app_id, MP.secret, api_base=fake_wechat.base_url, store=store, timeout=0.7)
    seen = _spy_timeouts(client)
    call_api(lambda: client.post("message/custom/send",
                                 data={"touser": "openid-1", "msgtype": "text", "text": {"content": "你好"}}))
    assert [path for path, _ in seen] == ["token", "message/custom/send"]
    assert all(timeout == 0.7 for _, timeout in seen)


def test_a_timeout_is_required():
    with pytest.raises(ValueError):
        WeComClient(WECOM.corp_id, WECOM.secret, api_base="http://127.0.0.1:9/cgi-bin/", timeout=0)


def test_the_token_is_cached_in_the_store_and_shared_between_clients(fake_wechat, store):
    first, second = _wecom(fake_wechat, store), _wecom(fake_wechat, store)
    call_api(lambda: first.post("message/send", data=TEXT))
    call_api(lambda: second.post("message/send", data=TEXT))
    assert fake_wechat.state.tokens_issued["wecom"] == 1
    assert fake_wechat.state.requests["gettoken"] == 1
    assert second.token_fetches == 0


@pytest.mark.parametrize("how", ["expired", "40014"])
def test_a_refused_token_is_refreshed_once_and_the_call_retried(fake_wechat, store, how):
    client = _wecom(fake_wechat, store)
    call_api(lambda: client.post("message/send", data=TEXT))
    if how == "expired":
        fake_wechat.state.expire_tokens()
    else:
        fake_wechat.state.fail_next("message/send", errcode=40014)
    call_api(lambda: client.post("message/send", data={**TEXT, "text": {"content": "第二条"}}))
    assert fake_wechat.state.requests["gettoken"] == 2
    assert fake_wechat.state.requests["message/send"] == 3
    assert fake_wechat.state.count("zhangsan") == 2


@pytest.mark.parametrize("errcode", [42001, 40014])
def test_a_token_still_refused_after_one_refresh_fails_cleanly(fake_wechat, store, errcode):
    client = _wecom(fake_wechat, store)
    fake_wechat.state.fail_next("message/send", errcode=errcode, times=5)
    with pytest.raises(TransientSendError) as caught:
        call_api(lambda: client.post("message/send", data=TEXT))
    assert str(errcode) in caught.value.reason
    assert fake_wechat.state.requests["message/send"] == 2  # the call and one retry, no loop
    assert fake_wechat.state.requests["gettoken"] == 2  # the first token and one refresh


def test_bad_credentials_are_reported_as_transient_configuration_errors(fake_wechat, store):
    client = WeComClient(WECOM.corp_id, "wrong-secret", api_base=fake_wechat.base_url, store=store, timeout=1)
    with pytest.raises(TransientSendError) as caught:
        call_api(lambda: client.post("message/send", data=TEXT))
    assert "40001" in caught.value.reason


def test_a_refresh_in_progress_elsewhere_is_waited_for(fake_wechat, store):
    """Another process holds the refresh lock and stores a new token: we use it, no fetch."""
    client = _wecom(fake_wechat, store)
    stale = client.access_token
    other = _wecom(fake_wechat, store)
    store.set_nx(f"lock:{client.access_token_key}", "other-process", 5)
    fake_wechat.state.expire_tokens()

    def other_process_refreshes():
        time.sleep(0.2)
        other.fetch_access_token()

    thread = threading.Thread(target=other_process_refreshes)
    thread.start()
    fresh = client.refresh_access_token(stale=stale)
    thread.join()
    assert fresh != stale
    assert client.token_fetches == 1  # only the first token; the refresh came from the other one
    assert fake_wechat.state.requests["gettoken"] == 2


def test_timeouts_and_server_errors_are_transient(fake_wechat, store):
    client = _wecom(fake_wechat, store, timeout=0.3)
    client.access_token  # noqa: B018  (fetch the token first)
    fake_wechat.state.fail_next("message/send", http_status=500)
    with pytest.raises(TransientSendError, match="HTTP 500"):
        call_api(lambda: client.post("message/send", data=TEXT))
    fake_wechat.state.delay_next("message/send", 0.8)
    with pytest.raises(TransientSendError, match="timeout"):
        call_api(lambda: client.post("message/send", data=TEXT))
    dead = WeComClient(WECOM.corp_id, WECOM.secret, api_base="http://127.0.0.1:9/cgi-bin/", timeout=0.3)
    with pytest.raises(TransientSendError, match="connection error"):
        call_api(lambda: dead.post("message/send", data=TEXT))
