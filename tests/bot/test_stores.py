"""The small shared stores: Redis when configured (and reachable), process memory otherwise."""

from __future__ import annotations

import pytest

from bot.stores import MemoryStore, RedisStore
from tests.conftest import REDIS_URL, needs_redis, redis_prefix


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    shared = RedisStore(REDIS_URL)
    shared.prefix = redis_prefix()
    return shared


def test_ttl_says_how_long_a_key_has_left(store):
    assert store.ttl("absent") is None
    store.set("claim", "processing", 900)
    assert 899 < store.ttl("claim") <= 900
    store.set("forever", "1")
    assert store.ttl("forever") == float("inf")
    store.delete("claim")
    assert store.ttl("claim") is None


def test_memory_ttl_follows_its_clock():
    clock = Clock()
    store = MemoryStore(clock=clock)
    assert store.set_nx("claim", "processing", 10)
    clock.now += 4
    assert store.ttl("claim") == pytest.approx(6)
    clock.now += 6
    assert store.ttl("claim") is None and store.set_nx("claim", "processing", 10)


def test_ttl_while_redis_is_down_answers_from_process_memory():
    down = RedisStore("redis://127.0.0.1:1/0", timeout=0.2)
    down.set("claim", "processing", 30)  # kept in the fallback
    assert 29 < down.ttl("claim") <= 30
    assert not down.available
