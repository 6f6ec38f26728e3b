"""The portrait's derived features from a tree with known answers, the chart parsed back, the
scores set by hand (who and when) and the guidance."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.reports.chart import portrait_svg
from bot.reports.portrait import Guidance, Source, portrait
from models.event import Event
from models.options import set_option
from models.portrait import PortraitScore
from tests.factories import org
from tests.reports.portrait_tree import BRANCH_A, GENERAL, build

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 11, 45, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def _portrait(db, path=GENERAL, *, staff: str | None = "20", baseline: tuple[str, str] | None = None):
    with db.session() as s:
        build(s)
        if staff:
            set_option(s, org(s, path), "职工人数", staff, at=NOW)
        if baseline:
            set_option(s, org(s, path), *baseline, at=NOW)
    with db.session() as s:
        return portrait(s, org(s, path), now=NOW, tz=TZ)


def test_each_derived_feature_from_the_fixture_tree(db):
    found = _portrait(db)
    scores = {f.name: f.score for f in found.features}
    assert scores == {"组织层级": 60, "业务性质": None, "下属机构": 85, "党员比例": 70, "党员岗位特点": 60,
                      "发挥作用": 37, "党建力量": 83}
    by_name = {f.name: f for f in found.features}
    assert by_name["组织层级"].figures == {"levels": 2}
    assert by_name["下属机构"].figures == {"units": 3}
    assert by_name["党员比例"].figures == {"members": 7, "staff": 20}
    assert by_name["党员岗位特点"].figures == {"office": 3, "field": 1, "posted": 1, "unknown": 2}
    role = by_name["发挥作用"].figures
    assert (role["in_time"], role["tasks"], role["meetings_held"], role["meetings_required"],
            role["study_done"], role["study_total"]) == (2, 4, 2, 19, 1, 2)
    assert role["quarter"].key == "2026Q3"  # the last complete quarter, not the one running
    assert by_name["党建力量"].figures == {"units": 3, "with_secretary": 2, "committee": 2, "members": 7}
    assert by_name["业务性质"].source is Source.MISSING
    assert [f.name for f in found.features] == ["组织层级", "业务性质", "下属机构", "党员比例", "党员岗位特点",
                                                "发挥作用", "党建力量"]


def test_a_branch_alone_and_the_staff_count_of_the_organisation_itself(db):
    """A branch has no levels or units beneath; the general branch's 职工人数 does not pass down
    (the staff of a unit is not its sections'), so the branch's 党员比例 is not derived."""
    with db.session() as s:
        build(s)
        set_option(s, org(s, GENERAL), "职工人数", "20", at=NOW)
    with db.session() as s:
        found = portrait(s, org(s, BRANCH_A), now=NOW, tz=TZ)
    scores = {f.name: f.score for f in found.features}
    assert scores["组织层级"] == 100 and scores["下属机构"] == 100
    assert scores["党员比例"] is None
    assert scores["党员岗位特点"] == 33  # 张伟 at 机关 of 张伟, 刘洋 (外勤), 李娜 (驻外)
    assert scores["发挥作用"] == round(100 * (2 / 4 + 2 / 8) / 2)  # no study in this branch
    assert scores["党建力量"] == 100  # its 书记, and 1 committee member for 4 members


def test_baseline_per_feature_furthest_below_and_guidance(db):
    found = _portrait(db, baseline=("基线.党建力量", "90"))
    assert [(f.name, f.gap) for f in found.furthest] == [("发挥作用", 23), ("党建力量", 7)]
    assert found.guidance is Guidance.WEAK and [f.name for f in found.to_work_on] == ["发挥作用"]


def test_all_above_the_baseline_is_advanced(db):
    with db.session() as s:
        build(s)
        general = org(s, GENERAL)
        set_option(s, general, "职工人数", "20", at=NOW)
        set_option(s, general, "基线.发挥作用", "30", at=NOW)
        from models.portrait import set_score

        set_score(s, general, "业务性质", "75", at=NOW)
    with db.session() as s:
        found = portrait(s, org(s, GENERAL), now=NOW, tz=TZ)
    assert found.guidance is Guidance.ADVANCED and found.furthest == []
    assert found.strongest[0].name == "下属机构"  # 85 against 60: the furthest above


def test_svg_parsed_back_has_seven_bars_one_baseline_and_the_marked_ones(db):
    found = _portrait(db, baseline=("基线.党建力量", "90"))
    root = ET.fromstring(portrait_svg(found))
    assert "Noto Sans CJK SC" in root.get("font-family") and "sans-serif" in root.get("font-family")
    bars = [r for r in root.iter(SVG + "rect") if "feature" in r.get("class", "").split()]
    assert len(bars) == 7
    assert [b.get("data-feature") for b in bars][0] == "组织层级"
    below = {b.get("data-feature") for b in bars if "below" in b.get("class").split()}
    assert below == {"发挥作用", "党建力量"}
    assert {b.get("data-feature") for b in bars if "furthest" in b.get("class").split()} == below
    assert next(b for b in bars if b.get("data-feature") == "业务性质").get("class") == "feature unset"
    baselines = [p for p in root.iter(SVG + "path") if p.get("class") == "baseline"]
    assert len(baselines) == 1
    # The line steps up to 90 over 党建力量 (the last slot): y = 64 + 160 × 0.1.
    assert baselines[0].get("d").endswith("L305.7,80.0 L352.0,80.0")
    heights = {b.get("data-feature"): float(b.get("height")) for b in bars}
    assert heights["组织层级"] == 96.0 and heights["业务性质"] == 0.0
    named = next(t for t in root.iter(SVG + "text") if t.get("class") == "furthest")
    assert named.text == "距基线最远：发挥作用 37（基线 60，低 23）；党建力量 83（基线 90，低 7）"


def test_set_portrait_keeps_who_and_when_and_refuses_derived_features(app, db, clock, tmp_path):
    with db.session() as s:
        build(s)
    runner = app.test_cli_runner()
    done = runner.invoke(args=["set-portrait", "第一党总支", "业务性质", "55"])
    assert done.exit_code == 0, done.output
    assert "已将「机关党委/第一党总支」的「业务性质」评为 55 分" in done.output
    again = runner.invoke(args=["set-portrait", "第一党总支", "业务性质", "58"])
    assert "（原为 55 分）" in again.output
    derived = runner.invoke(args=["set-portrait", "第一党总支", "组织层级", "50"])
    assert derived.exit_code == 1 and "由记录计算得出，不能手工评分" in derived.output
    bad = runner.invoke(args=["set-portrait", "第一党总支", "业务性质", "101"])
    assert bad.exit_code == 1 and "0 到 100 之间的整数" in bad.output
    unknown = runner.invoke(args=["set-portrait", "第一党总支", "业务", "50"])
    assert unknown.exit_code == 1 and "画像的七项是" in unknown.output
    with db.session() as s:
        rows = s.query(PortraitScore).all()
        assert [(r.feature, r.score, r.set_by_id, r.set_at) for r in rows] == [("业务性质", 58, None, clock())]
        assert s.query(Event).filter_by(kind="organisation.portrait_set").count() == 2

    chart = tmp_path / "portrait.svg"
    shown = runner.invoke(args=["portrait", "第一党总支", "-o", str(chart)])
    assert shown.exit_code == 0, shown.output
    assert "业务性质：58（基线 60）  手工评分：管理员，2026年11月21日 19:45" in shown.output
    assert "党员比例：未评分（基线 60）  尚未设置职工人数，也没有手工评分" in shown.output
    assert f"图表已写入 {chart}" in shown.output
    assert len([r for r in ET.parse(chart).getroot().iter(SVG + "rect")
                if "feature" in r.get("class", "").split()]) == 7
