"""回执 / 纪要 (no text) / 我发布的 through the real endpoint: content, order and who may read."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from models.outbox import OutboxMessage
from tests.factories import small_tree


def _seed(db):
    with db.session() as s:
        return small_tree(s)


def test_receipts_list_notes_in_time_order_and_a_branch_secretary_sees_her_part(chat, db, clock):
    _seed(db)
    chat.say("wangsj", "发布 报送材料\n请报送。\n截止 12月1日17:00")
    chat.say("liuyang", "完成 1 已报送三份")
    clock.advance(minutes=5)
    chat.say("zhaolei", "完成 1")
    clock.advance(minutes=5)
    chat.say("zhangwei", "完成 1 已组织学习")
    reply = chat.say("wangsj", "回执 1")
    assert reply.splitlines() == [
        "通知 #1「报送材料」的回执：已完成 3/5，其中写了说明的 2 人",
        "· 2026年11月21日 19:45 刘洋（综合处党支部）：已报送三份",
        "· 2026年11月21日 19:50 赵磊（财务处党支部）：未写说明",
        "· 2026年11月21日 19:55 张伟（综合处党支部）：已组织学习",
    ]
    mine = chat.say("lina", "回执 1")
    assert mine.startswith("通知 #1「报送材料」的回执：已完成 2/3，其中写了说明的 2 人（综合处党支部）")
    assert "赵磊" not in mine
    assert "书记" in chat.say("zhangwei", "回执 1")
    assert chat.say("wangsj", "回执 9") == "没有编号为 #9 的通知或学习资料。"


def test_receipts_of_a_study_item_show_the_reflections(chat, db, clock):
    _seed(db)
    chat.say("wangsj", "学习资料 党章第一章 https://example.cn/a 截止 12月5日")
    chat.say("zhangwei", "已学 1 深受教育")
    clock.advance(minutes=1)
    chat.say("liuyang", "已学 1")
    reply = chat.say("wangsj", "回执 1")
    assert reply.splitlines() == [
        "学习 #1「党章第一章」的回执：已学 2/5，其中写了心得的 1 人",
        "· 2026年11月21日 19:45 张伟（综合处党支部）：深受教育",
        "· 2026年11月21日 19:46 刘洋（综合处党支部）：未写心得",
    ]


def test_minutes_without_text_are_read_back_in_order(chat, db, clock):
    _seed(db)
    assert "已安排 #1" in chat.say("lina", "会议 支部党员大会 今天20:00 党员活动室")
    assert chat.say("lina", "纪要 1").startswith("#1 综合处党支部 支部党员大会（2026年11月21日 20:00） 还没有纪要")
    clock.advance(minutes=30)
    chat.say("lina", "纪要 1 学习了全会精神")
    clock.advance(minutes=10)
    chat.say("lina", "纪要 1 讨论了下季度工作")
    assert chat.say("lina", "纪要 1").splitlines() == [
        "#1 综合处党支部 支部党员大会（2026年11月21日 20:00） 的纪要共 2 份：",
        "1. 2026年11月21日 20:15 李娜记录：", "学习了全会精神",
        "2. 2026年11月21日 20:25 李娜记录：", "讨论了下季度工作",
    ]
    assert "只有该支部" in chat.say("chenjing", "纪要 1")


def test_published_lists_directives_study_and_meetings_newest_first_with_rates(chat, db, clock):
    _seed(db)
    chat.say("lina", "发布 报送材料")
    chat.say("zhangwei", "收到")
    clock.advance(minutes=1)
    chat.say("lina", "学习资料 党章第一章 截止 12月5日")
    chat.say("liuyang", "已学 2")
    clock.advance(minutes=1)
    scheduled = chat.say("lina", "会议 支委会 明天19:00 党员活动室")
    meeting = scheduled.split("#", 1)[1].split(" ", 1)[0]
    assert chat.say("lina", "我发布的").splitlines() == [
        "您最近发布的 3 项：",
        f"· [会议] #{meeting} 综合处党支部 支委会（2026年11月22日 19:00）未开始，已通知 1 人",
        "· [学习] #2 党章第一章（2026年11月21日 19:46 布置，截止 2026年12月5日 23:59）已学 1/3（33%）",
        "· [通知] #1 报送材料（2026年11月21日 19:45 发布）已确认 1/3（33%），已完成 0",
        "查看明细：通知发「进度 编号」，学习发「学习进度 编号」，回执发「回执 编号」，会议纪要发「纪要 编号」。",
    ]
    assert chat.say("chenjing", "我发布的") == "您还没有发布过通知、学习资料或会议。"


def test_published_shows_a_withdrawn_item_and_a_cancelled_meeting_as_such(chat, db, clock):
    _seed(db)
    chat.say("lina", "发布 报送材料")
    chat.say("zhangwei", "收到")
    chat.say("lina", "会议 支委会 明天19:00 党员活动室")
    clock.advance(minutes=5)
    chat.say("lina", "撤回 1 发错了")
    chat.say("lina", "取消 2 时间冲突")
    assert chat.say("lina", "我发布的").splitlines()[1:3] == [
        "· [会议] #2 综合处党支部 支委会（2026年11月22日 19:00）已于 2026年11月21日 19:50 取消",
        "· [通知] #1 报送材料（2026年11月21日 19:45 发布，已于 2026年11月21日 19:50 撤回）已确认 1/3（33%），已完成 0",
    ]


class TestLongReceipts:
    """A long 回执 is one message ending with the item's page, not a string of follow-ups."""

    @pytest.fixture
    def settings(self, settings):
        return replace(settings, public_base_url="https://dj.example.cn")

    def test_long_receipts_are_cut_to_one_message_with_the_page(self, chat, db):
        _seed(db)
        chat.say("wangsj", "发布 报送材料")
        for userid in ("zhangwei", "liuyang", "zhaolei", "lina"):
            chat.say(userid, "完成 1 " + "已按要求逐项落实并报送材料。" * 30)
        reply = chat.say("wangsj", "回执 1")
        assert reply.startswith("通知 #1「报送材料」的回执：已完成 4/5")
        assert reply.endswith("https://dj.example.cn/m/d/1") and "未能全部列出" in reply
        with db.session() as s:
            follow_ups = s.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "wangsj")).all()
            assert [m for m in follow_ups if "续" in str(m.payload)] == []
