"""范围 in 发布 and 学习资料: one 党总支, two branches, 支委 only, and names outside one's subtree."""

from __future__ import annotations

from sqlalchemy import func, select

from models.directive import Delivery, DeliveryRole, Directive
from models.person import Role
from tests.factories import person, small_tree

BRANCH_C = "机关党委/第二党总支/科研党支部"


def _seed(db):
    with db.session() as s:
        people = small_tree(s)
        people["sec_gen2"] = person(s, "钱总支", "qianzz", "机关党委/第二党总支", Role.SECRETARY)
        people["sec_c"] = person(s, "孙科研", "sunky", BRANCH_C, Role.SECRETARY)
        people["kyuan"] = person(s, "周研", "zhouyan", BRANCH_C)
        people["committee_a"] = person(s, "吴委员", "wuwy", "机关党委/第一党总支/综合处党支部", Role.ORGANISATION_MEMBER)
    return people


def _task_names(db, number: int) -> set[str]:
    with db.session() as s:
        rows = s.scalars(select(Delivery).where(Delivery.directive_id == number, Delivery.role == DeliveryRole.TASK))
        return {d.person.name for d in rows}


def test_publish_to_one_general_branch_names_it_and_reaches_only_it(chat, db):
    _seed(db)
    reply = chat.say("wangsj", "发布 报送材料\n范围 第一党总支\n请各支部报送。\n截止 12月1日17:00")
    assert reply.startswith("已发布 #1，推送 6 人：第一党总支 6 人")
    assert _task_names(db, 1) == {"李娜", "张伟", "刘洋", "吴委员", "陈静", "赵磊"}
    with db.session() as s:
        assert s.get(Directive, 1).body == "请各支部报送。"  # the 范围 line leaves the body
        copies = s.scalars(select(Delivery).where(Delivery.role == DeliveryRole.COPY)).all()
        assert [d.person.name for d in copies] == []  # 第二党总支's secretary is not on the way


def test_publish_to_two_branches_in_different_general_branches(chat, db):
    _seed(db)
    reply = chat.say("wangsj", "发布 报送材料\n范围 财务处党支部、科研党支部")
    assert "推送 4 人：财务处党支部 2 人、科研党支部 2 人" in reply
    assert _task_names(db, 1) == {"陈静", "赵磊", "孙科研", "周研"}
    with db.session() as s:
        copies = s.scalars(select(Delivery).where(Delivery.role == DeliveryRole.COPY)).all()
        assert [d.person.name for d in copies] == ["钱总支"]  # on the way to 科研党支部


def test_publish_to_committees_only(chat, db):
    _seed(db)
    reply = chat.say("wangsj", "发布 支委会议通知\n范围 支委")
    assert "推送 4 人（仅支委）：综合处党支部 2 人、财务处党支部 1 人、科研党支部 1 人" in reply
    assert _task_names(db, 1) == {"李娜", "吴委员", "陈静", "孙科研"}


def test_a_general_branch_secretary_targets_within_their_subtree_only(chat, db):
    _seed(db)
    refused = chat.say("qianzz", "发布 报送材料\n范围 综合处党支部")
    assert refused.startswith("未发布：不在第二党总支范围内「综合处党支部」") and "科研党支部" in refused
    unknown = chat.say("qianzz", "发布 报送材料\n范围 科研支部")
    assert unknown.startswith("未发布：没有找到「科研支部」") and "科研党支部" in unknown
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Directive)) == 0
    assert "推送 2 人：科研党支部 2 人" in chat.say("qianzz", "发布 报送材料\n范围 机关党委/第二党总支/科研党支部")


def test_nested_names_count_once_under_the_top_most(chat, db):
    _seed(db)
    reply = chat.say("wangsj", "发布 报送材料\n范围 第一党总支、综合处党支部")
    assert "推送 6 人：第一党总支 6 人。" in reply


def test_study_targets_and_needs_no_link(chat, db):
    _seed(db)
    reply = chat.say("wangsj", "学习资料 《习近平谈治国理政》第四卷第一章 截止 12月5日\n纸质书已发至各支部\n范围 科研党支部")
    assert reply.startswith("已布置学习 #1，推送 2 人：科研党支部 2 人，截止 2026年12月5日 23:59")
    with db.session() as s:
        item = s.get(Directive, 1)
        assert item.link is None and item.title == "《习近平谈治国理政》第四卷第一章"
        assert item.body == "纸质书已发至各支部"
    listed = chat.say("zhouyan", "学习")
    assert "#1 《习近平谈治国理政》第四卷第一章" in listed and "纸质书已发至各支部" in listed
    assert "None" not in listed
    assert "已确认学完 #1" in chat.say("zhouyan", "已学 1 很有收获")


def test_progress_and_receipts_of_a_part_left_out_say_it_was_not_sent_there(chat, db):
    """A branch secretary inside the issuing committee may look at its directives; when 范围 left
    their branch out, 进度 and 回执 say so instead of a bare 0/0, as 催办 does."""
    _seed(db)
    assert chat.say("wangsj", "发布 报送材料\n范围 第一党总支\n截止 12月1日17:00").startswith("已发布 #1")
    progress = chat.say("sunky", "进度 1").split("\n")
    assert progress[0] == "已确认 0/0"
    assert progress[2] == "#1 没有发给科研党支部（发布时限定了范围）。"
    receipts = chat.say("sunky", "回执 1").split("\n")
    assert receipts[1] == "#1 没有发给科研党支部（发布时限定了范围）。"
    assert not any("还没有人报告完成" in line for line in receipts)
    assert chat.say("sunky", "催办 1") == "#1 没有发给科研党支部，无需您催办。"
    # Within the 范围 nothing changes.
    assert "没有发给" not in chat.say("lina", "进度 1") and "没有发给" not in chat.say("lina", "回执 1")
