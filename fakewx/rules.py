"""Outbound rules of the real servers that the fake enforces, each in its own function, called
from fakewx/server.py and fakewx/state.py. Sources are named in fakewx/README.md."""

from __future__ import annotations

import re
from collections import deque
from typing import Any

# `state` below is the fake's FakeState (fakewx/state.py), which calls these rules: typed loosely so
# the two modules do not import each other.
FakeState = Any

# WeCom: task_id "同一个应用任务id不能重复，只能由数字、字母和“_-@”组成，最长128字节".
TASK_ID_PATTERN = re.compile(r"[0-9A-Za-z_\-@]{1,128}")
# The real answer to a reused task_id is not documented; the fake refuses it with this errcode
# and a message naming task_id (bot/channels/wecom.py recognises it on a resend).
TASK_ID_ERRCODE = 40058

# WeCom: one app may send one member at most 30 messages a minute and 1,000 an hour; the excess
# is dropped without an error.
MEMBER_PER_MINUTE = 30
MEMBER_PER_HOUR = 1000

# Official Account customer-service messages: a follower's message opens 48 hours with at most
# 5 messages; a menu click, a subscribe or a scan opens 1 minute with at most 3.
MP_WINDOWS = {"message": (48 * 3600, 5), "event": (60, 3)}


def check_task_id(state: FakeState, card: dict[str, Any]) -> tuple[int, str] | None:
    """Refuse a malformed task_id, or one this app has used before (reserved when accepted)."""
    task_id = card.get("task_id")
    if task_id is None:
        return None
    if not isinstance(task_id, str) or not TASK_ID_PATTERN.fullmatch(task_id):
        return TASK_ID_ERRCODE, "invalid task_id: 1 to 128 bytes of [0-9A-Za-z_-@]"
    with state.lock:
        if task_id in state.task_ids:
            state.task_id_refusals += 1
            return TASK_ID_ERRCODE, "invalid parameter, task_id already exists"
        state.task_ids.add(task_id)
    return None


def admit_member(state: FakeState, user: str, now: float) -> bool:
    """Count one message to `user` against the per-member limits (sliding minute and hour);
    False (and counted in `member_limit_dropped`) when WeCom would drop it silently."""
    with state.lock:
        sent = state.member_sends.setdefault(user.lower(), deque())
        while sent and now - sent[0] >= 3600:
            sent.popleft()
        last_minute = sum(1 for at in reversed(sent) if now - at < 60) if len(sent) >= MEMBER_PER_MINUTE else 0
        if len(sent) >= MEMBER_PER_HOUR or last_minute >= MEMBER_PER_MINUTE:
            state.member_limit_dropped[user] += 1
            return False
        sent.append(now)
        return True


def open_mp_window(state: FakeState, openid: str, kind: str = "message") -> None:
    """The follower wrote (`message`) or clicked a menu, subscribed or scanned (`event`)."""
    seconds, quota = MP_WINDOWS[kind]
    with state.lock:
        state.mp_windows[openid] = [state.clock() + seconds, quota]


def spend_mp_window(state: FakeState, openid: str) -> tuple[int, str] | None:
    """45015 outside the window, 45047 over its quota; else one message is spent. Enforced only
    when `state.enforce_mp_window` is on (the fake does not see inbound messages by itself)."""
    if not state.enforce_mp_window:
        return None
    with state.lock:
        window = state.mp_windows.get(openid)
        if window is None or window[0] <= state.clock():
            return 45015, "response out of time limit or subscription is canceled"
        if window[1] <= 0:
            return 45047, "out of response count limit"
        window[1] -= 1
    return None


def set_credentials(state: FakeState, spec: dict[str, Any]) -> None:
    """Replace the accepted corp ids/appids and secrets of the kinds given: a token request with
    anything else is refused (40013 / 40001 / 40125) and counted like any other."""
    with state.lock:
        for kind in ("wecom", "mp"):
            apps = spec.get(kind)
            if isinstance(apps, dict):
                setattr(state.credentials, kind, {str(app): {str(s) for s in secrets} for app, secrets in apps.items()})


def lower_ids(ids: list[str]) -> list[str]:
    """WeCom answers invaliduser / unlicenseduser lower-cased."""
    return [i.lower() for i in ids]
