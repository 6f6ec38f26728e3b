"""The Official Account's customer-service window, tracked per follower in the shared store.

A follower's message opens 48 hours in which at most 5 customer-service messages may be sent; a
menu click, a subscribe or a scan opens 1 minute with at most 3; other events open nothing.
Outside a window the server answers 45015, over its quota 45047. The bot counts what it spends so
that it never asks for more: a push that would not fit is refused here, without a call, and the
delivery is marked unreachable with the reason."""

from __future__ import annotations

import json

from bot.messages import InboundKind, InboundMessage
from bot.stores import Store

MESSAGE_WINDOW = (48 * 3600, 5)
EVENT_WINDOW = (60, 3)
OPENING_EVENTS = frozenset({"click", "subscribe", "scan", "view"})
KEEP_SECONDS = 7 * 24 * 3600  # remember a closed window this long, to refuse without a call

REASON_OUTSIDE = "公众号 48 小时互动窗口已过，无法推送客服消息（45015）"
REASON_QUOTA = "公众号客服消息条数已用完，需等对方再次发消息（45047）"


def window_of(msg: InboundMessage) -> tuple[int, int] | None:
    """(seconds, messages) the inbound message opens, or None."""
    if msg.kind is InboundKind.EVENT:
        return EVENT_WINDOW if (msg.event or "").lower() in OPENING_EVENTS else None
    return MESSAGE_WINDOW


def open_window(store: Store, msg: InboundMessage, now: float) -> None:
    """Record the window a follower's message or event opens. A shorter window (an event) never
    replaces a longer one still open."""
    opened = window_of(msg)
    if opened is None:
        return
    seconds, quota = opened
    key = f"mp:window:{msg.sender}"
    current = _read(store, key)
    if current and current["until"] > now + seconds and current["quota"] - current.get("spent", 0) > 0:
        return
    store.set(key, json.dumps({"opened": now, "until": now + seconds, "quota": quota}), seconds + KEEP_SECONDS)


def spend(store: Store, openid: str, now: float) -> str | None:
    """Take one message from the follower's window: None when it may be sent (or nothing is known:
    the server decides), else the reason it cannot."""
    key = f"mp:window:{openid}"
    window = _read(store, key)
    if window is None:
        return None
    if window["until"] <= now:
        return REASON_OUTSIDE
    used = store.incr_window(f"{key}:{window['opened']}:spent", window["until"] - now + 60)
    if used > window["quota"]:
        return REASON_QUOTA
    return None


def _read(store: Store, key: str) -> dict | None:
    raw = store.get(key)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) and {"opened", "until", "quota"} <= data.keys() else None
