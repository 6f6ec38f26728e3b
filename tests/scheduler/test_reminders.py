"""Reminder rows: each rule fires at its time and only then, once, from the state at that moment;
digests, quiet hours, catch-up after downtime, and two schedulers on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot import worker
from config.settings import SettingsError, parse_quiet_hours
from models.directive import DirectiveKind, acknowledge, issue
from models.event import Event
from models.meeting import LeaveRequest, LeaveStatus, MeetingType, schedule
from models.org import Organisation
from models.outbox import OutboxMessage, text_payload
from models.person import Person, Role
from models.reminder import Reminder, ReminderKind, ReminderStatus, SkipReason
from scheduler.jobs import tick
from scheduler.reminders import (
    fire_due_reminders,
    plan_meeting_reminders,
    plan_required_meetings,
    quiet_release,
)
from tests.conftest import POSTGRES_URL, needs_postgres
from tests.factories import BRANCH_A, BRANCH_B, org, person, small_tree

SH = ZoneInfo("Asia/Shanghai")
# Deadline Tuesday 2026-11-24 17:00 Shanghai; the clock starts Saturday 2026-11-21 19:45.
DEADLINE = datetime(2026, 11, 24, 17, 0, tzinfo=SH).astimezone(UTC)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH).astimezone(UTC)


def _render(directive, role, channel):
    return text_payload(f"#{directive.id} {directive.title}")


def _issue(db, clock, title="学习贯彻全会精神", deadline=DEADLINE, kind=DirectiveKind.DIRECTIVE, by="top"):
    with db.session() as s:
        issuer = s.scalar(select(Person).where(Person.wecom_userid == {"top": "wangsj"}.get(by, by)))
        top = s.scalar(select(Organisation).where(Organisation.path == "机关党委"))
        d = issue(s, org=top, issuer=issuer, title=title, body="", deadline=deadline, now=clock(),
                  render=_render, kind=kind)
        return d.id


def _ack(db, clock, userid, directive_id):
    with db.session() as s:
        p = s.scalar(select(Person).where(Person.wecom_userid == userid))
        acknowledge(s, directive_id, p.id, at=clock())


def _reminder_msgs(db, userid=None):
    with db.session() as s:
        stmt = select(OutboxMessage).where(OutboxMessage.subject_type == "reminder").order_by(OutboxMessage.id)
        if userid:
            stmt = stmt.where(OutboxMessage.recipient == userid)
        return s.scalars(stmt).all()


def _rows(db, **where):
    with db.session() as s:
        return {r.kind: r for r in s.scalars(select(Reminder).filter_by(**where))}


@pytest.fixture
def tree(db):
    with db.session() as s:
        return {k: p.wecom_userid for k, p in small_tree(s).items()}


# -- scheduling ------------------------------------------------------------------------------

def test_issue_schedules_rows_and_records_steps_already_past_as_skipped(db, clock, tree):
    _issue(db, clock, deadline=clock() + timedelta(hours=10))
    rows = _rows(db)
    assert set(rows) == {ReminderKind.DIRECTIVE_24H, ReminderKind.DIRECTIVE_2H, ReminderKind.DIRECTIVE_DEADLINE,
                         ReminderKind.DIRECTIVE_SUMMARY}
    assert rows[ReminderKind.DIRECTIVE_24H].status is ReminderStatus.SKIPPED
    assert rows[ReminderKind.DIRECTIVE_2H].status is ReminderStatus.PENDING
    with db.session() as s:
        skipped = s.scalars(select(Event).where(Event.kind == "reminder.skipped")).all()
        assert len(skipped) == 1 and skipped[0].subject_type == "directive"
        assert skipped[0].data["step"] == "directive_24h"


def test_no_deadline_no_rows_and_study_gets_one_step(db, clock, tree):
    _issue(db, clock, deadline=None)
    assert _rows(db) == {}
    _issue(db, clock, kind=DirectiveKind.STUDY)
    assert set(_rows(db)) == {ReminderKind.STUDY_24H}


def test_scheduling_twice_is_harmless(db, clock, tree):
    from models.directive import Directive
    from models.reminder import schedule_directive

    d_id = _issue(db, clock)
    with pytest.raises(Exception):  # noqa: B017 (the unique key)
        with db.session() as s:
            schedule_directive(s, s.get(Directive, d_id), clock())
    assert len(_rows(db)) == 4


# -- directive reminders ---------------------------------------------------------------------

def test_24h_reminder_fires_at_its_time_once_and_only_to_those_not_acknowledged(runtime, db, clock, tree):
    d = _issue(db, clock)
    _ack(db, clock, "zhangwei", d)
    clock.set(DEADLINE - timedelta(hours=24, seconds=1))
    tick(runtime)
    assert _reminder_msgs(db) == []
    clock.set(DEADLINE - timedelta(hours=24))
    tick(runtime)
    msgs = _reminder_msgs(db)
    # 李娜 刘洋 陈静 赵磊 (张伟 acknowledged; the top secretary and liaison are not task recipients)
    assert sorted(m.recipient for m in msgs) == ["chenjing", "lina", "liuyang", "zhaolei"]
    text = msgs[0].payload["text"]
    assert text.startswith("【截止提醒】机关党委发布的 #1「学习贯彻全会精神」将于 2026年11月24日 17:00 截止（还剩 24 小时）")
    assert "收到 1" in text
    assert len({m.content_key for m in msgs}) == 1  # one batchable content
    clock.advance(seconds=15)
    tick(runtime)
    assert len(_reminder_msgs(db)) == 4
    row = _rows(db)[ReminderKind.DIRECTIVE_24H]
    assert row.status is ReminderStatus.SENT and row.recipients == 4 and row.fired_at == DEADLINE - timedelta(hours=24)
    with db.session() as s:
        sent = s.scalars(select(Event).where(Event.kind == "reminder.sent")).all()
        assert [(e.subject_type, e.subject_id, e.data["step"], e.data["recipients"]) for e in sent] == [
            ("directive", d, "directive_24h", 4)]


def test_acknowledging_between_claim_and_fire_suppresses_the_reminder(runtime, db, clock, tree):
    d = _issue(db, clock)
    clock.set(DEADLINE - timedelta(hours=2))

    def ack_in_the_gap(session, rows):
        assert ReminderKind.DIRECTIVE_2H in [r.kind for r in rows]  # already claimed
        if POSTGRES_URL:  # another connection commits while our claim holds the row
            _ack(db, clock, "liuyang", d)
        else:  # SQLite has one writer: acknowledge inside the same transaction
            p = session.scalar(select(Person).where(Person.wecom_userid == "liuyang"))
            acknowledge(session, d, p.id, at=clock())

    assert fire_due_reminders(runtime, between=ack_in_the_gap) == 2  # the 24 h one is stale by now
    assert "liuyang" not in {m.recipient for m in _reminder_msgs(db)}
    assert len(_reminder_msgs(db)) == 4


def test_everyone_acknowledged_means_skipped_not_sent(runtime, db, clock, tree):
    d = _issue(db, clock)
    for u in ("lina", "zhangwei", "liuyang", "chenjing", "zhaolei"):
        _ack(db, clock, u, d)
    clock.set(DEADLINE - timedelta(hours=24))
    tick(runtime)
    row = _rows(db)[ReminderKind.DIRECTIVE_24H]
    assert row.status is ReminderStatus.SKIPPED and row.reason is SkipReason.ALL_ACKNOWLEDGED
    assert _reminder_msgs(db) == []


def test_deadline_alerts_branch_secretaries_with_names_and_each_liaison_once(runtime, db, clock, tree):
    d = _issue(db, clock)
    with db.session() as s:  # a second liaison, for branch B only
        person(s, "周联络", "zhoull", "机关党委", Role.LIAISON, liaises=(BRANCH_B,))
    _ack(db, clock, "lina", d)
    _ack(db, clock, "chenjing", d)
    _ack(db, clock, "zhaolei", d)  # branch B complete
    clock.set(DEADLINE - timedelta(seconds=1))
    fire_due_reminders(runtime)
    before = len(_reminder_msgs(db))
    clock.set(DEADLINE)
    fire_due_reminders(runtime)
    msgs = {m.recipient: m.payload["text"] for m in _reminder_msgs(db)[before:]}
    assert set(msgs) == {"lina", "sunll"}  # branch B's secretary and its only liaison: nothing to say
    assert msgs["lina"].startswith("【逾期提醒】#1「学习贯彻全会精神」（机关党委发布）已于 2026年11月24日 17:00 截止")
    assert "综合处党支部 未确认 2/3：刘洋、张伟" in msgs["lina"]
    assert msgs["sunll"].startswith("【联络员预警】")
    assert "1 个支部" in msgs["sunll"] and "综合处党支部 未确认 2/3" in msgs["sunll"]


def test_liaison_gets_one_message_listing_all_lagging_branches(runtime, db, clock, tree):
    _issue(db, clock)
    clock.set(DEADLINE)
    fire_due_reminders(runtime)
    liaison = [m.payload["text"] for m in _reminder_msgs(db, "sunll")]
    assert len(liaison) == 1
    assert "2 个支部" in liaison[0] and "综合处党支部" in liaison[0] and "财务处党支部" in liaison[0]


def test_a_liaison_alert_too_long_for_one_message_arrives_in_marked_parts(runtime, db, clock, tree):
    branches = [f"机关党委/第二党总支/第{i}调研处党支部" for i in range(1, 7)]
    with db.session() as s:  # six branches of 21 members, none acknowledging: 20 names each listed
        for b, path in enumerate(branches):
            for i in range(21):
                person(s, f"欧阳党员{b}{i:02d}", f"u{b}{i:02d}", path)
        person(s, "钱联络", "qianll", "机关党委", Role.LIAISON, liaises=tuple(branches))
    _issue(db, clock, title="学习贯彻全会精神")
    _issue(db, clock, title="报送年度工作总结")
    clock.set(DEADLINE)
    fire_due_reminders(runtime)
    got = [m.payload["text"] for m in _reminder_msgs(db, "qianll")]
    total = len(got)
    assert total >= 2 and all(len(t.encode()) <= 2048 for t in got)
    assert [t.partition("\n")[0] for t in got] == [f"（{n}/{total}）" for n in range(1, total + 1)]
    whole = "\n".join(t.partition("\n")[2] for t in got)
    assert whole.startswith("【直通车提醒】您有 2 条提醒：\n1. 【联络员预警】#1「学习贯彻全会精神」")
    assert "2. 【联络员预警】#2「报送年度工作总结」" in whole
    for i in range(1, 7):  # every branch line of both alerts, none cut off
        assert whole.count(f"第{i}调研处党支部 未确认 21/21：") == 2
    assert whole.count(" 等 21 人") == 12


def test_summary_24h_after_goes_to_the_issuing_organisation(runtime, db, clock, tree):
    d = _issue(db, clock)
    _ack(db, clock, "lina", d)
    clock.set(DEADLINE + timedelta(hours=1))
    _ack(db, clock, "chenjing", d)  # late
    clock.set(DEADLINE + timedelta(hours=24))
    fire_due_reminders(runtime)
    top = [m.payload["text"] for m in _reminder_msgs(db, "wangsj")]
    assert len(top) == 1
    summary = top[0]
    assert summary.startswith("【汇总】#1「学习贯彻全会精神」截止 2026年11月24日 17:00，已过 24 小时：")
    assert "已确认 2/5，其中逾期确认 1 人。" in summary
    assert "未全部确认的支部 2 个" in summary


def test_study_reminder_goes_to_those_not_confirmed(runtime, db, clock, tree):
    from models.directive import Directive, complete

    d = _issue(db, clock, title="党章第一章", kind=DirectiveKind.STUDY)
    with db.session() as s:
        for u in ("lina", "zhangwei"):
            p = s.scalar(select(Person).where(Person.wecom_userid == u))
            complete(s, s.get(Directive, d), p, at=clock(), note=None)
    _ack(db, clock, "liuyang", d)  # acknowledged is not confirmed
    clock.set(DEADLINE - timedelta(hours=24))
    tick(runtime)
    msgs = _reminder_msgs(db)
    assert sorted(m.recipient for m in msgs) == ["chenjing", "liuyang", "zhaolei"]
    assert msgs[0].payload["text"].startswith("【学习提醒】机关党委布置的学习 #1「党章第一章」")
    assert "已学 1" in msgs[0].payload["text"]


# -- digest and quiet hours ------------------------------------------------------------------

def test_several_reminders_to_one_person_in_one_tick_are_one_message(runtime, db, clock, tree):
    _issue(db, clock, title="甲")
    _issue(db, clock, title="乙")
    _issue(db, clock, title="丙", kind=DirectiveKind.STUDY)
    clock.set(DEADLINE - timedelta(hours=24))
    tick(runtime)
    msgs = _reminder_msgs(db, "zhangwei")
    assert len(msgs) == 1
    text = msgs[0].payload["text"]
    assert text.startswith("【直通车提醒】您有 3 条提醒：")
    assert "1. 【截止提醒】" in text and "「甲」" in text and "「乙」" in text and "3. 【学习提醒】" in text
    assert len(_reminder_msgs(db)) == 5  # one per person
    assert all(r.recipients == 5 for r in _rows(db).values() if r.status is ReminderStatus.SENT)


def test_quiet_hours_hold_non_urgent_and_let_urgent_through(runtime, db, clock, tree):
    late = local(2026, 11, 25, 23, 0)  # 24 h reminder due at 23:00: quiet
    _issue(db, clock, title="夜间截止", deadline=late + timedelta(hours=24))
    clock.set(late)
    fire_due_reminders(runtime)
    held = _reminder_msgs(db)
    morning = local(2026, 11, 26, 7, 30)
    assert held and {m.next_attempt_at for m in held} == {morning}
    rows, _, _ = worker.claim(runtime, clock(), 100)
    assert [r for r in rows if r.subject_type == "reminder"] == []  # nothing goes out at night
    clock.set(morning)
    rows, _, _ = worker.claim(runtime, clock(), 100)
    assert len([r for r in rows if r.subject_type == "reminder"]) == len(held)  # released in the morning

    _issue(db, clock, title="清晨截止", deadline=local(2026, 11, 27, 1, 0))  # 2 h reminder at 23:00: urgent
    clock.set(local(2026, 11, 26, 23, 0))
    fire_due_reminders(runtime)
    urgent = [m for m in _reminder_msgs(db) if "清晨截止" in m.payload["text"]]
    assert urgent and {m.next_attempt_at for m in urgent} == {clock()}


def test_quiet_release_edges():
    window = parse_quiet_hours("22:00-07:30")
    assert quiet_release(local(2026, 11, 21, 21, 59), window, SH) is None
    assert quiet_release(local(2026, 11, 21, 22, 0), window, SH) == local(2026, 11, 22, 7, 30)
    assert quiet_release(local(2026, 11, 22, 3, 0), window, SH) == local(2026, 11, 22, 7, 30)
    assert quiet_release(local(2026, 11, 22, 7, 30), window, SH) is None
    assert quiet_release(local(2026, 11, 22, 3, 0), None, SH) is None
    day = parse_quiet_hours("12:00-14:00")
    assert quiet_release(local(2026, 11, 22, 13, 0), day, SH) == local(2026, 11, 22, 14, 0)


@pytest.mark.parametrize("bad", ["22:00", "22-07", "25:00-07:00", "22:00-22:00", "晚上十点-早上"])
def test_quiet_hours_setting_is_validated_in_chinese(bad, tmp_path):
    from config.settings import Settings

    with pytest.raises(SettingsError, match="QUIET_HOURS"):
        Settings.from_env({"QUIET_HOURS": bad, "SECRET_KEY": "x", "BOT_INSTANCE_DIR": str(tmp_path)})
    assert Settings.from_env({"SECRET_KEY": "x", "BOT_INSTANCE_DIR": str(tmp_path)}).quiet_hours == "22:00-07:30"
    assert Settings.from_env({"QUIET_HOURS": "off", "SECRET_KEY": "x",
                              "BOT_INSTANCE_DIR": str(tmp_path)}).quiet_window is None


# -- catch-up after downtime -----------------------------------------------------------------

def test_restart_after_downtime_fires_what_is_useful_and_skips_the_stale(runtime, db, clock, tree):
    _issue(db, clock)
    clock.set(DEADLINE + timedelta(hours=1))  # down through 24 h, 2 h and the deadline
    tick(runtime)
    rows = _rows(db)
    assert rows[ReminderKind.DIRECTIVE_24H].status is ReminderStatus.SKIPPED
    assert rows[ReminderKind.DIRECTIVE_24H].reason is SkipReason.STALE
    assert rows[ReminderKind.DIRECTIVE_2H].status is ReminderStatus.SKIPPED
    assert rows[ReminderKind.DIRECTIVE_DEADLINE].status is ReminderStatus.SENT  # still useful
    assert rows[ReminderKind.DIRECTIVE_SUMMARY].status is ReminderStatus.PENDING
    assert {m.recipient for m in _reminder_msgs(db) if "#1「" in m.payload["text"]} == {"lina", "chenjing", "sunll"}
    with db.session() as s:
        kinds = sorted(e.kind for e in s.scalars(select(Event).where(Event.kind.like("reminder.%"),
                                                                     Event.subject_type == "directive")))
        assert kinds == ["reminder.sent", "reminder.skipped", "reminder.skipped"]


def test_long_downtime_skips_the_deadline_alert_but_sends_the_summary(runtime, db, clock, tree):
    _issue(db, clock)
    clock.set(DEADLINE + timedelta(hours=30))
    tick(runtime)
    rows = _rows(db)
    assert rows[ReminderKind.DIRECTIVE_DEADLINE].status is ReminderStatus.SKIPPED
    assert rows[ReminderKind.DIRECTIVE_SUMMARY].status is ReminderStatus.SENT
    assert {m.recipient for m in _reminder_msgs(db) if "#1「" in m.payload["text"]} == {"wangsj"}


# -- meetings --------------------------------------------------------------------------------

def _schedule(db, clock, starts_at, branch=BRANCH_A, by="lina", meeting_type=MeetingType.GENERAL_ASSEMBLY):
    with db.session() as s:
        convener = s.scalar(select(Person).where(Person.wecom_userid == by))
        m = schedule(s, branch=org(s, branch), meeting_type=meeting_type, starts_at=starts_at, convener=convener,
                     now=clock(), render=lambda meeting, channel: text_payload("会议通知"), location="三楼会议室")
        return m.id


def test_meeting_reminders_day_before_and_hour_before_skip_approved_leave(runtime, db, clock, tree):
    start = local(2026, 11, 23, 15, 0)
    m = _schedule(db, clock, start)
    tick(runtime)
    rows = _rows(db, subject_type="meeting")
    assert set(rows) == {ReminderKind.MEETING_DAY_BEFORE, ReminderKind.MEETING_HOUR_BEFORE}
    with db.session() as s:
        zhang = s.scalar(select(Person).where(Person.wecom_userid == "zhangwei"))
        s.add(LeaveRequest(meeting_id=m, person_id=zhang.id, reason="出差", status=LeaveStatus.APPROVED,
                           requested_at=clock()))
    clock.set(start - timedelta(hours=24, seconds=1))
    tick(runtime)
    assert _reminder_msgs(db) == []
    clock.set(start - timedelta(hours=24))
    tick(runtime)
    day = _reminder_msgs(db)
    assert sorted(m_.recipient for m_ in day) == ["lina", "liuyang"]
    assert day[0].payload["text"].startswith(f"【会议提醒】#{m} 综合处党支部 支部党员大会 将于 2026年11月23日 15:00 召开")
    assert "请假" in day[0].payload["text"]
    clock.set(start - timedelta(hours=1))
    tick(runtime)
    tick(runtime)
    hour = _reminder_msgs(db)[len(day):]
    assert sorted(m_.recipient for m_ in hour) == ["lina", "liuyang"]
    assert "1 小时后" in hour[0].payload["text"]
    assert hour[0].next_attempt_at == clock()


def test_meeting_scheduled_late_records_its_past_reminders_as_skipped(runtime, db, clock, tree):
    _schedule(db, clock, clock() + timedelta(minutes=50))
    plan_meeting_reminders(runtime)
    plan_meeting_reminders(runtime)  # twice: harmless
    rows = _rows(db, subject_type="meeting")
    assert {k: r.status for k, r in rows.items()} == {ReminderKind.MEETING_DAY_BEFORE: ReminderStatus.SKIPPED,
                                                      ReminderKind.MEETING_HOUR_BEFORE: ReminderStatus.SKIPPED}


def test_required_meetings_reminded_in_the_last_week_and_missed_ones_alert_the_liaison(runtime, db, clock, tree):
    # November 2026's last week is 24–30 November; the 24th is a Tuesday and a working day.
    _schedule(db, clock, local(2026, 11, 26, 15, 0), branch=BRANCH_B, by="chenjing", meeting_type=MeetingType.COMMITTEE)
    assert plan_required_meetings(runtime) == 4  # two branches × (due, missed)
    assert plan_required_meetings(runtime) == 0
    clock.set(local(2026, 11, 24, 8, 59))
    tick(runtime)
    assert _reminder_msgs(db) == []
    clock.set(local(2026, 11, 24, 9, 0))
    tick(runtime)
    msgs = {m.recipient: m.payload["text"] for m in _reminder_msgs(db)}
    assert set(msgs) == {"lina", "chenjing"}
    assert msgs["lina"].startswith("【规定动作提醒】综合处党支部尚未安排2026年11月的支委会、2026年11月的主题党日")
    assert "支委会" not in msgs["chenjing"] and "主题党日" in msgs["chenjing"]
    assert "党小组会" not in msgs["lina"]  # no groups in this branch
    count = len(msgs)
    clock.set(local(2026, 12, 1, 0, 0))
    tick(runtime)
    alerts = _reminder_msgs(db)[count:]
    assert [m.recipient for m in alerts] == ["sunll"]  # both branches' alerts in one digest
    text = alerts[0].payload["text"]
    assert text.startswith("【直通车提醒】您有 2 条提醒：")
    assert "综合处党支部未按期召开：2026年11月的支委会、2026年11月的主题党日" in text
    assert "财务处党支部未按期召开：2026年11月的主题党日" in text  # its 支委会 was held (closed)
    assert alerts[0].next_attempt_at == local(2026, 12, 1, 7, 30)  # midnight: held for the morning


# -- two schedulers --------------------------------------------------------------------------

@needs_postgres
def test_two_scheduler_processes_fire_each_reminder_once(schedulers, db, clock, tree):
    with db.session() as s:
        for i in range(30):
            person(s, f"党员{i:02d}", f"m{i:02d}", BRANCH_A if i % 2 else BRANCH_B)
    for i in range(40):
        _issue(db, clock, title=f"通知{i:02d}", deadline=DEADLINE + timedelta(minutes=i % 7))
    clock.set(DEADLINE - timedelta(hours=2) + timedelta(minutes=7))  # 40 two-hour reminders due
    schedulers(lambda rt: [fire_due_reminders(rt, limit=3) for _ in range(5)])
    with db.session() as s:
        rows = s.scalars(select(Reminder).where(Reminder.kind == ReminderKind.DIRECTIVE_2H)).all()
        assert len(rows) == 40 and {r.status for r in rows} == {ReminderStatus.SENT}
        assert {r.recipients for r in rows} == {35}
    # Each (directive, person) pair appears in exactly one message.
    seen: dict[tuple[str, str], int] = {}
    for m in _reminder_msgs(db):
        for i in range(40):
            if f"「通知{i:02d}」" in m.payload["text"]:
                seen[(m.recipient, i)] = seen.get((m.recipient, i), 0) + 1
    assert len(seen) == 40 * 35 and set(seen.values()) == {1}


def test_events_cover_every_fire_and_skip(runtime, db, clock, tree):
    _issue(db, clock, deadline=clock() + timedelta(hours=3))  # 24 h skipped at issue
    clock.set(clock() + timedelta(days=4))  # past the last-week reminder of November too
    tick(runtime)
    with db.session() as s:
        decided = s.scalar(select(func.count()).select_from(Reminder).where(Reminder.status != ReminderStatus.PENDING))
        assert decided > 4  # the required-meetings rows of this month fired too
        events = s.scalar(select(func.count()).select_from(Event).where(Event.kind.like("reminder.%")))
    assert decided == events
