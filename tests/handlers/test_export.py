"""导出 编号 through the real encrypted endpoint: answered at once, built by the worker's export
job, uploaded to the fake WeCom (media/upload) and sent back as a file message exactly once;
on the Official Account a signed /files/<token> link. Every file is read back with python-docx."""

from __future__ import annotations

import io
import re
from datetime import datetime

import pytest
from docx import Document
from sqlalchemy import select

from bot import worker
from bot.exports import export_once
from bot.timefmt import format_time
from bot.web.files import file_path
from models.event import Event
from models.export import ExportRequest, ExportStatus, claim_exports, finish_export
from models.outbox import OutboxMessage
from tests.bot.conftest import wechat_settings, wired_chat  # noqa: F401  (fixtures)
from tests.conftest import Chat
from tests.factories import small_tree
from tests.fakewx.conftest import fake_wechat  # noqa: F401  (fixture)

PUBLISH = "发布 学习贯彻全会精神\n请各支部组织专题学习。\n第二段：形成学习记录。\n截止 12月1日17:00"


@pytest.fixture
def wired(wired_chat):  # noqa: F811
    """(app, runtime, chat, person ids) with the small tree, pushing to the fake server."""
    runtime, chat = wired_chat
    with runtime.db.session() as s:
        ids = {k: p.id for k, p in small_tree(s).items()}
    return chat.client.application, runtime, chat, ids


def _story(chat: Chat, runtime, clock) -> None:
    """A directive's life: issued, sent, acknowledged, one late, completed with a note, nudged."""
    assert chat.say("wangsj", PUBLISH).startswith("已发布 #1")
    worker.drain_once(runtime)
    clock.advance(minutes=5)
    chat.say("zhangwei", "收到 1")
    clock.advance(hours=1)
    chat.say("lina", "完成 1 已组织支部专题学习")
    clock.advance(minutes=40)
    chat.say("wangsj", "催办 1")
    clock.advance(days=11)  # past the deadline (2026年12月1日 17:00)
    chat.say("zhaolei", "收到 1")


def _steps(doc) -> list[tuple[str, str]]:
    """(time, text) rows of the 办理过程 table."""
    table = next(t for t in doc.tables if t.rows[0].cells[0].text == "时间")
    return [(row.cells[0].text, row.cells[1].text) for row in table.rows[1:]]


def _pairs(table) -> dict[str, str]:
    return {row.cells[0].text: row.cells[1].text for row in table.rows}


def test_export_answers_at_once_and_the_worker_sends_the_file_once(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat, _ids = wired
    _story(chat, runtime, clock)
    assert chat.say("wangsj", "导出 1") == "正在生成 #1 的档案文件，稍后发给您。"
    senders = worker.build_senders(runtime)
    assert export_once(runtime, senders) == 1
    assert export_once(runtime, senders) == 0  # done: never built or sent again
    worker.drain_once(runtime, senders=senders)
    files = [m for m in fake_wechat.state.messages_for("wangsj") if m.get("msgtype") == "file"]
    assert len(files) == 1
    media = fake_wechat.state.media[files[0]["body"]["file"]["media_id"]]
    assert media.type == "file" and media.filename == "2026-11-21 1 学习贯彻全会精神.docx"
    doc = Document(io.BytesIO(media.data))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "通知档案 #1 学习贯彻全会精神" in text
    assert "请各支部组织专题学习。" in text and "第二段：形成学习记录。" in text
    header = _pairs(doc.tables[0])
    assert header["编号"] == "#1" and header["类型"] == "通知" and header["组织"] == "机关党委"
    assert header["发布人"] == "王书记" and header["发布时间"] == "2026年11月21日 19:45"
    assert header["截止时间"] == "2026年12月1日 17:00"
    steps = _steps(doc)
    assert [t for t, _ in steps] == sorted([t for t, _ in steps], key=_instant)  # time order
    texts = [s for _, s in steps]
    assert texts[0].startswith("发布，应确认 5 人")
    assert any(s.startswith("已送达") for s in texts)
    assert ("2026年11月21日 19:50", "张伟（综合处党支部） 确认收到") in steps
    assert ("2026年11月21日 20:50", "李娜（综合处党支部） 报告完成：已组织支部专题学习") in steps
    assert any(s.startswith("催办") for s in texts)
    assert any("赵磊（财务处党支部） 确认收到（逾期）" == s for s in texts)
    order = [next(i for i, s in enumerate(texts) if s.startswith(p)) for p in ("发布", "张伟", "李娜", "催办", "赵磊")]
    assert order == sorted(order)
    totals = _pairs(doc.tables[-1])
    assert totals["已确认"] == "3/5" and totals["其中逾期"] == "1" and totals["已报告完成"] == "1"
    summary = "\n".join(p.text for p in doc.paragraphs)
    assert "未确认：刘洋" in summary and "未确认：陈静" in summary  # named: the counts are small
    with runtime.db.session() as s:
        request = s.scalars(select(ExportRequest)).one()
        assert request.status is ExportStatus.DONE and request.outbox_id is not None


def _instant(shown: str):
    y, mo, d, h, mi = map(int, re.match(r"(\d+)年(\d+)月(\d+)日 (\d+):(\d+)", shown).groups())
    return (y, mo, d, h, mi)


def test_a_crash_mid_build_is_retried_and_sent_once(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat, _ids = wired
    chat.say("wangsj", PUBLISH)
    chat.say("wangsj", "导出 1")
    with runtime.db.session() as s:
        (dead,) = claim_exports(s, clock())  # a worker claims it, then dies while building
    senders = worker.build_senders(runtime)
    assert export_once(runtime, senders) == 0  # its lease still holds
    clock.advance(minutes=6)
    assert export_once(runtime, senders) == 1  # taken over after the lease
    with runtime.db.session() as s:
        assert finish_export(s, dead, outbox_id=None, now=clock()) is False  # the dead claim cannot finish
    worker.drain_once(runtime, senders=senders)
    files = [m for m in fake_wechat.state.messages_for("wangsj") if m.get("msgtype") == "file"]
    assert len(files) == 1
    with runtime.db.session() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.subject_type == "export_request")).all()
        assert len(rows) == 1 and rows[0].payload["type"] == "file"


