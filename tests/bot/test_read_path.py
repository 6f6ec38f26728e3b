"""Read-only commands (帮助, 待办, 进度…) are answered from the cached sender in a read-only
session: no claim, no receipt, no commit. The cache follows roster changes, and whenever it cannot
be trusted the message takes the full path, which answers the same."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from bot import dispatch as dispatch_module
from bot.directory import VERSION_CHECK_SECONDS, Directory
from bot.stores import MemoryStore
from models.base import ReadOnlyError
from models.directive import Delivery, DeliveryRole, Directive
from models.inbound import InboundReceipt
from models.outbox import OutboxMessage
from models.person import OrgRole, Person, Role
from tests.factories import BRANCH_A, org, person, small_tree

GROUP = BRANCH_A + "/第一党小组"


@pytest.fixture
def people(db):
    with db.session() as s:
        return {key: p.id for key, p in small_tree(s).items()}


@pytest.fixture
def paths(monkeypatch):
    """Which path answered each message: 'read' or 'full'."""
    taken: list[str] = []
    original = dispatch_module._answer_read_only

    def spy(runtime, msg, found, sender):
        answered, reply = original(runtime, msg, found, sender)
        taken.append("read" if answered else "full")
        return answered, reply

    monkeypatch.setattr(dispatch_module, "_answer_read_only", spy)
    return taken


def receipts(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(InboundReceipt))


def directive(db, title: str, person_ids: list[int], *, deadline: datetime | None = None) -> int:
    with db.session() as s:
        top = org(s, "机关党委")
        d = Directive(organisation_id=top.id, issuer_id=person_ids[0], title=title, deadline=deadline,
                      recipient_count=len(person_ids))
        s.add(d)
        s.flush()
        branch = org(s, BRANCH_A)
        s.add_all(Delivery(directive_id=d.id, person_id=pid, role=DeliveryRole.TASK, organisation_id=branch.id)
                  for pid in person_ids)
        return d.id


def test_help_and_todo_are_answered_without_a_receipt_once_the_sender_is_cached(chat, db, people, paths):
    directive(db, "报送党费收缴情况", [people["zhangwei"]])
    first = chat.say("zhangwei", "帮助")
    assert first.startswith("张伟您好") and "待办" in first
    todo = chat.say("zhangwei", "待办")
    assert "您有 1 项待办" in todo and "报送党费收缴情况" in todo and "收到 1" in todo
    assert chat.say("zhangwei", "今天天气怎么样").startswith("没看懂「今天天气怎么样」")  # unknown text: 没看懂
    assert paths == ["read", "read", "read"]
    assert receipts(db) == 0


def test_a_command_that_writes_takes_the_full_path(chat, db, people, paths):
    directive(db, "报送党费收缴情况", [people["zhangwei"]])
    assert chat.say("zhangwei", "收到").startswith("已确认收到 #1")
    assert paths == []  # never offered to the read path
    assert receipts(db) == 1
    assert "没有待办" in chat.say("zhangwei", "待办")


def test_the_full_path_acts_for_the_cached_sender(chat, runtime, db, people):
    """Once cached, the sender is attached to the writing session without a query, and a role
    given since (with the version bumped) is what the full path checks."""
    directive(db, "报送党费收缴情况", [people["zhangwei"], people["liuyang"]])
    chat.say("zhangwei", "帮助")
    assert "只有书记" in chat.say("zhangwei", "发布 测试\n正文")
    assert chat.say("zhangwei", "收到 1").startswith("已确认收到 #1")
    with db.session() as s:
        s.add(OrgRole(person_id=people["zhangwei"], organisation_id=org(s, BRANCH_A).id, role=Role.SECRETARY))
    runtime.directory.changed()
    assert chat.say("zhangwei", "发布 支部学习安排\n本周五学习。").startswith("已发布 #2")
    with db.session() as s:
        assert s.get(Directive, 2).issuer_id == people["zhangwei"]


def test_a_retry_of_a_read_only_command_is_answered_again(chat, db, people):
    req = chat.wecom.text("zhangwei", "待办")
    answers = [chat.wecom.read_reply(chat.post(req).data)["Content"] for _ in range(2)]
    assert answers[0] == answers[1] and "没有待办" in answers[0]


def test_a_role_given_by_a_roster_import_shows_in_the_next_help(chat, runtime, db, people, paths):
    assert "发布" not in chat.say("zhangwei", "帮助")
    with db.session() as s:
        s.add(OrgRole(person_id=people["zhangwei"], organisation_id=org(s, BRANCH_A).id, role=Role.DEPUTY_SECRETARY))
    runtime.directory.changed()  # what import-roster does after its commit
    after = chat.say("zhangwei", "帮助")
    assert "综合处党支部副书记" in after and "发布" in after
    assert paths == ["read", "read"]


def test_a_change_made_by_another_process_is_seen_after_the_version_check(db, people):
    """Two directories on one shared store stand for two processes; time is injected."""
    store = MemoryStore()
    now = [1000.0]
    web = Directory(db, store, clock=lambda: now[0])
    importer = Directory(db, store, clock=lambda: now[0])
    from models.identity import Channel

    assert web.lookup(Channel.WECOM, "zhangwei").person.name == "张伟"
    with db.session() as s:
        s.execute(update(Person).where(Person.id == people["zhangwei"]).values(name="张维"))
    importer.changed()
    assert web.lookup(Channel.WECOM, "zhangwei").person.name == "张伟"  # within the second: the version is not read
    now[0] += VERSION_CHECK_SECONDS
    assert web.lookup(Channel.WECOM, "zhangwei").person.name == "张维"


def test_an_entry_is_reloaded_after_its_time_to_live(db, people):
    from models.identity import Channel

    now = [0.0]
    directory = Directory(db, MemoryStore(), ttl=30.0, clock=lambda: now[0])
    first = directory.lookup(Channel.WECOM, "zhangwei").person
    now[0] += 23.9  # every entry lives at least four fifths of its time to live
    assert directory.lookup(Channel.WECOM, "zhangwei").person is first
    now[0] += 6.1
    assert directory.lookup(Channel.WECOM, "zhangwei").person is not first


def test_unknown_senders_are_not_cached(chat, db, people, paths):
    assert "名册" in chat.say("newcomer", "帮助")
    with db.session() as s:
        person(s, "新同志", "newcomer", BRANCH_A)
    assert chat.say("newcomer", "帮助").startswith("新同志您好")
    assert paths == ["full", "read"]


def test_while_the_shared_store_is_unreachable_the_full_path_answers(chat, runtime, db, people, paths, monkeypatch):
    chat.say("zhangwei", "帮助")
    monkeypatch.setattr(type(runtime.store), "available", property(lambda _self: False), raising=False)
    runtime.directory._version_read = None
    assert chat.say("zhangwei", "帮助").startswith("张伟您好")
    assert paths == ["read", "full"]


def test_a_failing_read_falls_back_to_the_full_path(chat, db, people, paths, monkeypatch):
    from handlers import todo

    calls = []
    original = todo.owed_by

    def flaky(session, person, now):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("connection lost")
        return original(session, person, now)

    monkeypatch.setattr(todo, "owed_by", flaky)
    assert "没有待办" in chat.say("zhangwei", "待办")
    assert paths == ["full"] and len(calls) == 2


def test_a_reply_too_long_for_one_message_is_queued_once_by_the_full_path(chat, db, people, paths):
    for n in range(40):
        directive(db, f"第{n + 1}项：请各支部按要求报送本季度专题学习、组织生活和党费收缴情况", [people["zhangwei"]])
    req = chat.wecom.text("zhangwei", "待办")
    first = chat.wecom.read_reply(chat.post(req).data)["Content"]
    again = chat.wecom.read_reply(chat.post(req).data)["Content"]  # WeChat's retry
    assert "其余" in first and first == again
    with db.session() as s:
        follow_ups = s.scalar(select(func.count()).select_from(OutboxMessage))
    assert follow_ups >= 1
    assert paths == ["full", "full"]


def test_todo_for_a_group_member_lists_the_branch_meeting(chat, db, paths):
    """A 党小组 member's branch is the group's parent, worked out by 待办's query."""
    with db.session() as s:
        person(s, "李娜", "lina", BRANCH_A, Role.SECRETARY)
        person(s, "吴芳", "wufang", GROUP)
    assert "已安排 #1" in chat.say("lina", "会议 支部党员大会 今天20:00 党员活动室")
    chat.say("wufang", "帮助")  # cached
    todo = chat.say("wufang", "待办")
    assert "[会议] #1 综合处党支部 支部党员大会" in todo and "签到 会议码" in todo
    assert paths == ["read", "read"]


