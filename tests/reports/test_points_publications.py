"""`report monthly|quarterly|yearly`: the branch table by roster or by points, the XLSX, --send once
(and --force), the default period; the quarterly message's sections; the yearly candidates."""

from __future__ import annotations

from datetime import UTC, datetime
from io import BytesIO

from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.reports import quarterly
from bot.reports.points import last_complete, make_period
from config.points_rules import Category, RuleName
from models.outbox import OutboxMessage
from models.person import Person
from models.points import award, award_claim
from models.publication import Publication, PublicationKind
from tests.factories import small_tree

NOV = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)


def _seed(db):
    with db.session() as s:
        tree = small_tree(s)
        ids = {k: p.id for k, p in tree.items()}
        award(s, ids["liuyang"], RuleName.MEETING_ATTENDED, "meeting", 1, at=NOV)
        award(s, ids["liuyang"], RuleName.DIRECTIVE_ACKNOWLEDGED, "directive", 1, at=NOV)
        award(s, ids["zhangwei"], RuleName.DIRECTIVE_ACKNOWLEDGED, "directive", 1, at=NOV)
        award_claim(s, ids["zhangwei"], Category.INTEGRITY, 5, 1, at=NOV)
        award_claim(s, ids["zhangwei"], Category.DUTY, 5, 2, at=NOV)
        return ids


def _report(app, *args):
    return app.test_cli_runner().invoke(args=["report", *args])


def test_monthly_branch_table_in_roster_order_then_by_points_with_ranking_on(app, db):
    _seed(db)
    result = _report(app, "monthly", "--period", "2026-11", "--org", "综合处党支部")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "【月度公示】综合处党支部 2026年11月（按名册顺序）"
    assert lines[1] == "姓名 学习培训 工作履职 参加活动 诚信品德 合计 星级"
    assert lines[2:5] == ["李娜 0 0 0 0 0 —", "张伟 0 6 0 5 11 ★", "刘洋 0 1 3 0 4 —"]
    assert app.test_cli_runner().invoke(args=["set-option", "机关党委", "ranking", "on"]).exit_code == 0
    ranked = _report(app, "monthly", "--period", "2026-11", "--org", "综合处党支部").output.splitlines()
    assert ranked[0].endswith("（按积分排列）")
    assert ranked[2:5] == ["张伟 0 6 0 5 11 ★", "刘洋 0 1 3 0 4 —", "李娜 0 0 0 0 0 —"]


def test_monthly_xlsx_writes_formula_like_names_as_text(app, db, tmp_path):
    _seed(db)
    with db.session() as s:
        s.scalar(select(Person).where(Person.name == "刘洋")).name = "=1+1"
    out = tmp_path / "m.xlsx"
    assert _report(app, "monthly", "--period", "2026-11", "-o", str(out)).exit_code == 0
    sheet = load_workbook(BytesIO(out.read_bytes())).active
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert rows[0] == ["支部", "姓名", "学习培训", "工作履职", "参加活动", "诚信品德", "合计", "星级"]
    assert ["综合处党支部", "=1+1", 0, 1, 3, 0, 4, 0] in rows
    cell = next(r[1] for r in sheet.iter_rows() if r[1].value == "=1+1")
    assert cell.data_type == "s"


def test_send_once_per_recipient_then_force(app, db, runtime, clock):
    _seed(db)
    clock.set(datetime(2026, 12, 3, 2, 0, tzinfo=UTC))
    first = _report(app, "monthly", "--send")  # default: the last complete month, November
    assert first.output.splitlines()[0].startswith("【月度公示】") and "2026年11月" in first.output
    assert first.output.rstrip().endswith("已推送 5 人")  # 2 secretaries' tables, 3 members' lines
    again = _report(app, "monthly", "--send")
    assert "2026-11 已推送过，未再推送" in again.output
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 5
        line = s.scalar(select(OutboxMessage).where(OutboxMessage.recipient == "zhangwei"))
        assert line.payload["text"].startswith("【月度公示】2026年11月您的积分：学习培训 0、工作履职 6、参加活动 0、诚信品德 5，合计 11 分")
        table = s.scalar(select(OutboxMessage).where(OutboxMessage.recipient == "lina"))
        assert table.payload["text"].startswith("【月度公示】综合处党支部 2026年11月")
    forced = _report(app, "monthly", "--send", "--force")
    assert forced.output.rstrip().endswith("已推送 5 人")


def test_default_periods_are_the_last_complete_ones():
    now = datetime(2027, 1, 4, 1, 0, tzinfo=UTC)
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    assert last_complete(PublicationKind.MONTHLY, now, tz).key == "2026-12"
    assert last_complete(PublicationKind.QUARTERLY, now, tz).key == "2026Q4"
    assert last_complete(PublicationKind.YEARLY, now, tz).key == "2026"