def test_who_may_export(wired, fake_wechat, clock):  # noqa: F811
    _app, _runtime, chat, _ids = wired
    chat.say("wangsj", PUBLISH)
    assert "导出" in chat.say("zhangwei", "导出 1") and "正在生成" not in chat.say("zhangwei", "导出 1")
    assert chat.say("chenjing", "导出 1").startswith("您无权导出 #1")  # a branch secretary, not the issuer
    assert chat.say("sunll", "导出 1").startswith("您无权导出 #1")  # a liaison of branches, not of 机关党委
    assert chat.say("wangsj", "导出 99") == "没有编号为 #99 的通知、学习或会议。"
    assert chat.say("wangsj", "导出").startswith("请写明要导出的编号")
    assert chat.say("wangsj", "导出 abc").startswith("请写明要导出的编号")
    assert "编号「12345678901」不对" in chat.say("wangsj", "导出 12345678901")


def test_a_meetings_branch_committee_and_its_liaison_may_export_it(wired, fake_wechat, clock):  # noqa: F811
    _app, _runtime, chat, _ids = wired
    chat.say("lina", "会议 支委会 明天19:00 书记办公室")  # meeting #1 of 综合处党支部
    assert chat.say("lina", "导出档案 1").startswith("正在生成 #1")
    assert chat.say("sunll", "导出 1").startswith("正在生成 #1")  # liaison of 综合处党支部
    assert chat.say("chenjing", "导出 1").startswith("您无权导出 #1")  # another branch's secretary


def test_official_account_gets_a_signed_link_served_by_any_web_process(wired, fake_wechat, clock):  # noqa: F811
    app, runtime, chat, ids = wired
    runtime.settings = runtime.settings.with_overrides(public_base_url="http://127.0.0.1:7590")
    chat.say("wangsj", PUBLISH)
    with runtime.db.session() as s:
        s.add(ExportRequest(number=1, person_id=ids["top"], channel="mp", recipient="openid-wang",
                            status=ExportStatus.PENDING, attempts=0, lease_until=clock(), created_at=clock()))
    export_once(runtime, worker.build_senders(runtime))
    with runtime.db.session() as s:
        row = s.scalars(select(OutboxMessage).where(OutboxMessage.subject_type == "export_request")).one()
        text = row.payload["text"]
    assert "请在 24 小时内下载" in text
    assert "http://127.0.0.1:7590/files/" in text
    path = "/files/" + text.rsplit("/files/", 1)[1]
    other = app.test_client()  # any web process: the file is rebuilt from what the token names
    got = other.get(path)
    assert got.status_code == 200 and got.mimetype.endswith("wordprocessingml.document")
    assert "UTF-8''2026-11-21%201%20" in got.headers["Content-Disposition"]
    assert "学习贯彻全会精神" in "\n".join(p.text for p in Document(io.BytesIO(got.data)).paragraphs)
    assert other.get(path[:-3] + "abc").status_code == 404  # forged
    someone = file_path(runtime.settings, 1, ids["zhangwei"], clock())
    assert other.get(someone).status_code == 403  # signed, but not theirs to export
    clock.advance(hours=24, minutes=2)
    assert other.get(path).status_code == 404  # expired


