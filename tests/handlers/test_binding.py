"""绑定码 / 绑定: one-time codes that link an Official Account follower to a roster person."""

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
LOCKED = "验证码错误次数过多"
HOW_TO_BIND = "请向所在党支部书记索取 6 位验证码"
PAUSED = "近 1 小时内验证码错误次数过多，绑定暂停"
VOID = "这个验证码有效期间出现了过多的错误尝试，为安全起见已作废"


@pytest.fixture
def people(db):
    with db.session() as s:
        return {k: p.id for k, p in small_tree(s).items()}


def issue(chat, secretary: str, name: str) -> str:
    reply = chat.say(secretary, f"绑定码 {name}")
    match = CODE.search(reply)
    assert match, reply
    return match.group(1)


def count(db, model, *where) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def mp_identity(db, openid: str) -> int | None:
    with db.session() as s:
        return s.scalar(select(ChannelIdentity.person_id).where(ChannelIdentity.channel == Channel.MP,
                                                                ChannelIdentity.external_id == openid))


# -- issuing ---------------------------------------------------------------------------------------


def test_secretary_issues_a_six_digit_code_valid_24_hours(chat, db, people):
    reply = chat.say("lina", "绑定码 张伟")
    code = CODE.search(reply).group(1)
    assert reply.startswith(f"已为张伟生成绑定验证码：{code}\n")
    assert "有效期 24 小时（至 2026年11月22日 19:45），只能使用一次" in reply
    assert f"「绑定 {code}」" in reply
    with db.session() as s:
        row = s.scalars(select(BindingCode)).one()
        assert row.person_id == people["zhangwei"] and row.issued_by_id == people["sec_a"]
        assert code not in row.code_hash  # only a keyed hash is kept
        issued = s.scalars(select(Event).where(Event.kind == "binding_code.issued")).one()
        assert issued.actor_id == people["sec_a"] and issued.subject_id == people["zhangwei"]


def test_full_width_space_between_command_and_name(chat, people):
    assert CODE.search(chat.say("lina", "绑定码　张伟"))
    assert CODE.search(chat.say("lina", "绑定码：刘洋"))
    assert CODE.search(chat.say("lina", "　绑定码，张伟　"))


def test_secretary_can_issue_only_within_own_organisation(chat, db, people):
    reply = chat.say("lina", "绑定码 赵磊")  # 赵磊 is in branch B
    assert reply == ("在您负责的组织（综合处党支部）中没有找到「赵磊」。请核对姓名，或确认此人已在名册中。")
    reply = chat.say("chenjing", "绑定码 张伟")  # and the other way round
    assert "没有找到「张伟」" in reply
    assert count(db, BindingCode) == 0
    assert count(db, Event, Event.kind == "binding_code.issued") == 0
    # The committee's secretary leads both branches: anyone beneath, and the branch secretaries.
    issue(chat, "wangsj", "赵磊")
    issue(chat, "wangsj", "李娜")
    assert count(db, BindingCode) == 2


def test_member_cannot_issue(chat, db, people):
    reply = chat.say("zhangwei", "绑定码 刘洋")
    assert reply.startswith("「绑定码」只有书记、副书记或支委可以使用")
    assert count(db, BindingCode) == 0


def test_issue_without_a_name_or_for_an_unknown_name(chat, db, people):
    assert chat.say("lina", "绑定码") == "请写明姓名，例如：绑定码 张伟"
    assert "没有找到「张三」" in chat.say("lina", "绑定码 张三")
    assert count(db, BindingCode) == 0


# -- binding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mp_mode", ["safe", "plain"])
def test_follower_binds_and_is_then_greeted_by_name(chat, db, people):
    code = issue(chat, "lina", "张伟")
    assert HOW_TO_BIND in chat.say_mp("o_zhangwei", "帮助")
    reply = chat.say_mp("o_zhangwei", f"绑定 {code}")
    assert reply == "张伟您好，绑定成功。发送「帮助」查看可用命令，发送「待办」查看待办事项。"
    assert mp_identity(db, "o_zhangwei") == people["zhangwei"]
    assert chat.say_mp("o_zhangwei", "帮助").startswith("张伟您好，我是直通车。")
    assert chat.say_mp("o_zhangwei", "待办") == "截至 2026年11月21日 19:45，您没有待办事项。"
    with db.session() as s:
        bound = s.scalars(select(Event).where(Event.kind == "binding.bound")).one()
        assert bound.subject_id == people["zhangwei"] and bound.data["external_id"] == "o_zhangwei"
        assert s.scalars(select(BindingCode)).one().used_by_external_id == "o_zhangwei"


