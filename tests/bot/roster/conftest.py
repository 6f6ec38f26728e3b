"""Roster files the way offices make them (openpyxl), and a whole-database snapshot."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.roster import import_roster
from models.base import Base

TOP = "机关党委"
GB1 = "机关党委/第一党总支"
GB2 = "机关党委/第二党总支"
BRANCH_A = "机关党委/第一党总支/综合处党支部"
BRANCH_B = "机关党委/第一党总支/财务处党支部"
BRANCH_C = "机关党委/第二党总支/科研一处党支部"


def office_xlsx(path, header, rows, *, title="机关党委党员花名册", footer=("填表人：王小明", "审核人：李书记")):
    """A sheet as an office keeps it: a merged title row, a header, rows, a blank line and a footer."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    if title:
        sheet.append([title])
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(header))
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    sheet.append([])
    for line in footer:
        sheet.append([line])
    workbook.save(path)
    return path


def plain_xlsx(path, rows, *, header=("组织", "姓名", "企业微信账号", "手机", "职务")):
    return office_xlsx(path, list(header), rows, title=None, footer=())


BASE_ROWS = [
    [TOP, "王建国", "wangjg", 13900000001, "书记"],
    [BRANCH_A, "李娜", "lina", 13900000002, "书记"],
    [BRANCH_A, "张伟", "zhangwei", 13900000003, ""],
    [BRANCH_A, "刘洋", "liuyang", 13900000004, ""],
    [BRANCH_B, "陈静", "chenjing", 13900000005, "书记"],
    [BRANCH_B, "赵磊", "zhaolei", 13900000006, ""],
    [BRANCH_C, "吴磊", "wulei", 13900000007, "书记"],
]


@pytest.fixture
def base(db, clock, tmp_path):
    """The base roster imported: a 机关党委, two 党总支, three 党支部, seven people."""
    do_import(db, plain_xlsx(tmp_path / "base.xlsx", BASE_ROWS), clock)


def do_import(db, path, clock, **options):
    with db.session() as session:
        return import_roster(session, path, now=clock(), **options)


def whole_database(db) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order: two snapshots are equal when nothing changed."""
    with db.session() as session:
        return {
            table.name: sorted(tuple(map(repr, row)) for row in session.execute(select(table)))
            for table in Base.metadata.sorted_tables
        }
