"""进度 and its page list organisations in roster order (each under its parent, siblings as the roster
created them), the order the chat already names people in — not by the characters' code points."""

from __future__ import annotations

from models.person import Role
from tests.factories import person


def test_progress_lists_sibling_branches_in_roster_order(chat, db):
    with db.session() as s:
        person(s, "王书记", "wangsj", "机关党委", Role.SECRETARY)
        person(s, "张伟", "zhangwei", "机关党委/第一党总支/综合处党支部")  # created first
        person(s, "赵磊", "zhaolei", "机关党委/第一党总支/财务处党支部")
        person(s, "郑国栋", "zhenggd", "机关党委/第一党总支/人事处党支部")  # 人 sorts before 综 by code point
    chat.say("wangsj", "发布 学习贯彻全会精神\n正文\n截止 12月1日17:00")

    reply = chat.say("wangsj", "进度 1")

    assert reply.index("综合处党支部") < reply.index("财务处党支部") < reply.index("人事处党支部")


def test_a_liaisons_parts_come_in_roster_order_too(chat, db):
    """A liaison of three branches sees three parts; they follow the roster like the tree beneath."""
    branches = ["机关党委/第二党总支/科研一处党支部", "机关党委/第二党总支/科研二处党支部",
                "机关党委/第二党总支/技术保障处党支部"]  # 技 sorts before 科 by code point
    with db.session() as s:
        person(s, "王书记", "wangsj", "机关党委", Role.SECRETARY)
        for i, branch in enumerate(branches):
            person(s, f"党员{i}", f"member{i}", branch)
        person(s, "吴磊", "wulei", "机关党委", Role.LIAISON, liaises=tuple(reversed(branches)))
    chat.say("wangsj", "学习资料 党章第一章 截止 12月1日17:00")

    for said in ("学习进度 1", "进度 1"):
        reply = chat.say("wulei", said)
        assert reply.index("科研一处党支部") < reply.index("科研二处党支部") < reply.index("技术保障处党支部")
