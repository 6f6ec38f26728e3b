"""The points publications on schedule: the first working day at 09:00, holidays honoured, once per
recipient with two schedulers on PostgreSQL, one quarterly message to the committee and liaisons."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from config.points_rules import RuleName
from models.outbox import OutboxMessage
from models.points import PointsPeriod, award
from models.publication import Publication, PublicationKind
from scheduler.publications import due_kinds, publish_points
from tests.bot.conftest import wechat_runtime, wechat_settings  # noqa: F401  (fixtures)
from tests.conftest import needs_postgres
from tests.factories import small_tree
from tests.fakewx.conftest import fake_wechat  # noqa: F401  (fixture)

SH = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH).astimezone(UTC)


def _seed(db):
    with db.session() as s:
        ids = {k: p.id for k, p in small_tree(s).items()}
        award(s, ids["zhangwei"], RuleName.MEETING_ATTENDED, "meeting", 1, at=local(2026, 9, 10, 10, 0))
    return ids


def _pushes(db) -> dict[str, list[str]]:
    with db.session() as s:
        out: dict[str, list[str]] = {}
        for m in s.scalars(select(OutboxMessage).where(OutboxMessage.subject_type == "points_publication")
                           .order_by(OutboxMessage.id)):
            out.setdefault(m.recipient, []).append(m.payload["text"])
        return out


def test_publication_days_follow_the_working_day_calendar_and_stay_due_to_the_month_end():
    from datetime import date

    assert [k.value for k in due_kinds(date(2026, 12, 1))] == ["monthly"]  # a Tuesday
    assert due_kinds(date(2026, 1, 1)) == []  # New Year's Day is a holiday
    assert [k.value for k in due_kinds(date(2026, 1, 4))] == ["monthly", "quarterly", "yearly"]  # a Sunday worked (调休)
    assert due_kinds(date(2026, 10, 1)) == []  # National Day
    assert due_kinds(date(2026, 10, 7)) == []  # still the holiday: the day is the 8th
    assert [k.value for k in due_kinds(date(2026, 10, 8))] == ["monthly", "quarterly"]
    # Missed on its day, still due (caught up) until the month ends; the next month has its own.
    assert [k.value for k in due_kinds(date(2026, 12, 2))] == ["monthly"]
    assert [k.value for k in due_kinds(date(2026, 10, 31))] == ["monthly", "quarterly"]
    assert [k.value for k in due_kinds(date(2026, 11, 30))] == ["monthly"]


def test_nothing_before_nine_then_monthly_and_quarterly_once(runtime, db, clock):
    _seed(db)
    clock.set(local(2026, 10, 8, 8, 59))
    assert publish_points(runtime) == 0
    with db.session() as s:
        assert s.get(PointsPeriod, "2026-10") is not None  # the month's rules are fixed at once
    clock.set(local(2026, 10, 8, 9, 0))
    assert publish_points(runtime) > 0
    assert publish_points(runtime) == 0  # the next tick: nothing again
    pushes = _pushes(db)
    assert pushes["lina"][0].startswith("【月度公示】综合处党支部 2026年9月")
    assert pushes["zhangwei"] == [
        "【月度公示】2026年9月您的积分：学习培训 0、工作履职 0、参加活动 3、诚信品德 0，合计 3 分，星级 —。发送「积分」查看明细。"]
    # One quarterly message each (not two) to the top committee's secretary and the liaison.
    quarterly = [t for t in pushes["wangsj"] if t.startswith("【季度通报】")]
    assert len(quarterly) == 1 and "综合处党支部：党员 3 人，人均 1.0 分" in quarterly[0]
    assert len([t for t in pushes["sunll"] if t.startswith("【季度通报】")]) == 1
    assert "2026年第3季度" in quarterly[0]


def test_a_missed_publication_day_is_caught_up_in_working_hours_once(runtime, db, clock):
    _seed(db)  # points in September; every scheduler down on Thursday 8 October
    for when in [(2026, 10, 8, 23, 0), (2026, 10, 9, 7, 0), (2026, 10, 9, 8, 59)]:  # quiet hours, before 09:00
        clock.set(local(*when))
        assert publish_points(runtime) == 0
    clock.set(local(2026, 10, 9, 10, 30))  # the next morning
    assert publish_points(runtime) > 0
    pushes = _pushes(db)
    assert pushes["zhangwei"] == [
        "【月度公示】2026年9月您的积分：学习培训 0、工作履职 0、参加活动 3、诚信品德 0，合计 3 分，星级 —。发送「积分」查看明细。"]
    assert len([t for t in pushes["wangsj"] if t.startswith("【季度通报】2026年第3季度")]) == 1
    for when in [(2026, 10, 9, 10, 31), (2026, 10, 12, 9, 0)]:
        clock.set(local(*when))
        assert publish_points(runtime) == 0  # once
    assert _pushes(db) == pushes


def test_a_send_for_one_branch_by_hand_does_not_stop_the_catch_up_for_the_others(runtime, db, clock):
    """`report monthly --org 综合处党支部 --send` on the missed day: the next scheduler tick still
    sends everyone else's copy, and nobody's twice."""
    from bot.reports.points import last_complete
    from bot.reports.publish import send
    from models.org import find_org
    from tests.factories import BRANCH_A

    _seed(db)
    clock.set(local(2026, 10, 8, 20, 0))  # after working hours: no scheduler send
    with db.session() as s:
        period = last_complete(PublicationKind.MONTHLY, clock(), runtime.settings.tz)
        [branch] = find_org(s, BRANCH_A)
        assert send(s, period, branch, now=clock(), tz=runtime.settings.tz) > 0
    by_hand = _pushes(db)
    assert "zhangwei" in by_hand and "zhaolei" not in by_hand
    clock.set(local(2026, 10, 9, 10, 0))
    assert publish_points(runtime) > 0
    pushes = _pushes(db)
    assert "zhaolei" in pushes and "chenjing" in pushes
    monthly = [t for ts in pushes.values() for t in ts if t.startswith("【月度公示】")]
    assert len(monthly) == len({(r, t) for r, ts in pushes.items() for t in ts if t.startswith("【月度公示】")})
    assert pushes["zhangwei"] == by_hand["zhangwei"]  # not twice


def test_a_catch_up_waits_for_a_working_day_and_hour_and_ends_with_the_month(runtime, db, clock):
    ids = _seed(db)
    with db.session() as s:
        award(s, ids["liuyang"], RuleName.MEETING_ATTENDED, "meeting", 2, at=local(2026, 10, 20, 10, 0))
        award(s, ids["liuyang"], RuleName.MEETING_ATTENDED, "meeting", 3, at=local(2026, 11, 20, 10, 0))
    # November's day is Monday the 2nd; back on Saturday the 7th: wait for Monday the 9th, 09:00.
    for when in [(2026, 11, 7, 10, 0), (2026, 11, 9, 18, 0)]:
        clock.set(local(*when))
        assert publish_points(runtime) == 0
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Publication)) == 0
    # Down the whole of November: December's day sends November's, and October's never goes out.
    clock.set(local(2026, 12, 1, 9, 0))
    assert publish_points(runtime) > 0
    texts = [t for ts in _pushes(db).values() for t in ts]
    assert any("2026年11月" in t for t in texts) and not any("2026年10月" in t for t in texts)
    with db.session() as s:
        assert set(s.scalars(select(Publication.period))) == {"2026-11"}


def test_quiet_hours_set_over_the_morning_hold_the_catch_up(settings, db, clock):
    from bot.runtime import Runtime

    _seed(db)
    runtime = Runtime.build(settings.with_overrides(quiet_hours="08:00-11:00"), clock=clock)
    try:
        clock.set(local(2026, 10, 9, 10, 0))
        assert publish_points(runtime) == 0
        clock.set(local(2026, 10, 9, 11, 0))
        assert publish_points(runtime) > 0
    finally:
        runtime.db.dispose()


def test_a_fresh_install_publishes_no_period_it_has_no_record_of(runtime, db, clock, caplog, monkeypatch):
    import logging

    from scheduler import publications

    monkeypatch.setattr(publications, "_reported_empty", set())
    with db.session() as s:
        ids = {k: p.id for k, p in small_tree(s).items()}  # installed on 15 October: nothing before
    caplog.set_level(logging.INFO, logger="scheduler.publications")
    for when in [(2026, 10, 15, 10, 0), (2026, 10, 15, 10, 1)]:
        clock.set(local(*when))
        assert publish_points(runtime) == 0  # September and Q3 are not published
    assert [r.getMessage() for r in caplog.records].count(
        "points publication monthly 2026-09 not sent: no points recorded in the period") == 1
    with db.session() as s:
        award(s, ids["zhangwei"], RuleName.MEETING_ATTENDED, "meeting", 1, at=local(2026, 10, 15, 10, 5))
    clock.set(local(2026, 10, 16, 10, 0))
    assert publish_points(runtime) == 0  # a record in October says nothing about September
    assert _pushes(db) == {}
    clock.set(local(2026, 11, 2, 9, 0))  # the first period with records: October
    assert publish_points(runtime) > 0
    assert _pushes(db)["zhangwei"][0].startswith("【月度公示】2026年10月您的积分")


@needs_postgres
def test_two_schedulers_send_each_copy_once(schedulers, db, clock):
    _seed(db)
    clock.set(local(2026, 10, 8, 9, 5))
    schedulers(lambda rt: [publish_points(rt) for _ in range(3)])
    with db.session() as s:
        claims = s.execute(select(Publication.period, Publication.kind, Publication.recipient_id)).all()
        assert len(claims) == len(set(claims))
        sent = s.scalar(select(func.count()).select_from(OutboxMessage)
                        .where(OutboxMessage.subject_type == "points_publication"))
        assert sent == len(claims)
    pushes = _pushes(db)
    assert all(len([t for t in texts if t.startswith("【季度通报】")]) <= 1 for texts in pushes.values())
    assert len(pushes["zhangwei"]) == 1


# -- long publications: in parts, whole, once ---------------------------------------------------

def _big_tree(db, branches: int = 48, generals: int = 0) -> dict[str, int]:
    """A committee whose quarterly report is several messages long: `branches` branches directly
    beneath it (or under `generals` general branches), two members each with points in Q3; its
    secretary on WeCom, one liaison of every branch on WeCom, another only on the Official Account."""
    from models.identity import Channel, ChannelIdentity
    from models.person import Role
    from tests.factories import person

    with db.session() as s:
        top = person(s, "王书记", "wangsj", "机关党委", Role.SECRETARY)
        paths = [f"机关党委/第{1 + i % generals}党总支/第{i + 1:02d}处党支部" if generals else f"机关党委/第{i + 1:02d}处党支部"
                 for i in range(branches)]
        for i, path in enumerate(paths):
            for j in range(2):
                member = person(s, f"党员{i:02d}{j}", f"m{i:02d}{j}", path)
                award(s, member.id, RuleName.MEETING_ATTENDED, "meeting", i * 2 + j + 1,
                      at=local(2026, 8, 10 + j, 10, 0))
        liaison = person(s, "孙联络", "sunll", "机关党委", Role.LIAISON, liaises=tuple(paths))
        follower = person(s, "周联络", None, "机关党委", Role.LIAISON, liaises=tuple(paths[:20]))
        s.add(ChannelIdentity(channel=Channel.MP, external_id="o-zhoull", person_id=follower.id,
                              last_inbound_at=local(2026, 10, 8, 8, 30)))
        return {"top": top.id, "liaison": liaison.id, "follower": follower.id}


def _whole(db, clock, person_id: int) -> str:
    """The recipient's quarterly copy as one text, as the publication builds it."""
    from bot.reports.points import make_period
    from bot.reports.publish import copies
    from models.publication import PublicationKind

    with db.session() as s:
        period = make_period(PublicationKind.QUARTERLY, 2026, 3)
        return next(c.text for c in copies(s, period, None, SH) if c.person_id == person_id)


