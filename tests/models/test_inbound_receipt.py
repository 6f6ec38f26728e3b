"""Receipts keep the reply for WeChat's retries without keeping live one-time codes in clear."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models.inbound import InboundReceipt, open_reply, seal_reply
from tests.factories import small_tree


@pytest.fixture
def people(db):
    with db.session() as s:
        return {k: p.id for k, p in small_tree(s).items()}


def stored_replies(db) -> list[str]:
    with db.session() as s:
        return [r.reply_text or "" for r in s.scalars(select(InboundReceipt))]


@pytest.mark.parametrize(("text", "code"), [
    ("绑定码 张伟", re.compile(r"(?<!\d)(\d{6})(?!\d)")),
    ("会议 支部党员大会 明天19:00 党员活动室", re.compile(r"签到码：(\d{4})")),
])
def test_a_code_reply_is_not_stored_in_clear_and_a_retry_gets_it_again(chat, runtime, people, text, code):
    request = chat.wecom.text("lina", text)
    first = chat.wecom.read_reply(chat.post(request).data)["Content"]
    secret = code.search(first).group(1)
    [stored] = stored_replies(runtime.db)
    assert secret not in stored and "张伟" not in stored and "党员活动室" not in stored
    # A retry that finds no claim (the store lost it) is answered from the receipt alone.
    runtime.store.delete(_claim_key(runtime))
    retry = chat.wecom.read_reply(chat.post(request).data)["Content"]
    assert retry == first
    assert len(stored_replies(runtime.db)) == 1


def _claim_key(runtime) -> str:
    with runtime.db.session() as s:
        receipt = s.scalar(select(InboundReceipt))
        return f"inbound:{receipt.channel}:{receipt.dedupe_key}"


def test_a_sealed_reply_opens_only_with_the_same_secret():
    sealed = seal_reply("验证码 123456", "one secret")
    assert "123456" not in sealed
    assert open_reply(sealed, "one secret") == "验证码 123456"
    assert open_reply(sealed, "another secret") == ""  # SECRET_KEY changed: nothing, no error
    assert seal_reply("", "one secret") == "" and open_reply(None, "one secret") == ""
