"""The fake WeCom/MP server on a real port, knowing the test apps' credentials."""

from __future__ import annotations

import pytest

from fakewx import FakeServer, FakeState
from tests.conftest import MP, WECOM


@pytest.fixture
def fake_wechat():
    state = FakeState()
    state.add_wecom_app(WECOM.corp_id, WECOM.secret)
    state.add_mp_app(MP.app_id, MP.secret)
    with FakeServer(state) as fake:
        yield fake
