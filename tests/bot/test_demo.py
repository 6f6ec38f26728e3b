"""The demo: its sample organisation, and the chat client through the real HTTP endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from bot.chat import run_chat
from bot.demo import DEMO_INFO_NAME, DemoError, demo_settings, seed_demo
from models.org import Organisation, OrgKind
from models.person import Liaison, Person, Role

# Nothing listens on the discard port: pushes are simply not collected in these tests.
NOWHERE = "http://127.0.0.1:9/cgi-bin/"


@pytest.fixture
def demo_app(tmp_path):
    from bot.app import create_app

    app = create_app(demo_settings(tmp_path, api_base=NOWHERE))
    runtime = app.extensions["zhitong"]
    seed_demo(runtime)
    yield app
    runtime.db.dispose()


@contextmanager
def serving(app, info_dir: Path, fake_root: str) -> Iterator[Path]:
    """`app` behind a real HTTP server on a free port; yields the info file the chat client reads."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings = app.extensions["zhitong"].settings
    info = {
        "url": f"http://127.0.0.1:{server.server_port}",
        "database_url": settings.database_url,
        "corp_id": settings.wecom.corp_id,
        "agent_id": settings.wecom.agent_id,
        "secret": settings.wecom.secret,
        "token": settings.wecom.token,
        "aes_key": settings.wecom.aes_key,
        "wecom_api_base": settings.wecom.api_base,
        "fake_server": fake_root,
    }
    info_path = info_dir / DEMO_INFO_NAME
    info_path.write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
    try:
        yield info_path
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@pytest.fixture
def demo_server(demo_app, tmp_path):
    with serving(demo_app, tmp_path, "http://127.0.0.1:9") as info_path:
        yield info_path


@contextmanager
def running_demo(tmp_path: Path) -> Iterator[tuple]:
    """The demo with its worker, pushing to a fake WeCom server: yields (fake, info_path)."""
    from bot.app import create_app
    from bot.worker import run_worker
    from fakewx.server import FakeServer

    with FakeServer() as fake:
        app = create_app(demo_settings(tmp_path, api_base=fake.base_url))
        runtime = app.extensions["zhitong"]
        seed_demo(runtime)
        stop = threading.Event()
        worker = threading.Thread(target=run_worker, args=(runtime, stop), kwargs={"idle_sleep": 0.05}, daemon=True)
        worker.start()
        try:
            with serving(app, tmp_path, fake.root_url) as info_path:
                yield fake, info_path
        finally:
            stop.set()
            worker.join(timeout=5)
            runtime.db.dispose()


