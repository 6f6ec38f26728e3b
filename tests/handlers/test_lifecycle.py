"""撤回 / 改期 / 取消 through the real encrypted callback endpoint, with the injected clock
(2026-11-21 19:45 in Shanghai): who is told, what the reminders do, what 待办 and 进度 show,
and a withdrawal racing a member's 收到 on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot import worker
from models.directive import AckResult, Delivery, Directive, acknowledge
from models.event import Event
from models.identity import Channel, ChannelIdentity
from models.lifecycle import withdraw
from models.meeting import LeaveRequest, LeaveStatus, Meeting, MeetingStatus
from models.outbox import OutboxMessage, text_payload
from models.person import Person
from models.reminder import Reminder, ReminderKind, ReminderStatus, SkipReason
from scheduler.reminders import fire_due_reminders, plan_meeting_reminders
from tests.bot.conftest import wechat_settings  # noqa: F401  (fixture)
from tests.conftest import POSTGRES_URL, needs_postgres
from tests.factories import BRANCH_A, person, small_tree
from tests.fakewx.conftest import fake_wechat  # noqa: F401  (fixture)
from tests.handlers.test_directive_delivery import wired  # noqa: F401  (fixture)

SHANGHAI = timedelta(hours=8)
PUBLISH = "发布 报送年度总结\n请各支部报送。\n截止 12月1日17:00"
MEMBERS = {"lina", "zhangwei", "liuyang", "chenjing", "zhaolei"}


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC) - SHANGHAI


def _seed(db, clock):
    """The small tree, and 周敏 in branch A who follows the Official Account only."""
    with db.session() as s:
        people = {k: p.id for k, p in small_tree(s).items()}
        zhoumin = person(s, "周敏", None, BRANCH_A)
        s.add(ChannelIdentity(channel=Channel.MP, external_id="o-zhoumin", person_id=zhoumin.id,
                              last_inbound_at=clock()))
    return people


def _pushes(db, marker: str) -> list[OutboxMessage]:
    with db.session() as s:
        return [m for m in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
                if marker in (m.payload.get("text") or "")]


def _reminders(db, subject_type="directive") -> list[Reminder]:
    with db.session() as s:
        return list(s.scalars(select(Reminder).where(Reminder.subject_type == subject_type).order_by(Reminder.id)))


def _events(db, kind: str) -> list[Event]:
    with db.session() as s:
        return list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


# -- 撤回 ----------------------------------------------------------------------------------------

def test_withdraw_tells_every_recipient_stops_reminders_and_leaves_todo(chat, db, clock, runtime):
    _seed(db, clock)
    assert chat.say("wangsj", PUBLISH).startswith("已发布 #1，推送 6 人")
    chat.say("zhangwei", "收到 1")
    clock.advance(minutes=10)
    reply = chat.say("wangsj", "撤回 1 内容有误，另行通知")
    assert reply == ("已撤回通知 #1「报送年度总结」（2026年11月21日 19:55，原因：内容有误，另行通知）。"
                     "已通知 6 人，提醒已停止；撤回前已有 1/6 人确认，记录保留。")
    told = _pushes(db, "【撤回】")
    assert {m.recipient for m in told} == MEMBERS | {"o-zhoumin"}
    mp = next(m for m in told if m.recipient == "o-zhoumin")
    assert mp.channel.value == "mp" and mp.payload["type"] == "text"  # the Official Account: as text
    assert "机关党委于 2026年11月21日 19:55 撤回了通知 #1「报送年度总结」，原因：内容有误，另行通知" in mp.payload["text"]
    assert {r.status for r in _reminders(db)} == {ReminderStatus.CANCELLED}
    assert {r.reason for r in _reminders(db)} == {SkipReason.WITHDRAWN}
    [event] = _events(db, "directive.withdrawn")
    assert event.data["reason"] == "内容有误，另行通知" and event.data["told"] == 6 and event.data["acknowledged"] == 1
    with db.session() as s:
        assert s.get(Directive, 1).withdrawn_at == clock()

    assert "#1" not in chat.say("liuyang", "待办")
    answer = chat.say("liuyang", "收到 1")
    assert answer == "#1「报送年度总结」已于 2026年11月21日 19:55 撤回，无需确认或办理，本次回复未记录。"
    assert "撤回" in chat.say("liuyang", "完成 1 已报送")
    with db.session() as s:
        late = s.scalar(select(Delivery).join(Person, Person.id == Delivery.person_id)
                        .where(Person.wecom_userid == "liuyang"))
        assert late.acknowledged_at is None and late.completed_at is None
    progress = chat.say("wangsj", "进度 1")
    assert progress.startswith("已确认 1/6") and "已于 2026年11月21日 19:55 撤回，原因：内容有误，另行通知" in progress
    assert "（已于 2026年11月21日 19:55 撤回）" in chat.say("wangsj", "进度")
    assert chat.say("wangsj", "催办 1") == "#1 已于 2026年11月21日 19:55 撤回，无需催办。"
    assert chat.say("wangsj", "撤回 1") == "通知 #1「报送年度总结」已于 2026年11月21日 19:55 撤回，无需再次撤回。"
    assert len(_pushes(db, "【撤回】")) == 6  # nobody told twice

    clock.set(local(12, 1, 15))  # the 2 h step's time: nothing fires for a withdrawn item
    fire_due_reminders(runtime)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)
                        .where(OutboxMessage.subject_type == "reminder")) == 0


def test_a_withdrawal_with_a_long_reason_reaches_everyone_whole_in_parts(chat, db, clock, runtime):
    _seed(db, clock)
    title = ("关于做好年度党建工作述职评议考核" * 13)[:200]  # the longest a title may be
    assert chat.say("wangsj", f"发布 {title}\n请各支部报送。\n截止 12月1日17:00").startswith("已发布 #1")
    reason = ("经党委会研究，该通知的报送口径需要与上级要求保持一致，" * 20)[:495] + "另行通知。"  # 500
    assert chat.say("wangsj", f"撤回 1 {reason}").startswith("已撤回通知 #1")
    told = _pushes(db, "撤回了通知 #1") + _pushes(db, "此项无需再办理")
    by_person: dict[str, list[str]] = {}
    for m in sorted({m.id: m for m in told}.values(), key=lambda m: m.id):
        by_person.setdefault(m.recipient, []).append(m.payload["text"])
    assert set(by_person) == MEMBERS | {"o-zhoumin"}  # WeCom and the Official Account alike
    for texts in by_person.values():
        assert len(texts) == 2 and [t[:5] for t in texts] == ["（1/2）", "（2/2）"]
        assert all(len(t.encode()) <= 2048 for t in texts)
        whole = "".join(t.partition("\n")[2] for t in texts)  # one long line: cut inside it
        assert f"「{title}」，原因：{reason}（王书记）。此项无需再办理，已从待办中移除。" in whole


def test_withdraw_a_study_item_on_a_card_tap_updates_the_card(chat, db, clock):
    _seed(db, clock)
    chat.say("wangsj", "学习资料 党章第一章 https://example.cn/a 截止 12月5日")
    assert chat.say("wangsj", "撤回 1").startswith("已撤回学习 #1「党章第一章」（2026年11月21日 19:45）")
    assert "#1" not in chat.say("zhangwei", "学习")
    assert "撤回" in chat.say("zhangwei", "已学 1 很有收获")
    tapped = chat.tap("zhangwei", "directive-1", "study:1")
    assert "已于 2026年11月21日 19:45 撤回" in tapped
    [event] = _events(db, "study.withdrawn")
    assert event.data["acknowledged"] == 0
    tap = chat.tap("lina", "directive-1", "ack:1")
    assert "撤回" in tap
    with db.session() as s:
        update = s.scalar(select(OutboxMessage).where(OutboxMessage.recipient == "lina",
                                                      OutboxMessage.subject_type == "directive"))
        assert update.payload["type"] == "card_update" and update.payload["replace_text"] == "已撤回 2026年11月21日 19:45"


def test_withdraw_refusals_name_the_reason_and_who_can(chat, db, clock):
    _seed(db, clock)
    chat.say("wangsj", PUBLISH)
    assert chat.say("lina", "撤回 1") == (
        "您不能撤回通知 #1：只有机关党委的书记、副书记或支委（发布人：王书记）可以撤回。")
    assert "书记" in chat.say("zhangwei", "撤回 1")  # members are not offered it
    assert chat.say("wangsj", "撤回 99") == "没有编号为 #99 的通知或学习。"
    assert chat.say("wangsj", "撤回") == "请写明编号，例如：撤回 12 内容有误，另行通知"
    with db.session() as s:
        assert s.get(Directive, 1).withdrawn_at is None
    assert _pushes(db, "【撤回】") == [] and _events(db, "directive.withdrawn") == []


def test_reminders_claimed_in_the_same_tick_are_not_sent_after_a_withdrawal(chat, db, clock, runtime):
    _seed(db, clock)
    chat.say("wangsj", PUBLISH)
    clock.set(local(12, 1, 15))  # the 2 h reminder is due (the 24 h one is stale by now)

    def withdraw_in_the_gap(session, rows):
        assert ReminderKind.DIRECTIVE_2H in [r.kind for r in rows]  # already claimed
        if POSTGRES_URL:  # another connection commits while our claim holds the rows
            assert chat.say("wangsj", "撤回 1 重复发布").startswith("已撤回通知 #1")
        else:  # SQLite has one writer: withdraw inside the same transaction
            issuer = session.scalar(select(Person).where(Person.wecom_userid == "wangsj"))
            withdraw(session, session.get(Directive, 1), by=issuer, reason="重复发布", now=clock(),
                     render=lambda d: text_payload("【撤回】"))

    fire_due_reminders(runtime, between=withdraw_in_the_gap)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)
                        .where(OutboxMessage.subject_type == "reminder")) == 0
    by_kind = {r.kind: r for r in _reminders(db)}
    assert by_kind[ReminderKind.DIRECTIVE_2H].status is ReminderStatus.CANCELLED
    assert by_kind[ReminderKind.DIRECTIVE_2H].reason is SkipReason.WITHDRAWN
    assert all(r.status is not ReminderStatus.SENT for r in by_kind.values())


@needs_postgres
def test_withdrawal_racing_an_acknowledgement_ends_consistent(chat, db, clock):
    """Either order: an acknowledgement is recorded only before the withdrawal (and counted in it),
    or the 收到 is answered as withdrawn and nothing is recorded."""
    people = _seed(db, clock)
    outcomes = Counter()
    for round_ in range(6):
        chat.say("wangsj", f"发布 第{round_ + 1}号通知 截止 12月1日17:00")
        number = round_ + 1
        barrier, results = threading.Barrier(2), {}

        def ack(number=number, barrier=barrier, results=results) -> None:
            with db.session() as s:
                barrier.wait()
                results["ack"] = acknowledge(s, number, people["zhangwei"], at=clock(), via="text")

        def pull(number=number, barrier=barrier, results=results) -> None:
            with db.session() as s:
                issuer = s.get(Person, people["top"])
                directive = s.get(Directive, number)
                barrier.wait()
                results["withdrawal"] = withdraw(s, directive, by=issuer, reason=None, now=clock(),
                                                 render=lambda d: text_payload("【撤回】"))

        threads = [threading.Thread(target=ack), threading.Thread(target=pull)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        [event] = [e for e in _events(db, "directive.withdrawn") if e.subject_id == number]
        with db.session() as s:
            task = s.scalar(select(Delivery).where(Delivery.directive_id == number,
                                                   Delivery.person_id == people["zhangwei"]))
        if results["ack"].result is AckResult.ACKNOWLEDGED:
            assert task.acknowledged_at is not None and event.data["acknowledged"] == 1
        else:
            assert results["ack"].result is AckResult.WITHDRAWN
            assert task.acknowledged_at is None and event.data["acknowledged"] == 0
        outcomes[results["ack"].result] += 1
    assert sum(outcomes.values()) == 6


# -- 改期 of a deadline --------------------------------------------------------------------------

def test_moving_a_deadline_twice_leaves_only_the_last_plan_and_tells_each_person_twice_at_most(
        chat, db, clock, runtime):
    _seed(db, clock)
    chat.say("wangsj", PUBLISH)
    chat.say("zhangwei", "收到 1")
    later = chat.say("wangsj", "改期 1 12月3日17:00")
    assert later == ("已将通知 #1「报送年度总结」的截止时间改为 2026年12月3日 17:00（原 2026年12月1日 17:00）。"
                     "已通知 5 人，提醒按新时间重新安排。")
    moved = _pushes(db, "【改期】")
    assert "zhangwei" not in {m.recipient for m in moved}  # acknowledged, moved later: no push
    assert "截止时间改为 2026年12月3日 17:00（原截止 2026年12月1日 17:00）" in moved[0].payload["text"]
    assert "截止 2026年12月3日 17:00" in chat.say("liuyang", "待办")

    earlier = chat.say("wangsj", "改期 1 11月28日17:00")
    assert "已通知 6 人" in earlier  # moved earlier: those who acknowledged are told too
    per_person = Counter(m.recipient for m in _pushes(db, "【改期】"))
    assert per_person["zhangwei"] == 1 and max(per_person.values()) == 2
    done = next(m for m in _pushes(db, "【改期】") if m.recipient == "zhangwei")
    assert "您已确认，无需再办" in done.payload["text"]

    pending = [r for r in _reminders(db) if r.status is ReminderStatus.PENDING]
    assert {r.period for r in pending} == {"v2"}
    assert {r.kind: r.due_at for r in pending}[ReminderKind.DIRECTIVE_2H] == local(11, 28, 15)
    assert Counter(r.status for r in _reminders(db) if r.period in ("", "v1")) == {ReminderStatus.CANCELLED: 8}
    [first, second] = _events(db, "directive.rescheduled")
    assert first.data["from"] == local(12, 1, 17).isoformat() and first.data["to"] == local(12, 3, 17).isoformat()
    assert second.data["earlier"] is True

    clock.set(local(11, 28, 15))
    fire_due_reminders(runtime)
    with db.session() as s:
        sent = s.scalars(select(OutboxMessage).where(OutboxMessage.subject_type == "reminder")).all()
    assert {m.recipient for m in sent} == MEMBERS - {"zhangwei"}  # 周敏's 48 h window has closed
    clock.set(local(12, 1, 15))  # the first deadline's 2 h step: none of the old plans fires
    fire_due_reminders(runtime)
    assert {r.status for r in _reminders(db) if r.period in ("", "v1")} == {ReminderStatus.CANCELLED}


def test_reschedule_refusals(chat, db, clock):
    _seed(db, clock)
    chat.say("wangsj", PUBLISH)
    # Every example is a time still to come (the clock stands at 2026年11月21日), and given once.
    assert chat.say("wangsj", "改期 1 今天8:00") == (
        "未改期：时间有误，时间 2026年11月21日 08:00 已经过去（现在是 2026年11月21日 19:45），"
        "请写一个将来的时间，例如：11月22日17:00。完整写法：改期 1 11月22日17:00")
    assert chat.say("wangsj", "改期 1") == "请写明新的时间，例如：改期 1 11月22日17:00"
    assert chat.say("lina", "改期 1 12月3日") == "您不能改期 #1：只有机关党委的书记、副书记或支委（发布人：王书记）可以改期。"
    assert chat.say("wangsj", "改期 1 12月1日17:00") == "通知 #1 的截止时间已是 2026年12月1日 17:00，无需改期。"
    assert chat.say("wangsj", "改期 9 12月3日") == "没有编号为 #9 的通知、学习或会议。"
    chat.say("wangsj", "撤回 1")
    assert chat.say("wangsj", "改期 1 12月3日") == "通知 #1 已于 2026年11月21日 19:45 撤回，不能改期。"
    assert _events(db, "directive.rescheduled") == [] and _pushes(db, "【改期】") == []


# -- meetings: 改期 and 取消 ---------------------------------------------------------------------

def _meeting(chat, runtime) -> None:
    assert chat.say("lina", "会议 支部党员大会 明天19:00 党员活动室").startswith("已安排 #1")
    plan_meeting_reminders(runtime)


def test_moving_a_meeting_keeps_its_code_moves_check_in_and_keeps_granted_leave(chat, db, clock, runtime):
    _seed(db, clock)
    _meeting(chat, runtime)
    chat.say("zhangwei", "请假 1 出差在外")
    chat.say("lina", "批准")
    with db.session() as s:
        code = s.get(Meeting, 1).checkin_code
    reply = chat.say("lina", "改期 1 11月23日19:00")
    assert reply == (f"已将会议 #1 综合处党支部 支部党员大会 改到 2026年11月23日 19:00（原 2026年11月22日 19:00）。"
                     f"签到码不变（{code}），签到时间随之调整；已批准的请假仍然有效。已通知 4 人，提醒按新时间重新安排。")
    told = _pushes(db, "【改期】")
    assert {m.recipient for m in told} == {"lina", "zhangwei", "liuyang", "o-zhoumin"}
    assert "改到 2026年11月23日 19:00（原定 2026年11月22日 19:00，党员活动室）" in told[0].payload["text"]
    [event] = _events(db, "meeting.rescheduled")
    assert event.data["to"] == local(11, 23, 19).isoformat()
    with db.session() as s:
        assert s.scalar(select(LeaveRequest.status)) is LeaveStatus.APPROVED
    pending = {r.kind: r.due_at for r in _reminders(db, "meeting") if r.status is ReminderStatus.PENDING}
    assert pending == {ReminderKind.MEETING_DAY_BEFORE: local(11, 22, 19),
                       ReminderKind.MEETING_HOUR_BEFORE: local(11, 23, 18)}

    clock.set(local(11, 22, 19))  # the old start: check-in is not open
    assert "尚未开始" in chat.say("liuyang", f"签到 {code}")
    clock.set(local(11, 23, 18, 40))
    assert chat.say("liuyang", f"签到 {code}").startswith("签到成功：#1")
    todo = chat.say("zhangwei", "待办")  # on approved leave: nothing owed, the meeting listed apart
    assert todo.startswith("截至 2026年11月23日 18:40，您没有待办事项。\n已准假的会议（无需签到）：\n· [会议] #1 ")
    assert "签到" not in todo.split("\n", 2)[2] and todo.endswith("；已准假（#2）")


def test_cancelling_a_meeting_tells_invitees_closes_open_leave_and_frees_its_time(chat, db, clock, runtime):
    _seed(db, clock)
    _meeting(chat, runtime)
    chat.say("liuyang", "请假 1 孩子生病")
    assert "「取消 1 原因」" in chat.say("lina", "结束 1")  # no more 联系管理员
    reply = chat.say("lina", "取消 1 与上级会议冲突")
    assert reply == ("已取消会议 #1 综合处党支部 支部党员大会（2026年11月22日 19:00）（原因：与上级会议冲突）。已通知 4 人，提醒已停止，"
                     "1 份待审批的请假已关闭；该会议不计入规定会议。")
    told = _pushes(db, "【取消】")
    assert {m.recipient for m in told} == {"lina", "zhangwei", "liuyang", "o-zhoumin"}
    assert "原定 2026年11月22日 19:00 的会议 #1 综合处党支部 支部党员大会 已取消，原因：与上级会议冲突" in told[0].payload["text"]
    with db.session() as s:
        meeting = s.get(Meeting, 1)
        assert meeting.status is MeetingStatus.CANCELLED and meeting.cancel_reason == "与上级会议冲突"
        assert s.scalar(select(LeaveRequest.status)) is LeaveStatus.CLOSED
    assert {r.kind: r.status for r in _reminders(db, "meeting")} == {
        ReminderKind.MEETING_DAY_BEFORE: ReminderStatus.SKIPPED,  # its time had passed when scheduled
        ReminderKind.MEETING_HOUR_BEFORE: ReminderStatus.CANCELLED}
    assert len(_events(db, "meeting.cancelled")) == 1 and len(_events(db, "leave.closed")) == 1
    assert "#1" not in chat.say("zhangwei", "待办")
    assert chat.say("lina", "批准 2") == "请假 #2（刘洋）已于 2026年11月21日 19:45 因会议取消而关闭，无需审批。"  # leave #2: one number space
    assert chat.say("lina", "取消 1") == "会议 #1 综合处党支部 支部党员大会（2026年11月22日 19:00） 已于 2026年11月21日 19:45 取消。"
    assert "已安排 #3" in chat.say("lina", "会议 支部党员大会 明天19:00 党员活动室")  # its time is free again
    chat.say("lina", "取消 3")  # the second meeting's row, the third number: answers name the number
    assert chat.say("zhangwei", "请假 3 出差").startswith("#3 综合处党支部 支部党员大会 已于 2026年11月21日 19:45 取消")
    clock.set(local(11, 22, 18, 40))
    assert "#1" not in chat.say("zhangwei", "签到")


def test_cancel_refusals_name_the_reason_and_who_can(chat, db, clock, runtime):
    _seed(db, clock)
    _meeting(chat, runtime)
    assert chat.say("chenjing", "取消 1") == (
        "您不能取消会议 #1：只有综合处党支部的书记、副书记或支委（召集人：李娜）可以取消。")
    assert chat.say("lina", "取消 5") == "没有编号为 #5 的会议。"
    assert chat.say("lina", "撤回 1") == "#1 是会议，会议请用「取消 1 原因」。"
    clock.set(local(11, 22, 19, 5))
    assert chat.say("lina", "取消 1") == ("会议 #1 综合处党支部 支部党员大会（2026年11月22日 19:00） 已经开始，"
                                         "不能再取消；开完后请发送「结束 1」。")
    assert "已经开始" in chat.say("lina", "改期 1 11月25日19:00")
    with db.session() as s:
        assert s.get(Meeting, 1).status is MeetingStatus.SCHEDULED
    assert _events(db, "meeting.cancelled") == [] and _pushes(db, "【取消】") == []


def test_withdrawing_turns_the_wecom_cards_that_went_out_into_withdrawn(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat = wired
    chat.say("wangsj", PUBLISH)
    worker.drain_once(runtime)
    assert "已确认收到 #1" in chat.tap("member03", "directive-1", "ack:1")
    worker.drain_once(runtime)
    assert fake_wechat.state.stats()["card_updates"] == 1  # the tap's own update
    clock.advance(minutes=30)
    assert chat.say("wangsj", "撤回 1 重复发布").startswith("已撤回通知 #1")
    worker.drain_once(runtime)
    state = fake_wechat.state
    assert state.stats()["card_updates"] == 1 + 45  # every card of the one send call, in one call
    assert state.stats()["calls_by_path"]["message/update_template_card"] == 2
    for user in ("member01", "member03", "lina"):
        update = [m for m in state.messages_for(user) if m["msgtype"] == "update_template_card"][-1]
        assert update["body"]["button"]["replace_name"] == "已撤回 2026年11月21日 20:15"
        pushed = [m for m in state.messages_for(user) if m["msgtype"] == "text"]
        assert "【撤回】" in pushed[-1]["body"]["text"]["content"]
    [event] = _events(runtime.db, "directive.withdrawn")
    assert event.data["cards_updated"] == 45


def test_a_cancelled_meeting_does_not_count_toward_the_required_meetings(chat, db, clock, runtime):
    from scheduler.jobs import tick

    _seed(db, clock)
    assert chat.say("lina", "会议 支委会 11月26日15:00").startswith("已安排 #1")
    assert chat.say("lina", "取消 1").startswith("已取消会议 #1")
    clock.set(local(11, 24, 9))  # November's last week begins: the branch is reminded of its 支委会
    tick(runtime)
    with db.session() as s:
        [text] = [m.payload["text"] for m in s.scalars(select(OutboxMessage).where(
            OutboxMessage.subject_type == "reminder", OutboxMessage.recipient == "lina"))]
    assert text.startswith("【规定动作提醒】综合处党支部尚未安排2026年11月的支委会")


def test_a_meeting_moved_twice_before_any_tick_keeps_only_the_last_plan_and_refuses_a_clash(chat, db, clock):
    _seed(db, clock)
    chat.say("lina", "会议 支部党员大会 11月25日19:00")
    chat.say("lina", "会议 党课 11月27日19:00")
    assert chat.say("lina", "改期 1 11月27日19:00").startswith(
        "未改期：综合处党支部在 2026年11月27日 19:00 已有会议 #2 综合处党支部 党课，时间冲突。")
    assert chat.say("lina", "改期 1 11月26日19:00").startswith("已将会议 #1")
    assert chat.say("lina", "改期 1 11月28日9:00").startswith("已将会议 #1")
    pending = [r for r in _reminders(db, "meeting") if r.status is ReminderStatus.PENDING and r.subject_id == 1]
    assert {(r.period, r.kind, r.due_at) for r in pending} == {
        ("v2", ReminderKind.MEETING_DAY_BEFORE, local(11, 27, 9)),
        ("v2", ReminderKind.MEETING_HOUR_BEFORE, local(11, 28, 8))}
    assert Counter(m.recipient for m in _pushes(db, "【改期】"))["liuyang"] == 2
    with db.session() as s:
        assert s.get(Meeting, 1).starts_at == local(11, 28, 9)


def test_confirming_a_withdrawn_study_item_names_it_by_its_number(chat, db, clock):
    """The number space is shared (a self-report takes #1), so the study item is #2 while its row
    is the first directive: the answer names the number people were sent."""
    _seed(db, clock)
    assert chat.say("zhangwei", "申报 学习培训 参加读书班三天").startswith("已提交积分申报 #1")
    chat.say("wangsj", "学习资料 党章第一章 https://example.cn/a 截止 12月5日")
    assert chat.say("wangsj", "撤回 2").startswith("已撤回学习 #2「党章第一章」")
    assert chat.say("zhangwei", "已学 2 很有收获") == (
        "#2「党章第一章」已于 2026年11月21日 19:45 撤回，无需确认或办理，本次回复未记录。")


@needs_postgres
def test_a_withdrawal_landing_while_a_nudge_is_on_its_way_stops_the_nudge(chat, db, clock, monkeypatch):
    """撤回 commits after 催办 read the directive but before it locked it: the lock reads the
    withdrawal as committed, and nobody is chased for a withdrawn item."""
    import handlers.broadcast as broadcast

    people = _seed(db, clock)
    chat.say("wangsj", PUBLISH)
    real = broadcast.nudge_scopes

    def withdrawn_meanwhile(person, directive):
        with db.session() as s:
            withdraw(s, s.get(Directive, directive.id), by=s.get(Person, people["top"]), reason=None, now=clock(),
                     render=lambda d: text_payload("【撤回】"))
        return real(person, directive)

    monkeypatch.setattr(broadcast, "nudge_scopes", withdrawn_meanwhile)
    assert chat.say("wangsj", "催办 1") == "#1 已于 2026年11月21日 19:45 撤回，无需催办。"
    with db.session() as s:
        assert not s.scalars(select(OutboxMessage).where(OutboxMessage.subject_type == "nudge")).all()
