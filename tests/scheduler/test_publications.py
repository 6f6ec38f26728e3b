"""The points publications on schedule: the first working day at 09:00, holidays honoured, once per
recipient with two schedulers on PostgreSQL, one quarterly message to the committee and liaisons."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import func, select

from config.points_rules import RuleName
from models.outbox import OutboxMessage
from models.points import PointsPeriod, award
from models.publication import Publication
from scheduler.publications import _due_kinds, publish_points
from tests.conftest import needs_postgres
from tests.factories import small_tree


def local(*args) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


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


def test_publication_days_follow_the_working_day_calendar():
    from datetime import date

    assert [k.value for k in _due_kinds(date(2026, 12, 1))] == ["monthly"]  # a Tuesday
    assert _due_kinds(date(2026, 1, 1)) == []  # New Year's Day is a holiday
    assert [k.value for k in _due_kinds(date(2026, 1, 4))] == ["monthly", "quarterly", "yearly"]  # a Sunday worked (调休)
    assert _due_kinds(date(2026, 10, 1)) == []  # National Day
    assert [k.value for k in _due_kinds(date(2026, 10, 8))] == ["monthly", "quarterly"]
    assert _due_kinds(date(2026, 12, 2)) == []


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


@needs_postgres
def test_two_schedulers_send_each_copy_once(settings, db, clock):
    from bot.runtime import Runtime

    _seed(db)
    clock.set(local(2026, 10, 8, 9, 5))
    runtimes = [Runtime.build(settings, clock=clock) for _ in range(2)]
    start = threading.Barrier(2)
    errors = []

    def run(rt):
        try:
            start.wait()
            for _ in range(3):
                publish_points(rt)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(rt,)) for rt in runtimes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for rt in runtimes:
        rt.db.dispose()
    assert not errors
    with db.session() as s:
        claims = s.execute(select(Publication.period, Publication.kind, Publication.recipient_id)).all()
        assert len(claims) == len(set(claims))
        sent = s.scalar(select(func.count()).select_from(OutboxMessage)
                        .where(OutboxMessage.subject_type == "points_publication"))
        assert sent == len(claims)
    pushes = _pushes(db)
    assert all(len([t for t in texts if t.startswith("【季度通报】")]) <= 1 for texts in pushes.values())
    assert len(pushes["zhangwei"]) == 1