@pytest.mark.parametrize("form", ["绑定：{code}", "绑定 {full}", "绑定{code}", "绑定，{code}", "　绑定　{code}",
                                  "绑定 {spaced}"])
def test_bind_tolerates_full_width_forms(chat, db, people, form):
    code = issue(chat, "lina", "张伟")
    full = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    text = form.format(code=code, full=full, spaced=f"{code[:3]} {code[3:]}")
    assert "绑定成功" in chat.say_mp("o_zhangwei", text)
    assert mp_identity(db, "o_zhangwei") == people["zhangwei"]


def test_code_is_single_use(chat, db, people):
    code = issue(chat, "lina", "张伟")
    assert "绑定成功" in chat.say_mp("o_first", f"绑定 {code}")
    assert WRONG in chat.say_mp("o_second", f"绑定 {code}")
    assert mp_identity(db, "o_first") == people["zhangwei"]
    assert mp_identity(db, "o_second") is None
    assert count(db, BindingAttempt, BindingAttempt.external_id == "o_second") == 1


def test_already_bound_follower_is_told_so(chat, db, people):
    code = issue(chat, "lina", "张伟")
    chat.say_mp("o_zhangwei", f"绑定 {code}")
    other = issue(chat, "lina", "刘洋")
    assert chat.say_mp("o_zhangwei", f"绑定 {other}") == "您已绑定为张伟，无需重复绑定。"
    assert mp_identity(db, "o_zhangwei") == people["zhangwei"]
    assert "绑定成功" in chat.say_mp("o_liuyang", f"绑定 {other}")  # the unused code still works


def test_code_expires_after_24_hours(chat, db, clock, people):
    code = issue(chat, "lina", "张伟")
    clock.advance(hours=24)
    assert WRONG in chat.say_mp("o_zhangwei", f"绑定 {code}")
    assert mp_identity(db, "o_zhangwei") is None


def test_code_still_works_just_before_24_hours(chat, db, clock, people):
    code = issue(chat, "lina", "张伟")
    clock.advance(hours=23, minutes=59)
    assert "绑定成功" in chat.say_mp("o_zhangwei", f"绑定 {code}")


def test_new_code_invalidates_the_old_one(chat, db, people):
    old = issue(chat, "lina", "张伟")
    new = issue(chat, "lina", "张伟")
    assert WRONG in chat.say_mp("o_zhangwei", f"绑定 {old}")
    assert "绑定成功" in chat.say_mp("o_zhangwei", f"绑定 {new}")


def _wrong_codes(code: str):
    n = 0
    while True:
        n += 1
        candidate = f"{(int(code) + n * 7919) % 1_000_000:06d}"
        if candidate != code:
            yield candidate


def test_five_wrong_tries_in_an_hour_lock_even_the_right_code(chat, db, clock, people):
    code = issue(chat, "lina", "张伟")
    wrong = _wrong_codes(code)
    for _ in range(4):
        assert WRONG in chat.say_mp("o_guesser", f"绑定 {next(wrong)}")
        clock.advance(minutes=1)
    assert LOCKED in chat.say_mp("o_guesser", f"绑定 {next(wrong)}")  # the fifth
    assert LOCKED in chat.say_mp("o_guesser", f"绑定 {code}")
    assert mp_identity(db, "o_guesser") is None
    assert count(db, BindingAttempt) == 5  # locked tries are not counted again

    clock.advance(minutes=55)  # 59 minutes after the fourth wrong try… still five within the hour
    assert LOCKED in chat.say_mp("o_guesser", f"绑定 {code}")
    clock.advance(minutes=1)  # the first wrong try is now an hour old: four left in the window
    assert "绑定成功" in chat.say_mp("o_guesser", f"绑定 {code}")
    assert mp_identity(db, "o_guesser") == people["zhangwei"]


def test_lock_is_per_follower(chat, db, people):
    code = issue(chat, "lina", "张伟")
    wrong = _wrong_codes(code)
    for _ in range(5):
        chat.say_mp("o_guesser", f"绑定 {next(wrong)}")
    assert "绑定成功" in chat.say_mp("o_zhangwei", f"绑定 {code}")


