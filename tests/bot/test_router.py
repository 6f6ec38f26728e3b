"""Matching is pure: normalise() and Route.match, without a database or an endpoint."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from bot import router
from bot.messages import InboundKind, InboundMessage
from bot.router import Command, Route, normalise, routes
from models.identity import Channel


def text_msg(text: str, channel: Channel = Channel.WECOM) -> InboundMessage:
    return InboundMessage(channel=channel, sender="u1", kind=InboundKind.TEXT,
                          created_at=datetime(2026, 11, 21, 11, 45, tzinfo=UTC), dedupe_key="msg:1", text=text)


def event_msg(event: str, key: str | None = None) -> InboundMessage:
    return InboundMessage(channel=Channel.WECOM, sender="u1", kind=InboundKind.EVENT,
                          created_at=datetime(2026, 11, 21, 11, 45, tzinfo=UTC), dedupe_key="ev:1",
                          event=event, event_key=key)


def dummy(_cmd, _ctx):
    return None


ACK = Route("ack", ("收到", "已收到"), dummy)


def match(route: Route, text: str) -> Command | None:
    return route.match(text_msg(text), normalise(text))


def first_match(table: list[Route], text: str) -> tuple[str, Command] | None:
    msg = text_msg(text)
    for r in table:
        command = r.match(msg, normalise(text))
        if command is not None:
            return r.name, command
    return None


# -- normalise -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("帮助", "帮助"),
    ("　帮助　", "帮助"),  # ideographic spaces around
    ("绑定码　张伟", "绑定码 张伟"),
    ("绑定码 \u3000 \t张伟", "绑定码 张伟"),  # mixed runs fold to one space
    ("绑定：１２３４５６", "绑定:123456"),  # full-width colon and digits
    ("收到＃３", "收到#3"),
    ("ＨＥＬＰ", "HELP"),
    ("收到，３", "收到,3"),
    ("发布 标题\r\n\r\n正文　第一行\n\n截止 明天", "发布 标题\n正文 第一行\n截止 明天"),  # blank lines dropped
    ("\u00a0绑定码\u00a0张伟\u00a0", "绑定码 张伟"),  # no-break spaces
    ("", ""),
    ("　\n　", ""),
])
def test_normalise(raw, expected):
    assert normalise(raw) == expected


def test_normalise_is_idempotent():
    for raw in ["绑定：１２３４５６", "　收到　＃３　", "发布 标题\n正文"]:
        assert normalise(normalise(raw)) == normalise(raw)


def test_normalise_none_is_empty():
    assert normalise(None) == ""  # type: ignore[arg-type]


# -- matching words and boundaries -----------------------------------------------------------------


@pytest.mark.parametrize(("text", "args", "arg_list"), [
    ("收到", "", []),
    ("收到3", "3", ["3"]),
    ("收到 3", "3", ["3"]),
    ("收到 #3", "#3", ["3"]),
    ("收到#3", "#3", ["3"]),
    ("收到＃３", "#3", ["3"]),
    ("收到，3", "3", ["3"]),
    ("收到：3", "3", ["3"]),
    ("收到　３", "3", ["3"]),
    ("已收到 12", "12", ["12"]),
    ("收到 3、4", "3、4", ["3", "4"]),
    ("收到。", "", []),
    ("收到！", "", []),
    ("收到!", "", []),
    ("收到~", "", []),
])
def test_ack_like_words_match(text, args, arg_list):
    command = match(ACK, text)
    assert command is not None, text
    assert command.args == args
    assert command.arg_list == arg_list


@pytest.mark.parametrize("text", ["收到了吗", "收到了", "收到吗？", "收", "没收到", "收 到", "我收到了",
                                  "收到了 3", "收到x3"])
def test_longer_words_and_sentences_do_not_match(text):
    assert match(ACK, text) is None


def test_multi_line_command_keeps_the_body():
    route = Route("publish", ("发布",), dummy)
    command = match(route, "发布　学习通知\n请各支部学习。\n截止 明天")
    assert command.word == "发布"
    assert command.args == "学习通知"
    assert command.body == "请各支部学习。\n截止 明天"


def test_text_routes_ignore_events_and_event_routes_ignore_text():
    tap = Route("card_tap", (), dummy, event="template_card_event")
    assert ACK.match(event_msg("template_card_event", "ack:1"), "") is None
    assert tap.match(text_msg("template_card_event"), "template_card_event") is None
    command = tap.match(event_msg("template_card_event", "ack:1"), "")
    assert command == Command(word="template_card_event", args="ack:1")
    assert tap.match(event_msg("click", "ack:1"), "") is None


def test_other_message_kinds_match_no_text_route():
    image = InboundMessage(channel=Channel.WECOM, sender="u1", kind=InboundKind.OTHER,
                           created_at=datetime(2026, 11, 21, tzinfo=UTC), dedupe_key="msg:2", text="收到")
    assert ACK.match(image, "收到") is None


# -- first match wins ------------------------------------------------------------------------------


def test_first_match_wins_in_a_table():
    a = Route("a", ("收到",), dummy)
    b = Route("b", ("收到",), dummy)
    assert first_match([a, b], "收到 1")[0] == "a"
    assert first_match([b, a], "收到 1")[0] == "b"


def test_binding_code_and_bind_in_the_real_table():
    table = routes()
    names = [r.name for r in table]
    assert names.index("binding_code") < names.index("bind")
    name, command = first_match(table, "绑定码 张伟")
    assert (name, command.word, command.args) == ("binding_code", "绑定码", "张伟")
    name, command = first_match(table, "绑定 123456")
    assert (name, command.word, command.args) == ("bind", "绑定", "123456")
    name, command = first_match(table, "绑定码：张伟")
    assert (name, command.args) == ("binding_code", "张伟")
    assert first_match(table, "绑定码张伟") is None  # no boundary after 绑定码, and 码 is no boundary for 绑定


def test_a_shorter_word_listed_first_does_not_swallow_a_longer_one():
    """Even in the wrong order, 绑定 does not take 绑定码: the rest must start at a boundary."""
    bind = Route("bind", ("绑定",), dummy)
    code = Route("binding_code", ("绑定码",), dummy)
    assert first_match([bind, code], "绑定码 张伟")[0] == "binding_code"


def test_real_table_routes_everyday_words():
    table = routes()
    expected = {"帮助": "help", "？": "help", "待办": "todo", "收到": "ack", "收到3": "ack", "已收到 #2": "ack",
                "完成 3 已学习": "complete", "进度 1": "progress", "催办 1": "nudge", "待办事项": "todo"}
    for text, name in expected.items():
        assert first_match(table, text)[0] == name, text
    for text in ["收到了吗", "你好", "待办事项有哪些"]:
        assert first_match(table, text) is None, text


def test_every_text_route_with_words_has_usage_for_help():
    for r in routes():
        if r.words:
            assert r.usage, r.name


def test_route_table_is_built_once_when_the_first_messages_arrive_together(monkeypatch):
    """gunicorn's threads take the first messages after start-up at once; a table built by two of
    them listed every command twice in 帮助 (and pushed a secretary's 帮助 past one message)."""
    real_build, barrier, tables = router.build_routes, threading.Barrier(8), []

    def slow_build():
        time.sleep(0.05)  # long enough for every thread to find the table empty
        return real_build()

    monkeypatch.setattr(router, "ROUTES", [])
    monkeypatch.setattr(router, "build_routes", slow_build)

    def first_message():
        barrier.wait(5)
        tables.append(router.routes())

    threads = [threading.Thread(target=first_message) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    names = [r.name for r in router.ROUTES]
    assert len(tables) == 8 and all(t is router.ROUTES for t in tables)
    assert len(names) == len(set(names)) == len(real_build())
