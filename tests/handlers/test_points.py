"""积分 from what people do, 申报 → card → 核实 / 驳回, 积分 姓名, through the real callback endpoint."""

from __future__ import annotations

from sqlalchemy import func, select

from models.outbox import OutboxMessage
from models.points import PointsEntry
from models.self_report import ReportStatus, SelfReport
from tests.factories import small_tree

PUBLISH = "发布 学习贯彻全会精神\n请各支部组织专题学习。\n截止 12月1日17:00"


def _seed(db):
    with db.session() as s:
        return small_tree(s)


def _entries(db, person_name: str | None = None) -> list[tuple[str, int, str | None]]:
    from models.person import Person

    with db.session() as s:
        stmt = select(PointsEntry.rule, PointsEntry.points, PointsEntry.capped).order_by(PointsEntry.id)
        if person_name:
            stmt = stmt.join(Person, Person.id == PointsEntry.person_id).where(Person.name == person_name)
        return [tuple(r) for r in s.execute(stmt)]


def test_acknowledging_and_completing_show_up_in_points(chat, db, clock):
    _seed(db)
    chat.say("wangsj", PUBLISH)
    chat.say("zhangwei", "收到 1")
    chat.say("zhangwei", "收到 1")  # again: nothing doubled
    chat.say("zhangwei", "完成 1 已组织学习")
    assert _entries(db, "张伟") == [("directive_acknowledged", 1, None), ("directive_completed", 1, None)]
    reply = chat.say("zhangwei", "积分")
    lines = reply.split("\n")
    assert lines[0] == "张伟的积分"
    assert lines[1] == "2026年11月：2 分（学习培训 0、工作履职 2、参加活动 0、诚信品德 0），星级 —"
    assert "2026年11月21日 19:45 报告任务办结 #1 工作履职 +1" in reply
    assert "2026年11月21日 19:45 按时确认收到通知 #1 工作履职 +1" in reply
    assert "不计在线时长" in reply


def test_a_late_acknowledgement_earns_nothing_but_completion_does(chat, db, clock):
    _seed(db)
    chat.say("wangsj", PUBLISH)
    clock.advance(days=11)  # past 12月1日17:00
    chat.say("liuyang", "完成 1")
    assert _entries(db, "刘洋") == [("directive_completed", 1, None)]


def test_study_confirmed_and_meeting_attendance_count(chat, db, clock):
    import re

    _seed(db)
    chat.say("wangsj", "学习资料 党章第一章 https://example.cn/a 截止 12月5日")
    chat.say("zhangwei", "已学 1")
    scheduled = chat.say("lina", "会议 党课 今天 20:00 党员活动室")
    code, number = re.search(r"签到码：(\d{4})", scheduled).group(1), re.search(r"#(\d+)", scheduled).group(1)
    chat.say("zhangwei", f"签到 {code}")
    clock.advance(hours=1)
    assert "缺席" in chat.say("lina", f"结束 {number}")
    assert ("study_confirmed", 2, None) in _entries(db, "张伟")
    assert ("meeting_attended", 3, None) in _entries(db, "张伟")
    assert _entries(db, "刘洋") == [("meeting_absent", -2, None)]  # no check-in, no leave
    assert f"无故缺席会议 #{number} 参加活动 -2" in chat.say("liuyang", "积分")  # the meeting's number


