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
    def take_budgets(self, items: list[str], windows: list[tuple[int, int]], now: float) -> list[int]: ...


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

    def take_budgets(self, items: list[str], windows: list[tuple[int, int]], now: float) -> list[int]:
        """Take one from each item's budgets, all or none: see RedisStore.take_budgets."""
        with self._lock:
            out = []
            for item in items:
                keys = []
                over = 0
                for seconds, limit in windows:
                    index = int(now // seconds)
                    current, previous = f"{item}:{seconds}:{index}", f"{item}:{seconds}:{index - 1}"
                    if not over and int(self._live(current) or 0) + int(self._live(previous) or 0) + 1 > limit:
                        over = seconds
                    keys.append((current, 2 * seconds + 60))
                if not over:
                    for key, ttl in keys:
                        value = self._live(key)
                        expires = self._data[key][1] if value is not None else self._clock() + ttl
                        self._data[key] = (str(int(value or 0) + 1), expires)
                out.append(over)
            return out

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

    # ARGV: now, number of windows, (seconds, limit) per window, then the items.
    _TAKE_BUDGETS = """
local now = tonumber(ARGV[1])
local nw = tonumber(ARGV[2])
local out = {}
for i = 3 + 2 * nw, #ARGV do
  local item = ARGV[i]
  local over = 0
  local keys = {}
  for w = 0, nw - 1 do
    local seconds = tonumber(ARGV[3 + 2 * w])
    local limit = tonumber(ARGV[4 + 2 * w])
    local index = math.floor(now / seconds)
    local current = item .. ':' .. seconds .. ':' .. index
    local previous = item .. ':' .. seconds .. ':' .. (index - 1)
    local used = tonumber(redis.call('GET', current) or '0') + tonumber(redis.call('GET', previous) or '0')
    if over == 0 and used + 1 > limit then over = seconds end
    keys[w + 1] = {current, (2 * seconds + 60) * 1000}
  end
  if over == 0 then
    for _, key in ipairs(keys) do
      if redis.call('INCR', key[1]) == 1 then redis.call('PEXPIRE', key[1], key[2]) end
    end
  end
  out[#out + 1] = over
end
return out
"""

    def take_budgets(self, items: list[str], windows: list[tuple[int, int]], now: float) -> list[int]:
        """Take one from each item's budgets, all or none, in one round trip (a script).

        `windows` are (seconds, limit) pairs counted in fixed windows of `seconds`; an item fits
        when this window's count plus the previous window's stays within `limit`, so no sliding
        window of that length ever holds more. Per item: 0 when taken, else the seconds of the
        first window it would exceed (nothing taken)."""
        if not items:
            return []

        def op() -> list[int]:
            args = [repr(now), len(windows), *[v for pair in windows for v in pair], *map(self._k, items)]
            return [int(v) for v in self.client.eval(self._TAKE_BUDGETS, 0, *args)]

        return self._call(op, lambda: self.fallback.take_budgets(items, windows, now))

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


def make_store(redis_url: str | None, *, prefix: str = "zhitong:") -> MemoryStore | RedisStore:
    return RedisStore(redis_url, prefix=prefix) if redis_url else MemoryStore()
