"""The other pages (meeting, study, overview), signed links for followers, long replies, settings."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from models.directive import Delivery
from models.identity import Channel, ChannelIdentity
from models.meeting import LeaveRequest
from models.person import Role
from tests.factories import BRANCH_A, org, person, small_tree
from tests.web.conftest import BASE

ASSIGN = "学习资料 党章第一章 https://example.cn/dangzhang/1 截止 12月5日"


def test_leave_from_my_page_reaches_the_meeting_page_of_the_branch(browser, chat, db):
    with db.session() as s:
        small_tree(s)
    assert "#1" in chat.say("lina", "会议 支部党员大会 明天 19:00 党员活动室")
    chat.say("lina", "纪要 1 内容")  # refused before the start: nothing recorded
    browser.login("zhangwei")
    page = browser.client.get("/m/").get_data(as_text=True)
    assert "综合处党支部 支部党员大会" in page and "请假" in page
    empty = browser.post("/m/act", page, action="leave", number="1", text="  ", back="/m/")
    assert empty.status_code == 302 and "请假需要写明理由" in browser.client.get("/m/").get_data(as_text=True)
    page = browser.client.get("/m/").get_data(as_text=True)
    browser.post("/m/act", page, action="leave", number="1", text="出差在外", back="/m/")
    browser.post("/m/act", page, action="leave", number="1", text="出差在外", back="/m/")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(LeaveRequest)) == 1
    assert "已请假（待审批）：出差在外" in browser.client.get("/m/").get_data(as_text=True)
    assert browser.client.get("/m/meeting/1").status_code == 403  # a member, not the committee

    browser.client.delete_cookie("zt_session", path="/m/")
    browser.login("lina")
    meeting = browser.client.get("/m/meeting/1").get_data(as_text=True)
    assert "应到 3 人" in meeting and "张伟" in meeting and "出差在外" in meeting and "待审批" in meeting


def test_a_liaison_sees_her_organisations_in_tree_order_in_the_chat_and_on_the_page(browser, chat, db):
    import re

    # The roster's order; by code points 人 < 保 < 后 < 综 < 财, and 离 < 第.
    roster = ["机关党委/第一党总支", "机关党委/第一党总支/综合处党支部", "机关党委/第一党总支/财务处党支部",
              "机关党委/第一党总支/人事处党支部", "机关党委/第二党总支", "机关党委/第二党总支/后勤处党支部",
              "机关党委/第二党总支/保卫处党支部", "机关党委/离退休党支部"]
    names = [path.rsplit("/", 1)[1] for path in roster]
    assert sorted(roster) != roster
    with db.session() as s:
        for path in roster:
            org(s, path)
        person(s, "孙联络", "sunll", "机关党委", Role.LIAISON, liaises=tuple(reversed(roster)))

    reply = chat.say("sunll", "概况")
    shown = [line[1:-1] for line in reply.split("\n") if line.startswith("【")]
    assert len(shown) >= 3 and shown == names[:len(shown)]  # as many as fit, from the top of the tree
    browser.login("sunll")
    page = browser.client.get("/m/overview").get_data(as_text=True)
    assert re.findall(r'<h3><a href="/m/org/\d+">([^<]+)</a></h3>', page) == names


def test_study_page_lists_completion_and_reflections(browser, chat, db):
    with db.session() as s:
        small_tree(s)
    chat.say("wangsj", ASSIGN)
    chat.say("zhangwei", "已学 1 深受教育，要把党章学深学透")
    reply = chat.say("wangsj", "学习进度 1")
    assert reply.splitlines()[-1] == f"完整页面：{BASE}/m/d/1"
    browser.login("wangsj")
    page = browser.client.get("/m/d/1").get_data(as_text=True)
    assert "已学 1/5" in page and "深受教育，要把党章学深学透" in page and "催办" not in page


def test_overview_page_for_the_liaison_only(browser, chat, db):
    with db.session() as s:
        small_tree(s)
        branch = org(s, BRANCH_A).id
    chat.say("wangsj", "发布 学习贯彻全会精神\n请各支部组织专题学习。\n截止 12月1日17:00")
    reply = chat.say("sunll", "概况")
    assert reply.splitlines()[-1] == f"完整页面：{BASE}/m/overview"
    browser.login("sunll")
    overview = browser.client.get("/m/overview").get_data(as_text=True)
    assert "综合处党支部" in overview and "已确认 0/3" in overview
    record = browser.client.get(f"/m/org/{branch}").get_data(as_text=True)
    assert "2026 年的通知（1）" in record and "#1 学习贯彻全会精神" in record
    browser.client.delete_cookie("zt_session", path="/m/")
    browser.login("zhangwei")
    refused = browser.client.get(f"/m/org/{branch}")
    assert refused.status_code == 403 and "联络员" in refused.get_data(as_text=True)


def test_follower_gets_a_signed_link_valid_24_hours(app, client, chat, db, clock):
    with db.session() as s:
        people = small_tree(s)
        s.add(ChannelIdentity(channel=Channel.MP, external_id="o-wangsj", person_id=people["top"].id))
    chat.say("wangsj", "发布 学习贯彻全会精神\n请各支部组织专题学习。\n截止 12月1日17:00")
    app.extensions["zhitong"].directory.changed()
    link = chat.say_mp("o-wangsj", "进度 1").splitlines()[-1].removeprefix("完整页面：")
    assert link.startswith(f"{BASE}/m/d/1?t=")
    path = link.removeprefix(BASE)
    opened = client.get(path)
    assert opened.status_code == 302 and opened.headers["Location"] == "/m/d/1"
    assert "已确认 0/5" in client.get("/m/d/1").get_data(as_text=True)
    client.delete_cookie("zt_session", path="/m/")
    assert client.get(path[:-2] + "xx").status_code == 403  # forged
    clock.advance(hours=24, minutes=1)
    expired = client.get(path)
    assert expired.status_code == 403 and "链接已过期" in expired.get_data(as_text=True)


def test_a_long_progress_reply_is_one_message_pointing_at_the_page(chat, db):
    from models.outbox import OutboxMessage

    with db.session() as s:
        person(s, "王书记", "wangsj", "机关党委", Role.SECRETARY)
        for i in range(120):
            for j in range(3):
                person(s, f"党员{i:03d}{j}", f"u{i}_{j}", f"机关党委/第一党总支/第{i:03d}党支部")
    chat.say("wangsj", "发布 学习贯彻全会精神\n请各支部组织专题学习。\n截止 12月1日17:00")
    reply = chat.say("wangsj", "进度 1")
    assert len(reply.encode()) <= 2048
    assert reply.endswith(f"完整名单见页面：{BASE}/m/d/1")
    with db.session() as s:
        follow_ups = s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.subject_type.is_(None)))
        assert follow_ups == 0
        assert s.scalar(select(func.count()).select_from(Delivery)) == 360


def test_a_big_directive_is_collapsed_per_level_and_names_are_paginated(browser, chat, db):
    with db.session() as s:
        person(s, "王书记", "wangsj", "机关党委", Role.SECRETARY)
        for i in range(100):
            for j in range(2):
                person(s, f"党员{i:03d}{j}", f"u{i}_{j}", f"机关党委/第一党总支/第{i:03d}党支部")
        for k in range(120):
            person(s, f"大支部{k:03d}", f"big{k}", "机关党委/第二党总支/大党支部")
        general = org(s, "机关党委/第一党总支").id
        big = org(s, "机关党委/第二党总支/大党支部").id
    chat.say("wangsj", "发布 学习贯彻全会精神\n请各支部组织专题学习。\n截止 12月1日17:00")
    browser.login("wangsj")
    top = browser.client.get("/m/d/1").get_data(as_text=True)
    assert "已确认 0/320" in top and "第一党总支" in top and "第二党总支" in top
    assert "第000党支部" not in top and "党员0000" not in top  # one level at a time
    level = browser.client.get(f"/m/d/1?org={general}").get_data(as_text=True)
    assert "第000党支部" in level and "第099党支部" in level and "党员0000" not in level
    branch = browser.client.get(f"/m/d/1?org={big}").get_data(as_text=True)
    assert "名单（120 人）" in branch and "第 1/3 页" in branch and "大支部000" in branch
    assert "机关党委</a> › " in branch  # the way back up
    last = browser.client.get(f"/m/d/1?org={big}&page=3").get_data(as_text=True)
    assert "第 3/3 页" in last and "大支部119" in last and "大支部000" not in last
    assert browser.client.get("/m/d/1?org=999999").status_code == 404


def test_session_cookie_is_secure_behind_https(settings, clock):
    from bot.app import create_app

    app = create_app(replace(settings, public_base_url="https://dj.example.cn"), clock=clock)
    cookie = app.test_client().get("/m/auth/wecom").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie
    app.extensions["zhitong"].db.dispose()


def test_callbacks_never_set_a_cookie(client):
    assert "Set-Cookie" not in client.get("/healthz").headers


@pytest.mark.parametrize("role", ["web", "worker", "scheduler"])
def test_split_roles_need_public_base_url(settings, role):
    from config.settings import SettingsError

    with pytest.raises(SettingsError, match="PUBLIC_BASE_URL"):
        replace(settings, public_base_url=None).require_public_base_url(role)
    settings.require_public_base_url(role)  # set: fine


def test_python_m_bot_worker_stops_naming_public_base_url(tmp_path):
    from tests.bot.test_settings import WECOM_ENV, run_bot

    base = {"DATABASE_URL": f"sqlite:///{tmp_path / 'z.sqlite3'}", "SECRET_KEY": "k", "BOT_INSTANCE_DIR": str(tmp_path)}
    result = run_bot({**base, **WECOM_ENV}, tmp_path, "worker")
    assert result.returncode == 2
    assert "启动失败" in result.stderr and "PUBLIC_BASE_URL" in result.stderr


def test_the_export_button_downloads_the_matter_file_for_those_who_may_export_it(browser, chat, db):
    import io
    import re

    from docx import Document

    with db.session() as s:
        small_tree(s)
    chat.say("wangsj", "发布 学习贯彻全会精神\n请各支部组织专题学习。\n截止 12月1日17:00")
    chat.say("lina", "会议 支部党员大会 明天 19:00 党员活动室")
    browser.login("wangsj")
    page = browser.client.get("/m/d/1").get_data(as_text=True)
    href = re.search(r'href="(/files/[^"]+)"[^>]*>导出一事一档文件', page).group(1)
    got = browser.client.get(href)
    assert got.status_code == 200
    assert Document(io.BytesIO(got.data)).paragraphs[0].text == "通知档案 #1 学习贯彻全会精神"
    browser.client.delete_cookie("zt_session", path="/m/")
    browser.login("zhangwei")
    assert "导出一事一档文件" not in browser.client.get("/m/d/1").get_data(as_text=True)  # a recipient only
    browser.client.delete_cookie("zt_session", path="/m/")
    browser.login("lina")
    meeting = browser.client.get("/m/meeting/1").get_data(as_text=True)
    href = re.search(r'href="(/files/[^"]+)"[^>]*>导出一事一档文件', meeting).group(1)
    assert Document(io.BytesIO(browser.client.get(href).data)).paragraphs[0].text.startswith("会议档案 #2")  # after directive #1: one number space
