"""Small shared stores: Redis when configured, in-process otherwise.

Every operation degrades instead of failing: when Redis is unreachable the store answers from
process memory and says so in the log, and callers that need cross-process guarantees keep a
database backstop (unique keys, row locks)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

log = logging.getLogger(__name__)


class Store(Protocol):
    shared: bool
    available: bool  # False while a shared store is unreachable and answers from process memory

    def set_nx(self, key: str, value: str, ttl: float) -> bool | None: ...
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl: float | None = None) -> None: ...
    def delete(self, key: str) -> None: ...
    def incr(self, key: str) -> int: ...
    def incr_window(self, key: str, window: float) -> int: ...
    def ttl(self, key: str) -> float | None: ...
    def ping(self) -> bool: ...
    def incr_windows(self, keys: list[str], window: float, by: int = 1) -> list[int]: ...
    def counts(self, keys: list[str]) -> list[int]: ...


class MemoryStore:
    """Thread-safe key/value store with expiry, for one process."""

    shared = False
    available = True

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._clock():
            del self._data[key]
            return None
        return value

    def set_nx(self, key: str, value: str, ttl: float) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (value, self._clock() + ttl)
            return True

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key)

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        with self._lock:
            self._data[key] = (value, None if ttl is None else self._clock() + ttl)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def incr(self, key: str) -> int:
        with self._lock:
            current = self._live(key)
            count = int(current) + 1 if current is not None else 1
            self._data[key] = (str(count), None)
            return count

    def incr_window(self, key: str, window: float) -> int:
        with self._lock:
            current = self._live(key)
            count = int(current) + 1 if current is not None else 1
            expires = self._data[key][1] if current is not None else self._clock() + window
            self._data[key] = (str(count), expires)
            return count

    def incr_windows(self, keys: list[str], window: float, by: int = 1) -> list[int]:
        """`incr_window` for many keys at once (by may be negative, to give counts back)."""
        with self._lock:
            counts = []
            for key in keys:
                current = self._live(key)
                count = (int(current) if current is not None else 0) + by
                expires = self._data[key][1] if current is not None else self._clock() + window
                self._data[key] = (str(count), expires)
                counts.append(count)
            return counts

    def counts(self, keys: list[str]) -> list[int]:
        """Current values of counters (0 when absent)."""
        with self._lock:
            return [int(self._live(key) or 0) for key in keys]

    def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires: None when it is not there, infinite when it never expires."""
        with self._lock:
            if self._live(key) is None:
                return None
            expires = self._data[key][1]
            return float("inf") if expires is None else expires - self._clock()

    def ping(self) -> bool:
        return True


class RedisStore:
    """Redis-backed store that falls back to process memory while Redis is unreachable."""

    shared = True

    def __init__(self, url: str, *, prefix: str = "zhitong:", timeout: float = 0.5) -> None:
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )
        self.prefix = prefix
        self.fallback = MemoryStore()
        self._down_since: float | None = None

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _call(self, op: Callable, fallback: Callable):
        try:
            result = op()
        except redis.RedisError as exc:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("Redis unreachable (%s); using in-process store", exc)
            return fallback()
        if self._down_since is not None:
            log.warning("Redis reachable again after %.1fs", time.monotonic() - self._down_since)
            self._down_since = None
        return result

    @property
    def available(self) -> bool:
        return self._down_since is None

    def set_nx(self, key: str, value: str, ttl: float) -> bool | None:
        """True: set; False: already there; None: Redis is down (caller uses its backstop)."""
        return self._call(
            lambda: bool(self.client.set(self._k(key), value, nx=True, px=int(ttl * 1000))),
            lambda: None,
        )

    def get(self, key: str) -> str | None:
        return self._call(lambda: self.client.get(self._k(key)), lambda: self.fallback.get(key))

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        px = None if ttl is None else int(ttl * 1000)
        self._call(lambda: self.client.set(self._k(key), value, px=px),
                   lambda: self.fallback.set(key, value, ttl))

    def delete(self, key: str) -> None:
        self._call(lambda: self.client.delete(self._k(key)), lambda: self.fallback.delete(key))

    def incr(self, key: str) -> int:
        return self._call(lambda: int(self.client.incr(self._k(key))), lambda: self.fallback.incr(key))

    def incr_window(self, key: str, window: float) -> int:
        def op() -> int:
            pipe = self.client.pipeline()
            pipe.incr(self._k(key))
            pipe.pexpire(self._k(key), int(window * 1000), nx=True)
            return int(pipe.execute()[0])

        return self._call(op, lambda: self.fallback.incr_window(key, window))

    def incr_windows(self, keys: list[str], window: float, by: int = 1) -> list[int]:
        """`incr_window` for many keys in one pipeline."""
        def op() -> list[int]:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.incrby(self._k(key), by)
                pipe.pexpire(self._k(key), int(window * 1000), nx=True)
            return [int(v) for v in pipe.execute()[::2]]

        return self._call(op, lambda: self.fallback.incr_windows(keys, window, by))

    def counts(self, keys: list[str]) -> list[int]:
        def op() -> list[int]:
            return [int(v or 0) for v in self.client.mget([self._k(k) for k in keys])] if keys else []

        return self._call(op, lambda: self.fallback.counts(keys))

    def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires, by the Redis server's clock (so every process agrees):
        None when it is not there, infinite when it never expires."""
        def op() -> float | None:
            left = self.client.pttl(self._k(key))
            return None if left == -2 else float("inf") if left == -1 else left / 1000

        return self._call(op, lambda: self.fallback.ttl(key))

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False


def make_store(redis_url: str | None) -> MemoryStore | RedisStore:
    return RedisStore(redis_url) if redis_url else MemoryStore()
