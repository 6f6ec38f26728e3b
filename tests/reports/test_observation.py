"""The quarterly observation points: per organisation and per type, the quarter before beside it,
as text, as XLSX (formula-looking cells kept as text) and as the push's section."""

from __future__ import annotations

from datetime import UTC, datetime
from io import BytesIO
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy import select

from bot.reports.observation import observation, observation_section, render_text
from bot.reports.quarter import Quarter
from models.options import set_option
from models.person import Person
from tests.factories import org
from tests.reports.portrait_tree import BRANCH_A, BRANCH_B, build

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 11, 45, tzinfo=UTC)


def _rows(obs):
    return {r.label: r for r in obs.organisations}, {r.label: r for r in obs.types}


def test_figures_per_organisation_and_type_with_the_quarter_before(db):
    with db.session() as s:
        build(s)
        set_option(s, org(s, BRANCH_A), "业务性质", "科研", at=NOW)
    with db.session() as s:
        q4 = observation(s, Quarter(2026, 4), tz=TZ)
        q3 = observation(s, Quarter(2026, 3), tz=TZ)
    orgs, types = _rows(q3)
    a = orgs[BRANCH_A]
    assert (a.now.median_lag, a.now.slowest_lag, a.now.acknowledged) == (30, 120, 3)
    assert (a.now.meetings_held, a.now.meetings_required) == (2, 8)
    assert (orgs[BRANCH_B].now.study_done, orgs[BRANCH_B].now.study_total) == (1, 2)
    assert orgs[BRANCH_B].now.meetings_required == 11  # it has a group: 党小组会 each month
    top = orgs["机关党委"]
    assert (top.now.members, top.now.meetings_held, top.now.meetings_required, top.now.median_lag) == (7, 2, 19, 30)
    assert (a.points_now, a.points_before) == (0.0, 0.0)  # members, none with points in the ledger
    assert set(types) == {"科研", "党支部"}
    assert types["科研"].now.meetings_required == 8 and types["党支部"].now.study_done == 1
    # Q4 carries Q3 beside it; the 主题党日 of October is Q4's.
    a4 = _rows(q4)[0][BRANCH_A]
    assert (a4.now.meetings_held, a4.before.meetings_held, a4.before.median_lag, a4.now.median_lag) == (1, 2, 30, None)

    text = render_text(q3)
    assert text.startswith("2026年第3季度观察点（括号内为2026年第2季度）\n")
    assert (f"{BRANCH_A}：党员 4 人；确认用时中位 30分钟（上季度 —）；确认最慢 2小时（上季度 —）；"
            "规定会议 2/8（25%）（上季度 0/8（0%））；学习完成 —（上季度 —）；人均积分 0.0（上季度 0.0）") in text


def test_cli_text_default_period_and_xlsx_keeps_formula_like_text(app, db, tmp_path):
    with db.session() as s:
        build(s)
        set_option(s, org(s, BRANCH_B), "业务性质", "=1+1", at=NOW)
    runner = app.test_cli_runner()
    shown = runner.invoke(args=["report", "observation"])  # the clock is in 2026Q4: the last complete is Q3
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("2026年第3季度观察点")
    bad = runner.invoke(args=["report", "observation", "--period", "2026Q5"])
    assert bad.exit_code == 1 and "例如 2026Q4" in bad.output
    path = tmp_path / "observation.xlsx"
    written = runner.invoke(args=["report", "observation", "--period", "2026Q3", "-o", str(path)])
    assert written.exit_code == 0 and "观察点表格已写入" in written.output
    book = load_workbook(BytesIO(path.read_bytes()))
    by_org, by_type = book["按组织"], book["按类型"]
    header = [c.value for c in by_org[1]]
    assert header[:3] == ["组织", "党员（2026年第3季度）", "党员（2026年第2季度）"]
    row = next(r for r in by_org.iter_rows(min_row=2) if r[0].value == BRANCH_A)
    assert [c.value for c in row[3:5]] == ["30分钟", "—"]
    formula_like = next(r for r in by_type.iter_rows(min_row=2) if r[0].value == "=1+1")[0]
    assert formula_like.data_type == "s"


def test_section_for_a_liaison_and_for_the_top_secretary(db):
    with db.session() as s:
        build(s)
    with db.session() as s:
        liaison = s.scalar(select(Person).where(Person.wecom_userid == "sunll"))
        top = s.scalar(select(Person).where(Person.wecom_userid == "wangsj"))
        report = observation(s, Quarter(2026, 3), tz=TZ)
        for_liaison = observation_section(s, liaison, "2026Q3", tz=TZ, report=report)
        for_top = observation_section(s, top, Quarter(2026, 3), tz=TZ)
    lines = for_liaison.split("\n")
    assert lines[0] == "【观察点】2026年第3季度（括号内为上季度）"
    assert lines[lines.index("联系组织：") + 1].startswith("综合处党支部：党员 4 人；确认用时中位 30分钟（上季度 —）")
    assert "财务处党支部：" not in for_liaison.split("联系组织：")[1].split("确认用时中位最长")[0]
    assert "各下属组织：\n第一党总支：党员 7 人" in for_top
    assert for_top.endswith("确认用时中位最长的支部：综合处党支部 30分钟")


def test_a_branch_owes_the_required_meetings_of_the_periods_that_began_once_it_was_in_the_bot(db):
    """Came in on 15 August: September is the only month of Q3 that began after, and the quarter's
    own meetings (组织生活会 …) are owed from Q4; Q2 owes nothing, shown as —."""
    from sqlalchemy import update

    from models.org import Organisation

    with db.session() as s:
        build(s)
        s.execute(update(Organisation).where(Organisation.path == BRANCH_A)
                  .values(created_at=datetime(2026, 8, 15, 2, 0, tzinfo=UTC)))
    with db.session() as s:
        q3 = observation(s, Quarter(2026, 3), tz=TZ)
    a = _rows(q3)[0][BRANCH_A]
    full = _rows(q3)[0][BRANCH_B]
    assert full.now.meetings_required == 11  # in the bot all quarter (it has a group)
    assert a.now.meetings_required == 2  # September's 支委会 and 主题党日; no quarterly ones
    assert a.now.meetings_held == 0  # July's 支委会 and August's 党课 were before it counted
    assert (a.before.meetings_required, a.before.meetings_held) == (0, 0)
    assert "规定会议 0/2（0%）（上季度 —）" in render_text(q3)
