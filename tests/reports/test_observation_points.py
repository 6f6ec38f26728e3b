"""Points per member (人均积分) in the quarterly observation points: known answers over two quarters,
the same as the 季度通报's average for the same organisation and quarter, per type, and `—` where an
organisation has no members.

The ledger of the portrait tree (综合处 4 members, 财务处 2 and its group 1; amounts from the built-in rules):
- 2026Q2: 张伟 study confirmed 2; 陈静 attended 3 (30 June 23:00 in Shanghai, still Q2);
- 2026Q3: 张伟 attended 3, acknowledged 1, verified 诚信品德 5 → 9; 李娜 study 2; 刘洋 acknowledged 1;
  赵敏 absent −2; 赵磊 study 2; 钱多 (财务处's group) attended 3; 周离 study 2, then transferred out in
  October: counted nowhere;
- 2026Q4: 刘洋 completed 1 at 1 October 01:00 in Shanghai (30 September in UTC): Q4, not Q3.
So in 2026Q3 综合处 (2 + 9 + 1 − 2) ÷ 4 = 2.5, 财务处 (2 + 3) ÷ 3 ≈ 1.7, 第一党总支 and 机关党委 15 ÷ 7 ≈ 2.1;
in 2026Q2 综合处 0.5, 财务处 1.0, 第一党总支 5 ÷ 7 ≈ 0.7."""

from __future__ import annotations

from datetime import UTC, date, datetime
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.reports.observation import observation, render_text
from bot.reports.points import make_period, organisation_figures
from bot.reports.quarter import Quarter
from config.points_rules import Category, RuleName
from models.leaving import mark_left
from models.options import set_option
from models.org import OrgKind
from models.outbox import OutboxMessage
from models.person import Role
from models.points import award, award_claim, deduct_many, summarised
from models.publication import PublicationKind
from tests.factories import org, person
from tests.reports.portrait_tree import BRANCH_A, BRANCH_B, GENERAL, build

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 11, 45, tzinfo=UTC)
EMPTY = f"{GENERAL}/新设党支部"  # a branch nobody has joined yet


def _at(month: int, day: int, hour: int = 2) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def seed(db) -> None:
    with db.session() as s:
        people = build(s)
        ids = {k: p.id for k, p in people.items()}
        leaver = person(s, "周离", "zhouli", BRANCH_A)
        org(s, EMPTY)
        set_option(s, org(s, BRANCH_A), "业务性质", "科研", at=NOW)
        set_option(s, org(s, EMPTY), "业务性质", "后勤", at=NOW)
        # 2026Q2
        award(s, ids["zhangwei"], RuleName.STUDY_CONFIRMED, "directive", 101, at=_at(5, 10))
        award(s, ids["chenjing"], RuleName.MEETING_ATTENDED, "meeting", 101, at=datetime(2026, 6, 30, 15, tzinfo=UTC))
        # 2026Q3
        award(s, ids["zhangwei"], RuleName.MEETING_ATTENDED, "meeting", 201, at=_at(7, 8))
        award(s, ids["zhangwei"], RuleName.DIRECTIVE_ACKNOWLEDGED, "directive", 201, at=_at(8, 3))
        award_claim(s, ids["zhangwei"], Category.INTEGRITY, 5, 201, at=_at(9, 10))
        award(s, ids["lina"], RuleName.STUDY_CONFIRMED, "directive", 202, at=_at(8, 4))
        award(s, ids["liuyang"], RuleName.DIRECTIVE_ACKNOWLEDGED, "directive", 201, at=_at(8, 3))
        deduct_many(s, [ids["zhaomin"]], RuleName.MEETING_ABSENT, "meeting", 202, at=_at(9, 2))
        award(s, ids["zhaolei"], RuleName.STUDY_CONFIRMED, "directive", 202, at=_at(8, 4))
        award(s, ids["qianduo"], RuleName.MEETING_ATTENDED, "meeting", 203, at=_at(9, 5))
        award(s, leaver.id, RuleName.STUDY_CONFIRMED, "directive", 202, at=_at(8, 4))
        # 2026Q4, by an hour in Shanghai
        award(s, ids["liuyang"], RuleName.DIRECTIVE_COMPLETED, "directive", 201, at=datetime(2026, 9, 30, 17, tzinfo=UTC))
        mark_left(s, leaver, on=date(2026, 10, 15), now=_at(10, 15))


