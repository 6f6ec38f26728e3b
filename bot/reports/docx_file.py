"""A `Matter` laid out as a DOCX a secretary can file or print (python-docx).

Chinese needs an East Asian font named in every run's `w:rFonts/@w:eastAsia` (Word and
LibreOffice pick the Latin font for CJK text otherwise and show boxes or a fallback): the styles
used here name 宋体 for text and 黑体 for headings, with the language set to zh-CN, so Word uses
its own fonts and LibreOffice maps them through fontconfig to an installed CJK font."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

from bot.reports.matter import Matter
from bot.timefmt import format_time

BODY_FONT = "宋体"
HEADING_FONT = "黑体"
LATIN_FONT = "Times New Roman"
TEXT_WIDTH = Cm(15.9)  # the default page's text width (A4/Letter less margins), shared by the columns
FIRST_COLUMN = Cm(4.6)  # room for `2026年11月21日 19:45`


def matter_docx(matter: Matter, tz: ZoneInfo) -> bytes:
    """The DOCX file's bytes: header, what was issued and to whom, the steps in time order, the
    per-organisation summary and the totals."""
    doc = Document()
    _set_fonts(doc)
    doc.core_properties.title = f"#{matter.number} {matter.title}"
    doc.core_properties.language = "zh-CN"
    doc.add_heading(f"{matter.kind}档案 #{matter.number} {matter.title}", level=1)

    header = [("编号", f"#{matter.number}"), ("类型", matter.kind), ("组织", matter.organisation),
              ("发布人" if matter.kind != "会议" else "召集人", matter.issuer),
              ("发布时间" if matter.kind != "会议" else "安排时间", format_time(matter.issued_at, tz)),
              (matter.due_label, format_time(matter.due_at, tz) if matter.due_at else "无")]
    _pairs(doc, header + matter.extra)

    doc.add_heading("一、发布内容", level=2)
    for line in matter.issued_text:
        doc.add_paragraph(line)

    doc.add_heading("二、发送范围", level=2)
    word = "应到" if matter.kind == "会议" else "接收"
    total = sum(n for _, n in matter.recipients)
    doc.add_paragraph(f"共 {total} 人，涉及 {len(matter.recipients)} 个组织。")
    _table(doc, ["组织", f"{word}人数"], [(path, str(n)) for path, n in matter.recipients], first=Cm(12.9))
    if matter.copies:
        doc.add_paragraph("抄送：" + "；".join(matter.copies))

    doc.add_heading("三、办理过程（按时间顺序）", level=2)
    _table(doc, ["时间", "事项"], [(format_time(s.at, tz), s.text) for s in matter.ordered_steps()])

    if matter.summaries:
        doc.add_heading("四、各组织情况", level=2)
        bullet = doc.styles["List Bullet"].style_id  # looked up once: python-docx's lookup by name is slow
        for path, lines in matter.summaries:
            p = doc.add_paragraph()
            p.add_run(path).bold = True
            for line in lines:
                doc.add_paragraph(line)._p.get_or_add_pPr().get_or_add_pStyle().val = bullet

    doc.add_heading("五、合计" if matter.summaries else "四、合计", level=2)
    _pairs(doc, matter.totals)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _pairs(doc, pairs: list[tuple[str, str]]) -> None:
    _table(doc, None, pairs)


def _table(doc, head: list[str] | None, rows: list[tuple[str, ...]], first=None) -> None:
    """A bordered table; of two columns the first is `first` wide (default: narrow, for labels
    and times). Cells are filled through their
    XML directly: adding a row with python-docx's cell API costs ~1 ms a cell, too slow for
    thousands of rows."""
    width = len(head) if head else 2
    table = doc.add_table(rows=0, cols=width)
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    if width == 2:
        table.autofit = False
        first = first or FIRST_COLUMN
        table.columns[0].width, table.columns[1].width = first, TEXT_WIDTH - first
    tbl = table._tbl
    if head:
        _row(tbl, head, bold=True)
    for row in rows:
        _row(tbl, row)


def _row(tbl, values, *, bold: bool = False) -> None:
    tr = OxmlElement("w:tr")
    for value in values:
        tc = OxmlElement("w:tc")
        p = OxmlElement("w:p")
        r = OxmlElement("w:r")
        if bold:
            rpr = OxmlElement("w:rPr")
            rpr.append(OxmlElement("w:b"))
            r.append(rpr)
        for i, part in enumerate(str(value).split("\n")):
            if i:
                r.append(OxmlElement("w:br"))
            t = OxmlElement("w:t")
            t.set(qn("xml:space"), "preserve")
            t.text = part
            r.append(t)
        p.append(r)
        tc.append(p)
        tr.append(tc)
    tbl.append(tr)


def _set_fonts(doc) -> None:
    # The document defaults name theme fonts (minorEastAsia…), which Word prefers to a style's
    # named font; name 宋体 there too, without the theme attributes.
    defaults = doc.styles.element.find(qn("w:docDefaults"))
    rpr_default = defaults.find(qn("w:rPrDefault")) if defaults is not None else None
    if rpr_default is not None and rpr_default.find(qn("w:rPr")) is not None:
        fonts = rpr_default.find(qn("w:rPr")).find(qn("w:rFonts"))
        if fonts is not None:
            for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
                fonts.attrib.pop(qn(attr), None)
            fonts.set(qn("w:ascii"), LATIN_FONT)
            fonts.set(qn("w:hAnsi"), LATIN_FONT)
            fonts.set(qn("w:eastAsia"), BODY_FONT)
        lang = rpr_default.find(qn("w:rPr")).find(qn("w:lang"))
        if lang is not None:
            lang.set(qn("w:eastAsia"), "zh-CN")
    for name, font in (("Normal", BODY_FONT), ("Heading 1", HEADING_FONT), ("Heading 2", HEADING_FONT),
                       ("List Bullet", BODY_FONT), ("Table Grid", BODY_FONT)):
        style = doc.styles[name]
        if name == "Normal":
            style.font.size = Pt(11)
            style.font.name = LATIN_FONT
        rpr = style.element.get_or_add_rPr()
        fonts = rpr.find(qn("w:rFonts"))
        if fonts is None:
            fonts = OxmlElement("w:rFonts")
            rpr.insert(0, fonts)
        fonts.set(qn("w:eastAsia"), font)
        for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
            fonts.attrib.pop(qn(attr), None)  # a theme font would override the named one
        if name.startswith("Heading"):
            fonts.set(qn("w:ascii"), LATIN_FONT)
            fonts.set(qn("w:hAnsi"), LATIN_FONT)
        lang = rpr.find(qn("w:lang"))
        if lang is None:
            lang = OxmlElement("w:lang")
            rpr.append(lang)
        lang.set(qn("w:eastAsia"), "zh-CN")
