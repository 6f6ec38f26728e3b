"""People's own words through the real encrypted endpoint (SPEC §3): acknowledgements, 已完成, study,
leave, 同意/不同意, a bare check-in code, lists, 进度 alone, 开会, one-line 发布 deadlines, 没看懂,
a phone-sized 帮助, and numbers and times that used to raise. Clock: 2026-11-21 19:45 Shanghai."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from models.directive import Delivery, Directive
from models.event import Event
from models.meeting import Attendance, AttendanceStatus, LeaveRequest, LeaveStatus, Meeting
from tests.factories import small_tree


@pytest.fixture
def people(db):
    with db.session() as s:
        return {k: p.id for k, p in small_tree(s).items()}


def publish(chat, title: str = "学习贯彻全会精神", deadline: str = "12月1日17:00") -> int:
    reply = chat.say("wangsj", f"发布 {title}\n请各支部组织专题学习。\n截止 {deadline}")
    return int(re.search(r"已发布 #(\d+)", reply).group(1))


def acknowledged(db, directive_id: int, person_id: int) -> bool:
    with db.session() as s:
        return s.scalar(select(Delivery.acknowledged_at).where(
            Delivery.directive_id == directive_id, Delivery.person_id == person_id)) is not None


def events(db, kind: str) -> list[Event]:
    with db.session() as s:
        return list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


@pytest.mark.parametrize("text", ["收到了", "好的收到", "收到收到", "收到啦", "收到了，马上办", "好的", "ok", "收悉", "已阅",
                                  "确认", "收到[抱拳]", "收到👍", "ＯＫ", "收到！坚决完成任务"])
def test_everyday_acknowledgements_acknowledge(chat, db, people, text):
    number = publish(chat)
    reply = chat.say("zhangwei", text)
    assert reply.startswith(f"已确认收到 #{number}「学习贯彻全会精神」，时间 2026年11月21日 19:45"), reply
    assert acknowledged(db, number, people["zhangwei"])


@pytest.mark.parametrize("text", ["收到 1 3", "收到 1、3", "收到1，3", "全部收到"])
def test_several_numbers_or_all_acknowledge_each(chat, db, people, text):
    first, second, third = publish(chat, "一"), publish(chat, "二"), publish(chat, "三")
    reply = chat.say("zhangwei", text)
    assert f"已确认收到 #{first}「一」" in reply and f"已确认收到 #{third}「三」" in reply
    assert acknowledged(db, first, people["zhangwei"]) and acknowledged(db, third, people["zhangwei"])
    assert acknowledged(db, second, people["zhangwei"]) is (text == "全部收到")
    assert len(reply.splitlines()) == (3 if text == "全部收到" else 2)


def test_several_open_without_a_number_suggests_all(chat, people):
    publish(chat, "一")
    publish(chat, "二")
    assert "都已收到可回复「全部收到」" in chat.say("zhangwei", "收到了")


def test_done_without_a_number_when_one_task_is_open_and_a_second_note_is_appended(chat, db, clock, people):
    number = publish(chat)
    reply = chat.say("zhangwei", "已完成")
    assert reply.startswith(f"已记录 #{number}「学习贯彻全会精神」办结")
    clock.advance(minutes=30)
    reply = chat.say("zhangwei", f"完成 {number} 补充：学习记录已上传")
    assert reply == f"已补充 #{number}「学习贯彻全会精神」的办结说明（2026年11月21日 20:15）：补充：学习记录已上传"
    clock.advance(minutes=5)
    chat.say("zhangwei", f"完成 {number} 照片已发群里")
    with db.session() as s:
        note = s.scalar(select(Delivery.note).where(Delivery.person_id == people["zhangwei"]))
    assert note == "2026年11月21日 20:15 补充：补充：学习记录已上传\n2026年11月21日 20:20 补充：照片已发群里"
    added = events(db, "delivery.note_added")
    assert [e.data["note"] for e in added] == ["补充：学习记录已上传", "照片已发群里"]
    assert len(events(db, "delivery.completed")) == 1
    assert "如需补充说明" in chat.say("zhangwei", f"完成 {number}")  # no note: nothing to add


def test_done_without_a_number_and_nothing_open_says_so_and_names_the_last_task(chat, db, people):
    assert chat.say("zhangwei", "已完成") == "您目前没有需要报告办结的任务。"
    number = publish(chat)
    chat.say("zhangwei", "完成了")
    reply = chat.say("zhangwei", "完成了，谢谢")
    assert reply == f"您目前没有未办结的任务。如需补充已办结任务的说明，请写明编号，例如：完成 {number} 补充内容"
    assert len(events(db, "delivery.note_added")) == 0


def test_done_without_a_number_with_two_open_asks_which(chat, people):
    first, second = publish(chat, "一"), publish(chat, "二")
    assert f"您有 2 项任务未办结（#{first}、#{second}）" in chat.say("zhangwei", "完成")


@pytest.mark.parametrize("text", ["学完了", "已学习", "学习完毕"])
def test_study_phrasings_confirm_the_one_open_item(chat, db, people, text):
    chat.say("wangsj", "学习资料 党章第一章 https://example.cn/a 截止 12月5日")
    assert chat.say("zhangwei", text).startswith("已确认学完 #1「党章第一章」")
    with db.session() as s:
        assert s.scalar(select(Delivery.completed_at).where(Delivery.person_id == people["zhangwei"])) is not None


def meeting_code(reply: str) -> str:
    return re.search(r"签到码：(\d{4})", reply).group(1)


@pytest.mark.parametrize(("text", "reason"), [("我请假，孩子生病了", "孩子生病了"), ("请个假 明天出差", "明天出差"),
                                              ("我要请假 身体不适", "身体不适")])
def test_leave_phrasings_ask_leave(chat, db, people, text, reason):
    chat.say("lina", "会议 支部党员大会 明天19:00 党员活动室")
    assert chat.say("zhangwei", text).startswith("已提交请假 #2：")
    with db.session() as s:
        assert s.scalar(select(LeaveRequest.reason)) == reason


def test_i_want_leave_without_a_reason_asks_for_one(chat, people):
    chat.say("lina", "会议 支部党员大会 明天19:00 党员活动室")
    assert "请写明请假理由" in chat.say("zhangwei", "我要请假")


def test_approving_with_agree_and_disagree(chat, db, people):
    chat.say("lina", "会议 支部党员大会 明天19:00 党员活动室")
    chat.say("zhangwei", "请假 出差")
    assert chat.say("lina", "同意").startswith("已批准 张伟 的请假 #2")
    chat.say("liuyang", "请假 家中有事")
    assert chat.say("lina", "不同意 3 会议重要，请调整").startswith("已驳回 刘洋 的请假 #3")
    with db.session() as s:
        assert [(x.status, x.decision_note) for x in s.scalars(select(LeaveRequest).order_by(LeaveRequest.id))] == [
            (LeaveStatus.APPROVED, None), (LeaveStatus.REJECTED, "会议重要，请调整")]
    assert chat.say("lina", "同意 3").startswith("请假 #3（刘洋）已于")


def test_a_bare_code_checks_in_while_a_meeting_is_open_and_is_unread_otherwise(chat, db, people, clock):
    assert chat.say("zhangwei", "8391").startswith("没看懂「8391」")
    code = meeting_code(chat.say("lina", "会议 支部党员大会 今天20:00 党员活动室"))
    assert chat.say("zhangwei", code).startswith("签到成功：#1")
    with db.session() as s:
        assert s.scalar(select(Attendance.status).where(Attendance.person_id == people["zhangwei"])) \
            is AttendanceStatus.PRESENT
    clock.advance(hours=3)  # closed
    assert chat.say("liuyang", code).startswith(f"没看懂「{code}」")


@pytest.mark.parametrize("text", ["待办？", "代办", "我的待办", "待办事项", "查看待办"])
def test_todo_phrasings(chat, people, text):
    assert chat.say("zhangwei", text) == chat.say("zhangwei", "待办")


def test_progress_alone_lists_recent_directives_with_rates(chat, people):
    first, second = publish(chat, "一"), publish(chat, "二")
    chat.say("zhangwei", f"收到 {second}")
    reply = chat.say("wangsj", "进度")
    lines = reply.splitlines()
    assert lines[0] == "您最近发布的 2 条通知："
    assert lines[1] == f"· #{second} 二（2026年11月21日 19:45）已确认 1/5，20%"
    assert lines[2] == f"· #{first} 一（2026年11月21日 19:45）已确认 0/5，0%"
    assert chat.say("lina", "进度").startswith("您最近没有发布通知")


def test_progress_first_acknowledgement_in_plain_words_and_names_in_roster_order(chat, people):
    number = publish(chat)
    chat.say("zhangwei", "收到")
    report = chat.say("wangsj", f"进度 {number}")
    branch = next(line for line in report.splitlines() if "综合处党支部" in line)
    assert "首位确认用时 不到 1 分钟" in branch
    assert "未确认：李娜、刘洋" in branch  # roster order; by code point 刘 (U+5218) would come first
    other = next(line for line in report.splitlines() if "党支部" in line and "综合处" not in line)
    assert "陈静、赵磊" in other  # by code point 赵 (U+8D75) would come first


def test_kaihui_schedules_like_huiyi(chat, db, people):
    assert chat.say("lina", "开会 支委会 下周一19:00 党员活动室").startswith("已安排 #1")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Meeting)) == 1


def test_one_line_publish_keeps_its_deadline(chat, db, people):
    reply = chat.say("wangsj", "发布 关于缴纳12月党费的通知 截止 12月20日")
    assert reply.endswith("截止 2026年12月20日 23:59。发送「进度 1」查看确认情况。")
    with db.session() as s:
        directive = s.get(Directive, 1)
        assert directive.title == "关于缴纳12月党费的通知" and directive.deadline is not None


def test_a_deadline_line_anywhere_in_the_body(chat, db, people):
    reply = chat.say("wangsj", "发布 关于报送材料的通知\n截止时间：12月5日17:00\n请各支部按时报送。\n截止目前已有3个支部报送。")
    assert "截止 2026年12月5日 17:00" in reply
    with db.session() as s:
        assert s.get(Directive, 1).body == "请各支部按时报送。\n截止目前已有3个支部报送。"


def test_a_title_about_deadlines_keeps_its_title(chat, db, people):
    chat.say("wangsj", "发布 关于截止日期调整的通知")
    with db.session() as s:
        directive = s.get(Directive, 1)
        assert directive.title == "关于截止日期调整的通知" and directive.deadline is None


def test_a_past_time_is_refused_with_an_example_in_the_future(chat, db, people):
    reply = chat.say("wangsj", "发布 通知 截止 11月20日17:00")
    # 11月20日 is the next such date: 2027. Today's hour already past is the refused one.
    assert "2027年11月20日" in reply
    reply = chat.say("wangsj", "发布 通知\n正文\n截止 今天17:00")
    assert reply.startswith("未发布：截止时间有误，时间 2026年11月21日 17:00 已经过去")
    assert "例如：11月22日17:00" in reply
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Directive)) == 1


def test_unread_text_gets_the_closest_command_and_one_example(chat, people):
    assert chat.say("zhangwei", "收倒") == "没看懂「收倒」。您是想用「收到」吗？例如：收到 3\n发送「帮助」查看常用命令。"
    assert chat.say("zhangwei", "你好") == "没看懂「你好」。发送「帮助」查看常用命令，例如：待办"
    # Only commands this person may use are offered.
    assert "「发布」" not in chat.say("zhangwei", "发部 通知")
    assert "「发布」" in chat.say("wangsj", "发部 通知")


def test_help_fits_one_phone_screen_and_all_lists_the_rest(chat, people):
    for who in ("zhangwei", "lina", "wangsj", "sunll"):
        reply = chat.say(who, "帮助")
        assert len(reply.splitlines()) <= 12, who
    secretary = chat.say("lina", "帮助")
    assert secretary.splitlines()[-1].startswith("· 帮助 全部 — 查看其余 ")
    everything = chat.say("lina", "帮助 全部")
    assert len(everything.splitlines()) > len(secretary.splitlines())


def test_help_offers_meetings_only_to_branch_committees_and_refusal_agrees(chat, people):
    assert "· 会议 " not in chat.say("wangsj", "帮助 全部")  # secretary of the 机关党委, above the branches
    assert "「会议」由党支部安排" in chat.say("wangsj", "会议 党课 明天19:00")
    assert "· 会议 " in chat.say("lina", "帮助 全部")


@pytest.mark.parametrize("text", ["收到 ፩", "收到 99999999999", "完成 99999999999", "进度 99999999999", "请假 ፩ 出差",
                                  "收到 " + "9" * 10_000, "同意 " + "1" * 10_000, "签到 " + "8" * 10_000, "已学 三"])
def test_numbers_that_cannot_be_numbers_get_a_clear_answer(chat, db, people, text):
    publish(chat)
    who = {"进度": "wangsj", "同意": "lina"}.get(text[:2], "zhangwei")
    reply = chat.say(who, text)
    assert reply.startswith("编号「") and "最多 9 位的阿拉伯数字" in reply, reply[:80]
    assert len(reply) < 100
    assert not acknowledged(db, 1, people["zhangwei"])


@pytest.mark.parametrize("when", ["0001-01-01 00:00", "9999-12-31 23:59", "1" * 10_000])
def test_impossible_times_get_a_clear_answer(chat, db, people, when):
    reply = chat.say("wangsj", f"发布 通知\n正文\n截止 {when}")
    assert reply.startswith("未发布：截止时间有误"), reply[:80]
    reply = chat.say("lina", f"会议 党课 {when}")
    assert reply.startswith("未安排："), reply[:80]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Directive)) == 0
        assert s.scalar(select(func.count()).select_from(Meeting)) == 0


def test_card_tap_with_a_key_that_is_no_number_is_not_an_error(chat, people):
    publish(chat)
    for key in ("ack:፩", "study:" + "9" * 10_000, "leave:99999999999", "approve:፩"):
        response = chat.post(chat.wecom.card_tap("zhangwei", "directive-1", key))
        assert response.status_code == 200
        assert not response.data


@pytest.mark.parametrize(("text", "named"), [("发布 报送党员信息 截止 12月32日", "「12月32日」中的日期不存在"),
                                           ("发布 报送党员信息 截止时间：下周五下班前", "「下周五下班前」")])
def test_a_one_line_deadline_that_is_not_a_time_is_refused_not_kept_in_the_title(chat, db, people, text, named):
    reply = chat.say("wangsj", text)
    assert reply.startswith("未发布：截止时间有误，") and named in reply
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Directive)) == 0
    assert chat.say("wangsj", "发布 报送党员信息 截止 12月30日").startswith("已发布 #1，")
