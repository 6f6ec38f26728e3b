"""The points publications as a spreadsheet (XLSX): the month's tables, the quarter's and the year's
figures per organisation, the year's candidates for 年度表彰. Text that begins with = + - @ is
written as text, never as a formula."""

from __future__ import annotations

from io import BytesIO
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlalchemy.orm import Session

from bot.reports.points import (
    Period,
    branch_tables,
    branches_under,
    commendation_candidates,
    organisation_figures,
)
from bot.texts import points as texts
from config.points_rules import CATEGORY_LABELS, Category
from models.org import Organisation
from models.publication import PublicationKind

_FORMULA_START = ("=", "+", "-", "@")
SHEET_LABELS = {"monthly": "月度公示", "figures": "各组织积分", "candidates": "年度表彰候选人"}
FIGURE_HEADER_LABELS = ("组织", "党员人数", "总积分", "人均积分", "获星人数", "获星比例", "申报核实",
                        *CATEGORY_LABELS.values())
CANDIDATE_HEADER_LABELS = ("姓名", "所在支部", "全年积分")


def _row(sheet, values) -> None:
    sheet.append(list(values))
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str) and cell.value.startswith(_FORMULA_START):
            cell.data_type = "s"  # a name like `=1+1` stays a name


def workbook(session: Session, period: Period, org: Organisation | None, tops: list[Organisation],
             tz: ZoneInfo) -> bytes:
    book = Workbook()
    sheet = book.active
    if period.kind is PublicationKind.MONTHLY:
        sheet.title = SHEET_LABELS["monthly"]
        _row(sheet, ("支部", *texts.HEADER_LABELS))
        for table in branch_tables(session, branches_under(session, org), period):
            for line in table.lines:
                _row(sheet, (table.branch.name, line.person.name, *(line.totals.by_category[c] for c in Category),
                             line.totals.total, line.stars))
    else:
        sheet.title = SHEET_LABELS["figures"]
        _row(sheet, FIGURE_HEADER_LABELS)
        for top in tops:
            for f in organisation_figures(session, top, period, tz):
                _row(sheet, (f.organisation.path, f.members, f.points, round(f.average, 2), f.with_stars,
                             round(f.star_share, 4), f.verified_reports, *(f.by_category[c] for c in Category)))
        if period.kind is PublicationKind.YEARLY:
            candidates = book.create_sheet(SHEET_LABELS["candidates"])
            _row(candidates, CANDIDATE_HEADER_LABELS)
            for top in tops:
                for c in commendation_candidates(session, top, period):
                    _row(candidates, (c.person.name, c.branch.path if c.branch else "", c.total))
    out = BytesIO()
    book.save(out)
    return out.getvalue()