def wait_until(condition, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_demo_organisation(demo_app):
    db = demo_app.extensions["zhitong"].db
    with db.session() as session:
        kinds = dict(session.execute(select(Organisation.kind, func.count()).group_by(Organisation.kind)).all())
        assert kinds[OrgKind.COMMITTEE] == 1
        assert kinds[OrgKind.GENERAL_BRANCH] == 2
        assert kinds[OrgKind.BRANCH] == 6
        assert kinds[OrgKind.TEMPORARY_BRANCH] == 1
        assert 55 <= session.scalar(select(func.count()).select_from(Person)) <= 65
        names = session.scalars(select(Person.name)).all()
        assert len(names) == len(set(names)), "names must be unique so that `chat --as` works"

        def person(name: str) -> Person:
            return session.scalar(select(Person).where(Person.name == name))

        assert not person("张伟").is_secretary()
        assert Role.SECRETARY in person("李娜").role_set()
        assert person("李娜").home_branch().name == "科研一处党支部"
        # What the welcome promises: 李娜 publishes to her branch, 王建国 to the whole committee.
        assert [o.name for o in person("李娜").led_organisations()] == ["科研一处党支部"]
        assert person("王建国").led_organisations()[0].path == "机关党委"
        # Every branch has a secretary and at least one other committee member.
        for branch in session.scalars(select(Organisation).where(Organisation.kind.in_([OrgKind.BRANCH,
                                                                                       OrgKind.TEMPORARY_BRANCH]))):
            leaders = [p for p in session.scalars(select(Person)) if branch in p.led_organisations()]
            assert len(leaders) >= 2, branch.path
        # The temporary branch's members keep their home branch.
        assert person("彭涛").home_branch().name == "科研一处党支部"
        assert session.scalar(select(func.count()).select_from(Liaison)) >= 4
        assert person("吴磊").is_liaison()


def test_seeding_again_changes_nothing(demo_app):
    runtime = demo_app.extensions["zhitong"]
    with runtime.db.session() as session:
        before = session.scalar(select(func.count()).select_from(Person))
    seed_demo(runtime)
    with runtime.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == before


def test_chat_round_trip_through_encrypted_callback(demo_server):
    said: list[str] = []
    run_chat("张伟", lines=["帮助"], out=said.append, info_path=demo_server)
    assert len(said) == 1
    assert said[0].startswith("直通车：张伟您好")
    assert "待办" in said[0]


def test_secretary_sees_secretary_commands(demo_server):
    said: list[str] = []
    run_chat("李娜", lines=["帮助"], out=said.append, info_path=demo_server)
    assert "李娜您好" in said[0]
    assert "发布" in said[0]


def test_unknown_name_is_refused_with_names_to_try(demo_server):
    with pytest.raises(DemoError) as caught:
        run_chat("张三", lines=["帮助"], out=lambda _text: None, info_path=demo_server)
    message = caught.value.message
    assert "名册中没有「张三」" in message
    assert "张伟" in message and "李娜" in message


def test_chat_without_a_running_demo_says_how_to_start_one(tmp_path):
    with pytest.raises(DemoError, match="python -m bot demo"):
        run_chat("张伟", lines=["帮助"], out=lambda _text: None, info_path=tmp_path / DEMO_INFO_NAME)


def test_directive_card_pushed_to_member_and_tapped(tmp_path):
    """The demo's main flow: 王建国 publishes, the worker pushes a card through the fake WeCom
    server, 张伟 sees it in the chat client and taps 收到, the card is updated."""
    with running_demo(tmp_path) as (fake, info_path):
        said: list[str] = []
        run_chat("王建国", lines=["发布 学习贯彻全会精神 \\", "请各支部组织党员认真学习。"], out=said.append,
                 info_path=info_path)
        assert said == [said[0]] and "已发布 #1，推送 60 人" in said[0]

        wait_until(lambda: fake.state.messages_for("zhangwei"))
        said = []
        run_chat("张伟", lines=["/卡片", "/点 收到"], out=said.append, info_path=info_path, wait=3.0)
        assert said[0].startswith("[1] #1 学习贯彻全会精神  [收到]")
        # WeCom ignores a passive reply to a tap: the answer arrives as a push.
        assert any(line.startswith("【推送】") and "已确认收到 #1「学习贯彻全会精神」" in line for line in said)

        updates = wait_until(lambda: [m for m in fake.state.messages_for("zhangwei")
                                      if m["msgtype"] == "update_template_card"])
        assert updates[0]["body"]["button"]["replace_name"].startswith("已确认")


def test_pushes_render_readably(demo_server):
    from bot.chat import ChatClient, DemoPerson, load_info

    client = ChatClient(load_info(demo_server), DemoPerson("张伟", "zhangwei"))
    try:
        card = client.render_push({"seq": 1, "at": 1795300348.6, "msgtype": "template_card", "body": {
            "msgtype": "template_card",
            "template_card": {"card_type": "button_interaction", "main_title": {"title": "#3 通知"},
                              "sub_title_text": "机关党委发布 · 正文\n截止：2026年11月23日 17:00", "task_id": "directive-3-x",
                              "button_list": [{"text": "收到", "key": "ack:3"}]}}})
        text = client.render_push({"seq": 2, "at": 1795300348.6, "msgtype": "text",
                                   "body": {"msgtype": "text", "text": {"content": "【催办】#3 还未确认"}}})
    finally:
        client.close()
    assert card.splitlines() == [
        "【推送】2026年11月22日 06:32",
        "  ┌ 卡片 [1] #3 通知",
        "  │ 机关党委发布 · 正文",
        "  │ 截止：2026年11月23日 17:00",
        "  └ [收到]   （输入 /点 收到 点击）",
    ]
    assert text == "【推送】2026年11月22日 06:32\n  【催办】#3 还未确认"
    assert client.find_button("收到")[1] == "ack:3"


def test_the_fake_authorize_page_names_the_organisation_of_each_role(demo_app):
    from bot.demo import oauth_people

    listed = {row["name"]: row["org"] for row in oauth_people(demo_app.extensions["zhitong"])}
    assert listed["李娜"] == "科研一处党支部 书记"
    assert listed["王建国"] == "综合处党支部（机关党委书记）"
    assert listed["彭涛"] == "科研一处党支部（驻村工作队临时党支部书记）"
    assert listed["吴磊"] == "综合处党支部（机关党委联络员）"
    assert listed["张伟"] == "综合处党支部"


def test_export_in_the_demo_returns_a_file_message_with_the_whole_story(tmp_path):
    """`导出 1` in the demo: answered at once, then a file message whose DOCX tells the directive."""
    import io

    from docx import Document

    with running_demo(tmp_path) as (fake, info_path):
        said: list[str] = []
        run_chat("王建国", lines=["发布 学习贯彻全会精神 \\", "请各支部组织党员认真学习。"], out=said.append,
                 info_path=info_path)
        run_chat("张伟", lines=["收到 1"], out=said.append, info_path=info_path)
        said = []
        run_chat("王建国", lines=["导出 1"], out=said.append, info_path=info_path, wait=3.0)
        assert "正在生成 #1 的档案文件，稍后发给您。" in said[0]
        files = wait_until(lambda: [m for m in fake.state.messages_for("wangjianguo")
                                    if m["msgtype"] == "file"])
        assert len(files) == 1
        assert any(line.startswith("【推送】") and "[文件] 2026-" in line and "学习贯彻全会精神.docx" in line
                   for line in said)
        media = fake.state.media[files[0]["body"]["file"]["media_id"]]
        doc = Document(io.BytesIO(media.data))
        steps = [row.cells[1].text for row in doc.tables[2].rows[1:]]
        assert steps[0].startswith("发布，应确认 60 人")
        assert any(s.startswith("张伟（") and s.endswith("确认收到") for s in steps)


def test_a_whole_card_update_renders_as_the_card_now_reads(demo_server):
    from bot.chat import ChatClient, DemoPerson, load_info

    client = ChatClient(load_info(demo_server), DemoPerson("张伟", "zhangwei"))
    try:
        shown = client.render_push({"seq": 3, "at": 1795300348.6, "msgtype": "update_template_card", "body": {
            "userids": ["zhangwei"], "agentid": 1, "response_code": "rc",
            "template_card": {"card_type": "button_interaction", "main_title": {"title": "#3 通知"},
                              "sub_title_text": "【改期】截止时间改为 2026年11月25日 17:00\n截止：2026年11月25日 17:00",
                              "button_list": [{"text": "收到", "key": "ack:3"}], "replace_text": "已确认"}}})
    finally:
        client.close()
    assert shown.splitlines() == [
        "【卡片更新】2026年11月22日 06:32",
        "  ┌ #3 通知",
        "  │ 【改期】截止时间改为 2026年11月25日 17:00",
        "  │ 截止：2026年11月25日 17:00",
        "  └ [已确认]（不可点击）",
    ]
    assert client.cards == []  # not a new card to tap
