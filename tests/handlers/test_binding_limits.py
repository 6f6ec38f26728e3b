"""绑定 guessing from many followers at once (invented openids cost nothing in plain mode): the
per-follower lock is joined by a limit for all followers together and one over a code's life."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from models.event import Event
from models.identity import (
    BINDING_CODE_MAX_EXPOSURE,
    BINDING_GLOBAL_MAX_FAILURES,
    BindingAttempt,
    BindingCode,
    Channel,
    ChannelIdentity,
)
from tests.factories import small_tree

CODE = re.compile(r"绑定验证码：(\d{6})\n")
WRONG = "验证码不正确或已失效"
PAUSED = "近 1 小时内验证码错误次数过多，绑定暂停"
VOID = "这个验证码有效期间出现了过多的错误尝试，为安全起见已作废"


@pytest.fixture
def people(db):
    with db.session() as s:
        return {k: p.id for k, p in small_tree(s).items()}


def issue(chat, name: str) -> str:
    return CODE.search(chat.say("lina", f"绑定码 {name}")).group(1)


def wrong_codes(code: str):
    n = 0
    while True:
        n += 1
        candidate = f"{(int(code) + n * 7919) % 1_000_000:06d}"
        if candidate != code:
            yield candidate


def bound(db, openid: str) -> int | None:
    with db.session() as s:
        return s.scalar(select(ChannelIdentity.person_id).where(ChannelIdentity.channel == Channel.MP,
                                                                ChannelIdentity.external_id == openid))


def count(db, model, *where) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


@pytest.mark.parametrize("mp_mode", ["plain"])
def test_wrong_tries_from_many_followers_pause_binding_for_everyone(chat, db, clock, people):
    code = issue(chat, "张伟")
    guesses = wrong_codes(code)
    for n in range(BINDING_GLOBAL_MAX_FAILURES):  # each invented follower stays under its own lock
        assert WRONG in chat.say_mp(f"o_invented_{n}", f"绑定 {next(guesses)}")
        clock.advance(seconds=10)
    assert PAUSED in chat.say_mp("o_invented_x", f"绑定 {next(guesses)}")
    assert PAUSED in chat.say_mp("o_invented_y", f"绑定 {code}")  # the right code is not even looked at
    assert PAUSED in chat.say_mp("o_zhangwei", f"绑定 {code}")
    assert bound(db, "o_invented_y") is None and bound(db, "o_zhangwei") is None
    assert count(db, BindingAttempt) == BINDING_GLOBAL_MAX_FAILURES  # paused tries are not counted
    clock.advance(hours=1)  # the wrong tries have aged out of the hour
    assert "绑定成功" in chat.say_mp("o_zhangwei", f"绑定 {code}")
    assert bound(db, "o_zhangwei") == people["zhangwei"]


def test_a_code_live_through_too_many_wrong_tries_is_void(chat, db, clock, people):
    code = issue(chat, "张伟")
    guesses = wrong_codes(code)
    for n in range(BINDING_CODE_MAX_EXPOSURE):
        # Slowly enough for neither the follower's lock nor the pause: three minutes apart.
        assert WRONG in chat.say_mp(f"o_invented_{n}", f"绑定 {next(guesses)}")
        clock.advance(minutes=3)
    assert VOID in chat.say_mp("o_zhangwei", f"绑定 {code}")
    assert bound(db, "o_zhangwei") is None
    assert WRONG in chat.say_mp("o_zhangwei", f"绑定 {code}")  # void stays void
    with db.session() as s:
        voided = s.scalars(select(Event).where(Event.kind == "binding_code.voided")).one()
        assert voided.subject_id == people["zhangwei"]
    fresh = issue(chat, "张伟")  # a code issued after the guessing starts its own count
    assert "绑定成功" in chat.say_mp("o_zhangwei", f"绑定 {fresh}")
    assert count(db, BindingCode) == 2