def test_the_read_only_session_refuses_every_write(db, people):
    with db.read_session() as s:
        p = s.get(Person, people["zhangwei"])
        p.name = "改名"
        with pytest.raises(ReadOnlyError):
            s.flush()
    with db.read_session() as s, pytest.raises(ReadOnlyError):
        s.execute(update(Person).where(Person.id == people["zhangwei"]).values(name="改名"))
    with db.session() as s:
        assert s.get(Person, people["zhangwei"]).name == "张伟"


def test_every_read_only_route_answers_on_the_read_path(chat, db, people, paths, clock):
    """Each command flagged read-only runs in the read-only session without writing."""
    from bot.router import routes

    flagged = {r.name for r in routes() if r.read_only}
    assert flagged == {"help", "todo", "progress", "overview", "study_progress", "study_list", "meeting_code",
                       "receipts", "published", "points"}
    directive(db, "报送党费收缴情况", [people["zhangwei"]], deadline=datetime(2026, 12, 1, tzinfo=UTC))
    chat.say("wangsj", "帮助")
    chat.say("sunll", "帮助")
    paths.clear()
    answers = [chat.say("wangsj", "进度 1"), chat.say("sunll", "概况"), chat.say("wangsj", "学习进度 1"),
               chat.say("zhangwei", "学习"), chat.say("wangsj", "会议码 1"), chat.say("zhangwei", "积分")]
    assert answers[0].startswith("已确认 0/1") and "综合处党支部：已确认 0/1；未确认：张伟" in answers[0]
    assert answers[1].startswith("概况（2026年11月21日 19:45）") and "#1「报送党费收缴情况」已确认 0/1" in answers[1]
    assert answers[2] == answers[0]  # one number: 学习进度 of a directive is its 进度
    assert answers[3] == "您目前没有待完成的学习。"
    assert answers[4].startswith("#1 是通知，不是会议。")
    assert answers[5].startswith("张伟的积分\n2026年11月：0 分")
    assert paths == ["read"] * 6
    readback = [chat.say("wangsj", "回执 1"), chat.say("wangsj", "我发布的")]
    assert readback[0].startswith("通知 #1「报送党费收缴情况」的回执：已完成 0/1")
    assert readback[1].startswith("您") and paths == ["read"] * 8


def test_a_wecom_userid_is_recognised_whatever_its_case(chat, db, paths):
    """WeCom userids are case-insensitive; a roster may spell one differently from WeCom."""
    with db.session() as s:
        person(s, "王芳", "WangFang", BRANCH_A)
    assert chat.say("wangfang", "帮助").startswith("王芳您好")
    assert chat.say("WANGFANG", "待办").startswith("截至")


def test_an_unknown_sender_is_looked_up_once_per_message(chat, db, people, monkeypatch):
    import bot.directory as directory_module

    calls = []
    original = directory_module.load_sender

    def counting(*args):
        calls.append(args[2])
        return original(*args)

    monkeypatch.setattr(directory_module, "load_sender", counting)
    monkeypatch.setattr(dispatch_module, "load_sender", counting)
    assert "名册" in chat.say("stranger", "帮助")
    assert "名册" in chat.say("stranger", "收到 1")
    assert calls == ["stranger", "stranger"]
