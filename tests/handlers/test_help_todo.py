"""帮助 by role, anything unrecognised → help, and 待办, through the real callback endpoints."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models.event import Event
from models.identity import BindingAttempt, BindingCode, ChannelIdentity
from models.inbound import InboundReceipt
from models.outbox import OutboxMessage
from models.person import Person
from tests.factories import small_tree

NOT_ON_ROSTER = "系统名册中还没有您的企业微信账号"
HOW_TO_BIND = "请向所在党支部书记索取 6 位验证码"


@pytest.fixture
def people(db):
    with db.session() as s:
        return {k: p.name for k, p in small_tree(s).items()}


def rows(db, *models) -> dict[str, int]:
    with db.session() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in models}


def commands(reply: str) -> list[str]:
    """The command words listed in a help reply (lines `· WORD …`)."""
    return [line[2:].split(" ")[0] for line in reply.splitlines() if line.startswith("· ")]


def test_member_help_lists_everyday_commands_only(chat, people):
    reply = chat.say("zhangwei", "帮助")
    assert reply.startswith("张伟您好，我是直通车。")
    # The nine most used, then `帮助 全部` for the rest (积分, 申报).
    assert commands(reply) == ["帮助", "待办", "收到", "完成", "学习", "已学", "签到", "请假", "详情", "帮助"]
    assert "绑定码" not in reply and "发布" not in reply and "进度" not in reply


def test_secretary_help_adds_secretary_commands_and_names_the_role(chat, people):
    reply = chat.say("lina", "帮助 全部")
    assert reply.startswith("李娜您好，我是直通车。（综合处党支部书记）")
    assert commands(reply) == ["帮助", "待办", "收到", "完成", "发布", "进度", "催办", "回执", "我发布的", "学习资料", "学习进度", "学习", "已学", "签到", "请假", "积分", "申报", "详情", "导出", "会议码", "会议", "批准", "驳回", "核实", "结束", "纪要", "撤回", "改期", "取消", "绑定码", "画像"]
    assert "· 绑定码 姓名" in reply.splitlines()  # a secretary's whole list: the forms alone, one message
    assert len(reply.encode("utf-8")) <= 2000


def test_liaison_help_offers_progress_but_not_publishing(chat, people):
    reply = chat.say("sunll", "帮助")
    assert "联络员" in reply.splitlines()[0]
    assert "进度" in commands(reply)
    assert "发布" not in commands(reply) and "绑定码" not in commands(reply)


@pytest.mark.parametrize("text", ["帮助", "help", "菜单", "？", "?", "　帮助　"])
def test_help_words_in_either_width(chat, people, text):
    assert chat.say("zhangwei", text) == chat.say("zhangwei", "帮助")


@pytest.mark.parametrize("text", ["帮助", "你好", "待办", "绑定码 张伟", "收到"])
def test_unknown_wecom_user_gets_how_to_get_access_and_nothing_is_created(chat, db, people, text):
    tables = (Person, ChannelIdentity, Event, OutboxMessage, BindingAttempt, BindingCode)
    before = rows(db, *tables)
    reply = chat.say("stranger", text)
    assert NOT_ON_ROSTER in reply
    assert "联系所在党支部书记" in reply
    assert rows(db, *tables) == before
    assert rows(db, InboundReceipt)["inbound_receipt"] == 1  # only the dedupe receipt


@pytest.mark.parametrize("mp_mode", ["safe", "plain"])
def test_unknown_follower_help_explains_binding(chat, db, people):
    reply = chat.say_mp("o_nobody", "帮助")
    assert HOW_TO_BIND in reply and "绑定 123456" in reply
    assert chat.say_mp("o_nobody", "今天开会吗") == reply


@pytest.mark.parametrize("text", ["今天天气怎么样", "收到了吗", "帮助我", "待办事项有哪些", "绑定码张伟", "123"])
def test_anything_unrecognised_gets_not_understood_not_the_whole_help(chat, people, text):
    reply = chat.say("zhangwei", text)
    assert reply.startswith(f"没看懂「{text}」。") and "发送「帮助」查看常用命令" in reply
    assert len(reply.splitlines()) <= 2 and reply != chat.say("zhangwei", "帮助")


def test_non_text_message_gets_help(chat, client, people):
    fields = {"ToUserName": "wx49f0ab532d5d035a", "FromUserName": "zhangwei",
              "CreateTime": chat.wecom._now(), "MsgType": "image", "PicUrl": "http://example.invalid/a.jpg",
              "MediaId": "media-1", "MsgId": 99887766, "AgentID": 1000002}
    response = chat.post(chat.wecom.encrypt(fields))
    assert response.status_code == 200
    assert chat.wecom.read_reply(response.data)["Content"] == chat.say("zhangwei", "帮助")


def test_member_asking_for_a_secretary_command_is_told_who_may(chat, db, people):
    reply = chat.say("zhangwei", "绑定码 刘洋")
    assert "只有书记、副书记或支委可以使用" in reply
    assert rows(db, BindingCode)["binding_code"] == 0


def test_bind_on_wecom_is_refused_without_counting_a_try(chat, db, people):
    reply = chat.say("zhangwei", "绑定 123456")
    assert "绑定" in reply and "帮助" in reply
    assert rows(db, BindingAttempt, ChannelIdentity) == {"binding_attempt": 0, "channel_identity": 7}


def test_events_we_do_not_act_on_get_an_empty_answer(chat, people):
    response = chat.post(chat.wecom.event("zhangwei", "enter_agent"))
    assert response.status_code == 200 and response.data == b""
    response = chat.post(chat.wecom.event("zhangwei", "location", Latitude="31.2", Longitude="121.5"))
    assert response.status_code == 200 and response.data == b""


def test_todo_with_nothing_owed_shows_the_full_date(chat, people):
    assert chat.say("zhangwei", "待办") == "截至 2026年11月21日 19:45，您没有待办事项。"


def test_todo_time_follows_the_clock(chat, clock, people):
    clock.advance(days=40, hours=5, minutes=3)  # 2026-12-31 16:48 UTC → 2027年1月1日 00:48 in Shanghai
    assert chat.say("lina", "待办") == "截至 2027年1月1日 00:48，您没有待办事项。"


def test_todo_lists_an_open_directive_with_full_dates(chat, people):
    chat.say("wangsj", "发布 学习贯彻全会精神\n请各支部组织专题学习。\n截止 12月1日17:00")
    reply = chat.say("zhangwei", "待办")
    assert reply.splitlines()[0] == "您有 1 项待办（截至 2026年11月21日 19:45）："
    assert "#1 学习贯彻全会精神，截止 2026年12月1日 17:00" in reply
    assert chat.say("zhangwei", "收到！").startswith("已确认收到 #1「学习贯彻全会精神」，时间 2026年11月21日 19:45")
    assert chat.say("zhangwei", "待办") == "截至 2026年11月21日 19:45，您没有待办事项。"
