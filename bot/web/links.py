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


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt=_SALT)


def sign_link(settings: Settings, person_id: int, openid: str, now: datetime) -> str:
    return _serializer(settings).dumps({"p": person_id, "o": openid, "at": int(now.timestamp())})


def read_link(settings: Settings, token: str, now: datetime) -> tuple[int, str] | None:
    """(person id, openid) of a valid, unexpired token; None for a forged or expired one."""
    try:
        data = _serializer(settings).loads(token)
        person_id, openid, at = int(data["p"]), str(data["o"]), int(data["at"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    age = now.timestamp() - at
    if age < -60 or age > LINK_VALID.total_seconds():
        return None
    return person_id, openid


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
