"""The fake's web OAuth, spoken to over HTTP as the bot and a browser would."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bot.channels.wecom_oauth import authorize_url, web_user_id
from config.settings import Settings, SettingsError
from models.identity import Channel


def test_authorize_page_lists_people_and_redirects_with_a_single_use_code(runtime, settings, fake_wechat):
    fake_wechat.oauth.set_people([{"userid": "zhangwei", "name": "张伟", "org": "综合处党支部"}])
    url = authorize_url(settings, redirect_uri="http://bot.test/m/auth/callback?x=1", state="s123")
    page = requests.get(url, timeout=5)
    assert page.status_code == 200 and "张伟" in page.text and "综合处党支部" in page.text
    choose = url.split("#")[0].replace("/authorize?", "/choose?") + "&userid=zhangwei"
    back = requests.get(choose, allow_redirects=False, timeout=5)
    target = urlsplit(back.headers["Location"])
    args = parse_qs(target.query)
    assert back.status_code == 302 and target.path == "/m/auth/callback"
    assert args["state"] == ["s123"] and args["x"] == ["1"]
    channel = runtime.channels[Channel.WECOM]
    assert web_user_id(channel, args["code"][0]) == "zhangwei"
    assert web_user_id(channel, args["code"][0]) is None  # 40029: used
    assert web_user_id(channel, "made-up") is None
    assert fake_wechat.state.requests["auth/getuserinfo"] == 3


def test_authorize_page_refuses_a_wrong_request(settings, fake_wechat):
    url = authorize_url(settings, redirect_uri="javascript:alert(1)", state="s")
    assert requests.get(url, timeout=5).status_code == 400


def test_public_base_url_from_the_environment(tmp_path):
    env = {"SECRET_KEY": "k", "BOT_INSTANCE_DIR": str(tmp_path)}
    settings = Settings.from_env({**env, "PUBLIC_BASE_URL": "https://dj.example.cn/"}, read_dotenv=False)
    assert settings.public_base_url == "https://dj.example.cn"
    assert settings.wecom_oauth_url == "https://open.weixin.qq.com/connect/oauth2/authorize"
    with pytest.raises(SettingsError, match="PUBLIC_BASE_URL"):
        Settings.from_env({**env, "PUBLIC_BASE_URL": "dj.example.cn"}, read_dotenv=False)
