"""Period exports: every matter of an organisation's subtree in a period, one DOCX each, zipped in
date order with an index (目录.xlsx).

File names are `YYYY-MM-DD 编号 标题.docx` with the date in the bot's zone, sanitised so that
every archive tool and file system takes them. Index cells that begin with `=`, `+`, `-` or `@`
are written as text, never as formulas (a title like `=HYPERLINK(…)` stays a title)."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.reports.docx_file import matter_docx
from bot.reports.matter import Matter, directive_matter, meeting_matter
from bot.timefmt import format_time
from models.directive import Directive
from models.meeting import Meeting
from models.org import Organisation

INDEX_NAME = "目录.xlsx"
TITLE_CHARS = 60  # of the title in a file name
_PERIOD = re.compile(r"^(\d{4})(?:Q([1-4])|-(\d{1,2}))?$")
# Characters Windows, macOS or zip tools refuse or misread in a name, and control characters.
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')
FORMULA_START = ("=", "+", "-", "@")


class BadPeriod(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive
    label: str


def parse_period(text: str, tz: ZoneInfo) -> Period:
    """`2026Q4`, `2026-11` or `2026`, as local calendar bounds."""
    m = _PERIOD.match((text or "").strip().upper())
    if not m:
        raise BadPeriod(f"期间「{text}」无法识别，请写成 2026Q4、2026-11 或 2026")
    year = int(m[1])
    if m[2]:
        q = int(m[2])
        first, months, label = 3 * q - 2, 3, f"{year}年第{q}季度"
    elif m[3]:
        first, months, label = int(m[3]), 1, f"{year}年{int(m[3])}月"
        if not 1 <= first <= 12:
            raise BadPeriod(f"期间「{text}」的月份不对，请写 1 到 12 月")
    else:
        first, months, label = 1, 12, f"{year}年"
    end_month = first + months
    start = datetime(year, first, 1, tzinfo=tz)
    end = datetime(year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1, tzinfo=tz)
    return Period(start, end, label)


def safe_filename(text: str, limit: int = 120) -> str:
    """A name any file system and archive tool accepts: no path separators, reserved or control
    characters, no leading dots or trailing spaces, at most `limit` characters."""
    name = _UNSAFE.sub("_", text)
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").rstrip(". ")
    return (name or "未命名")[:limit]


def matter_filename(matter: Matter, tz: ZoneInfo) -> str:
    day = matter.date.astimezone(tz).strftime("%Y-%m-%d")
    return safe_filename(f"{day} {matter.number} {matter.title[:TITLE_CHARS]}") + ".docx"


def period_matters(session: Session, org: Organisation, period: Period, tz: ZoneInfo) -> list[Matter]:
    """The directives and study items issued by, and the meetings held in, `org` or beneath it
    within the period, in date order (then by number)."""
    inside = select(Organisation.id).where(or_(Organisation.id == org.id,
                                               Organisation.path.startswith(org.path + "/", autoescape=True)))
    directives = session.scalars(select(Directive).where(
        Directive.organisation_id.in_(inside), Directive.created_at >= period.start,
        Directive.created_at < period.end))
    meetings = session.scalars(select(Meeting).where(
        Meeting.organisation_id.in_(inside), Meeting.starts_at >= period.start, Meeting.starts_at < period.end))
    matters = [directive_matter(session, d, tz) for d in directives]
    matters += [meeting_matter(session, m, tz) for m in meetings]
    return sorted(matters, key=lambda m: (m.date, m.number))


def period_zip(session: Session, org: Organisation, period: Period, tz: ZoneInfo) -> bytes:
    """The ZIP: one DOCX per matter in date order, then 目录.xlsx listing them."""
    matters = period_matters(session, org, period, tz)
    out = io.BytesIO()
    names: list[str] = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for matter in matters:
            name = _unique(matter_filename(matter, tz), names)
            names.append(name)
            archive.writestr(name, matter_docx(matter, tz))
        archive.writestr(INDEX_NAME, index_xlsx(org, period, matters, names, tz))
    return out.getvalue()


def _unique(name: str, taken: list[str]) -> str:
    stem, n = name[:-5], 2
    while name in taken:
        name, n = f"{stem} ({n}).docx", n + 1
    return name


def index_xlsx(org: Organisation, period: Period, matters: list[Matter], names: list[str], tz: ZoneInfo) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "目录"
    ws.append([f"{org.path} {period.label} 一事一档目录"])
    head = ["序号", "日期", "编号", "类型", "标题", "组织", "发布人", "截止/开始", "文件名"]
    ws.append(head)
    for i, (matter, name) in enumerate(zip(matters, names, strict=True), start=1):
        ws.append([i, format_time(matter.date, tz), matter.number, matter.kind, matter.title,
                   matter.organisation, matter.issuer,
                   format_time(matter.due_at, tz) if matter.due_at else "", name])
    keep_as_text(ws)
    for column, width in zip("ABCDEFGHI", (6, 20, 8, 6, 40, 40, 10, 20, 60), strict=True):
        ws.column_dimensions[column].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def keep_as_text(ws) -> None:
    """Every string cell is stored as a string: openpyxl takes a value starting with `=` for a
    formula, and spreadsheet programs evaluate `+`, `-`, `@` too; marked text with a quote prefix
    (Excel's leading apostrophe), they show as typed and never compute (SPEC §10)."""
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"
                if cell.value.startswith(FORMULA_START):
                    cell.quotePrefix = True
