"""Outbound fixtures: a runtime whose WeCom/MP API base points at a running fake server."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import MP, WECOM, redis_prefix
from tests.fakewx.conftest import fake_wechat  # noqa: F401  (re-exported fixture)


@pytest.fixture
def wechat_settings(settings, fake_wechat):  # noqa: F811
    return settings.with_overrides(
        wecom=replace(WECOM, api_base=fake_wechat.base_url),
        mp=replace(MP, api_base=fake_wechat.base_url),
        http_timeout_seconds=1.0,
    )


@pytest.fixture
def wechat_runtime(wechat_settings, clock):
    from bot.runtime import Runtime

    runtime = Runtime.build(wechat_settings, clock=clock)
    if hasattr(runtime.store, "prefix"):
        runtime.store.prefix = redis_prefix()  # isolate tests sharing one Redis
    yield runtime
    runtime.db.dispose()


@pytest.fixture
def wired_chat(wechat_settings, clock):
    """(runtime, chat) of an app whose pushes go to the fake server, on an empty database."""
    from bot.app import create_app
    from tests.conftest import Chat

    app = create_app(wechat_settings, clock=clock)
    runtime = app.extensions["zhitong"]
    if hasattr(runtime.store, "prefix"):
        runtime.store.prefix = redis_prefix()  # isolate tests sharing one Redis
    yield runtime, Chat(app.test_client(), clock)
    runtime.db.dispose()
