"""会议 → notice → 签到 / 请假 → 批准 / 驳回 → 结束 (or the automatic close) → 纪要, through the real
encrypted callback endpoint, with the injected clock (2026-11-21 19:45 in Shanghai)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models.event import Event
from models.identity import Channel, ChannelIdentity
from models.meeting import (
    Attendance,
    AttendanceStatus,
    CheckInFailure,
    CheckInResult,
    LeaveRequest,
    LeaveStatus,
    Meeting,
    MeetingMinutes,
    MeetingStatus,
    Period,
    attendance_elsewhere,
    attendance_of,
    check_in,
    period_bounds,
)
from models.outbox import OutboxMessage
from models.person import Membership, MembershipKind, Person, Role
from tests.bot.conftest import wechat_settings  # noqa: F401  (fixture)
from tests.conftest import needs_postgres, redis_prefix
from tests.factories import BRANCH_A, org, person, small_tree
from tests.fakewx.conftest import fake_wechat  # noqa: F401  (fixture)

GROUP = BRANCH_A + "/第一党小组"
TEMP = "机关党委/第一党总支/项目组临时党支部"
SHANGHAI_OFFSET = timedelta(hours=8)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A November 2026 Shanghai wall-clock time as aware UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - SHANGHAI_OFFSET


@pytest.fixture
def people(db):
    """Branch A: 李娜 (书记), 周强 (组织委员), 张伟, 刘洋, and 吴芳 in its 第一党小组.
    Temporary branch: 何军 (书记), with 张伟 as a temporary member."""
    with db.session() as s:
        found = small_tree(s)
        found["zhouqiang"] = person(s, "周强", "zhouqiang", BRANCH_A, Role.ORGANISATION_MEMBER)
        found["wufang"] = person(s, "吴芳", "wufang", GROUP)
        found["hejun"] = person(s, "何军", "hejun", TEMP, Role.SECRETARY)
        s.add(Membership(person_id=found["zhangwei"].id, organisation_id=org(s, TEMP).id,
                         kind=MembershipKind.TEMPORARY))
        return {k: p.id for k, p in found.items()}


def code_in(reply: str) -> str:
    return re.search(r"签到码：(\d{4})", reply).group(1)


def count(db, model, *where) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def events(db, kind: str) -> list[Event]:
    with db.session() as s:
        return list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def outbox_to(db, recipient: str) -> list[OutboxMessage]:
    with db.session() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.recipient == recipient)
                              .order_by(OutboxMessage.id)))


# -- 会议 ---------------------------------------------------------------------------------------

def test_schedule_notifies_every_member_with_a_leave_card_and_gives_number_and_code(chat, db, people):
    reply = chat.say("lina", "会议 支部党员大会 明天 19:00 党员活动室（3楼）")
    assert reply.startswith("已安排 #1 综合处党支部 支部党员大会")
    assert "时间：2026年11月22日 19:00" in reply and "地点：党员活动室（3楼）" in reply
    assert "已通知 5 人" in reply  # 李娜 周强 张伟 刘洋, and 吴芳 of its 党小组
    assert "签到时间 2026年11月22日 18:30 至 2026年11月22日 19:30" in reply
    code = code_in(reply)
    with db.session() as s:
        meeting = s.get(Meeting, 1)
        assert meeting.checkin_code == code and meeting.starts_at == local(22, 19)
        assert meeting.status is MeetingStatus.SCHEDULED and not meeting.online
        notices = s.scalars(select(OutboxMessage).where(OutboxMessage.subject_type == "attendance")).all()
        assert sorted(m.recipient for m in notices) == ["lina", "liuyang", "wufang", "zhangwei", "zhouqiang"]
        assert len({m.content_key for m in notices}) == 1  # identical content → one batch
        card = notices[0].payload
        assert card["type"] == "card" and card["buttons"] == [{"key": "leave:1", "text": "请假"}]
        assert "2026年11月22日 19:00" in card["description"] and code not in str(card)
    assert events(db, "meeting.scheduled")[0].data["invited"] == 5
    assert events(db, "meeting.notified")[0].data == {"wecom": 5, "mp": 0, "unreachable": 0}


def test_meeting_code_is_shown_again_to_the_branch_committee_only(chat, db, people):
    code = code_in(chat.say("lina", "会议 党课 明天19:00"))
    assert f"签到码：{code}" in chat.say("lina", "会议码 1")
    assert f"签到码：{code}" in chat.say("zhouqiang", "会议码")  # the only open meeting of his branch
    assert "只有该支部的书记" in chat.say("chenjing", "会议码 1")
    assert "只有书记" in chat.say("zhangwei", "会议码 1")


def test_committee_meeting_goes_to_the_committee_only(chat, db, people):
    reply = chat.say("zhouqiang", "会议 支委会 明天19:00 书记办公室")
    assert "已通知 2 人" in reply
    assert sorted(m.recipient for m in outbox_to(db, "lina") + outbox_to(db, "zhouqiang")) == ["lina", "zhouqiang"]
    assert outbox_to(db, "zhangwei") == []


def test_group_meeting_named_group_goes_to_its_members(chat, db, people):
    reply = chat.say("lina", "会议 党小组会 明天19:00 第一党小组")
    assert reply.startswith("已安排 #1 综合处党支部第一党小组 党小组会") and "已通知 1 人" in reply
    assert "地点另行通知" in reply
    assert len(outbox_to(db, "wufang")) == 1 and outbox_to(db, "zhangwei") == []
    with db.session() as s:
        assert s.get(Meeting, 1).group.name == "第一党小组"


def test_online_meeting_needs_no_code(chat, db, people, clock):
    reply = chat.say("lina", "会议 主题党日 今天 20:00 线上 腾讯会议 123-456")
    assert "线上会议无需签到码" in reply and "地点：线上（腾讯会议 123-456）" in reply
    with db.session() as s:
        assert s.get(Meeting, 1).online and s.get(Meeting, 1).checkin_code is None
    answer = chat.say("liuyang", "签到")
    assert answer.startswith("签到成功：#1 综合处党支部 主题党日") and "2026年11月21日 19:45" in answer


@pytest.mark.parametrize(("text", "expected"), [
    ("会议 党课 今天8:00", "已经过去"),
    ("会议 党课 昨天", "已经过去"),
    ("会议 座谈会 明天19:00", "会议类型「座谈会」不认识。可选类型：支部党员大会、支委会、党小组会、党课、主题党日"),
    ("会议", "缺少会议类型"),
    ("会议 党课", "缺少时间"),
    ("会议 支部党员大会 明天19:00 第一党小组", "只有党小组会可以指定党小组"),
])
def test_schedule_refusals_give_the_reason(chat, db, people, text, expected):
    reply = chat.say("lina", text)
    assert reply.startswith("未安排") and expected in reply
    assert count(db, Meeting) == 0 and count(db, OutboxMessage) == 0


def test_a_clash_at_the_same_start_names_the_other_meeting(chat, db, people):
    chat.say("lina", "会议 支委会 明天19:00")
    reply = chat.say("zhouqiang", "会议 党课 明天 19:00 会议室")
    assert reply.startswith("未安排") and "已有会议 #1 综合处党支部 支委会" in reply and "冲突" in reply
    # Another branch at the same time is no clash.
    assert chat.say("chenjing", "会议 党课 明天19:00").startswith("已安排 #2")
    assert count(db, Meeting) == 2


def test_only_branch_committees_schedule(chat, db, people):
    assert "只有书记、副书记或支委" in chat.say("zhangwei", "会议 党课 明天19:00")
    assert "不是党支部的支委" in chat.say("wangsj", "会议 党课 明天19:00")  # secretary of the 机关党委
    assert count(db, Meeting) == 0


# -- 签到 ---------------------------------------------------------------------------------------

def test_checkin_with_code_and_a_second_checkin_answers_the_first_time(chat, db, people, clock):
    code = code_in(chat.say("lina", "会议 支部党员大会 今天20:00 党员活动室"))
    reply = chat.say("zhangwei", f"签到 {code}")
    assert reply.startswith("签到成功：#1 综合处党支部 支部党员大会") and "签到时间 2026年11月21日 19:45" in reply
    clock.advance(minutes=5)
    again = chat.say("zhangwei", f"签到 {code}")
    assert "已于 2026年11月21日 19:45 签到" in again
    assert "已于 2026年11月21日 19:45 签到" in chat.say("zhangwei", "签到")
    assert len(events(db, "checkin.recorded")) == 1
    with db.session() as s:
        row = s.scalar(select(Attendance).where(Attendance.status == AttendanceStatus.PRESENT))
        assert row.person.name == "张伟" and row.checked_in_at == clock() - timedelta(minutes=5)


def test_checkin_without_code_asks_for_it(chat, db, people):
    chat.say("lina", "会议 支部党员大会 今天20:00")
    assert "签到需要会议码" in chat.say("liuyang", "签到")
    assert count(db, CheckInFailure) == 0


def test_checkin_window_is_inclusive_at_both_edges(chat, db, people, clock):
    code = code_in(chat.say("lina", "会议 支部党员大会 今天21:00"))
    clock.set(local(21, 20, 29))
    assert "将于 2026年11月21日 20:30 开放" in chat.say("zhangwei", f"签到 {code}")
    clock.set(local(21, 20, 30))
    assert chat.say("zhangwei", f"签到 {code}").startswith("签到成功")
    clock.set(local(21, 21, 30))
    assert "签到时间 2026年11月21日 21:30" in chat.say("liuyang", f"签到 {code}")
    clock.set(local(21, 21, 31))
    late = chat.say("wufang", f"签到 {code}")
    assert "签到已于 2026年11月21日 21:30 截止" in late
    assert count(db, Attendance, Attendance.status == AttendanceStatus.PRESENT) == 2


def test_five_wrong_codes_lock_the_person_out_for_ten_minutes(chat, db, people, clock):
    code = code_in(chat.say("lina", "会议 支部党员大会 今天20:00"))
    wrong = "0000" if code != "0000" else "1111"
    for tries_left in (4, 3, 2, 1):
        assert f"还可尝试 {tries_left} 次" in chat.say("zhangwei", f"签到 {wrong}")
        clock.advance(minutes=1)
    locked = chat.say("zhangwei", f"签到 {wrong}")  # 5th within 10 minutes, at 19:49
    assert "签到已暂停至 2026年11月21日 19:59" in locked
    clock.advance(minutes=9, seconds=59)
    assert "暂停至" in chat.say("zhangwei", f"签到 {code}")  # the right code does not help while locked
    assert chat.say("liuyang", f"签到 {code}").startswith("签到成功")  # others are not affected
    clock.advance(seconds=1)
    assert chat.say("zhangwei", f"签到 {code}").startswith("签到成功")
    with db.session() as s:  # the lock is a database row: it survives restarts and spans processes
        assert s.scalar(select(func.count()).where(CheckInFailure.locks_until.is_not(None))) == 1
    assert len(events(db, "checkin.locked")) == 1


def test_failures_spread_over_more_than_ten_minutes_do_not_lock(chat, db, people, clock):
    code = code_in(chat.say("lina", "会议 支部党员大会 今天20:00"))
    clock.set(local(21, 19, 30))
    wrong = "0000" if code != "0000" else "1111"
    for _ in range(4):
        chat.say("zhangwei", f"签到 {wrong}")
    clock.advance(minutes=10)
    assert "还可尝试 4 次" in chat.say("zhangwei", f"签到 {wrong}")


def test_closed_meeting_refuses_checkin(chat, db, people, clock):
    code = code_in(chat.say("lina", "会议 支部党员大会 今天20:00"))
    clock.set(local(21, 20, 5))
    assert chat.say("lina", "结束 1").startswith("#1 综合处党支部 支部党员大会")
    reply = chat.say("liuyang", f"签到 {code}")
    assert "已于 2026年11月21日 20:05 结束，不能再签到" in reply


def test_no_meeting_to_check_in_to(chat, db, people):
    assert "没有需要签到的会议" in chat.say("zhangwei", "签到 1234")


def _checkin_concurrently(db, meeting_id: int, person_id: int, code: str, at: datetime, n: int) -> list:
    barrier = threading.Barrier(n)
    results: list = []

    def one():
        with db.session() as s:
            meeting, who = s.get(Meeting, meeting_id), s.get(Person, person_id)
            barrier.wait()
            results.append(check_in(s, meeting, who, at=at, code=code).result)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@needs_postgres
def test_concurrent_duplicate_checkins_record_one(chat, db, people, clock):
    code = code_in(chat.say("lina", "会议 支部党员大会 今天20:00"))
    results = _checkin_concurrently(db, 1, people["zhangwei"], code, clock(), 8)
    assert sorted(results) == sorted([CheckInResult.CHECKED_IN] + [CheckInResult.ALREADY] * 7)
    assert count(db, Attendance, Attendance.person_id == people["zhangwei"],
                 Attendance.status == AttendanceStatus.PRESENT) == 1
    assert len(events(db, "checkin.recorded")) == 1


@needs_postgres
def test_concurrent_checkins_of_someone_who_joined_after_scheduling_record_one(chat, db, people, clock):
    code = code_in(chat.say("lina", "会议 支部党员大会 今天20:00"))
    with db.session() as s:
        newcomer = person(s, "郑强", "zhengqiang", BRANCH_A).id  # no attendance row yet
    results = _checkin_concurrently(db, 1, newcomer, code, clock(), 6)
    assert results.count(CheckInResult.CHECKED_IN) == 1 and results.count(CheckInResult.ALREADY) == 5
    assert count(db, Attendance, Attendance.person_id == newcomer) == 1


# -- 请假 ---------------------------------------------------------------------------------------

def test_leave_goes_to_the_branch_committee_and_the_member_hears_the_decision(chat, db, people):
    chat.say("lina", "会议 支部党员大会 明天19:00")
    reply = chat.say("zhangwei", "请假 1 出差在外，无法参加")
    assert reply.startswith("已提交请假 #2：#1 综合处党支部 支部党员大会（2026年11月22日 19:00）")
    assert "理由：出差在外，无法参加" in reply
    for secretary in ("lina", "zhouqiang"):
        card = [m for m in outbox_to(db, secretary) if m.subject_type == "leave_request"][0].payload
        assert card["type"] == "card" and "出差在外" in card["description"]
        assert card["buttons"] == [{"key": "approve:1", "text": "批准"}, {"key": "reject:1", "text": "驳回"}]
    assert "正在等待审批" in chat.say("zhangwei", "请假 1 出差")
    decided = chat.say("lina", "批准 2")  # the leave request's number follows the meeting's
    assert decided.startswith("已批准 张伟 的请假 #2") and "已通知本人" in decided
    told = [m for m in outbox_to(db, "zhangwei") if m.subject_type == "leave_request"]
    assert len(told) == 1 and "已批准（李娜，2026年11月21日 19:45）" in told[0].payload["text"]
    assert "由李娜批准" in chat.say("zhouqiang", "批准 2")
    assert "已于 2026年11月21日 19:45 批准" in chat.say("zhangwei", "请假 1 还是出差")
    assert [e.kind for e in events(db, "leave.requested") + events(db, "leave.approved")] == \
        ["leave.requested", "leave.approved"]


def test_reject_button_asks_for_the_reason_in_words_and_changes_nothing(chat, db, people):
    chat.say("lina", "会议 支部党员大会 明天19:00")
    chat.say("liuyang", "请假 家中有事")  # the only coming meeting: number left out
    assert chat.tap("zhouqiang", "leave-1", "reject:1") == (
        "请回复「驳回 2 理由」驳回 刘洋 的请假 #2，例如：驳回 2 会议重要，请调整安排。")  # the number, not the row
    with db.session() as s:
        assert s.get(LeaveRequest, 1).status is LeaveStatus.PENDING
    assert not [m for m in outbox_to(db, "zhouqiang") if m.payload["type"] == "card_update"]
    assert chat.say("zhouqiang", "驳回 2 会议重要").startswith("已驳回 刘洋 的请假 #2")
    with db.session() as s:
        leave = s.get(LeaveRequest, 1)
        assert leave.status is LeaveStatus.REJECTED and leave.decided_by.name == "周强"
    told = [m for m in outbox_to(db, "liuyang") if m.subject_type == "leave_request"][0].payload["text"]
    assert "已驳回" in told and "请按时参加" in told
    assert len(events(db, "leave.rejected")) == 1
    assert "无需再次审批" in chat.tap("lina", "leave-1", "reject:1")


def test_reject_by_text_with_a_reason(chat, db, people):
    chat.say("lina", "会议 支部党员大会 明天19:00")
    chat.say("liuyang", "请假 1 家中有事")
    assert "理由：会议很重要，请调整" in chat.say("lina", "驳回 2 会议很重要，请调整")
    told = [m for m in outbox_to(db, "liuyang") if m.subject_type == "leave_request"][0].payload["text"]
    assert "理由：会议很重要，请调整" in told


def test_leave_card_button_asks_for_the_reason(chat, db, people):
    chat.say("lina", "会议 支部党员大会 明天19:00")
    assert "请回复「请假 1 理由」" in chat.tap("zhangwei", "meeting-1", "leave:1")
    assert count(db, LeaveRequest) == 0


def test_leave_refusals(chat, db, people, clock):
    chat.say("lina", "会议 支委会 今天20:00")
    assert "请写明请假理由" in chat.say("zhouqiang", "请假 1")
    assert "不是您需要参加的会议" in chat.say("zhangwei", "请假 1 出差")  # 支委会: committee only
    assert "没有编号为 #9 的会议" in chat.say("zhangwei", "请假 9 出差")
    clock.set(local(21, 20, 0))
    reply = chat.say("zhouqiang", "请假 1 临时有事")
    assert "已于 2026年11月21日 20:00 开始" in reply and "不能再请假" in reply
    assert "不能再请假" in chat.tap("zhouqiang", "meeting-1", "leave:1")
    assert count(db, LeaveRequest) == 0


def test_only_the_meetings_branch_committee_decides_leave(chat, db, people):
    chat.say("lina", "会议 支部党员大会 明天19:00")
    chat.say("zhangwei", "请假 1 出差")
    assert "只有该支部的书记" in chat.say("chenjing", "批准 2")
    assert "只有该支部的书记" in chat.tap("liuyang", "leave-1", "approve:1")
    assert "只有书记" in chat.say("liuyang", "批准 2")
    with db.session() as s:
        assert s.get(LeaveRequest, 1).status is LeaveStatus.PENDING


def test_followers_of_the_official_account_get_text_with_the_commands(chat, db, people, clock):
    with db.session() as s:
        member = person(s, "钱敏", None, BRANCH_A)
        s.add(ChannelIdentity(channel=Channel.MP, external_id="o-qianmin", person_id=member.id,
                              last_inbound_at=clock() - timedelta(hours=1)))
        secretary = person(s, "冯涛", None, BRANCH_A, Role.PUBLICITY_MEMBER)
        s.add(ChannelIdentity(channel=Channel.MP, external_id="o-fengtao", person_id=secretary.id,
                              last_inbound_at=clock() - timedelta(hours=1)))
    chat.say("lina", "会议 支部党员大会 明天19:00")
    notice = outbox_to(db, "o-qianmin")[0].payload
    assert notice["type"] == "text" and "请假 1 理由" in notice["text"] and "2026年11月22日 19:00" in notice["text"]
    chat.say("zhangwei", "请假 1 出差")
    request = [m for m in outbox_to(db, "o-fengtao") if m.subject_type == "leave_request"][0].payload
    assert request["type"] == "text" and "「批准 2」" in request["text"] and "「驳回 2 理由」" in request["text"]


# -- 结束, the automatic close, 纪要 --------------------------------------------------------------

def test_close_records_absentees_and_answers_with_the_attendance(chat, db, people, clock):
    code = code_in(chat.say("lina", "会议 支部党员大会 今天20:00"))
    chat.say("liuyang", "请假 1 出差")
    chat.say("lina", "批准 2")
    chat.say("zhouqiang", "请假 1 生病")  # pending, never decided: absent without approved leave
    assert "尚未开始" in chat.say("lina", "结束 1")
    clock.set(local(21, 19, 50))
    chat.say("zhangwei", f"签到 {code}")
    clock.advance(minutes=2)
    chat.say("lina", f"签到 {code}")
    clock.set(local(21, 21, 10))
    reply = chat.say("lina", "结束 1")
    lines = reply.split("\n")
    assert lines[0] == "#1 综合处党支部 支部党员大会（2026年11月21日 20:00），已于 2026年11月21日 21:10 结束"
    assert lines[1] == "应到 5 实到 2 请假 1 缺席 2"
    assert lines[2] == "实到：张伟、李娜" and lines[3] == "请假：刘洋"  # in check-in order
    assert lines[4] == "缺席：周强、吴芳"  # in roster order
    assert "已于 2026年11月21日 21:10 结束" in chat.say("lina", "结束 1")
    with db.session() as s:
        statuses = dict(s.execute(select(Person.name, Attendance.status).join(Attendance.person)).all())
        assert statuses == {"李娜": AttendanceStatus.PRESENT, "张伟": AttendanceStatus.PRESENT,
                            "刘洋": AttendanceStatus.ON_LEAVE, "周强": AttendanceStatus.ABSENT,
                            "吴芳": AttendanceStatus.ABSENT}
    assert len(events(db, "attendance.absent")) == 2
    closed = events(db, "meeting.closed")[0]
    assert closed.data["automatic"] is False and closed.data["absent"] == 2


def test_close_is_for_the_meetings_branch_committee(chat, db, people, clock):
    chat.say("lina", "会议 支部党员大会 今天20:00")
    clock.set(local(21, 20, 30))
    assert "只有该支部的书记" in chat.say("chenjing", "结束 1")
    assert "只有书记" in chat.say("zhangwei", "结束 1")
    assert count(db, Meeting, Meeting.status == MeetingStatus.CLOSED) == 0


def test_automatic_close_thirty_minutes_after_the_end_pushes_the_attendance_line(app, chat, db, people, clock):
    from scheduler.jobs import tick

    runtime = app.extensions["zhitong"]
    code = code_in(chat.say("lina", "会议 支部党员大会 今天20:00"))  # 90 minutes: ends 21:30
    chat.say("zhangwei", f"签到 {code}")
    clock.set(local(21, 21, 59))
    tick(runtime)
    assert count(db, Meeting, Meeting.status == MeetingStatus.CLOSED) == 0
    clock.set(local(21, 22, 0))
    tick(runtime)
    tick(runtime)  # a second tick finds nothing to close
    with db.session() as s:
        assert s.get(Meeting, 1).status is MeetingStatus.CLOSED and s.get(Meeting, 1).closed_by_id is None
    for secretary in ("lina", "zhouqiang"):
        pushed = [m for m in outbox_to(db, secretary) if m.subject_type == "meeting"]
        assert len(pushed) == 1
        text = pushed[0].payload["text"]
        assert "应到 5 实到 1 请假 0 缺席 4" in text and "实到：张伟" in text and "已于 2026年11月21日 22:00 自动结束" in text
    assert len(events(db, "meeting.closed")) == 1 and events(db, "meeting.closed")[0].data["automatic"] is True
    assert "已于 2026年11月21日 22:00 结束" in chat.say("liuyang", f"签到 {code}")


def test_minutes_are_dated_and_several_are_kept(chat, db, people, clock):
    chat.say("lina", "会议 支部党员大会 今天20:00")
    assert "开始后才能记录纪要" in chat.say("lina", "纪要 1 提前写")
    clock.set(local(21, 21, 0))
    first = chat.say("lina", "纪要 1 学习了全会精神；讨论了下季度工作。")
    assert "第 1 份纪要" in first and "记录人 李娜，时间 2026年11月21日 21:00" in first
    clock.set(local(22, 9, 0))
    chat.say("lina", "结束 1")
    assert "第 2 份纪要" in chat.say("zhouqiang", "纪要 1 补充：会后整改事项三项")
    assert "只有该支部的书记" in chat.say("chenjing", "纪要 1 不该记下")
    assert "请写明会议编号" in chat.say("lina", "纪要 学习了")
    with db.session() as s:
        rows = s.scalars(select(MeetingMinutes).order_by(MeetingMinutes.id)).all()
        assert [(m.author.name, m.written_at, m.text) for m in rows] == [
            ("李娜", local(21, 21), "学习了全会精神；讨论了下季度工作。"),
            ("周强", local(22, 9), "补充：会后整改事项三项"),
        ]
    assert len(events(db, "meeting.minutes")) == 2


# -- temporary branches, 待办 -------------------------------------------------------------------

def test_temporary_branch_attendance_is_visible_to_the_home_branch(chat, db, people, clock):
    reply = chat.say("hejun", "会议 支部党员大会 今天20:00 项目部会议室")
    assert reply.startswith("已安排 #1 项目组临时党支部 支部党员大会") and "已通知 2 人" in reply
    code = code_in(reply)
    answer = chat.say("zhangwei", f"签到 {code}")
    assert answer.startswith("签到成功：#1 项目组临时党支部 支部党员大会")
    clock.set(local(21, 21, 0))
    summary = chat.say("hejun", "结束 1")
    assert "应到 2 实到 1 请假 0 缺席 1" in summary and "实到：张伟（综合处党支部）" in summary
    copy = [m for m in outbox_to(db, "lina") if m.subject_type == "meeting"]
    assert len(copy) == 1 and "张伟 签到 2026年11月21日 19:45" in copy[0].payload["text"]
    assert "项目组临时党支部" in copy[0].payload["text"]
    start, end = period_bounds(Period.MONTH, local(21, 12))
    with db.session() as s:
        mine = attendance_of(s, people["zhangwei"], start, end)
        assert [(m.organisation.name, a.status) for m, a in mine] == [("项目组临时党支部", AttendanceStatus.PRESENT)]
        seen = attendance_elsewhere(s, org(s, BRANCH_A).id, start, end)
        assert [(m.id, a.person.name) for m, a in seen] == [(1, "张伟")]


def test_todo_lists_coming_meetings_with_the_checkin_window(chat, db, people, clock):
    code = code_in(chat.say("lina", "会议 支部党员大会 明天19:00 党员活动室"))
    chat.say("lina", "会议 支委会 今天20:00")
    todo = chat.say("zhangwei", "待办")
    assert ("[会议] #1 综合处党支部 支部党员大会，2026年11月22日 19:00 开始（党员活动室），"
            "签到时间 2026年11月22日 18:30 起，截止 2026年11月22日 19:30（回复「签到 会议码」）") in todo
    assert "#2" not in todo  # 支委会 is not his
    assert "[会议] #2 综合处党支部 支委会" in chat.say("zhouqiang", "待办")
    chat.say("zhangwei", "请假 1 出差")
    chat.say("lina", "批准 3")
    assert "没有待办" in chat.say("zhangwei", "待办")
    clock.set(local(22, 18, 45))
    chat.say("liuyang", f"签到 {code}")
    assert "[会议]" not in chat.say("liuyang", "待办")


def test_secretary_of_two_branches_names_the_branch(chat, db, people):
    from models.person import OrgRole

    with db.session() as s:
        s.add(OrgRole(person_id=people["sec_a"], organisation_id=org(s, TEMP).id, role=Role.DEPUTY_SECRETARY))
    reply = chat.say("lina", "会议 党课 明天19:00 会议室")
    assert "您是多个支部的支委（综合处党支部、项目组临时党支部），请在最后写明支部名称" in reply
    reply = chat.say("lina", "会议 党课 明天19:00 项目组临时党支部 会议室")
    assert reply.startswith("已安排 #1 项目组临时党支部 党课") and "地点：会议室" in reply


# -- end to end through the worker and the fake WeCom server -------------------------------------

@pytest.fixture
def wired(wechat_settings, clock, people):  # noqa: F811

    from bot.app import create_app
    from tests.conftest import Chat

    app = create_app(wechat_settings, clock=clock)
    runtime = app.extensions["zhitong"]
    if hasattr(runtime.store, "prefix"):
        runtime.store.prefix = redis_prefix()
    yield runtime, Chat(app.test_client(), clock)
    runtime.db.dispose()


def test_notice_and_leave_cards_reach_wecom_and_their_buttons_work(wired, fake_wechat):  # noqa: F811
    from bot import worker

    runtime, chat = wired
    chat.say("lina", "会议 支部党员大会 明天19:00 党员活动室")
    worker.drain_once(runtime)
    notice = fake_wechat.state.messages_for("zhangwei")[0]["body"]["template_card"]
    assert notice["main_title"]["title"] == "会议通知 #1 综合处党支部 支部党员大会"
    assert [b["key"] for b in notice["button_list"]] == ["leave:1"]
    assert "请回复「请假 1 理由」" in chat.tap("zhangwei", notice["task_id"], "leave:1")
    chat.say("zhangwei", "请假 1 出差在外")
    worker.drain_once(runtime)
    request = fake_wechat.state.messages_for("lina")[-1]["body"]["template_card"]
    assert [b["key"] for b in request["button_list"]] == ["approve:1", "reject:1"]
    assert chat.tap("lina", request["task_id"], "approve:1").startswith("已批准 张伟 的请假 #2")
    worker.drain_once(runtime)
    told = fake_wechat.state.messages_for("zhangwei")[-1]["body"]
    assert told["msgtype"] == "text" and "已批准" in told["text"]["content"]
    assert fake_wechat.state.stats()["card_updates"] == 1
