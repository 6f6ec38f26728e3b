"""The pages in a real headless Chromium (Debian's package, driven by Playwright) at 375×667:
log in through the fake WeCom OAuth, open each page, tap a button, check the database changed
once, keep a screenshot of each page under tests/artifacts/."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models.directive import Delivery
from models.event import Event
from models.meeting import LeaveRequest, Meeting
from models.person import Person
from tests.factories import BRANCH_A, org, small_tree
from tests.web.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the CI installs it from requirements-dev.txt
    sync_playwright = None

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() or sync_playwright is None,
                                reason="needs Chromium (apt-get install chromium) and playwright "
                                       "(pip install -r requirements-dev.txt)")


@pytest.fixture
def live_port() -> int:
    return free_port()


@pytest.fixture
def settings(settings, live_port):
    return replace(settings, public_base_url=f"http://127.0.0.1:{live_port}")


@pytest.fixture
def live(app, live_port, fake_wechat):
    """The bot serving on a real port, as `serve` does (werkzeug, threaded)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", live_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{live_port}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.fixture
def phone():
    """A fresh 375×667 browser context per login (one person per phone)."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

        def open_as(name: str, url: str):
            context = browser.new_context(viewport={"width": 375, "height": 667}, locale="zh-CN",
                                          device_scale_factor=2, is_mobile=True, has_touch=True)
            page = context.new_page()
            page.goto(url)
            page.get_by_role("link", name=name).first.click()  # the fake's authorize page: who are you?
            page.wait_for_load_state()
            return page

        yield open_as
        browser.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _seed(db, fake_wechat, chat):
    with db.session() as s:
        people = small_tree(s)
        fake_wechat.oauth.set_people([
            {"userid": p.wecom_userid, "name": p.name, "org": ""} for p in people.values()])
        branch = org(s, BRANCH_A).id
    chat.say("wangsj", "发布 学习贯彻全会精神\n请各支部组织党员认真学习党的二十届四中全会精神，"
                       "并于截止前报告学习情况。\n截止 12月1日17:00")
    chat.say("wangsj", "学习资料 党章第一章 https://example.cn/dangzhang/1 截止 12月5日")
    assert "#" in chat.say("lina", "会议 支部党员大会 明天 19:00 党员活动室（3楼）\n学习全会精神")
    chat.say("liuyang", "收到 1")
    chat.say("liuyang", "完成 1 已组织学习并上报")
    chat.say("liuyang", "已学 2 深受教育，要把党章学深学透")
    with db.session() as s:
        meeting = s.scalar(select(Meeting.id))
    return branch, meeting


def test_member_taps_received_and_asks_leave(live, phone, db, fake_wechat, chat):
    _, meeting = _seed(db, fake_wechat, chat)
    page = phone("张伟", f"{live}/m/")
    assert page.url == f"{live}/m/"
    assert page.get_by_text("请各支部组织党员认真学习").is_visible()
    _shot(page, "mine")
    page.locator("#d1 button", has_text="收到").dblclick()  # a double tap
    page.wait_for_load_state()
    assert "已确认收到 #1" in page.locator(".flash").first.inner_text()
    _shot(page, "mine-after-ack")
    with db.session() as s:
        acked = s.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.directive_id == 1, Delivery.acknowledged_at.is_not(None)))
        zhangwei = s.scalar(select(Person.id).where(Person.name == "张伟"))
        events = s.scalar(select(func.count()).select_from(Event).where(
            Event.kind == "delivery.acknowledged", Event.actor_id == zhangwei))
    assert acked == 2 and events == 1  # 刘洋 by chat, 张伟 by the double tap: once
    page.locator(f"#m{meeting} input[name=text]").fill("出差在外")
    page.locator(f"#m{meeting} button", has_text="请假").click()
    page.wait_for_load_state()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(LeaveRequest)) == 1


def test_secretary_sees_progress_and_nudges(live, phone, db, fake_wechat, chat):
    _seed(db, fake_wechat, chat)
    page = phone("王书记", f"{live}/m/d/1")
    assert page.url == f"{live}/m/d/1"
    assert page.get_by_text("已确认 1/5").is_visible()
    assert page.get_by_text("已组织学习并上报").is_visible()
    _shot(page, "directive-progress")
    page.get_by_role("button", name="催办未确认的同志").click()
    page.wait_for_load_state()
    assert "已向 4 位尚未确认的同志推送 #1 的催办提醒" in page.locator(".flash").inner_text()
    page.goto(f"{live}/m/d/2")
    assert page.get_by_text("已学 1/5").is_visible()
    _shot(page, "study-progress")


def test_branch_secretary_sees_the_meeting(live, phone, db, fake_wechat, chat):
    _, meeting = _seed(db, fake_wechat, chat)
    with db.session() as s:  # the page's address carries the id, the chat the number
        number = s.scalar(select(Meeting.number).where(Meeting.id == meeting))
    assert "已" in chat.say("zhangwei", f"请假 {number} 出差在外")
    page = phone("李娜", f"{live}/m/meeting/{meeting}")
    assert page.get_by_text("出差在外").is_visible()
    _shot(page, "meeting")


def test_liaison_sees_the_overview_and_the_year(live, phone, db, fake_wechat, chat):
    branch, meeting = _seed(db, fake_wechat, chat)
    page = phone("孙联络", f"{live}/m/overview")
    assert page.get_by_text("综合处党支部").first.is_visible()
    _shot(page, "overview")
    page.goto(f"{live}/m/org/{branch}")
    assert page.get_by_text("2026 年的通知（1）").is_visible()
    _shot(page, "organisation")
    refused = page.goto(f"{live}/m/meeting/{meeting}")
    assert refused.status == 403
    _shot(page, "forbidden")


def test_liaison_sees_the_portrait_chart_and_scores_a_feature(live, phone, db, fake_wechat, chat):
    branch, _ = _seed(db, fake_wechat, chat)
    page = phone("孙联络", f"{live}/m/portrait/{branch}")
    assert page.get_by_role("heading", name="综合处党支部 画像").is_visible()
    bars = page.locator("svg rect.feature")
    assert bars.count() == 7
    box = page.locator("svg").first.bounding_box()
    assert box["width"] <= 375 and box["height"] > 100  # the chart fits the phone and is drawn
    assert page.locator("svg path.baseline").count() == 1
    _shot(page, "portrait")
    page.locator("input[name=score]").fill("72")
    page.get_by_role("button", name="保存").click()
    page.wait_for_load_state()
    assert "已将「综合处党支部」的「业务性质」评为 72 分" in page.locator(".flash").inner_text()
    _shot(page, "portrait-after-score")