def test_self_report_verified_through_the_card_and_the_member_told(chat, db, clock):
    _seed(db)
    reply = chat.say("zhangwei", "申报 工作履职 协助社区开展防汛值守")
    n = _number(reply)
    assert reply.startswith(f"已提交积分申报 #{n}（工作履职：协助社区开展防汛值守），已转支部书记核实")
    assert "无需提供照片或截图" in reply
    with db.session() as s:
        card = s.scalar(select(OutboxMessage).where(OutboxMessage.subject_type == "self_report"))
        assert card.recipient == "lina"
        assert card.payload["buttons"] == [{"key": f"claim_ok:{n}", "text": "核实"}, {"key": f"claim_no:{n}", "text": "驳回"}]
    assert "请回复「驳回 1 理由」" in chat.tap("lina", "self-report-1", f"claim_no:{n}")
    assert "工作履职可申报 1–5 分" in chat.say("lina", f"核实 {n} 9")  # out of range: nothing changes
    assert _entries(db) == []
    assert (f"· [申报] #{n} 张伟 申报工作履职：协助社区开展防汛值守（回复「核实 {n}」或「驳回 {n} 理由」）"
            in chat.say("lina", "待办").splitlines())  # waiting for her, in her 待办 until decided
    assert chat.say("lina", f"核实 {n} 3").startswith(f"已核实 张伟 的积分申报 #{n}（工作履职），记 3 分。已通知本人")
    assert "无需再次处理" in chat.say("lina", f"核实 {n}")
    assert f"#{n}" not in chat.say("lina", "待办")
    assert _entries(db, "张伟") == [("self_report", 3, None)]
    with db.session() as s:
        told = s.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "zhangwei",
                                                     OutboxMessage.subject_type == "self_report")).all()
        assert len(told) == 1 and "已由李娜核实，记 3 分" in told[0].payload["text"]
    assert f"申报核实 #{n} 工作履职 +3" in chat.say("zhangwei", "积分")


def test_self_report_rejected_with_a_reason_and_refusals(chat, db):
    _seed(db)
    assert "请先写类别" in chat.say("zhangwei", "申报 协助社区")
    assert "请写明申报的内容" in chat.say("zhangwei", "申报 诚信品德")
    n = _number(chat.say("zhangwei", "申报 诚信 拾金不昧"))
    assert "只有该支部的书记" in chat.say("chenjing", f"驳回 {n} 不是本支部")  # another branch's secretary
    assert "请写明驳回理由" in chat.say("lina", f"驳回 {n}")
    reply = chat.say("lina", f"驳回 {n} 情况不属实")
    assert reply.startswith(f"已驳回 张伟 的积分申报 #{n}，理由：情况不属实。")
    with db.session() as s:
        report = s.scalar(select(SelfReport))
        assert report.status is ReportStatus.REJECTED and report.reason == "情况不属实"
        assert s.scalar(select(func.count()).select_from(PointsEntry)) == 0


def _number(reply: str) -> int:
    """The number a 申报 was given (numbers are shared by every kind of item)."""
    import re

    return int(re.search(r"积分申报 #(\d+)", reply).group(1))


def test_points_by_name_for_the_branch_secretaries_only(chat, db):
    _seed(db)
    chat.say("wangsj", PUBLISH)
    chat.say("zhangwei", "收到 1")
    assert chat.say("lina", "积分 张伟").startswith("张伟的积分\n2026年11月：1 分")
    assert "只有本人和所在支部的书记" in chat.say("chenjing", "积分 张伟")
    assert "只有本人和所在支部的书记" in chat.say("liuyang", "积分 张伟")


def test_a_withdrawn_directive_takes_its_points_back_by_compensating_entries(chat, db, clock):
    _seed(db)
    chat.say("wangsj", PUBLISH)
    chat.say("zhangwei", "收到 1")
    chat.say("zhangwei", "完成 1 已组织学习")
    clock.advance(hours=1)
    assert chat.say("wangsj", "撤回 1 重复发布").startswith("已撤回")
    entries = _entries(db, "张伟")
    assert [points for _rule, points, _capped in entries] == [1, 1, -1, -1]  # nothing updated, two reversals
    assert "张伟的积分\n2026年11月：0 分" in chat.say("zhangwei", "积分")
    chat.say("wangsj", "撤回 1")  # already withdrawn: nothing reversed twice
    assert len(_entries(db, "张伟")) == 4


def test_a_cancelled_meeting_takes_back_a_check_in_made_in_its_window(chat, db, clock):
    import re

    _seed(db)
    reply = chat.say("lina", "会议 支部党员大会 今天20:10 党员活动室")
    number, code = re.search(r"#(\d+)", reply).group(1), re.search(r"签到码：(\d{4})", reply).group(1)
    assert chat.say("zhangwei", f"签到 {code}").startswith("签到成功")  # 19:45: the window has opened
    assert [p for _r, p, _c in _entries(db, "张伟")] == [3]  # 参加活动 3 a meeting (the built-in rules)
    assert chat.say("lina", f"取消 {number} 临时有变").startswith("已取消")
    assert [p for _r, p, _c in _entries(db, "张伟")] == [3, -3]
