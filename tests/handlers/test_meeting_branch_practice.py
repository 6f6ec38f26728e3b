"""Meetings as branches hold them: 议题, 时长 and the close after the end, clashes by overlap, the
yearly types, leave after check-in, leave in the secretary's and the member's 待办, and the watch
from the branch's arrival."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models.meeting import Meeting, MeetingStatus, MeetingType, Period, requirement_status
from models.org import find_by_path
from models.outbox import OutboxMessage
from models.person import Role
from tests.factories import BRANCH_A, person, small_tree


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
def people(db):
    with db.session() as s:
        found = small_tree(s)
        found["zhouqiang"] = person(s, "周强", "zhouqiang", BRANCH_A, Role.ORGANISATION_MEMBER)
        return {k: p.id for k, p in found.items()}


def test_topic_and_duration_are_recorded_shown_and_sent(chat, db, people):
    reply = chat.say("lina", "会议 组织生活会 明天19:00 党员活动室 时长 2小时\n一、对照检查\n二、开展批评和自我批评")
    assert reply.splitlines()[:4] == [
        "已安排 #1 综合处党支部 组织生活会",
        "时间：2026年11月22日 19:00 至 2026年11月22日 21:00（2 小时）",
        "地点：党员活动室",
        "议题：一、对照检查\n二、开展批评和自我批评".split("\n")[0],
    ]
    with db.session() as s:
        meeting = s.get(Meeting, 1)
        assert meeting.type is MeetingType.ORG_LIFE and meeting.duration_minutes == 120
        assert meeting.topic == "一、对照检查\n二、开展批评和自我批评" and meeting.location == "党员活动室"
        notice = s.scalars(select(OutboxMessage).where(OutboxMessage.subject_type == "attendance")).first()
        assert "议题：一、对照检查" in notice.payload["description"]
    detail = chat.say("zhangwei", "详情 1")
    assert "时间：2026年11月22日 19:00 至 2026年11月22日 21:00" in detail and "二、开展批评和自我批评" in detail


def test_default_duration_is_90_minutes_and_bad_durations_are_refused(chat, db, people):
    assert "时间：2026年11月22日 19:00 至 2026年11月22日 20:30（90 分钟）" in chat.say("lina", "会议 党课 明天19:00")
    assert "15 分钟到 12 小时" in chat.say("lina", "会议 党课 后天19:00 时长 20小时")
    assert "时长看不懂" in chat.say("lina", "会议 党课 后天19:00 时长 很久")
    assert "（90 分钟）" in chat.say("lina", "会议 主题党日 后天9:00 时长 一个半小时")
    with db.session() as s:
        assert [m.duration_minutes for m in s.scalars(select(Meeting).order_by(Meeting.id))] == [90, 90]


def test_overlapping_meetings_clash_and_back_to_back_ones_do_not(chat, db, people):
    chat.say("lina", "会议 支委会 明天19:00 时长 2小时")  # 19:00–21:00
    clash = chat.say("zhouqiang", "会议 党课 明天20:30")
    assert clash.startswith("未安排：综合处党支部在 2026年11月22日 19:00 至 2026年11月22日 21:00 已有会议 #1")
    assert "重叠" in clash
    earlier = chat.say("zhouqiang", "会议 党课 明天18:00")  # 18:00–19:30 overlaps too
    assert earlier.startswith("未安排") and "#1" in earlier
    assert chat.say("zhouqiang", "会议 党课 明天21:00").startswith("已安排 #2")  # starts at the end
    assert chat.say("zhouqiang", "会议 主题党日 明天17:30").startswith("已安排 #3")  # ends at 19:00


def test_the_meeting_closes_by_itself_thirty_minutes_after_its_end(app, chat, db, people, clock):
    from scheduler.jobs import tick

    runtime = app.extensions["zhitong"]
    chat.say("lina", "会议 支部党员大会 今天20:00 时长 3小时")  # ends 23:00
    clock.set(local(21, 23, 29))
    tick(runtime)
    with db.session() as s:
        assert s.get(Meeting, 1).status is MeetingStatus.SCHEDULED
    clock.set(local(21, 23, 30))
    tick(runtime)
    with db.session() as s:
        meeting = s.get(Meeting, 1)
        assert meeting.status is MeetingStatus.CLOSED and meeting.closed_at == local(21, 23, 30)


def test_leave_is_refused_once_checked_in(chat, db, people, clock):
    reply = chat.say("lina", "会议 支部党员大会 今天20:00")
    code = re.search(r"签到码：(\d{4})", reply).group(1)
    clock.set(local(21, 19, 40))
    assert chat.say("zhangwei", f"签到 {code}").startswith("签到成功")
    refused = chat.say("zhangwei", "请假 1 临时有事")
    assert refused.startswith("您已签到 #1") and "签到后不能再请假" in refused
    assert chat.say("liuyang", "请假 1 临时有事").startswith("已提交请假")


def test_the_secretary_s_todo_lists_leave_waiting_for_her(chat, db, people):
    chat.say("lina", "会议 支部党员大会 明天19:00")
    chat.say("zhangwei", "请假 1 出差在外")
    todo = chat.say("zhouqiang", "待办")
    assert "[请假] #2 张伟 请假：综合处党支部 支部党员大会，理由：出差在外，截止 2026年11月22日 19:00" \
           "（回复「批准 2」或「驳回 2 理由」）" in todo  # leave #2: one number space with meeting #1
    chat.say("lina", "批准 2")
    assert "[请假]" not in chat.say("zhouqiang", "待办")
    assert "[请假]" not in chat.say("chenjing", "待办")  # another branch's secretary


def test_a_member_s_todo_says_where_her_leave_stands(chat, db, people):
    chat.say("lina", "会议 支部党员大会 明天19:00 党员活动室")
    meeting = ("· [会议] #1 综合处党支部 支部党员大会，2026年11月22日 19:00 开始（党员活动室），"
               "签到时间 2026年11月22日 18:30 起")
    owed = "，截止 2026年11月22日 19:30（回复「签到 会议码」）"
    assert chat.say("zhangwei", "请假 1 出差在外").startswith("已提交请假 #2")
    assert chat.say("liuyang", "请假 1 孩子生病").startswith("已提交请假 #3")
    assert chat.say("zhangwei", "待办") == f"您有 1 项待办（截至 2026年11月21日 19:45）：\n{meeting}；请假待批（#2）{owed}"

    assert chat.say("lina", "驳回 2 支部换届选举").startswith("已驳回 张伟 的请假 #2")
    assert chat.say("zhangwei", "待办") == (f"您有 1 项待办（截至 2026年11月21日 19:45）：\n"
                                            f"{meeting}；请假未获批准（#2，理由：支部换届选举）{owed}")

    assert chat.say("lina", "批准 3").startswith("已批准 刘洋 的请假 #3")
    assert chat.say("liuyang", "待办") == (
        "截至 2026年11月21日 19:45，您没有待办事项。\n已准假的会议（无需签到）：\n"
        "· [会议] #1 综合处党支部 支部党员大会，2026年11月22日 19:00 开始（党员活动室）；已准假（#3）")
    # Without leave the line is as before; the secretary has nothing left to decide.
    assert chat.say("zhouqiang", "待办") == f"您有 1 项待办（截至 2026年11月21日 19:45）：\n{meeting}{owed}"


def test_yearly_types_count_in_the_year_and_the_watch_starts_when_the_branch_came(db, people):
    with db.session() as s:
        branch = find_by_path(s, BRANCH_A)
        status = {r.meeting_type: r for r in requirement_status(s, branch, local(21, 12))}
        assert status[MeetingType.DEMOCRATIC_REVIEW].period is Period.YEAR
        assert status[MeetingType.DEMOCRATIC_REVIEW].required == 1
        branch.created_at = local(5, 12)  # came into the bot on 5 November
        s.flush()
        status = {r.meeting_type: r for r in requirement_status(s, branch, local(21, 12))}
        assert status[MeetingType.COMMITTEE].required == 0  # November began before it came
        assert status[MeetingType.DEMOCRATIC_REVIEW].required == 0
        december = {r.meeting_type: r for r in requirement_status(s, branch, datetime(2026, 12, 15, tzinfo=UTC))}
        assert december[MeetingType.COMMITTEE].required == 1


@pytest.mark.parametrize("arrived, alerted", [(local(20, 12), False), (datetime(2026, 1, 1, tzinfo=UTC), True)])
def test_a_fresh_install_is_not_told_of_last_month_s_missed_meetings(app, chat, db, people, clock, arrived, alerted):
    from scheduler.jobs import tick

    runtime = app.extensions["zhitong"]
    with db.session() as s:
        for path in (BRANCH_A, "机关党委/第一党总支/财务处党支部"):
            find_by_path(s, path).created_at = arrived
    tick(runtime)  # plans November's required-meeting rows
    clock.set(datetime(2026, 12, 1, 1, 0, tzinfo=UTC))  # 09:00 on 1 December in Shanghai
    tick(runtime)
    with db.session() as s:
        alerts = s.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "sunll")).all()
        assert bool([m for m in alerts if "支委会" in str(m.payload)]) is alerted
    assert ("未召开" in chat.say("sunll", "概况")) is alerted