def test_points_per_member_per_organisation_and_type_with_the_quarter_before(db):
    seed(db)
    with db.session() as s:
        q3 = observation(s, Quarter(2026, 3), tz=TZ)
        q4 = observation(s, Quarter(2026, 4), tz=TZ)
    orgs = {r.label: r for r in q3.organisations}
    types = {r.label: r for r in q3.types}
    assert (orgs[BRANCH_A].points_now, orgs[BRANCH_A].points_before) == (2.5, 0.5)
    assert (orgs[BRANCH_B].points_now, orgs[BRANCH_B].points_before) == (5 / 3, 1.0)
    for path in (GENERAL, "机关党委"):
        assert (orgs[path].points_now, orgs[path].points_before) == (15 / 7, 5 / 7)
        assert orgs[path].now.members == 7  # the leaver is not counted, nor the leaver's 2 points
    # Types add up their branches: 科研 is 综合处; 党支部 is 财务处 (with its group) and the empty branch.
    assert (types["科研"].points_now, types["科研"].points_before) == (2.5, 0.5)
    assert (types["党支部"].points_now, types["党支部"].points_before) == (5 / 3, 1.0)
    # Nobody to divide by: no figure, not a division error.
    assert (orgs[EMPTY].points_now, orgs[EMPTY].points_before) == (None, None)
    assert (types["后勤"].points_now, types["后勤"].points_before) == (None, None)
    # 1 October 01:00 in Shanghai is Q4; Q4 carries Q3 beside it.
    a4 = {r.label: r for r in q4.organisations}[BRANCH_A]
    assert (a4.points_now, a4.points_before) == (0.25, 2.5)

    text = render_text(q3)
    assert "\n后勤：党员 0 人；" in text.split("按组织（含下属组织）：")[0]
    assert f"{BRANCH_A}：党员 4 人；" in text
    line_of = {ln.split("：", 1)[0]: ln for ln in text.splitlines() if "：党员" in ln}
    assert line_of[BRANCH_A].endswith("；人均积分 2.5（上季度 0.5）")
    assert line_of[BRANCH_B].endswith("；人均积分 1.7（上季度 1.0）")
    assert line_of[GENERAL].endswith("；人均积分 2.1（上季度 0.7）")
    assert line_of["科研"].endswith("；人均积分 2.5（上季度 0.5）")
    assert line_of[EMPTY].endswith("；人均积分 —（上季度 —）")
    assert line_of["后勤"].endswith("；人均积分 —（上季度 —）")


@pytest.mark.parametrize("quarter", [Quarter(2026, 3), Quarter(2026, 2)])
def test_the_same_as_the_quarterly_reports_average_for_every_organisation(db, quarter):
    seed(db)
    with db.session() as s:
        obs = observation(s, quarter, tz=TZ)
        period = make_period(PublicationKind.QUARTERLY, quarter.year, quarter.number)
        report = {f.organisation.path: f for f in organisation_figures(s, None, period, TZ)}
    rows = {r.label: r for r in obs.organisations}
    # The 季度通报 lists every organisation with members; the observation points leave groups out.
    report = {p: f for p, f in report.items() if f.organisation.kind is not OrgKind.GROUP}
    assert set(report) == {p for p, r in rows.items() if r.now.members}
    for path, figures in report.items():
        assert rows[path].points_now == figures.average, path
        assert rows[path].now.members == figures.members, path


