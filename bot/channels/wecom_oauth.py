"""WeCom web OAuth (网页授权登录, scope snsapi_base) for the mobile pages.

The authorize link and its parameters are WeCom's 构造网页授权链接 (developer.work.weixin.qq.com
document 91022): `appid=CORPID&redirect_uri=…&response_type=code&scope=snsapi_base&state=…
&agentid=…#wechat_redirect`; WeCom then sends the browser to `redirect_uri?code=CODE&state=STATE`.
The code is exchanged through 获取访问用户身份 (document 91023), `GET auth/getuserinfo?code=…`,
whose answer names the member as `userid` (the older `user/getuserinfo` said `UserId`); a bad,
expired or already used code is errcode 40029."""

from __future__ import annotations

from urllib.parse import urlencode

from bot.channels.clients import ApiError, call_api
from config.settings import Settings

INVALID_CODE = 40029


def authorize_url(settings: Settings, *, redirect_uri: str, state: str) -> str:
    """Where the browser goes to be identified by WeCom."""
    wecom = settings.wecom
    if wecom is None:
        raise ValueError("WeCom is not configured")
    query = urlencode({"appid": wecom.corp_id, "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": "snsapi_base", "state": state, "agentid": wecom.agent_id})
    return f"{settings.wecom_oauth_url}?{query}#wechat_redirect"


def web_user_id(channel, code: str) -> str | None:
    """The WeCom userid behind an OAuth code, or None when WeCom refuses the code (40029) or
    names no member (someone outside the corp). Network trouble raises TransientSendError."""
    try:
        result = call_api(lambda: channel.client.get("auth/getuserinfo", params={"code": code}))
    except ApiError as exc:
        if exc.errcode == INVALID_CODE:
            return None
        raise
    userid = result.get("userid") or result.get("UserId")
    return str(userid) if userid else None
