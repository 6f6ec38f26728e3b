"""What the fake server remembers: issued tokens, accepted messages, and the faults to inject.

Built for benchmarks with 100k recipients: a message body is kept once per API call, and each
recipient only gets an index into the call list and a counter, so "nobody got it twice" is a
dictionary lookup."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fakewx.rules import admit_member

# Fields of a WeCom message/send body that say who gets it and how, not what it says.
_ENVELOPE_FIELDS = frozenset({
    "touser", "toparty", "totag", "agentid", "safe", "enable_id_trans",
    "enable_duplicate_check", "duplicate_check_interval",
})
MAX_DUPLICATE_CHECK_INTERVAL = 4 * 3600  # WeCom: at most 4 hours


def normalise_path(path: str) -> str:
    """`/cgi-bin/message/send`, `cgi-bin/message/send` and `message/send` all name one endpoint."""
    path = path.strip().lstrip("/")
    if path.startswith("cgi-bin/"):
        path = path[len("cgi-bin/"):]
    return path


@dataclass
class Fault:
    """One injected misbehaviour for the next request to a path."""

    errcode: int | None = None
    errmsg: str | None = None
    http_status: int | None = None
    delay: float = 0.0


@dataclass
class Call:
    """One accepted API call: its body is stored once, however many recipients it reached."""

    seq: int
    path: str
    body: dict[str, Any]
    at: float  # wall-clock seconds, for people reading the demo
    msgtype: str


@dataclass
class Token:
    kind: str  # "wecom" or "mp"
    app: str  # corp id + secret, or appid
    value: str
    expires_at: float
    revoked: bool = False


@dataclass
class _Credentials:
    wecom: dict[str, set[str]] = field(default_factory=dict)  # corp id → accepted secrets
    mp: dict[str, set[str]] = field(default_factory=dict)  # appid → accepted secrets


@dataclass
class Media:
    """A temporary file uploaded with media/upload: its media_id is valid MEDIA_TTL seconds."""

    type: str
    filename: str
    data: bytes
    created_at: float


MEDIA_TTL = 3 * 86400  # "media_id媒体文件上传后获取的唯一标识，3天内有效" (document/path/90253)
# "response_code的有效期是72小时，超过72小时后将无法使用" (更新模版卡片消息, document/path/94888)
RESPONSE_CODE_TTL = 72 * 3600


class FakeState:
    """Thread-safe memory of the fake server. Configuration survives `reset()`; traffic does not.

    With no credentials configured any corp id/appid and secret get a token; with no known users
    configured every userid/openid exists."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, token_ttl: int = 7200) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.token_ttl = token_ttl
        self.credentials = _Credentials()
        self.known_users: set[str] | None = None
        self.webhook_keys: set[str] | None = None
        self.duplicate_check = True  # honour enable_duplicate_check as WeCom does
        self.enforce_mp_window = False  # see fakewx.rules.spend_mp_window
        self.reset()

    # -- configuration ---------------------------------------------------------------------

    def add_wecom_app(self, corp_id: str, secret: str) -> None:
        with self.lock:
            self.credentials.wecom.setdefault(corp_id, set()).add(secret)

    def add_mp_app(self, app_id: str, secret: str) -> None:
        with self.lock:
            self.credentials.mp.setdefault(app_id, set()).add(secret)

    def set_known_users(self, users: Iterable[str] | None) -> None:
        """Userids/openids that exist (and are in the app's visible range); None: everyone."""
        with self.lock:
            self.known_users = None if users is None else {u.lower() for u in users}

    def reset(self) -> None:
        """Forget traffic, tokens and pending faults (configuration is kept)."""
        with self.lock:
            self.calls: list[Call] = []
            self.per_user: dict[str, list[int]] = {}  # recipient → indices into calls
            self.delivered: Counter[str] = Counter()  # recipient → accepted deliveries
            self.card_updates: Counter[str] = Counter()  # userid → update_template_card calls
            self.suppressed: Counter[str] = Counter()  # recipient → duplicates not delivered
            self.same_content: Counter[tuple[str, str]] = Counter()  # (recipient, digest) → deliveries
            self.requests: Counter[str] = Counter()  # path → requests seen (faulted ones too)
            self.tokens_issued: Counter[str] = Counter()  # "wecom"/"mp" → tokens handed out
            self.tokens: dict[str, Token] = {}
            self.current_token: dict[tuple[str, str], str] = {}
            self.faults: dict[str, deque[Fault]] = {}
            self.used_response_codes: set[str] = set()
            self.response_codes: dict[str, float] = {}  # code → when it was issued (self.clock)
            self._recent: dict[tuple[str, str], float] = {}  # (recipient, content digest) → when
            self.task_ids: set[str] = set()  # template-card task_ids accepted
            self.task_id_refusals = 0
            self.member_sends: dict[str, deque[float]] = {}  # member (lower case) → send times, last hour
            self.member_limit_dropped: Counter[str] = Counter()  # member → messages dropped by the limit
            self.mp_windows: dict[str, list] = {}  # openid → [window end, messages left]
            self.media: dict[str, Media] = {}  # media_id → an uploaded temporary file (media/upload)
            self._seq = 0

    # -- fault injection -------------------------------------------------------------------

    def fail_next(self, path: str, *, errcode: int | None = None, errmsg: str | None = None,
                  http_status: int | None = None, times: int = 1) -> None:
        """The next `times` requests to `path` answer with this errcode or HTTP status instead."""
        if (errcode is None) == (http_status is None):
            raise ValueError("fail_next needs exactly one of errcode or http_status")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self.lock:
            queue = self.faults.setdefault(normalise_path(path), deque())
            queue.extend(Fault(errcode=errcode, errmsg=errmsg, http_status=http_status) for _ in range(times))

    def delay_next(self, path: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` requests to `path` are processed, then answered `seconds` late
        (a client with a shorter timeout sees a timeout although the server acted)."""
        if seconds < 0 or times < 1:
            raise ValueError("seconds must be >= 0 and times >= 1")
        with self.lock:
            queue = self.faults.setdefault(normalise_path(path), deque())
            queue.extend(Fault(delay=seconds) for _ in range(times))

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            queue = self.faults.get(normalise_path(path))
            return queue.popleft() if queue else None

    def expire_tokens(self) -> None:
        """Every token issued so far answers 42001 from now on; the next gettoken issues a new one."""
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = min(token.expires_at, self.clock())
            self.current_token.clear()

    # -- tokens ----------------------------------------------------------------------------

    def issue_token(self, kind: str, app: str, secret: str) -> tuple[int, str]:
        """(0, token) or (errcode, errmsg). Like Tencent, a still-valid token is handed out again."""
        with self.lock:
            known = self.credentials.wecom if kind == "wecom" else self.credentials.mp
            if known:
                if app not in known:
                    return 40013, "invalid corpid" if kind == "wecom" else "invalid appid"
                if secret not in known[app]:
                    return (40001, "invalid secret") if kind == "wecom" else (40125, "invalid appsecret")
            key = (kind, f"{app}:{secret}")
            now = self.clock()
            value = self.current_token.get(key)
            if value and self.tokens[value].expires_at > now and not self.tokens[value].revoked:
                return 0, value
            value = secrets.token_urlsafe(48)
            self.tokens[value] = Token(kind, key[1], value, now + self.token_ttl)
            self.current_token[key] = value
            self.tokens_issued[kind] += 1
            return 0, value

    def check_token(self, kind: str, value: str | None) -> tuple[int, str]:
        """(0, "ok"), or the errcode Tencent answers for a missing, unknown or expired token."""
        with self.lock:
            if not value:
                return 41001, "access_token missing"
            token = self.tokens.get(value)
            if token is None or token.kind != kind or token.revoked:
                if kind == "mp":
                    return 40001, "invalid credential, access_token is invalid or not latest"
                return 40014, "invalid access_token"
            if token.expires_at <= self.clock():
                return 42001, "access_token expired"
            return 0, "ok"

    # -- card response codes --------------------------------------------------------------

    def issue_response_code(self) -> str:
        """A new response code, as message/send answers for a card with buttons and as a tap's
        callback carries (`ResponseCode`); it updates cards once, within RESPONSE_CODE_TTL."""
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.response_codes[code] = self.clock()
        return code

    def spend_response_code(self, code: str) -> tuple[int, str] | None:
        """Spend `code` on one update_template_card call, or the errcode refusing it: used before,
        or issued more than 72 hours ago. A code the fake never issued is one a tap brought in a
        callback the fake did not see: accepted once, like any other."""
        with self.lock:
            if code in self.used_response_codes:
                return 40058, "invalid parameter, response_code already used"
            issued = self.response_codes.get(code)
            if issued is not None and self.clock() - issued > RESPONSE_CODE_TTL:
                return 40058, "invalid parameter, response_code expired"
            self.used_response_codes.add(code)
        return None

    # -- deliveries ------------------------------------------------------------------------

    def unknown(self, recipients: Iterable[str]) -> list[str]:
        with self.lock:
            if self.known_users is None:
                return []
            # WeCom userids are case-insensitive ("不区分大小写"); openids are matched the same way.
            return [r for r in recipients if r.lower() not in self.known_users]

    def deliver(self, path: str, body: dict[str, Any], recipients: list[str], *, msgtype: str,
                duplicate_check_interval: float | None = None, counter: str = "delivered") -> list[str]:
        """Record one accepted call; return the recipients it actually reached (duplicates within
        the interval are skipped, as WeCom's enable_duplicate_check does)."""
        digest = _content_digest(body)
        with self.lock:
            self._seq += 1
            index = len(self.calls)
            self.calls.append(Call(self._seq, normalise_path(path), body, time.time(), msgtype))
            now = self.clock()
            tally = self.delivered if counter == "delivered" else self.card_updates
            reached: list[str] = []
            check = bool(duplicate_check_interval) and self.duplicate_check
            for user in dict.fromkeys(recipients):  # one user listed twice still gets one message
                if check:
                    key = (user, digest)
                    last = self._recent.get(key)
                    if last is not None and now - last < duplicate_check_interval:
                        self.suppressed[user] += 1
                        continue
                    self._recent[key] = now
                if path == "message/send" and not admit_member(self, user, now):
                    continue  # WeCom drops it silently: the call still succeeds
                self.per_user.setdefault(user, []).append(index)
                tally[user] += 1
                if counter == "delivered":
                    self.same_content[(user, digest)] += 1
                reached.append(user)
            return reached

    def messages_for(self, user: str, after: int = 0) -> list[dict[str, Any]]:
        """What `user` received (pushes and card updates), oldest first, with seq > `after`."""
        with self.lock:
            found = []
            for index in self.per_user.get(user, []):
                call = self.calls[index]
                if call.seq > after:
                    found.append({"seq": call.seq, "at": call.at, "path": call.path,
                                  "msgtype": call.msgtype, "body": call.body})
            return found

    def count(self, user: str) -> int:
        """Accepted deliveries (pushes, not card updates) to `user`."""
        with self.lock:
            return self.delivered.get(user, 0)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": len(self.calls),
                "calls_by_path": dict(Counter(c.path for c in self.calls)),
                "recipients": len(self.delivered),
                "delivered": sum(self.delivered.values()),
                "max_per_recipient": max(self.delivered.values(), default=0),
                "recipients_over_one": sum(1 for n in self.delivered.values() if n > 1),
                # The "nobody got the same message twice" check.
                "same_content_twice": sum(1 for n in self.same_content.values() if n > 1),
                "suppressed_duplicates": sum(self.suppressed.values()),
                "card_updates": sum(self.card_updates.values()),
                "requests": dict(self.requests),
                "tokens_issued": dict(self.tokens_issued),
                "token_requests": self.requests.get("gettoken", 0) + self.requests.get("token", 0),
                "task_id_refusals": self.task_id_refusals,
                "member_limit_dropped": sum(self.member_limit_dropped.values()),
            }


def _content_digest(body: dict[str, Any]) -> str:
    content = {k: v for k, v in body.items() if k not in _ENVELOPE_FIELDS}
    blob = json.dumps(content, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha1(blob).hexdigest()
