"""wechatpy clients that honour our settings: API base (token fetch included), a timeout on every
HTTP call, the token cached in our shared store, and exactly one token refresh per call.

wechatpy's own `auto_retry` refreshes and recurses without a bound and its token fetch has a
hard-coded URL and no timeout; these subclasses fix all three. Errors are mapped here into
`TransientSendError` or `ApiError`, so the channel modules only decide what an errcode means
for a recipient."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from wechatpy.client import WeChatClient as MpWeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage
from wechatpy.work.client import WeChatClient as WorkWeChatClient

from bot.channels.base import ChannelUnavailable, TransientSendError
from bot.stores import MemoryStore, Store

log = logging.getLogger(__name__)
T = TypeVar("T")

# The access token was refused: refresh it once and retry the call once.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# Worth retrying later: system busy, rate limits, concurrent-call limits, data version conflict.
TRANSIENT_ERRCODES = frozenset({-1, 6000, 45009, 45011, 45033, 45035})
# The app's configuration is wrong (corp id, secret, agent id, IP allow-list, API permission):
# an operator fixes it and the queued messages should then go out, so these are retried too.
CONFIG_ERRCODES = frozenset({40013, 40056, 40125, 40164, 41002, 41004, 48002, 60020, 301002})

# Token-fetch refusals that mean the configured credentials are wrong, with the setting to fix.
# Repeating a refused gettoken gets the calling IP banned for an hour, so after one refusal no
# process fetches again for CREDENTIAL_RETRY_SECONDS (a key in the shared store).
CREDENTIAL_ERRCODES = {
    "wecom": {40001: "WECOM_SECRET", 40091: "WECOM_SECRET", 41004: "WECOM_SECRET",
              40013: "WECOM_CORP_ID", 41002: "WECOM_CORP_ID"},
    "mp": {40001: "MP_SECRET", 40125: "MP_SECRET", 41004: "MP_SECRET",
           40013: "MP_APP_ID", 41002: "MP_APP_ID", 40164: "IP_WHITELIST"},
}
CREDENTIAL_RETRY_SECONDS = 3600.0

TOKEN_LOCK_TTL = 10.0  # seconds a refresh may hold the lock
TOKEN_LOCK_WAIT = 3.0  # seconds to wait for another process's refresh before fetching anyway
TOKEN_SAFETY_MARGIN = 300  # refresh this many seconds before Tencent's expiry


class ApiError(Exception):
    """Tencent refused the request with an errcode that retrying will not fix."""

    def __init__(self, errcode: int, errmsg: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.body = body or {}


class StoreSessionStorage(SessionStorage):
    """wechatpy session storage on our store: Redis (shared by every process) or memory."""

    def __init__(self, store: Store, prefix: str = "wechat:") -> None:
        self.store = store
        self.prefix = prefix

    def get(self, key, default=None):
        raw = self.store.get(self.prefix + key)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except ValueError:
            return default

    def set(self, key, value, ttl=None):
        if value is None:
            return
        self.store.set(self.prefix + key, json.dumps(value), ttl)

    def delete(self, key):
        self.store.delete(self.prefix + key)


def credential_faults(store: Store) -> list[dict[str, Any]]:
    """The channels whose credentials the server refused within the last hour (for /readyz)."""
    faults = []
    for kind in CREDENTIAL_ERRCODES:
        raw = store.get(f"fault:{kind}:credentials")
        if raw:
            try:
                faults.append(json.loads(raw))
            except ValueError:
                continue
    return faults


class _Configured:
    """Mixed into a wechatpy client: base URL, timeout, shared token, one refresh per call."""

    FAULT_KIND: str
    API_BASE_URL: str
    store: Store
    timeout: float
    session: SessionStorage
    token_fetches: int

    def _configure(self, api_base: str, store: Store, timeout: float) -> None:
        if timeout is None or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.API_BASE_URL = api_base if api_base.endswith("/") else api_base + "/"
        self.store = store
        self.token_fetches = 0

    # -- token -----------------------------------------------------------------------------

    @property
    def access_token(self) -> str:
        token = self.session.get(self.access_token_key)
        return token if token else self.refresh_access_token(stale=None)

    def refresh_access_token(self, stale: str | None) -> str:
        """Fetch a new token unless another process already replaced `stale`.

        A short lock in the store keeps a crowd of processes from all refreshing at once: the
        losers wait up to TOKEN_LOCK_WAIT for the winner's token, then fetch anyway. When the
        store is down (set_nx answers None) every process simply fetches."""
        self._check_credentials_fault()
        lock_key = f"lock:{self.access_token_key}"
        owner = secrets.token_hex(8)
        deadline = time.monotonic() + TOKEN_LOCK_WAIT
        held = False
        while True:
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return current
            got = self.store.set_nx(lock_key, owner, TOKEN_LOCK_TTL)
            if got or got is None or time.monotonic() >= deadline:
                held = bool(got)
                break
            time.sleep(0.05)
        self._check_credentials_fault()  # another process's fetch may just have been refused
        try:
            self.fetch_access_token()
        finally:
            if held and self.store.get(lock_key) == owner:
                self.store.delete(lock_key)
        return self.session.get(self.access_token_key)

    def _fetch_access_token(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        """wechatpy's fetch, with our timeout and a cache lifetime short of Tencent's expiry."""
        log.info("fetching access token from %s", url)
        self.token_fetches += 1
        res = self._http.get(url=url, params=params, timeout=self.timeout)
        try:
            res.raise_for_status()
        except requests.RequestException as exc:
            raise WeChatClientException(None, None, client=self, request=exc.request, response=exc.response) from exc
        result = res.json()
        setting = CREDENTIAL_ERRCODES[self.FAULT_KIND].get(int(result.get("errcode") or 0))
        if setting is not None:
            self._record_credentials_fault(setting, int(result["errcode"]), _short(result.get("errmsg")))
        if result.get("errcode"):
            raise WeChatClientException(result["errcode"], result.get("errmsg"), client=self,
                                        request=res.request, response=res)
        expires_in = int(result.get("expires_in", 7200))
        ttl = max(expires_in - TOKEN_SAFETY_MARGIN, min(expires_in, 60))
        self.session.set(self.access_token_key, result["access_token"], ttl)
        self.store.delete(self._fault_key)
        return result

    # -- refused credentials ---------------------------------------------------------------

    @property
    def _fault_key(self) -> str:
        return f"fault:{self.FAULT_KIND}:credentials"

    def _check_credentials_fault(self) -> None:
        """Raise ChannelUnavailable while a refusal of our credentials is recorded: no token fetch."""
        raw = self.store.get(self._fault_key)
        if not raw:
            return
        try:
            fault = json.loads(raw)
        except ValueError:
            return
        left = self.store.ttl(self._fault_key) or CREDENTIAL_RETRY_SECONDS
        raise ChannelUnavailable(max(1.0, min(left, CREDENTIAL_RETRY_SECONDS)),
                                 f"{fault['errcode']} credentials refused, check {fault['setting']}", fault["setting"])

    def _record_credentials_fault(self, setting: str, errcode: int, errmsg: str) -> None:
        fault = {"kind": self.FAULT_KIND, "setting": setting, "errcode": errcode, "errmsg": errmsg,
                 "since": time.time(), "retry_seconds": CREDENTIAL_RETRY_SECONDS}
        got = self.store.set_nx(self._fault_key, json.dumps(fault), CREDENTIAL_RETRY_SECONDS)
        if got is None:  # the shared store is down: remember it in this process at least
            self.store.set(self._fault_key, json.dumps(fault), CREDENTIAL_RETRY_SECONDS)
        if got is not False:  # one error per refusal, not one per process or per call
            log.error("%s token fetch refused (%s %s): check the setting %s; sending on this channel stops and "
                      "the token is tried again in %d minutes (repeated refused fetches get this server's IP "
                      "banned)", self.FAULT_KIND, errcode, errmsg, setting, CREDENTIAL_RETRY_SECONDS // 60)
        raise ChannelUnavailable(CREDENTIAL_RETRY_SECONDS, f"{errcode} credentials refused, check {setting}", setting)

    # -- calls -----------------------------------------------------------------------------

    def _request(self, method, url_or_endpoint, **kwargs):
        """One API call; on a refused token, one refresh and one retry, never more."""
        kwargs.setdefault("timeout", self.timeout)
        params = dict(kwargs.pop("params", None) or {})
        token = self.access_token
        for attempt in range(2):
            call = dict(kwargs, params={**params, "access_token": token})
            try:
                return super()._request(method, url_or_endpoint, **call)
            except WeChatClientException as exc:
                if attempt or exc.errcode not in TOKEN_ERRCODES:
                    raise
                log.info("access token refused (%s); refreshing once", exc.errcode)
                token = self.refresh_access_token(stale=token)
        raise AssertionError("unreachable")


class WeComClient(_Configured, WorkWeChatClient):
    """WeCom self-built app client (企业微信)."""

    FAULT_KIND = "wecom"

    def __init__(self, corp_id: str, secret: str, *, api_base: str, store: Store | None = None,
                 timeout: float = 5.0) -> None:
        store = store if store is not None else MemoryStore()
        self._configure(api_base, store, timeout)
        super().__init__(corp_id, secret, session=StoreSessionStorage(store), timeout=timeout, auto_retry=False)

    @property
    def access_token_key(self) -> str:
        # wechatpy puts ten characters of the secret in the key; a digest tells apps apart just as well.
        digest = hashlib.sha256(self.secret.encode()).hexdigest()[:12]
        return f"wecom:{self.corp_id}:{digest}:access_token"

    def fetch_access_token(self) -> dict[str, Any]:
        return self._fetch_access_token(f"{self.API_BASE_URL}gettoken",
                                        {"corpid": self.corp_id, "corpsecret": self.secret})


class MpClient(_Configured, MpWeChatClient):
    """Official Account client (公众号)."""

    FAULT_KIND = "mp"

    def __init__(self, app_id: str, secret: str, *, api_base: str, store: Store | None = None,
                 timeout: float = 5.0) -> None:
        store = store if store is not None else MemoryStore()
        self._configure(api_base, store, timeout)
        super().__init__(app_id, secret, session=StoreSessionStorage(store), timeout=timeout, auto_retry=False)

    @property
    def access_token_key(self) -> str:
        return f"mp:{self.appid}:access_token"

    def fetch_access_token(self) -> dict[str, Any]:
        return self._fetch_access_token(f"{self.API_BASE_URL}token", {
            "grant_type": "client_credential", "appid": self.appid, "secret": self.secret,
        })


def call_api(fn: Callable[[], T]) -> T:
    """Run one client call; raise TransientSendError for what may pass, ApiError for the rest."""
    try:
        result = fn()
    except requests.Timeout as exc:
        # A read timeout: the server may have acted. A connect timeout: nothing was sent.
        raise TransientSendError(None, f"timeout: {type(exc).__name__}",
                                 ambiguous=not isinstance(exc, requests.ConnectTimeout)) from exc
    except requests.RequestException as exc:
        never_connected = "NewConnectionError" in repr(exc) or "Failed to establish" in str(exc)
        raise TransientSendError(None, f"connection error: {type(exc).__name__}", ambiguous=not never_connected) from exc
    except WeChatClientException as exc:
        if exc.errcode is None:
            status = getattr(exc.response, "status_code", None)
            retry_after = _retry_after(exc.response)
            # A 4xx was refused before acting; a 5xx or a cut-off answer may follow the action.
            raise TransientSendError(retry_after, f"HTTP {status}",
                                     ambiguous=status is None or status >= 500) from exc
        errcode = int(exc.errcode)
        if errcode in TOKEN_ERRCODES:
            raise TransientSendError(None, f"{errcode} access token refused after a refresh") from exc
        if errcode in TRANSIENT_ERRCODES:
            raise TransientSendError(None, f"{errcode} {_short(exc.errmsg)}") from exc
        if errcode in CONFIG_ERRCODES:
            raise TransientSendError(None, f"{errcode} app misconfigured: {_short(exc.errmsg)}") from exc
        raise ApiError(errcode, _short(exc.errmsg), _json_of(exc.response)) from exc
    if not isinstance(result, dict):
        raise TransientSendError(None, "response is not JSON", ambiguous=True)
    return result


def _retry_after(response: requests.Response | None) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _json_of(response: requests.Response | None) -> dict[str, Any]:
    try:
        data = response.json() if response is not None else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _short(errmsg: Any) -> str:
    """Tencent's errmsg without the ", hint: [...]" tail, which differs on every call."""
    text = str(errmsg or "")
    return text.split(", hint:")[0].strip()[:200]
