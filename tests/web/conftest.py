"""The pages with WeCom OAuth against the fake server on a real port."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from fakewx import FakeServer, FakeState
from tests.conftest import MP, WECOM

BASE = "http://bot.test"


def free_port() -> int:
    """A free port in the range these tests may use (7800-7899)."""
    import socket

    for port in range(7800, 7900):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 7800-7899")


@pytest.fixture
def fake_wechat():
    state = FakeState()
    state.add_wecom_app(WECOM.corp_id, WECOM.secret)
    state.add_mp_app(MP.app_id, MP.secret)
    with FakeServer(state, port=free_port()) as fake:
        yield fake


@pytest.fixture
def settings(settings, fake_wechat):
    """The test settings with the bot's public address and WeCom (API and OAuth) at the fake."""
    return replace(settings, public_base_url=BASE, wecom=replace(WECOM, api_base=fake_wechat.base_url),
                   wecom_oauth_url=fake_wechat.oauth_url)


class Browser:
    """A Flask test client that logs in through the fake's authorize page, as a phone in WeCom would."""

    def __init__(self, client, fake: FakeServer) -> None:
        self.client = client
        self.fake = fake

    def login(self, userid: str, next_page: str = "/m/"):
        start = self.client.get(next_page)
        assert start.status_code == 302 and start.headers["Location"].startswith("/m/auth/wecom?")
        to_wecom = self.client.get(start.headers["Location"])
        assert to_wecom.status_code == 302
        authorize = to_wecom.headers["Location"]
        page = requests.get(authorize, timeout=5)
        assert page.status_code == 200
        choose = urlsplit(authorize)._replace(path="/connect/oauth2/choose").geturl().split("#")[0]
        back = requests.get(choose + "&userid=" + userid, allow_redirects=False, timeout=5)
        assert back.status_code == 302
        callback = urlsplit(back.headers["Location"])
        assert f"{callback.scheme}://{callback.netloc}" == BASE
        return self.client.get(f"{callback.path}?{callback.query}")

    def csrf(self, html: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    def post(self, path: str, page: str, **form):
        return self.client.post(path, data={"csrf_token": self.csrf(page), **form})


@pytest.fixture
def browser(client, fake_wechat) -> Browser:
    return Browser(client, fake_wechat)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