def _received(state, user: str) -> list[str]:
    return [m["body"]["text"]["content"] for m in state.messages_for(user) if m["msgtype"] == "text"]


def _unmarked(parts: list[str]) -> str:
    """The parts' text without their （n/N） lines, in order, joined at the line they were cut at."""
    total = len(parts)
    out = []
    for n, text in enumerate(parts, start=1):
        head, _, rest = text.partition("\n")
        assert head == f"（{n}/{total}）", head
        out.append(rest)
    return "\n".join(out)


def _drain(runtime, clock, rounds: int = 40) -> None:
    """Worker rounds until nothing is left (a later part goes in the round after the one before it)."""
    from bot import worker

    for _ in range(rounds):
        if not worker.drain_once(runtime):
            return
        clock.advance(minutes=2)


def test_a_long_quarterly_report_arrives_whole_in_marked_parts_on_wecom_and_the_official_account(
        runtime, wechat_runtime, fake_wechat, db, clock):  # noqa: F811
    ids = _big_tree(db)
    fake_wechat.state.enforce_mp_window = True  # the follower's 48-hour window: 5 messages
    from fakewx.rules import open_mp_window

    open_mp_window(fake_wechat.state, "o-zhoull")
    clock.set(local(2026, 10, 8, 9, 0))
    assert publish_points(runtime) > 0
    _drain(wechat_runtime, clock)
    state = fake_wechat.state
    for user, person_id in (("wangsj", ids["top"]), ("sunll", ids["liaison"]), ("o-zhoull", ids["follower"])):
        whole = _whole(db, clock, person_id)
        assert len(whole.encode()) > 2048
        got = [t for t in _received(state, user) if not t.startswith("【月度公示】")]
        assert len(got) >= 2
        assert all(len(t.encode()) <= 2048 for t in got)
        assert got[0].startswith("（1/") and "【季度通报】" in got[0]
        assert _unmarked(got) == whole  # every line, in order, nothing cut off
    assert state.stats()["calls_by_path"].get("message/custom/send", 0) == len(_received(state, "o-zhoull"))