def test_a_bad_period_is_refused(app, db):
    result = _report(app, "monthly", "--period", "2026-13")
    assert result.exit_code == 1 and "月份应在 1 到 12 之间" in result.output


def test_quarterly_report_per_organisation_and_its_sections(app, db, monkeypatch):
    _seed(db)
    text = _report(app, "quarterly", "--period", "2026Q4").output
    assert text.startswith("【季度通报】2026年第4季度\n\n积分情况（2026年第4季度）")
    assert "综合处党支部：党员 3 人，人均 5.0 分，获星 0%，申报核实 0 项" in text
    assert "机关党委：党员 5 人，人均 3.0 分" in text
    # The observation points of §11 ride in the same message, after the points: one quarterly push.
    assert text.index("积分情况") < text.index("【观察点】2026年第4季度") and text.count("【季度通报】") == 1
    monkeypatch.setattr(quarterly, "QUARTERLY_SECTIONS",
                        [*quarterly.QUARTERLY_SECTIONS, lambda s, scope, period: f"观察点 {period.key}"])
    assert _report(app, "quarterly", "--period", "2026Q4").output.rstrip().endswith("观察点 2026Q4")


def test_yearly_lists_the_candidates_by_threshold(app, db, tmp_path):
    from config import points_rules

    ids = _seed(db)
    path = tmp_path / "rules.toml"
    path.write_text(points_rules.BUILTIN_RULES.read_text(encoding="utf-8").replace("year = 150", "year = 10"),
                    encoding="utf-8")
    points_rules.configure(points_rules.load(path))
    try:
        out = tmp_path / "y.xlsx"
        text = _report(app, "yearly", "--period", "2026", "-o", str(out)).output
    finally:
        points_rules.configure(points_rules.load())
    assert "年度表彰候选人（全年积分达到 10 分）：\n张伟（综合处党支部）11 分" in text
    book = load_workbook(BytesIO(out.read_bytes()))
    assert [[c.value for c in r] for r in book["年度表彰候选人"].iter_rows()] == [
        ["姓名", "所在支部", "全年积分"], ["张伟", "机关党委/第一党总支/综合处党支部", 11]]
    assert ids  # seeded


def test_publication_rows_are_one_per_period_kind_recipient(db):
    from models.publication import claim

    _seed(db)
    with db.session() as s:
        pid = s.scalar(select(Person.id).where(Person.name == "张伟"))
        assert claim(s, "2026-11", PublicationKind.MONTHLY, pid, at=NOV)
        assert not claim(s, "2026-11", PublicationKind.MONTHLY, pid, at=NOV)
        assert claim(s, "2026Q4", PublicationKind.QUARTERLY, pid, at=NOV)
        assert s.scalar(select(func.count()).select_from(Publication)) == 2
    assert make_period(PublicationKind.QUARTERLY, 2026, 4).first == "2026-10"


def test_reports_list_organisations_in_tree_order_and_a_temporary_branch_points_home(app, db):
    """人事处 sorts before 综合处 by code point, but the roster created it last: the tables, the
    季度通报 and the observation points follow the roster. A temporary branch's people are
    published in their home branch, which its table says instead of 本支部暂无党员."""
    from bot.reports.observation import observation
    from bot.reports.quarter import Quarter
    from models.person import Role
    from tests.factories import person

    _seed(db)
    with db.session() as s:
        person(s, "韩冰", "hanbing", "机关党委/第一党总支/人事处党支部")
        person(s, "彭涛", "pengtao", "机关党委/驻村工作队临时党支部", Role.SECRETARY, temporary=True)

    monthly = _report(app, "monthly", "--period", "2026-11").output
    heads = [line.split()[0] for line in monthly.splitlines() if line.startswith("【月度公示】")]
    assert heads == ["【月度公示】综合处党支部", "【月度公示】财务处党支部", "【月度公示】人事处党支部",
                     "【月度公示】驻村工作队临时党支部"]
    temporary = monthly.split("【月度公示】驻村工作队临时党支部")[1]
    assert "临时党支部党员的积分计入各自所在党支部" in temporary and "本支部暂无党员" not in temporary

    quarter = _report(app, "quarterly", "--period", "2026Q4").output
    assert quarter.index("综合处党支部：党员") < quarter.index("财务处党支部：党员") < quarter.index("人事处党支部：党员")

    with db.session() as s:
        labels = [r.label for r in observation(s, Quarter(2026, 4)).organisations]
    assert labels.index("机关党委/第一党总支/综合处党支部") < labels.index("机关党委/第一党总支/财务处党支部") \
        < labels.index("机关党委/第一党总支/人事处党支部")


def test_a_small_negative_average_shows_as_zero_not_minus_zero():
    from bot.texts.points import one_decimal

    assert [one_decimal(v) for v in (-1 / 30, -0.05001, 0.0, 2.25, -1.0)] == ["0.0", "-0.1", "0.0", "2.2", "-1.0"]