def test_dates_in_the_file_in_progress_and_in_the_event_log_are_the_same_instants(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat, ids = wired
    chat.say("wangsj", PUBLISH)
    clock.advance(minutes=7, seconds=30)
    chat.say("zhangwei", "收到 1")
    progress = chat.say("wangsj", "进度 1")
    issued_shown, due_shown = re.search(r"发布于 (\S+ \S+)，截止 (\S+ \S+)", progress).groups()
    with runtime.db.session() as s:
        issued = s.scalars(select(Event).where(Event.kind == "directive.issued")).one()
        ack = s.scalars(select(Event).where(Event.kind == "delivery.acknowledged")).one()
        from bot.reports.docx_file import matter_docx
        from bot.reports.matter import matter_of

        matter = matter_of(s, 1, runtime.settings.tz)
        doc = Document(io.BytesIO(matter_docx(matter, runtime.settings.tz)))
    tz = runtime.settings.tz
    header = _pairs(doc.tables[0])
    assert header["发布时间"] == issued_shown == format_time(issued.at, tz)
    assert header["截止时间"] == due_shown == format_time(datetime.fromisoformat(issued.data["deadline"]), tz)
    assert matter.issued_at == issued.at
    ack_step = next(s for s in matter.steps if s.text.startswith("张伟"))
    assert ack_step.at == ack.at  # the same instant, not only the same minute
    assert (format_time(ack.at, tz), "张伟（综合处党支部） 确认收到") in _steps(doc)


def test_a_meeting_file_tells_notice_leave_checkin_absence_and_minutes_in_order(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat, _ids = wired
    reply = chat.say("lina", "会议 支部党员大会 今天20:30 党员活动室")
    code = re.search(r"签到码：(\d{4})", reply).group(1)
    clock.advance(minutes=2)
    chat.say("liuyang", "请假 1 出差在外")
    clock.advance(minutes=3)
    chat.say("lina", "批准 2")  # the leave request is #2: one number space
    clock.advance(minutes=20)
    chat.say("zhangwei", f"签到 {code}")
    clock.advance(minutes=60)
    chat.say("lina", "结束 1")
    clock.advance(minutes=5)
    chat.say("lina", "纪要 1 学习了全会精神，讨论了年度计划")
    with runtime.db.session() as s:
        from bot.reports.docx_file import matter_docx
        from bot.reports.matter import matter_of

        doc = Document(io.BytesIO(matter_docx(matter_of(s, 1, runtime.settings.tz), runtime.settings.tz)))
    header = _pairs(doc.tables[0])
    assert header["类型"] == "会议" and header["开始时间"] == "2026年11月21日 20:30" and header["地点"] == "党员活动室"
    texts = [t for _, t in _steps(doc)]
    wanted = ["安排会议", "发出会议通知", "刘洋 请假", "李娜 批准 刘洋", "张伟 签到", "结束会议", "记录缺席（未请假）", "李娜 记录纪要"]
    found = [next(i for i, t in enumerate(texts) if t.startswith(w)) for w in wanted]
    assert found == sorted(found)
    assert "学习了全会精神，讨论了年度计划" in texts[found[-1]]
    totals = _pairs(doc.tables[-1])
    assert totals["签到"] == "1" and totals["请假（已批准）"] == "1" and totals["状态"] == "已结束"


def test_the_file_says_why_a_reminder_was_not_sent_also_for_rows_recorded_in_words(wired, fake_wechat, clock):  # noqa: F811
    _app, runtime, chat, _ids = wired
    # 1 h 15 min before the deadline: the 24 h and 2 h steps had passed when it was issued.
    assert chat.say("wangsj", "发布 报送材料\n请各支部报送。\n截止 11月21日21:00").startswith("已发布 #1")
    clock.advance(minutes=10)
    assert "撤回" in chat.say("wangsj", "撤回 1 内容有误")  # the deadline and summary steps are cancelled
    with runtime.db.session() as s:
        from bot.reports.docx_file import matter_docx
        from bot.reports.matter import matter_of
        from models.event import record

        # An event recorded before the reason became a code carried the row's words as its note.
        record(s, "reminder.skipped", subject_type="directive", subject_id=1, at=runtime.now(),
               data={"reminder_id": 99, "step": "directive_summary", "note": "补发时已过时：截止已超过 8 天"})
        s.flush()
        doc = Document(io.BytesIO(matter_docx(matter_of(s, 1, runtime.settings.tz), runtime.settings.tz)))
    texts = [t for _, t in _steps(doc)]
    assert "截止前 24 小时提醒未确认的同志：未发出（发布时提醒时间已过）" in texts
    assert "截止前 2 小时提醒未确认的同志：未发出（发布时提醒时间已过）" in texts
    assert "截止时向进度滞后支部的书记和联络员发出提醒：未发出（已撤回）" in texts
    assert "截止 24 小时后向发布组织发出汇总：未发出（已撤回）" in texts
    assert "截止 24 小时后向发布组织发出汇总：未发出（补发时已过时：截止已超过 8 天）" in texts
