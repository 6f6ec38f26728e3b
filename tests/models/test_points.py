"""The points ledger: each rule at an injected time, caps at the edge, reversal, the monthly rule
snapshot, append-only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from config import points_rules
from config.points_rules import Category, RuleName
from models.event import AppendOnlyError
from models.points import PointsEntry, award, award_claim, open_period, period_of, reverse, totals
from tests.factories import small_tree

NOV = datetime(2026, 11, 21, 11, 45, tzinfo=UTC)
DEC = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def people(db):
    with db.session() as s:
        return {k: p.id for k, p in small_tree(s).items()}


@pytest.fixture
def rules_file(tmp_path):
    """Write a rules file from the built-in one with some values replaced; install it."""
    builtin = points_rules.BUILTIN_RULES.read_text(encoding="utf-8")

    def write(**changes: str) -> points_rules.Rules:
        body = builtin
        for old, new in changes.items():
            assert old in body, old
            body = body.replace(old, new)
        path = tmp_path / "rules.toml"
        path.write_text(body, encoding="utf-8")
        rules = points_rules.load(path)
        points_rules.configure(rules)
        return rules

    yield write
    points_rules.configure(points_rules.load())


def _rows(db, person_id):
    with db.session() as s:
        return [(e.rule, e.points, e.capped, e.period, e.reverses_id is not None)
                for e in s.scalars(select(PointsEntry).where(PointsEntry.person_id == person_id)
                                   .order_by(PointsEntry.id))]


def test_period_is_the_month_in_the_configured_zone():
    assert period_of(datetime(2026, 11, 30, 16, 30, tzinfo=UTC)) == "2026-12"  # 00:30 on 1 December in Shanghai
    assert period_of(datetime(2026, 11, 30, 15, 59, tzinfo=UTC)) == "2026-11"


@pytest.mark.parametrize("rule, category, points", [
    (RuleName.STUDY_CONFIRMED, Category.STUDY, 2),
    (RuleName.DIRECTIVE_ACKNOWLEDGED, Category.DUTY, 1),
    (RuleName.DIRECTIVE_COMPLETED, Category.DUTY, 1),
    (RuleName.MEETING_ATTENDED, Category.ACTIVITY, 3),
    (RuleName.MEETING_ABSENT, Category.ACTIVITY, -2),
])
def test_each_rule_at_an_injected_time(db, people, rule, category, points):
    with db.session() as s:
        award(s, people["zhangwei"], rule, "directive", 7, at=NOV)
    with db.session() as s:
        entry = s.scalar(select(PointsEntry))
        assert (entry.category, entry.points, entry.rule, entry.source_type, entry.source_id, entry.period,
                entry.created_at) == (category, points, rule.value, "directive", 7, "2026-11", NOV)


def test_the_month_cap_at_the_edge_records_zero_with_the_reason(db, people):
    me = people["zhangwei"]
    with db.session() as s:
        for source in (1, 2, 3):  # 2 points each: exactly the study cap of 6
            award(s, me, RuleName.STUDY_CONFIRMED, "directive", source, at=NOV)
        award(s, me, RuleName.STUDY_CONFIRMED, "directive", 4, at=NOV)
        award(s, me, RuleName.STUDY_CONFIRMED, "directive", 5, at=DEC)  # a new month: room again
    assert [r[:3] for r in _rows(db, me)] == [
        ("study_confirmed", 2, None), ("study_confirmed", 2, None), ("study_confirmed", 2, None),
        ("study_confirmed", 0, "month_cap"), ("study_confirmed", 2, None)]


def test_a_partly_used_cap_gives_what_is_left(db, people):
    me = people["zhangwei"]
    with db.session() as s:
        award_claim(s, me, Category.INTEGRITY, 4, 1, at=NOV)  # integrity: 5 a month
        award_claim(s, me, Category.INTEGRITY, 3, 2, at=NOV)
    assert [r[1:3] for r in _rows(db, me)] == [(4, None), (1, "month_cap")]


def test_the_year_cap(db, people, rules_file):
    rules_file(**{"[caps.integrity]\nmonth = 5\nyear = 40": "[caps.integrity]\nmonth = 5\nyear = 6"})
    me = people["zhangwei"]
    with db.session() as s:
        award_claim(s, me, Category.INTEGRITY, 5, 1, at=NOV)
        award_claim(s, me, Category.INTEGRITY, 5, 2, at=DEC)
        award_claim(s, me, Category.INTEGRITY, 5, 3, at=DEC.replace(month=12, day=20))
    assert [r[1:3] for r in _rows(db, me)] == [(5, None), (1, "year_cap"), (0, "month_cap")]


def test_deductions_are_never_capped(db, people):
    me = people["zhangwei"]
    with db.session() as s:
        for source in range(1, 8):
            award(s, me, RuleName.MEETING_ABSENT, "meeting", source, at=NOV)
    assert [r[1] for r in _rows(db, me)] == [-2] * 7


def test_reversal_compensates_in_the_current_period_once(db, people):
    me, other = people["zhangwei"], people["liuyang"]
    with db.session() as s:
        award(s, me, RuleName.DIRECTIVE_ACKNOWLEDGED, "directive", 9, at=NOV)
        award(s, me, RuleName.DIRECTIVE_COMPLETED, "directive", 9, at=NOV)
        award(s, other, RuleName.DIRECTIVE_ACKNOWLEDGED, "directive", 9, at=NOV)
        award(s, me, RuleName.DIRECTIVE_ACKNOWLEDGED, "directive", 10, at=NOV)
    with db.session() as s:
        assert reverse(s, "directive", 9, DEC) == 3  # 撤回 in December
        assert reverse(s, "directive", 9, DEC) == 0  # again: nothing doubled
    rows = _rows(db, me)
    assert rows[-2:] == [("directive_acknowledged", -1, None, "2026-12", True),
                         ("directive_completed", -1, None, "2026-12", True)]
    with db.session() as s:
        # November, published or not, keeps what it had; December carries the compensation.
        assert totals(s, [me], "2026-11", "2026-11")[me].total == 3
        assert totals(s, [me], "2026-12", "2026-12")[me].total == -2


def test_reversal_after_a_cancelled_meeting_undoes_attendance_and_absence(db, people):
    me, other = people["zhangwei"], people["liuyang"]
    with db.session() as s:
        award(s, me, RuleName.MEETING_ATTENDED, "meeting", 4, at=NOV)
        award(s, other, RuleName.MEETING_ABSENT, "meeting", 4, at=NOV)
        assert reverse(s, "meeting", 4, NOV) == 2  # 取消
        got = totals(s, [me, other], "2026-11", "2026-11")
        assert got[me].total == 0 and got[other].total == 0


def test_reversal_gives_no_cap_room_back(db, people):
    me = people["zhangwei"]
    with db.session() as s:
        for source in (1, 2, 3):
            award(s, me, RuleName.STUDY_CONFIRMED, "directive", source, at=NOV)
        reverse(s, "directive", 3, NOV)
        award(s, me, RuleName.STUDY_CONFIRMED, "directive", 4, at=NOV)
    assert _rows(db, me)[-1][1:3] == (0, "month_cap")


def test_a_rule_change_applies_from_the_next_month_and_a_published_month_never_changes(db, people, rules_file):
    me = people["zhangwei"]
    with db.session() as s:
        open_period(s, "2026-11", at=NOV)  # November opens with the built-in rules
        award(s, me, RuleName.MEETING_ATTENDED, "meeting", 1, at=NOV)
    rules_file(**{"[rules.meeting_attended]     # checked in to a meeting (签到)\ncategory = \"activity\"\npoints = 3":
                  "[rules.meeting_attended]\ncategory = \"activity\"\npoints = 5"})
    with db.session() as s:
        award(s, me, RuleName.MEETING_ATTENDED, "meeting", 2, at=NOV)  # still November: its own rules
        award(s, me, RuleName.MEETING_ATTENDED, "meeting", 3, at=DEC)  # December opens with the new ones
    assert [r[1] for r in _rows(db, me)] == [3, 3, 5]
    with db.session() as s:
        assert totals(s, [me], "2026-11", "2026-11")[me].total == 6


def test_entries_are_never_updated_or_deleted(db, people):
    with db.session() as s:
        award(s, people["zhangwei"], RuleName.MEETING_ATTENDED, "meeting", 1, at=NOV)
    with pytest.raises(AppendOnlyError), db.session() as s:
        s.scalar(select(PointsEntry)).points = 30
        s.flush()
    with pytest.raises(AppendOnlyError), db.session() as s:
        s.delete(s.scalar(select(PointsEntry)))
        s.flush()


def test_the_database_refuses_updates_on_postgresql(db, people):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the trigger is PostgreSQL's")
    with db.session() as s:
        award(s, people["zhangwei"], RuleName.MEETING_ATTENDED, "meeting", 1, at=NOV)
    for sql in ("UPDATE points_entry SET points = 30", "DELETE FROM points_entry"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(sql))


@pytest.mark.parametrize("change, message", [
    (("[caps.study]", "[capsx.study]"), "缺少 [caps.study]"),
    (("points = -2", "points = \"负二\""), "rules.meeting_absent.points 应为整数"),
    (("month = [6, 12, 18]", "month = [12, 6]"), "星级门槛应从小到大排列"),
    (("default = 2\n\n[self_report.activity]", "default = 9\n\n[self_report.activity]"), "min ≤ default ≤ max"),
])
def test_a_bad_rules_file_is_refused_with_the_reason(tmp_path, change, message):
    path = tmp_path / "rules.toml"
    path.write_text(points_rules.BUILTIN_RULES.read_text(encoding="utf-8").replace(*change), encoding="utf-8")
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        points_rules.load(path)


def test_points_rules_setting_replaces_the_built_in_file(tmp_path):
    from config.settings import Settings, SettingsError

    path = tmp_path / "rules.toml"
    path.write_text(points_rules.BUILTIN_RULES.read_text(encoding="utf-8").replace("points = 3", "points = 4"),
                    encoding="utf-8")
    settings = Settings.from_env({"DATABASE_URL": "sqlite://", "POINTS_RULES": str(path)}, read_dotenv=False)
    assert settings.points_rules.rule("meeting_attended").points == 4
    path.write_text("不是 TOML", encoding="utf-8")
    with pytest.raises(SettingsError, match="POINTS_RULES"):
        Settings.from_env({"DATABASE_URL": "sqlite://", "POINTS_RULES": str(path)}, read_dotenv=False)


def test_a_finished_month_is_summarised_once_and_reports_read_the_same(db, people):
    from zoneinfo import ZoneInfo

    from bot.reports.points import make_period, organisation_figures
    from models.org import Organisation
    from models.points import PointsMonthTotal, summarise
    from models.publication import PublicationKind

    me, other = people["zhangwei"], people["liuyang"]
    with db.session() as s:
        award(s, me, RuleName.MEETING_ATTENDED, "meeting", 1, at=NOV)
        award(s, me, RuleName.DIRECTIVE_ACKNOWLEDGED, "directive", 1, at=NOV)
        award(s, other, RuleName.MEETING_ABSENT, "meeting", 1, at=NOV)
    period, tz = make_period(PublicationKind.QUARTERLY, 2026, 4), ZoneInfo("Asia/Shanghai")

    def figures():
        with db.session() as s:
            top = s.scalar(select(Organisation).where(Organisation.parent_id.is_(None)))
            return [(f.organisation.name, f.members, f.points, f.by_category) for f in
                    organisation_figures(s, top, period, tz)]

    before = figures()
    with db.session() as s:
        assert not summarise(s, "2026-11", at=datetime(2026, 11, 30, 16, 30, tzinfo=UTC))  # 00:30 on 1 Dec: too soon
        assert summarise(s, "2026-11", at=datetime(2026, 11, 30, 17, 0, tzinfo=UTC))
        assert summarise(s, "2026-11", at=DEC)  # once
        rows = s.execute(select(PointsMonthTotal.person_id, PointsMonthTotal.category, PointsMonthTotal.points)
                         .order_by(PointsMonthTotal.person_id, PointsMonthTotal.category)).all()
    assert sorted(rows) == sorted([(me, Category.ACTIVITY, 3), (me, Category.DUTY, 1), (other, Category.ACTIVITY, -2)])
    assert figures() == before


def test_a_fact_recorded_again_adds_nothing_and_fails_nothing(db, clock):
    """A task acknowledged anew after its acknowledgement was reset: one award, and the second
    `收到` is answered instead of failing on the one-award-per-fact key."""
    from models import points as ledger
    from models.points import PointsEntry, RuleName
    from tests.factories import small_tree

    with db.session() as s:
        person = small_tree(s)["zhangwei"]
        ledger.award(s, person.id, RuleName.DIRECTIVE_ACKNOWLEDGED, "directive", 7, at=clock())
        ledger.award(s, person.id, RuleName.DIRECTIVE_ACKNOWLEDGED, "directive", 7, at=clock())
    with db.session() as s:
        assert s.query(PointsEntry).filter_by(person_id=person.id, source_id=7).count() == 1
