"""Links to the mobile pages, as the bot puts them in its messages.

Inside WeCom a plain link is enough: the page identifies the person by WeCom web OAuth. An
Official Account follower has no such login, so their link carries a signed token naming them,
valid LINK_VALID for (SPEC §9). The token is signed with SECRET_KEY (itsdangerous, which Flask
ships) and dated by the bot's own clock, so tests can move time."""

from __future__ import annotations

from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

from config.settings import Settings
from models.identity import Channel

LINK_VALID = timedelta(hours=24)
_SALT = "zhitong-page-link"


def sign_dated(settings: Settings, salt: str, data: dict, now: datetime) -> str:
    """`data` signed with SECRET_KEY under `salt`, dated `now` (the bot's clock)."""
    return URLSafeSerializer(settings.secret_key, salt=salt).dumps({**data, "at": int(now.timestamp())})


def read_dated(settings: Settings, salt: str, token: str, now: datetime, valid: timedelta) -> dict | None:
    """The data of a token `sign_dated` made, when genuine and younger than `valid`; else None."""
    try:
        data = URLSafeSerializer(settings.secret_key, salt=salt).loads(token)
        age = now.timestamp() - int(data["at"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if not isinstance(data, dict) or age < -60 or age > valid.total_seconds():
        return None
    return data


def sign_link(settings: Settings, person_id: int, openid: str, now: datetime) -> str:
    return sign_dated(settings, _SALT, {"p": person_id, "o": openid}, now)


def read_link(settings: Settings, token: str, now: datetime) -> tuple[int, str] | None:
    """(person id, openid) of a valid, unexpired token; None for a forged or expired one."""
    data = read_dated(settings, _SALT, token, now, LINK_VALID)
    try:
        return (int(data["p"]), str(data["o"])) if data is not None else None
    except (KeyError, TypeError, ValueError):
        return None


def page_url(settings: Settings, path: str, *, channel: Channel | None = None, person_id: int | None = None,
             external_id: str | None = None, now: datetime | None = None) -> str | None:
    """The full address of a page (`path` under /m/), signed for an Official Account follower;
    None when the bot does not know its public address (PUBLIC_BASE_URL unset)."""
    if not settings.public_base_url:
        return None
    url = f"{settings.public_base_url}/m/{path.lstrip('/')}"
    if channel is Channel.MP and person_id is not None and external_id and now is not None:
        url += ("&" if "?" in url else "?") + "t=" + sign_link(settings, person_id, external_id, now)
    return url


def reply_link(ctx, path: str) -> str | None:
    """The page link for the person a handler is answering."""
    return page_url(ctx.settings, path, channel=ctx.msg.channel, person_id=ctx.person.id if ctx.person else None,
                    external_id=ctx.msg.sender, now=ctx.now)
