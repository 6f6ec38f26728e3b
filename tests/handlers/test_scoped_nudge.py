"""催办 by the secretary of a part of a directive's scope, and the 30-minute rule across chasers."""

from __future__ import annotations

from sqlalchemy import select

from models.outbox import OutboxMessage
from models.person import Role
from tests.factories import person, small_tree


def _seed(db):
    with db.session() as s:
        people = small_tree(s)
        people["sec_c"] = person(s, "孙科研", "sunky", "机关党委/第二党总支/科研党支部", Role.SECRETARY)
    return people


def _nudged(db) -> list[str]:
    with db.session() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.subject_type == "nudge")
                         .order_by(OutboxMessage.id)).all()
        return [m.recipient for m in rows]


def test_branch_secretary_chases_her_part_and_nobody_twice_within_30_minutes(chat, db, clock):
    _seed(db)
    chat.say("wangsj", "发布 报送材料\n范围 第一党总支\n截止 12月1日17:00")
    chat.say("zhangwei", "收到")
    # 李娜 leads 综合处党支部: only 刘洋 there is pending (张伟 acknowledged; she does not remind herself).
    assert chat.say("lina", "催办 1") == "已向综合处党支部 1 位尚未确认的同志推送 #1 的催办提醒。"
    assert _nudged(db) == ["liuyang"]
    clock.advance(minutes=10)
    reply = chat.say("wangsj", "催办 1")
    assert reply == "已向 3 位尚未确认的同志推送 #1 的催办提醒；1 位 30 分钟内刚被催办过，这次未再提醒。"
    assert sorted(_nudged(db)[1:]) == ["chenjing", "lina", "zhaolei"]
    clock.advance(minutes=5)
    again = chat.say("chenjing", "催办 1")  # 赵磊 was just reminded by 王书记
    assert again.startswith("#1（财务处党支部） 尚未确认的 1 位同志刚被催办过")
    assert "2026年11月21日 20:25 后才能再次催办" in again
    clock.advance(minutes=16)  # 31 minutes after 李娜's
    assert chat.say("lina", "催办 1") == "已向综合处党支部 1 位尚未确认的同志推送 #1 的催办提醒。"
    assert len(_nudged(db)) == 5


def test_chasing_outside_the_part_or_as_a_member_is_refused(chat, db):
    _seed(db)
    chat.say("wangsj", "发布 报送材料\n范围 第一党总支")
    assert chat.say("sunky", "催办 1") == "#1 没有发给科研党支部，无需您催办。"
    assert "书记" in chat.say("zhaolei", "催办 1")
    assert _nudged(db) == []
    chat.say("lina", "发布 支部材料")  # 李娜's own directive: 陈静 is not inside its scope
    assert "只有发布组织和所涉组织" in chat.say("chenjing", "催办 2")
