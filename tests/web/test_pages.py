"""The mobile pages through the HTTP endpoints: WeCom OAuth, access, the buttons, CSRF, links."""

from __future__ import annotations

from sqlalchemy import func, select

from models.directive import Delivery, Directive
from models.event import Event
from tests.factories import small_tree
from tests.web.conftest import BASE, query

PUBLISH = "发布 学习贯彻全会精神\n请各支部组织专题学习。\n截止 12月1日17:00"


def test_wecom_oauth_redirect_carries_the_documented_parameters(client, settings):
    start = client.get("/m/auth/wecom?next=/m/d/1")
    assert start.status_code == 302
    location = start.headers["Location"]
    assert location.startswith(settings.wecom_oauth_url + "?") and location.endswith("#wechat_redirect")
    args = query(location.split("#")[0])
    assert args["appid"] == settings.wecom.corp_id
    assert args["redirect_uri"] == f"{BASE}/m/auth/callback"
    assert args["response_type"] == "code" and args["scope"] == "snsapi_base"
    assert args["agentid"] == str(settings.wecom.agent_id) and len(args["state"]) >= 16
    cookie = start.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # http base


def test_login_through_fake_oauth_then_code_is_single_use(browser, db, fake_wechat):
    with db.session() as s:
        small_tree(s)
    landed = browser.login("zhangwei")
    assert landed.status_code == 302 and landed.headers["Location"] == "/m/"
    page = browser.client.get("/m/")
    assert page.status_code == 200 and "张伟，您好" in page.get_data(as_text=True)
    assert fake_wechat.oauth.exchanged == 1


def test_callback_refuses_a_wrong_state_and_a_reused_code(client, db, fake_wechat):
    with db.session() as s:
        small_tree(s)
    start = client.get("/m/auth/wecom")
    state = query(start.headers["Location"].split("#")[0])["state"]
    code = fake_wechat.oauth.issue("zhangwei")
    forged = client.get(f"/m/auth/callback?code={code}&state=forged")
    assert forged.status_code == 400 and "登录已失效" in forged.get_data(as_text=True)
    client.get("/m/auth/wecom")
    state = query(client.get("/m/auth/wecom").headers["Location"].split("#")[0])["state"]
    fake_wechat.oauth.exchange(code)  # used once already
    reused = client.get(f"/m/auth/callback?code={code}&state={state}")
    assert reused.status_code == 400 and "登录码无效或已使用" in reused.get_data(as_text=True)
    assert client.get("/m/").status_code == 302  # still not signed in


def test_someone_off_the_roster_is_refused(browser, db):
    with db.session() as s:
        small_tree(s)
    refused = browser.login("stranger")
    assert refused.status_code == 403 and "不在党员名册中" in refused.get_data(as_text=True)


def test_progress_reply_ends_with_the_page_link_and_card_opens_the_item(chat, db):
    with db.session() as s:
        small_tree(s)
    chat.say("wangsj", PUBLISH)
    reply = chat.say("wangsj", "进度 1")
    assert reply.startswith("已确认 0/5")
    assert reply.splitlines()[-1] == f"完整页面：{BASE}/m/d/1"
    from models.outbox import OutboxMessage

    with db.session() as s:
        card = s.scalars(select(OutboxMessage).where(OutboxMessage.subject_type == "delivery")).first()
        assert card.payload["url"] == f"{BASE}/m/d/1"


def test_ack_button_records_once_on_a_double_tap(browser, db):
    with db.session() as s:
        small_tree(s)

    _publish(browser, db)
    browser.login("zhangwei")
    page = browser.client.get("/m/").get_data(as_text=True)
    assert "#1 学习贯彻全会精神" in page and "请各支部组织专题学习。" in page
    first = browser.post("/m/act", page, action="ack", number="1", back="/m/")
    second = browser.post("/m/act", page, action="ack", number="1", back="/m/")
    assert first.status_code == second.status_code == 302
    shown = browser.client.get("/m/").get_data(as_text=True)
    assert "已于" in shown and "确认收到 #1" in shown
    with db.session() as s:
        acked = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.acknowledged_at.is_not(None)))
        events = s.scalar(select(func.count()).select_from(Event).where(Event.kind == "delivery.acknowledged"))
    assert acked == 1 and events == 1
    # 我的 carries the points record, the same as the chat's 积分: the tap counted once.
    mine = browser.client.get("/m/").get_data(as_text=True)
    points = mine[mine.index("我的积分"):]
    assert "工作履职 1" in points and "按时确认收到通知 #1 工作履职 +1" in points
    assert points.count("按时确认收到通知 #1") == 1


