"""`python -m bot set-option ORG NAME VALUE` from the command line, as an administrator types it."""

from __future__ import annotations

from models.event import Event
from models.options import OrgOption, effective
from tests.factories import BRANCH_A, org, small_tree


def test_set_option_by_unique_name_inherits_down(app, db):
    with db.session() as s:
        small_tree(s)
    result = app.test_cli_runner().invoke(args=["set-option", "第一党总支", "ranking", "on"])
    assert result.exit_code == 0, result.output
    assert "已将「机关党委/第一党总支」的「ranking」设为 开启" in result.output
    with db.session() as s:
        assert effective(s, org(s, BRANCH_A), "ranking").value is True


def test_set_option_refusals_name_what_to_write_and_change_nothing(app, db):
    with db.session() as s:
        small_tree(s)
        org(s, "机关党委/第二党总支/综合处党支部")
    runner = app.test_cli_runner()
    ambiguous = runner.invoke(args=["set-option", "综合处党支部", "职工人数", "120"])
    assert ambiguous.exit_code == 1
    assert "有 2 个同名组织" in ambiguous.output and "机关党委/第二党总支/综合处党支部" in ambiguous.output
    unknown = runner.invoke(args=["set-option", "机关党委", "排名", "on"])
    assert unknown.exit_code == 1 and "没有「排名」这一设置" in unknown.output
    bad = runner.invoke(args=["set-option", "机关党委", "基线.党建力量", "120"])
    assert bad.exit_code == 1 and "0 到 100 之间的整数" in bad.output
    missing = runner.invoke(args=["set-option", "不存在党委", "ranking", "on"])
    assert missing.exit_code == 1 and "找不到组织「不存在党委」" in missing.output
    with db.session() as s:
        assert s.query(OrgOption).count() == 0
        assert s.query(Event).filter_by(kind="organisation.option_set").count() == 0