def test_a_committee_with_more_branches_than_one_message_holds_gets_the_level_beneath_it(db, clock):
    """The points part lists every organisation while it fits one message; beyond, the top and the
    organisations directly beneath it, each counting its subtree, and says where the rest is."""
    ids = _big_tree(db, branches=48, generals=4)
    text = _whole(db, clock, ids["top"])
    points_part = text.split("【观察点】")[0]
    assert "机关党委：党员 96 人，人均 3.0 分" in points_part
    assert all(f"第{g}党总支：党员 24 人，人均 3.0 分" in points_part for g in range(1, 5))
    assert "处党支部：" not in points_part
    assert "另有 48 个下属组织的明细见季度通报表格，可向党委办公室索取。" in points_part
    assert len(points_part.encode()) < 2048


@needs_postgres
def test_a_crash_between_parts_and_two_schedulers_still_give_each_part_once(
        runtime, schedulers, wechat_runtime, fake_wechat, db, clock, monkeypatch):  # noqa: F811
    import pytest

    from models import outbox as transitions  # where every part is queued

    _big_tree(db)
    clock.set(local(2026, 10, 8, 9, 0))
    real = transitions.enqueue

    def dies_after_the_first_part(*args, **kwargs):
        if args[3]["text"].startswith("（2/"):
            raise RuntimeError("the scheduler died between two parts")
        return real(*args, **kwargs)

    monkeypatch.setattr(transitions, "enqueue", dies_after_the_first_part)
    with pytest.raises(RuntimeError):
        publish_points(runtime)
    monkeypatch.setattr(transitions, "enqueue", real)
    with db.session() as s:  # the monthly one went; of the quarterly nothing stayed: no claim, no part 1 alone
        assert s.scalar(select(func.count()).select_from(Publication)
                        .where(Publication.kind == PublicationKind.QUARTERLY)) == 0
        assert not [m for m in s.scalars(select(OutboxMessage)) if m.payload["text"].startswith("（")]

    schedulers(lambda rt: [publish_points(rt) for _ in range(3)])
    _drain(wechat_runtime, clock)
    state = fake_wechat.state
    for user in ("wangsj", "sunll"):
        got = [t for t in _received(state, user) if not t.startswith("【月度公示】")]
        total = len(got)
        assert total >= 2 and [t.partition("\n")[0] for t in got] == [f"（{n}/{total}）" for n in range(1, total + 1)]
        assert len(set(got)) == total
    with db.session() as s:
        claims = s.execute(select(Publication.period, Publication.kind, Publication.recipient_id)).all()
        assert len(claims) == len(set(claims))
