"""One number space through the real endpoint: directives, study items, meetings and leave
requests share one sequence, every command acts on the kind its number is, and card buttons keep
resolving by the item's id behind their prefix."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models.directive import Delivery
from models.meeting import LeaveRequest, LeaveStatus, Meeting
from models.outbox import OutboxMessage
from tests.factories import small_tree

PUBLISH = "发布 报送党费 截止 12月20日"
STUDY = "学习资料 党章第一章 https://example.cn/a 截止 12月5日"
MEETING = "会议 支部党员大会 明天19:00 党员活动室"


@pytest.fixture
def people(db):
    with db.session() as s:
        return {k: p.id for k, p in small_tree(s).items()}


@pytest.fixture
def three(chat, people):
    """A directive (#1), a study item (#2) and a meeting (#3), as their senders are answered."""
    return chat.say("wangsj", PUBLISH), chat.say("wangsj", STUDY), chat.say("lina", MEETING)


def test_todo_shows_a_directive_a_study_item_and_a_meeting_under_three_numbers(chat, three):
    published, assigned, scheduled = three
    assert published.startswith("已发布 #1，") and assigned.startswith("已布置学习 #2，")
    assert scheduled.startswith("已安排 #3 综合处党支部 支部党员大会")
    todo = chat.say("zhangwei", "待办").split("\n")
    assert todo[0].startswith("您有 3 项待办")
    assert todo[1].startswith("· [会议] #3 综合处党支部 支部党员大会") and todo[1].endswith("（回复「签到 会议码」）")
    assert todo[2].startswith("· [学习] #2 党章第一章") and todo[2].endswith("（回复「已学 2」）")
    assert todo[3].startswith("· [通知] #1 报送党费") and todo[3].endswith("（回复「收到 1」）")


def test_ack_with_a_study_number_confirms_the_study_and_both_progress_commands_agree(chat, three):
    before = chat.say("wangsj", "学习进度 2")
    assert before.startswith("已学 0/5") and "未学：李娜、张伟、刘洋" in before
    assert chat.say("zhangwei", "收到 2") == "已确认学完 #2「党章第一章」，时间 2026年11月21日 19:45。"
    after = chat.say("wangsj", "学习进度 2")
    assert after.startswith("已学 1/5") and "综合处党支部：已学 1/3；未学：李娜、刘洋" in after
    assert chat.say("wangsj", "进度 2") == after
    assert chat.say("wangsj", "进度 1").startswith("已确认 0/5")  # the directive is untouched
    assert chat.say("zhangwei", "学习") == "您目前没有待完成的学习。"
    assert "#2" not in chat.say("zhangwei", "待办")


def test_complete_with_a_study_number_confirms_the_study_with_the_reflection(chat, db, people, three):
    assert chat.say("zhangwei", "完成 2 很有收获").startswith("已确认学完 #2「党章第一章」")
    with db.session() as s:
        delivery = s.scalar(select(Delivery).where(Delivery.directive_id == 2, Delivery.person_id == people["zhangwei"]))
        assert delivery.completed_at is not None and delivery.note == "很有收获"


def test_a_number_of_the_wrong_kind_is_named_with_the_command_it_needs(chat, db, three):
    assert chat.say("zhangwei", "已学 1") == \
        "#1 是通知，不是学习资料。确认收到请回复「收到 1」，查看进度请发送「进度 1」。"
    assert chat.say("zhangwei", "收到 3").startswith("#3 是会议，不是通知或学习资料。不能参加请回复「请假 3 理由」")
    assert chat.say("zhangwei", "请假 2 出差").startswith("#2 是学习资料，不是会议。学完请回复「已学 2 心得」")
    assert chat.say("lina", "批准 3").startswith("#3 是会议，不是请假申请。")
    assert chat.say("lina", "结束 1").startswith("#1 是通知，不是会议。")
    assert chat.say("wangsj", "催办 3").startswith("#3 是会议，不是通知。")
    assert chat.say("zhangwei", "收到 99") == "没有编号为 #99 的通知。发送「待办」查看您需要确认的通知。"
    assert chat.say("zhangwei", "详情 3").startswith("[会议] #3 综合处党支部 支部党员大会")
    with db.session() as s:
        assert s.scalars(select(LeaveRequest)).all() == []


def test_leave_requests_take_the_next_number_and_are_decided_by_it(chat, db, three):
    assert chat.say("zhangwei", "请假 3 出差在外").startswith("已提交请假 #4：#3 综合处党支部 支部党员大会")
    assert chat.say("lina", "驳回 4 会议重要").startswith("已驳回 张伟 的请假 #4：#3")
    with db.session() as s:
        leave = s.scalar(select(LeaveRequest))
        assert (leave.id, leave.number, leave.status) == (1, 4, LeaveStatus.REJECTED)


def test_card_buttons_resolve_by_their_prefix_and_the_items_id(chat, db, three):
    """Cards carry `prefix:id`, as every card sent before the numbers were shared does; here the
    meeting's id (1) and the leave request's id (1) differ from their numbers (3 and 4), as after
    the migration, and the buttons still find them."""
    with db.session() as s:
        meeting = s.scalar(select(Meeting))
        assert (meeting.id, meeting.number) == (1, 3)
        cards = {m.payload["title"]: m.payload for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.recipient == "zhangwei")) if m.payload["type"] == "card"}
    assert [b["key"] for b in cards["会议通知 #3 综合处党支部 支部党员大会"]["buttons"]] == ["leave:1"]
    assert [b["key"] for b in cards["学习 #2 党章第一章"]["buttons"]] == ["study:2"]
    assert [b["key"] for b in cards["#1 报送党费"]["buttons"]] == ["ack:1"]
    assert chat.tap("zhangwei", "directive-1", "ack:1").startswith("已确认收到 #1「报送党费」")
    assert chat.tap("zhangwei", "study-2", "study:2").startswith("已确认学完 #2「党章第一章」")
    assert "请回复「请假 3 理由」" in chat.tap("zhangwei", "meeting-1", "leave:1")
    chat.say("zhangwei", "请假 3 出差在外")
    assert chat.tap("lina", "leave-1", "approve:1").startswith("已批准 张伟 的请假 #4：#3")