def test_badly_formed_code_is_explained_and_not_counted(chat, db, people):
    for text in ["绑定 12345", "绑定 abcdef", "绑定 1234567", "绑定"]:
        reply = chat.say_mp("o_zhangwei", text)
        assert reply == "验证码是 6 位数字，例如：绑定 123456" or HOW_TO_BIND in reply, reply
    assert count(db, BindingAttempt) == 0


def test_unknown_follower_gets_the_how_to_bind_text(chat, db, people):
    for text in ["你好", "待办", "收到", "绑定码 张伟"]:
        reply = chat.say_mp("o_nobody", text)
        assert HOW_TO_BIND in reply and "绑定 123456" in reply, (text, reply)
    assert count(db, ChannelIdentity, ChannelIdentity.channel == Channel.MP) == 0
    assert count(db, BindingCode) == 0


def test_subscribe_event_greets_bound_and_unbound_followers(chat, db, people):
    response = chat.post(chat.mp.event("o_zhangwei", "subscribe"))
    assert HOW_TO_BIND in chat.mp.read_reply(response.data)["Content"]
    chat.say_mp("o_zhangwei", f"绑定 {issue(chat, 'lina', '张伟')}")
    response = chat.post(chat.mp.event("o_zhangwei", "subscribe", at=chat.mp._now() + 1))
    assert chat.mp.read_reply(response.data)["Content"].startswith("张伟您好，欢迎回来。")


# -- 绑定 sent in WeCom ----------------------------------------------------------------------------

def test_bind_sent_in_wecom_says_no_binding_is_needed(chat, db, people):
    assert chat.say("zhangwei", "绑定 123456").startswith("企业微信账号已通过名册识别，无需绑定")
    assert "名册" in chat.say("stranger", "绑定 123456")  # someone the roster does not know: how to get access
    assert count(db, BindingAttempt) == 0 and count(db, ChannelIdentity, ChannelIdentity.channel == Channel.MP) == 0


# -- guessing from many followers (invented openids cost nothing in plain mode) ----------------------


@pytest.mark.parametrize("mp_mode", ["plain"])
def test_wrong_tries_from_many_followers_pause_binding_for_everyone(chat, db, clock, people):
    code = issue(chat, "lina", "张伟")
    guesses = _wrong_codes(code)
    for n in range(BINDING_GLOBAL_MAX_FAILURES):  # each invented follower stays under its own lock
        assert WRONG in chat.say_mp(f"o_invented_{n}", f"绑定 {next(guesses)}")
        clock.advance(seconds=10)
    assert PAUSED in chat.say_mp("o_invented_x", f"绑定 {next(guesses)}")
    assert PAUSED in chat.say_mp("o_invented_y", f"绑定 {code}")  # the right code is not even looked at
    assert PAUSED in chat.say_mp("o_zhangwei", f"绑定 {code}")
    assert mp_identity(db, "o_invented_y") is None and mp_identity(db, "o_zhangwei") is None
    assert count(db, BindingAttempt) == BINDING_GLOBAL_MAX_FAILURES  # paused tries are not counted
    clock.advance(hours=1)  # the wrong tries have aged out of the hour
    assert "绑定成功" in chat.say_mp("o_zhangwei", f"绑定 {code}")
    assert mp_identity(db, "o_zhangwei") == people["zhangwei"]


def test_a_code_live_through_too_many_wrong_tries_is_void(chat, db, clock, people):
    code = issue(chat, "lina", "张伟")
    guesses = _wrong_codes(code)
    for n in range(BINDING_CODE_MAX_EXPOSURE):
        # Slowly enough for neither the follower's lock nor the pause: three minutes apart.
        assert WRONG in chat.say_mp(f"o_invented_{n}", f"绑定 {next(guesses)}")
        clock.advance(minutes=3)
    assert VOID in chat.say_mp("o_zhangwei", f"绑定 {code}")
    assert mp_identity(db, "o_zhangwei") is None
    assert WRONG in chat.say_mp("o_zhangwei", f"绑定 {code}")  # void stays void
    with db.session() as s:
        voided = s.scalars(select(Event).where(Event.kind == "binding_code.voided")).one()
        assert voided.subject_id == people["zhangwei"]
    fresh = issue(chat, "lina", "张伟")  # a code issued after the guessing starts its own count
    assert "绑定成功" in chat.say_mp("o_zhangwei", f"绑定 {fresh}")
    assert count(db, BindingCode) == 2
