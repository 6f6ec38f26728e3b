"""The files themselves: `python -m bot export` for one matter and for a period (ZIP with its
index), read back with python-docx and openpyxl; formula-looking cells kept as text; names
sanitised; a large matter summarised per organisation; one file through LibreOffice to PDF."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from datetime import datetime

import pytest
from docx import Document
from openpyxl import load_workbook

from bot.reports import matter as matter_module
from bot.reports.period import parse_period, safe_filename
from tests.conftest import Chat
from tests.factories import BRANCH_A, BRANCH_B, person, small_tree


@pytest.fixture
def tree(db):
    with db.session() as s:
        people = small_tree(s)
        for i in range(8):
            person(s, f"党员{i}", f"member{i}", BRANCH_A if i % 2 else BRANCH_B)
        return {k: p.id for k, p in people.items()}


def test_export_one_matter_to_a_file(app, tree, chat: Chat, tmp_path):
    chat.say("wangsj", "发布 关于缴纳党费的通知\n请于月底前缴纳。\n截止 12月20日")
    chat.say("zhangwei", "收到 1")
    out = tmp_path / "one.docx"
    result = app.test_cli_runner().invoke(args=["export", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"已导出 #1「关于缴纳党费的通知」：{out}"
    doc = Document(out)
    assert doc.paragraphs[0].text == "通知档案 #1 关于缴纳党费的通知"
    assert "请于月底前缴纳。" in [p.text for p in doc.paragraphs]
    recipients = next(t for t in doc.tables if t.rows[0].cells[0].text == "组织")
    assert [(r.cells[0].text, r.cells[1].text) for r in recipients.rows[1:]] == [(BRANCH_A, "7"), (BRANCH_B, "6")]
    # East Asian font named in the styles, so Word and LibreOffice render Chinese with a CJK face.
    fonts = doc.styles["Normal"].element.rPr.rFonts
    assert fonts.get("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia") == "宋体"


def test_export_refuses_bad_input_in_chinese(app, tree, tmp_path):
    runner = app.test_cli_runner()
    missing = runner.invoke(args=["export", "7", "-o", str(tmp_path / "x.docx")])
    assert missing.exit_code == 1 and "没有编号为 #7" in missing.output
    assert not (tmp_path / "x.docx").exists()
    assert "请写要导出的编号" in runner.invoke(args=["export"]).output
    assert "期间「2026Q5」无法识别" in runner.invoke(args=["export", "--org", "机关党委", "--period", "2026Q5"]).output
    assert "找不到组织" in runner.invoke(args=["export", "--org", "不存在党委", "--period", "2026Q4"]).output


def test_period_zip_in_date_order_with_an_index_whose_cells_stay_text(app, tree, chat: Chat, clock, tmp_path):
    chat.say("wangsj", "发布 =HYPERLINK(\"http://x\")\n正文\n截止 12月20日")  # a title that looks like a formula
    clock.advance(days=2)
    chat.say("lina", "会议 支委会 明天19:00 书记办公室")
    clock.advance(days=1)
    chat.say("wangsj", "发布 关于/年度:总结*的通知\n正文\n截止 12月25日")
    clock.advance(days=60)
    chat.say("wangsj", "发布 明年的通知\n正文\n截止 3月1日")  # outside 2026Q4
    out = tmp_path / "q4.zip"
    result = app.test_cli_runner().invoke(args=["export", "--org", "机关党委", "--period", "2026Q4", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "的 3 件事项" in result.output
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert names == ["2026-11-21 1 =HYPERLINK(_http___x_).docx", "2026-11-24 2 综合处党支部 支委会.docx",
                         "2026-11-24 3 关于_年度_总结_的通知.docx", "目录.xlsx"]
        docs = [Document(io.BytesIO(archive.read(n))) for n in names[:-1]]
        assert docs[1].paragraphs[0].text.startswith("会议档案 #2")
        book = load_workbook(io.BytesIO(archive.read("目录.xlsx")))
    rows = list(book["目录"].iter_rows(values_only=True))
    assert rows[0][0] == "机关党委 2026年第4季度 一事一档目录"
    assert rows[1] == ("序号", "日期", "编号", "类型", "标题", "组织", "发布人", "截止/开始", "文件名")
    assert [r[8] for r in rows[2:]] == names[:-1]
    cell = book["目录"]["E3"]
    assert cell.value == '=HYPERLINK("http://x")' and cell.data_type == "s" and cell.quotePrefix


def test_safe_file_names_and_periods():
    assert safe_filename('a/b\\c:d*e?f"g<h>i|j\x01') == "a_b_c_d_e_f_g_h_i_j_"
    assert safe_filename("..隐藏 ") == "隐藏"
    assert safe_filename("") == "未命名"
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    q4 = parse_period("2026q4", tz)
    assert (q4.start, q4.end, q4.label) == (datetime(2026, 10, 1, tzinfo=tz), datetime(2027, 1, 1, tzinfo=tz),
                                            "2026年第4季度")
    assert parse_period("2026-12", tz).end == datetime(2027, 1, 1, tzinfo=tz)
    assert parse_period("2026", tz).label == "2026年"


def test_a_large_matter_is_summarised_per_organisation(app, tree, chat: Chat, monkeypatch):
    monkeypatch.setattr(matter_module, "PERSON_STEPS_MAX", 3)  # "large" from 4 recipients on
    monkeypatch.setattr(matter_module, "NAMES_MAX", 2)
    chat.say("wangsj", "发布 大范围通知\n正文\n截止 12月20日")
    chat.say("zhangwei", "收到 1")
    chat.say("member1", "完成 1 已办")
    runtime = app.extensions["zhitong"]
    with runtime.db.session() as s:
        from bot.reports.docx_file import matter_docx

        m = matter_module.matter_of(s, 1, runtime.settings.tz)
        doc = Document(io.BytesIO(matter_docx(m, runtime.settings.tz)))
    texts = [p.text for p in doc.paragraphs]
    steps = next(t for t in doc.tables if t.rows[0].cells[0].text == "时间")
    step_texts = [r.cells[1].text for r in steps.rows[1:]]
    assert not any("确认收到" in t and "张伟" in t for t in step_texts)  # no line per acknowledgement
    assert any(t.startswith("党员1（综合处党支部） 报告完成：已办") for t in step_texts)  # notes still listed
    assert "四、各组织情况" in texts and BRANCH_A in texts
    assert any(t.startswith("应确认 7 人，确认收到 2 人，未确认 5 人") for t in texts)
    assert "未确认：5 人" in texts  # too many to name
    assert any(t.startswith("首个确认 2026年11月21日 19:45") for t in texts)


@pytest.mark.skipif(shutil.which("libreoffice") is None and shutil.which("soffice") is None,
                    reason="LibreOffice is not installed (Debian: apt-get install libreoffice-writer-nogui "
                           "fonts-wqy-microhei; .ci/run installs it)")
def test_libreoffice_renders_the_file_to_pdf_with_its_pages(app, tree, chat: Chat, clock, tmp_path):
    from pypdf import PdfReader

    chat.say("wangsj", "发布 学习贯彻全会精神\n" + "\n".join(f"第{i}条：认真学习，逐条落实。" for i in range(60))
             + "\n截止 12月20日")
    for who in ("zhangwei", "liuyang", "member1"):
        clock.advance(minutes=3)
        chat.say(who, "收到 1")
    out = tmp_path / "matter.docx"
    assert app.test_cli_runner().invoke(args=["export", "1", "-o", str(out)]).exit_code == 0
    office = shutil.which("libreoffice") or shutil.which("soffice")
    subprocess.run([office, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), str(out)], check=True, capture_output=True, timeout=180)
    reader = PdfReader(tmp_path / "matter.pdf")
    assert len(reader.pages) == 4  # 60 body lines (3 pages), then the recipients, steps, summary and totals
    first = reader.pages[0].extract_text()
    assert "通知档案 #1 学习贯彻全会精神" in first.replace("\n", "")
    last = reader.pages[-1].extract_text()
    assert "合计" in last


def test_the_fake_keeps_wecoms_media_limits(wechat_runtime, fake_wechat):
    from bot.channels.wecom import UploadRefused, WeComChannel

    channel = WeComChannel(wechat_runtime.settings.wecom, store=wechat_runtime.store, timeout=2.0)
    with pytest.raises(UploadRefused):
        channel.upload_file("tiny.docx", b"12345")  # must be larger than 5 bytes
    with pytest.raises(UploadRefused):
        channel.upload_file("huge.docx", b"x" * (20 * 1024 * 1024 + 1))
    media_id = channel.upload_file("ok.docx", b"123456")
    assert fake_wechat.state.media[media_id].data == b"123456"
    assert channel.send(["zhangwei"], {"type": "file", "media_id": media_id}).accepted == ["zhangwei"]
    refused = channel.send(["zhangwei"], {"type": "file", "media_id": "no-such-media"})
    assert "40007" in refused.failed["zhangwei"]
    fake_wechat.state.media[media_id].created_at -= 3 * 86400 + 1  # three days later
    assert "40007" in channel.send(["liuyang"], {"type": "file", "media_id": media_id}).failed["liuyang"]
