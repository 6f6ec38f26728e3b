"""Held meetings counted toward 三会一课 and 主题党日 per Asia/Shanghai calendar month or quarter."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from models.meeting import (
    MeetingType,
    Period,
    close_due_meetings,
    close_meeting,
    held_meetings,
    period_bounds,
    requirement_status,
    schedule,
)
from models.outbox import text_payload
from tests.factories import BRANCH_A, BRANCH_B, org, small_tree


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def _held(session, people, branch_path: str, meeting_type: MeetingType, starts_at: datetime, *, close: bool = True):
    branch = org(session, branch_path)
    convener = people["sec_a"] if branch_path == BRANCH_A else people["sec_b"]
    meeting = schedule(session, branch=branch, meeting_type=meeting_type, starts_at=starts_at, convener=convener,
                       now=starts_at - timedelta(days=1), render=lambda m, c: text_payload("通知"))
    if close:
        close_meeting(session, meeting, by=convener, now=starts_at + timedelta(hours=2))
    return meeting


@pytest.mark.parametrize(("period", "on", "start", "end"), [
    (Period.MONTH, date(2026, 11, 21), shanghai(2026, 11, 1), shanghai(2026, 12, 1)),
    (Period.MONTH, date(2026, 12, 31), shanghai(2026, 12, 1), shanghai(2027, 1, 1)),
    (Period.QUARTER, date(2026, 11, 21), shanghai(2026, 10, 1), shanghai(2027, 1, 1)),
    (Period.QUARTER, date(2026, 1, 1), shanghai(2026, 1, 1), shanghai(2026, 4, 1)),
    (Period.QUARTER, date(2026, 6, 30), shanghai(2026, 4, 1), shanghai(2026, 7, 1)),
    # 2026-11-30 17:00 UTC is already 1 December in Shanghai.
    (Period.MONTH, datetime(2026, 11, 30, 17, 0, tzinfo=UTC), shanghai(2026, 12, 1), shanghai(2027, 1, 1)),
])
def test_period_bounds_are_shanghai_calendar_periods(period, on, start, end):
    assert period_bounds(period, on) == (start, end)
    assert start.tzinfo is not None and start.utcoffset() == timedelta(0)


def test_each_type_has_its_required_period():
    assert {t.label: t.period for t in MeetingType} == {
        "支部党员大会": Period.QUARTER, "支委会": Period.MONTH, "党小组会": Period.MONTH,
        "党课": Period.QUARTER, "主题党日": Period.MONTH, "组织生活会": Period.YEAR, "民主评议党员": Period.YEAR,
    }


def test_requirement_status_counts_closed_meetings_of_the_branch_in_the_period(db):
    with db.session() as s:
        people = small_tree(s)
        _held(s, people, BRANCH_A, MeetingType.COMMITTEE, shanghai(2026, 11, 3, 19))
        _held(s, people, BRANCH_A, MeetingType.COMMITTEE, shanghai(2026, 11, 17, 19))
        _held(s, people, BRANCH_A, MeetingType.COMMITTEE, shanghai(2026, 10, 31, 19))  # last month
        _held(s, people, BRANCH_A, MeetingType.GENERAL_ASSEMBLY, shanghai(2026, 10, 9, 19))  # same quarter
        _held(s, people, BRANCH_A, MeetingType.LECTURE, shanghai(2026, 11, 25, 19), close=False)  # not held yet
        _held(s, people, BRANCH_B, MeetingType.THEME_DAY, shanghai(2026, 11, 5, 9))  # another branch
        status = {r.meeting_type: r for r in requirement_status(s, org(s, BRANCH_A), date(2026, 11, 21))}
    assert [(t.label, status[t].held, status[t].required, status[t].met) for t in MeetingType] == [
        ("支部党员大会", 1, 1, True),
        ("支委会", 2, 1, True),
        ("党小组会", 0, 1, False),
        ("党课", 0, 1, False),
        ("主题党日", 0, 1, False),
        ("组织生活会", 0, 1, False),
        ("民主评议党员", 0, 1, False),
    ]
    assert status[MeetingType.COMMITTEE].period_start == shanghai(2026, 11, 1)
    assert status[MeetingType.COMMITTEE].period_end == shanghai(2026, 12, 1)
    assert status[MeetingType.GENERAL_ASSEMBLY].period_start == shanghai(2026, 10, 1)
    assert status[MeetingType.GENERAL_ASSEMBLY].period_end == shanghai(2027, 1, 1)


def test_a_meeting_counts_in_the_shanghai_month_it_started_in(db):
    with db.session() as s:
        people = small_tree(s)
        branch = org(s, BRANCH_A)
        late_november = _held(s, people, BRANCH_A, MeetingType.THEME_DAY, shanghai(2026, 11, 30, 23, 30))
        early_december = _held(s, people, BRANCH_A, MeetingType.THEME_DAY, shanghai(2026, 12, 1, 1, 0))  # after the first's 90 minutes
        assert early_december.starts_at.day == 30  # still 30 November in UTC
        nov = period_bounds(Period.MONTH, date(2026, 11, 15))
        dec = period_bounds(Period.MONTH, date(2026, 12, 15))
        assert [m.id for m in held_meetings(s, branch.id, MeetingType.THEME_DAY, *nov)] == [late_november.id]
        assert [m.id for m in held_meetings(s, branch.id, MeetingType.THEME_DAY, *dec)] == [early_december.id]
        december = {r.meeting_type: r.held for r in requirement_status(s, branch, date(2026, 12, 1))}
        assert december[MeetingType.THEME_DAY] == 1


def test_close_due_meetings_closes_each_once_thirty_minutes_after_its_end(db):
    with db.session() as s:
        people = small_tree(s)
        start = shanghai(2026, 11, 21, 20)
        _held(s, people, BRANCH_A, MeetingType.LECTURE, start, close=False)  # 90 minutes: ends 21:30
        _held(s, people, BRANCH_B, MeetingType.LECTURE, start + timedelta(hours=1), close=False)
    with db.session() as s:
        assert close_due_meetings(s, start + timedelta(hours=1, minutes=59)) == 0
    with db.session() as s:
        assert close_due_meetings(s, start + timedelta(hours=2)) == 1
    with db.session() as s:
        assert close_due_meetings(s, start + timedelta(hours=2, minutes=30)) == 0
        assert close_due_meetings(s, start + timedelta(hours=3)) == 1
    with db.session() as s:
        nov = period_bounds(Period.QUARTER, date(2026, 11, 21))
        assert len(held_meetings(s, org(s, BRANCH_A).id, MeetingType.LECTURE, *nov)) == 1