def test_my_page_names_a_meetings_place_as_the_messages_do(browser, db, chat):
    with db.session() as s:
        small_tree(s)
    assert "已安排" in chat.say("lina", "会议 支部党员大会 明天19:00 党员活动室")
    assert "已安排" in chat.say("lina", "会议 党课 后天19:00")
    browser.login("zhangwei")
    page = browser.client.get("/m/").get_data(as_text=True)
    assert "2026年11月22日 19:00 · 党员活动室" in page and "2026年11月23日 19:00 · 地点另行通知" in page


def test_a_form_without_its_csrf_token_changes_nothing(browser, db):
    with db.session() as s:
        small_tree(s)
    _publish(browser, db)
    browser.login("zhangwei")
    refused = browser.client.post("/m/act", data={"action": "ack", "number": "1"})
    assert refused.status_code == 400 and "页面已过期" in refused.get_data(as_text=True)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.acknowledged_at.is_not(None))) == 0


def test_progress_page_for_the_secretary_and_403_for_another_branch(browser, db):
    with db.session() as s:
        small_tree(s)
    _publish(browser, db)
    browser.login("wangsj")
    page = browser.client.get("/m/d/1").get_data(as_text=True)
    assert "已确认 0/5" in page and "综合处党支部" in page and "张伟" in page and "催办" in page
    nudged = browser.post("/m/d/1/nudge", page)
    assert nudged.status_code == 302
    assert "已向 5 位尚未确认的同志推送 #1 的催办提醒" in browser.client.get("/m/d/1").get_data(as_text=True)


def test_a_member_who_did_not_get_it_is_refused_in_chinese(browser, db, chat):
    with db.session() as s:
        small_tree(s)
    chat.say("lina", "发布 本支部通知\n正文\n截止 12月1日17:00")  # 综合处党支部 only
    browser.login("zhaolei")  # 财务处党支部
    refused = browser.client.get("/m/d/1")
    assert refused.status_code == 403 and "您无权查看 #1" in refused.get_data(as_text=True)


def _publish(browser, db):
    """王书记 publishes #1 through the real callback (so the page sees what the chat made)."""
    from bot.channels.simulator import WeComSimulator
    from tests.conftest import WECOM

    sim = WeComSimulator(WECOM, now=lambda: int(browser.client.application.extensions["zhitong"].now().timestamp()))
    req = sim.text("wangsj", PUBLISH)
    response = browser.client.post(req.path, query_string=req.query, data=req.body, content_type="text/xml")
    assert response.status_code == 200
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Directive)) == 1


def test_an_address_no_page_answers_is_refused_in_chinese(browser, db):
    with db.session() as s:
        small_tree(s)
    browser.login("zhangwei")
    for path, status in (("/m/d/abc", 404), ("/m/nothing", 404), ("/m/act", 405), ("/m/", 405)):
        page = browser.client.post(path) if path == "/m/" else browser.client.get(path)
        text = page.get_data(as_text=True)
        assert page.status_code == status, path
        assert "Not Found" not in text and "Method Not Allowed" not in text
        assert ("没有找到这一页" if status == 404 else "这个地址不能这样打开") in text
    outside = browser.client.get("/nothing")
    assert outside.status_code == 404


def test_the_progress_page_names_people_in_roster_order_as_the_chat_does(browser, db, chat):
    with db.session() as s:
        small_tree(s)
    chat.say("lina", "发布 本支部通知\n正文\n截止 12月1日17:00")
    assert "未确认：李娜、张伟、刘洋" in chat.say("lina", "进度 1")
    browser.login("lina")
    page = browser.client.get("/m/d/1").get_data(as_text=True)
    tree = page[page.index("逐级确认情况"):]
    assert tree.index("李娜") < tree.index("张伟") < tree.index("刘洋")


def test_a_withdrawn_directive_page_says_so_without_the_ack_button(browser, db, chat):
    with db.session() as s:
        small_tree(s)
    _publish(browser, db)
    chat.say("wangsj", "撤回 1 重复发布")
    browser.login("zhangwei", "/m/d/1")
    page = browser.client.get("/m/d/1").get_data(as_text=True)
    assert "已撤回" in page and "原因：重复发布" in page and 'value="ack"' not in page
