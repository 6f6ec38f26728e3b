"""Official Account plain mode (明文模式, for testing): the signature covers token, timestamp and
nonce but not the body, so one signed URL carries one message; a retry of it is still answered."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from models.inbound import InboundReceipt
from tests.factories import small_tree


@pytest.fixture
def people(db):
    with db.session() as s:
        return {k: p.id for k, p in small_tree(s).items()}


def receipts(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(InboundReceipt))


@pytest.mark.parametrize("mp_mode", ["plain"])
def test_a_signed_url_replayed_with_forged_bodies_is_refused(chat, db, people):
    genuine = chat.mp.text("o_follower", "帮助")
    first = chat.post(genuine)
    assert first.status_code == 200 and "绑定 123456" in chat.mp.read_reply(first.data)["Content"]
    for n in range(5):  # the same signed URL, other bodies from invented followers
        forged = replace(chat.mp.text(f"o_invented_{n}", f"绑定 {n:06d}"), query=genuine.query)
        response = chat.post(forged)
        assert response.status_code == 403
    retry = chat.post(genuine)  # WeChat's retry of the genuine message: the same URL and body
    assert retry.status_code == 200
    assert chat.mp.read_reply(retry.data)["Content"] == chat.mp.read_reply(first.data)["Content"]
    assert receipts(db) == 1
    # A fresh signature carries a fresh message as ever.
    assert "绑定 123456" in chat.say_mp("o_other", "帮助")
