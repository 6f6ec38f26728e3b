"""画像 in the chat and on the portrait page: a liaison sees (and scores) only their organisations;
leaders see their own and what lies beneath; the page shows the chart, the figures and the formulas."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bot import access
from models.event import Event
from models.person import Person
from models.portrait import PortraitScore
from tests.factories import org
from tests.reports.portrait_tree import BRANCH_A, BRANCH_B, GENERAL, build
from tests.web.conftest import BASE

SVG = "{http://www.w3.org/2000/svg}"


def _ids(db):
    with db.session() as s:
        build(s)
        return org(s, BRANCH_A).id, org(s, BRANCH_B).id


def test_chat_gives_the_link_and_the_three_features_in_words(chat, db):
    a, _ = _ids(db)
    reply = chat.say("sunll", "画像 综合处党支部")
    lines = reply.split("\n")
    assert lines[0] == "「综合处党支部」画像"
    assert lines[1] == "距基线最远：党员岗位特点 33（基线 60，低 27）；发挥作用 38（基线 60，低 22）"
    assert lines[2] == "重点改进：党员岗位特点、发挥作用明显低于基线，是指导的重点"
    assert lines[3] == f"图表：{BASE}/m/portrait/{a}"
    assert chat.say("sunll", "画像").split("\n")[0] == "「综合处党支部」画像"  # the one organisation they follow
    assert chat.say("lina", "画像").split("\n")[0] == "「综合处党支部」画像"  # the branch's own 书记
    assert chat.say("wangsj", "画像 财务处党支部").split("\n")[0] == "「财务处党支部」画像"  # the committee above


def test_chat_refuses_other_organisations_and_unknown_names(chat, db):
    _ids(db)
    assert chat.say("sunll", "画像 财务处党支部") == (
        "您无权查看「财务处党支部」的画像：只有该组织及上级组织的书记、副书记、支委和它的联络员可以查看。")
    assert chat.say("lina", "画像 财务处党支部").startswith("您无权查看")
    assert chat.say("sunll", "画像 不存在支部").startswith("找不到组织「不存在支部」")
    assert "「画像」只有书记、副书记、支委或联络员可以使用" in chat.say("zhangwei", "画像")  # members: not their command


def test_page_shows_chart_figures_formulas_and_a_liaison_scores_by_hand(browser, db):
    a, b = _ids(db)
    assert browser.login("sunll", f"/m/portrait/{a}").status_code == 302
    page = browser.client.get(f"/m/portrait/{a}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "综合处党支部 画像" in html and "计算方法" in html and "100 − 20 × 下设层级数" in html
    assert "按时确认 2/4、规定会议 2/8、无学习" in html and "手工评分" in html
    chart = browser.client.get(f"/m/portrait/{a}/chart.svg")
    assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
    root = ET.fromstring(chart.get_data())
    assert len([r for r in root.iter(SVG + "rect") if "feature" in r.get("class", "").split()]) == 7
    assert len([p for p in root.iter(SVG + "path") if p.get("class") == "baseline"]) == 1

    saved = browser.post(f"/m/portrait/{a}", html, feature="业务性质", score="72")
    assert saved.status_code == 302
    after = browser.client.get(f"/m/portrait/{a}").get_data(as_text=True)
    assert "已将「综合处党支部」的「业务性质」评为 72 分" in after and "手工评分：孙联络，" in after
    refused = browser.post(f"/m/portrait/{a}", after, feature="组织层级", score="10")
    assert refused.status_code == 302
    assert "由记录计算得出" in browser.client.get(f"/m/portrait/{a}").get_data(as_text=True)
    with db.session() as s:
        assert [(r.feature, r.score) for r in s.query(PortraitScore)] == [("业务性质", 72)]
        assert s.query(Event).filter_by(kind="organisation.portrait_set").count() == 1

    assert browser.client.get(f"/m/portrait/{b}").status_code == 403
    assert browser.client.get(f"/m/portrait/{b}/chart.svg").status_code == 403
    assert browser.post(f"/m/portrait/{b}", after, feature="业务性质", score="10").status_code == 403
    assert browser.client.get("/m/portrait/999999").status_code == 404
    assert browser.client.post(f"/m/portrait/{a}", data={"feature": "业务性质", "score": "1"}).status_code == 400


def test_a_branch_secretary_sees_but_does_not_score_their_own_branch(browser, db):
    a, _ = _ids(db)
    browser.login("lina", f"/m/portrait/{a}")
    html = browser.client.get(f"/m/portrait/{a}").get_data(as_text=True)
    assert "综合处党支部 画像" in html and 'name="score"' not in html
    with db.session() as s:
        lina = s.query(Person).filter_by(wecom_userid="lina").one()
        top = s.query(Person).filter_by(wecom_userid="wangsj").one()
        branch, general = org(s, BRANCH_A), org(s, GENERAL)
        assert not access.may_set_portrait(lina, branch)  # not their own branch's scores
        assert access.may_set_portrait(top, branch) and access.may_set_portrait(top, general)
        assert access.may_view_portrait(lina, branch) and not access.may_view_portrait(lina, general)


def test_overview_carries_the_guidance_and_the_page_links_the_portrait(chat, browser, db):
    a, _ = _ids(db)
    reply = chat.say("sunll", "概况")
    assert "画像：重点改进：党员岗位特点、发挥作用明显低于基线，是指导的重点" in reply.split("\n")
    browser.login("sunll", "/m/overview")
    html = browser.client.get("/m/overview").get_data(as_text=True)
    assert "画像：重点改进：党员岗位特点、发挥作用明显低于基线" in html and f'href="/m/portrait/{a}"' in html


def test_without_a_name_the_choices_follow_the_roster_not_the_characters(chat, db):
    from models.person import Role
    from tests.factories import person

    _ids(db)
    later = GENERAL + "/人事处党支部"  # 人 sorts before 综 and 财 by code point; the roster made it last
    with db.session() as s:
        person(s, "周联络", "zhoull", "机关党委", Role.LIAISON, liaises=(later, BRANCH_B, BRANCH_A))
    assert chat.say("zhoull", "画像") == (
        "请写出要看哪个组织的画像，例如：画像 综合处党支部。您可以查看：综合处党支部、财务处党支部、人事处党支部")
