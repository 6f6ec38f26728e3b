"""学习资料 → 学习 → 已学 (text and button) → 学习进度, through the real callback endpoint."""

from __future__ import annotations

from sqlalchemy import func, select

from models.directive import Delivery, Directive, DirectiveKind
from models.event import Event
from models.outbox import OutboxMessage
from tests.factories import small_tree

ASSIGN = "学习资料 党章第一章 https://example.cn/dangzhang/1 截止 12月5日"


def _seed(db):
    with db.session() as s:
        return small_tree(s)


def test_assign_pushes_a_study_card_to_every_member(chat, db):
    _seed(db)
    reply = chat.say("wangsj", ASSIGN)
    assert reply.startswith("已布置学习 #1，推送 5 人，截止 2026年12月5日 23:59")
    with db.session() as s:
        item = s.get(Directive, 1)
        assert item.kind is DirectiveKind.STUDY and item.link == "https://example.cn/dangzhang/1"
        cards = s.scalars(select(OutboxMessage).where(OutboxMessage.subject_type == "delivery")).all()
        assert len(cards) == 5
        assert cards[0].payload["buttons"] == [{"key": "study:1", "text": "已学"}]
        assert cards[0].payload["url"] == "https://example.cn/dangzhang/1"
        assert s.scalar(select(func.count()).select_from(Event).where(Event.kind == "study.issued")) == 1


def test_assign_refusals_change_nothing(chat, db):
    _seed(db)
    assert "缺少标题" in chat.say("wangsj", "学习资料 截止 12月5日")
    assert "已经过去" in chat.say("wangsj", "学习资料 党章 https://example.cn/a 截止 今天8:00")
    assert "书记" in chat.say("zhangwei", ASSIGN)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Directive)) == 0


def test_list_confirm_with_reflection_and_progress(chat, db, clock):
    _seed(db)
    chat.say("wangsj", ASSIGN)
    listing = chat.say("zhangwei", "学习")
    assert "#1 党章第一章，截止 2026年12月5日 23:59" in listing and "https://example.cn/dangzhang/1" in listing
    assert "[学习] #1 党章第一章" in chat.say("zhangwei", "待办")
    clock.advance(minutes=30)
    done = chat.say("zhangwei", "已学 1 深刻理解了党的性质和宗旨")
    assert "已确认学完 #1「党章第一章」，时间 2026年11月21日 20:15" in done and "心得已记录" in done
    assert "已于 2026年11月21日 20:15" in chat.say("zhangwei", "已学 1")
    assert "没有待完成的学习" in chat.say("zhangwei", "学习")
    with db.session() as s:
        d = s.scalar(select(Delivery).where(Delivery.completed_at.is_not(None)))
        assert d.note == "深刻理解了党的性质和宗旨"
        assert s.scalar(select(func.count()).select_from(Event).where(Event.kind == "study.confirmed")) == 1
    report = chat.say("lina", "学习进度 1")
    lines = report.split("\n")
    assert lines[0] == "已学 1/3"
    branch = next(line for line in lines if "综合处党支部" in line)
    assert "未学：" in branch and "刘洋" in branch and "首位学完用时 30 分钟" in branch
    assert "无权" in chat.say("chenjing", "学习进度 9") or "没有编号" in chat.say("chenjing", "学习进度 9")


def test_study_button_confirms_and_updates_the_card(chat, db):
    _seed(db)
    chat.say("wangsj", ASSIGN)
    assert "已确认学完 #1" in chat.tap("liuyang", "study-1", "study:1")
    with db.session() as s:
        update = s.scalar(select(OutboxMessage).where(OutboxMessage.recipient == "liuyang",
                                                      OutboxMessage.payload["type"].as_string() == "card_update"))
        assert update.payload["replace_text"] == "已学 2026年11月21日 19:45"


def test_single_open_item_needs_no_number(chat, db):
    _seed(db)
    chat.say("wangsj", ASSIGN)
    assert "已确认学完 #1" in chat.say("zhaolei", "已学")


def test_ack_without_number_ignores_study_items(chat, db):
    _seed(db)
    chat.say("wangsj", ASSIGN)
    assert "没有需要确认的通知" in chat.say("zhaolei", "收到")
