"""Per-organisation options: validated values, inheritance down the tree, who set them and when."""

from __future__ import annotations

import pytest

from models.event import Event
from models.options import OptionError, OptionProblem, effective, effective_many, set_option
from models.org import find_org
from tests.factories import BRANCH_A, BRANCH_B, org, small_tree


def test_a_value_set_above_holds_beneath_until_set_lower(db, clock):
    with db.session() as s:
        small_tree(s)
        top, branch_a, branch_b = org(s, "机关党委"), org(s, BRANCH_A), org(s, BRANCH_B)
        assert effective(s, branch_a, "ranking").value is False  # the default: rankings off
        set_option(s, top, "ranking", "on", at=clock())
        set_option(s, branch_b, "ranking", "关", at=clock(), actor_id=None)
        values = effective_many(s, [top, branch_a, branch_b], "ranking")
        assert values[top.id].value is True and values[top.id].source.id == top.id
        assert values[branch_a.id].value is True and values[branch_a.id].source.id == top.id
        assert values[branch_b.id].value is False and values[branch_b.id].source.id == branch_b.id
        assert values[branch_a.id].set_at == clock()
        kinds = [e.kind for e in s.query(Event).filter_by(subject_type="organisation")]
        assert kinds == ["organisation.option_set", "organisation.option_set"]


def test_setting_again_replaces_the_value_and_records_the_old_one(db, clock):
    with db.session() as s:
        small_tree(s)
        branch = org(s, BRANCH_A)
        set_option(s, branch, "职工人数", "120", at=clock())
        set_option(s, branch, "职工人数", "95", at=clock.advance(days=1))
        assert effective(s, branch, "职工人数").value == 95
        last = s.query(Event).order_by(Event.id.desc()).first()
        assert last.data == {"name": "职工人数", "value": "95", "before": "120"}


def test_baselines_default_to_sixty_and_accept_scores_only(db, clock):
    with db.session() as s:
        small_tree(s)
        branch = org(s, BRANCH_A)
        assert effective(s, branch, "基线.党建力量").value == 60
        set_option(s, org(s, "机关党委"), "基线.党建力量", "65", at=clock())
        assert effective(s, branch, "基线.党建力量").value == 65
        for bad in ("101", "-1", "六十", "6.5", "9" * 40):
            with pytest.raises(OptionError) as err:
                set_option(s, branch, "基线.党建力量", bad, at=clock())
            assert err.value.problem is OptionProblem.BAD_VALUE


def test_unknown_names_and_bad_switches_are_refused(db, clock):
    with db.session() as s:
        small_tree(s)
        branch = org(s, BRANCH_A)
        with pytest.raises(OptionError) as err:
            set_option(s, branch, "排名", "on", at=clock())
        assert err.value.problem is OptionProblem.UNKNOWN_NAME
        with pytest.raises(OptionError):
            set_option(s, branch, "ranking", "maybe", at=clock())
        assert s.query(Event).filter_by(kind="organisation.option_set").count() == 0


def test_find_org_by_path_unique_name_or_candidates(db):
    with db.session() as s:
        small_tree(s)
        org(s, "机关党委/第二党总支/综合处党支部")
        assert [o.path for o in find_org(s, BRANCH_B)] == [BRANCH_B]
        assert [o.path for o in find_org(s, "财务处党支部")] == [BRANCH_B]
        assert [o.path for o in find_org(s, "综合处党支部")] == [
            "机关党委/第一党总支/综合处党支部", "机关党委/第二党总支/综合处党支部"]
        assert [o.path for o in find_org(s, "第二党总支/综合处党支部")] == ["机关党委/第二党总支/综合处党支部"]
        assert find_org(s, "不存在党支部") == [] and find_org(s, " / ") == []