def test_cli_text_and_xlsx_and_the_one_quarterly_push_agree(app, db, tmp_path):
    seed(db)
    runner = app.test_cli_runner()
    before = runner.invoke(args=["report", "observation", "--period", "2026Q3"])  # months not summarised yet
    assert before.exit_code == 0, before.output
    assert f"{BRANCH_A}：党员 4 人；" in before.output and "人均积分 2.5（上季度 0.5）" in before.output

    quarterly = runner.invoke(args=["report", "quarterly", "--period", "2026Q3"])  # summarises the months
    assert quarterly.exit_code == 0, quarterly.output
    points_part, observation_part = quarterly.output.split("【观察点】")
    assert "第一党总支：党员 7 人，人均 2.1 分" in points_part
    assert "综合处党支部：党员 4 人，人均 2.5 分" in points_part
    assert "财务处党支部：党员 3 人，人均 1.7 分" in points_part
    assert "新设党支部" not in points_part  # no members: the 季度通报 leaves it out
    assert "\n第一党总支：党员 7 人；" in observation_part
    assert observation_part.split("\n第一党总支：")[1].split("\n")[0].endswith("人均积分 2.1（上季度 0.7）")
    assert "科研：党员 4 人；" in observation_part and "人均积分 2.5（上季度 0.5）" in observation_part

    # Read again from the month totals the quarterly report wrote: the same figures.
    with db.session() as s:
        assert summarised(s, "2026-07", "2026-09") == {"2026-07", "2026-08", "2026-09"}
    after = runner.invoke(args=["report", "observation", "--period", "2026Q3"])
    assert after.output == before.output

    path = tmp_path / "observation.xlsx"
    assert runner.invoke(args=["report", "observation", "--period", "2026Q3", "-o", str(path)]).exit_code == 0
    book = load_workbook(BytesIO(path.read_bytes()))
    header = [c.value for c in book["按组织"][1]]
    at = header.index("人均积分（2026年第3季度）")
    assert header[at + 1] == "人均积分（2026年第2季度）"
    by_org = {r[0].value: [c.value for c in r] for r in book["按组织"].iter_rows(min_row=2)}
    by_type = {r[0].value: [c.value for c in r] for r in book["按类型"].iter_rows(min_row=2)}
    assert by_org[BRANCH_A][at:at + 2] == ["2.5", "0.5"]
    assert by_org[BRANCH_B][at:at + 2] == ["1.7", "1.0"]
    assert by_org["机关党委"][at:at + 2] == ["2.1", "0.7"]
    assert by_org[EMPTY][at:at + 2] == ["—", "—"]
    assert by_type["科研"][at:at + 2] == ["2.5", "0.5"]
    assert by_type["后勤"][at:at + 2] == ["—", "—"]


def test_the_push_carries_points_per_member_to_each_recipient_computing_the_quarter_once(app, db, monkeypatch):
    from bot.reports import observation as module

    seed(db)
    with db.session() as s:
        person(s, "吴联络", "wull", "机关党委", Role.LIAISON, liaises=(BRANCH_B,))
    calls = []
    real = module.observation
    monkeypatch.setattr(module, "observation", lambda s, q, **kw: calls.append(q) or real(s, q, **kw))
    sent = app.test_cli_runner().invoke(args=["report", "quarterly", "--period", "2026Q3", "--send"])
    assert sent.exit_code == 0, sent.output
    # Once for the copy printed, once for the three pushed (the top secretary's, two liaisons').
    assert calls == [Quarter(2026, 3)] * 2
    with db.session() as s:
        texts = {m.recipient: m.payload["text"] for m in s.scalars(select(OutboxMessage))}
    assert set(texts) == {"wangsj", "sunll", "wull"}
    top, liaison = texts["wangsj"], texts["sunll"]
    assert "各下属组织：\n第一党总支：党员 7 人；" in top and "人均积分 2.1（上季度 0.7）" in top
    assert "综合处党支部：党员 4 人，人均 2.5 分" in liaison  # the 季度通报's line …
    ours = liaison.split("联系组织：\n")[1].split("\n")[0]
    assert ours.startswith("综合处党支部：党员 4 人；") and ours.endswith("人均积分 2.5（上季度 0.5）")  # … and ours
    assert texts["wull"].split("联系组织：\n")[1].split("\n")[0].endswith("人均积分 1.7（上季度 1.0）")
