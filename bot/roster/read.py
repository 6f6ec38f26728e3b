"""Reading a roster file: CSV or the first sheet of an XLSX, as offices keep them, into rows.

The header is the first row naming 组织 or 姓名 (or one of their usual aliases), so a title row
above it, merged or not, is fine. Columns go by name, with the common office names accepted as
aliases (SPEC §2.5); office columns such as 序号/性别/出生年月 and anything unknown are reported and
ignored, and an unknown name that looks like a known one is reported with the column it probably
is. Blank rows and footer lines (填表人：…, 审核人：…, 制表日期：…, 备注：…) are skipped. Cells are
NFKC-normalised, so full-width spaces, slashes, commas and digits count as their half-width forms;
numbers Excel stored as numbers (账号, 手机) become their digits.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path

from models.person import (
    CATEGORY_BY_LABEL,
    POST_TYPE_BY_LABEL,
    ROLE_BY_LABEL,
    MemberCategory,
    PostType,
    Role,
)

ORG = "组织"
NAME = "姓名"
USERID = "企业微信账号"
MOBILE = "手机"
ROLES = "职务"
LIAISES = "联系组织"
NEW = "新建"
STATUS = "状态"
CATEGORY = "党员类别"
POST_TYPE = "岗位类型"
COLUMNS = (ORG, NAME, USERID, MOBILE, ROLES, LIAISES, NEW, STATUS, CATEGORY, POST_TYPE)
REQUIRED = (ORG, NAME)

# Header names offices use for the same columns (compared without case).
ALIASES = {
    ORG: ("所在组织", "所在支部", "党组织", "所属组织", "所在党组织", "所在党支部"),
    USERID: ("企业微信号", "企业微信id", "企业微信", "账号", "userid"),
    MOBILE: ("手机号", "手机号码", "联系电话", "电话", "移动电话"),
    ROLES: ("党内职务", "职位"),
    CATEGORY: ("人员类别", "党员类型"),
    POST_TYPE: ("岗位类别",),
}
COLUMN_BY_HEADER = {name.casefold(): column for column, names in ALIASES.items() for name in names}
COLUMN_BY_HEADER.update({column.casefold(): column for column in COLUMNS})
# Columns an office roster commonly carries that the bot has no use for: ignored without a hint.
OFFICE_COLUMNS = frozenset({
    "序号", "编号", "性别", "民族", "出生年月", "出生日期", "年龄", "籍贯", "学历", "学位", "入党时间", "入党日期",
    "转正时间", "转正日期", "参加工作时间", "身份证号", "身份证号码", "工作单位", "单位", "部门", "职称", "备注",
})
FOOTER = re.compile(r"^(填表人|填报人|制表人|审核人|审批人|负责人|制表日期|填表日期|填报日期|日期|备注|说明|注|合计|总计)"
                    r"\s*([:：]|$)")

STATUS_LEFT = "已转出"
STATUS_RENAMED = "改名"
YES = frozenset({"是", "y", "yes", "1", "新建"})
NO = frozenset({"", "否", "n", "no", "0"})

CSV_SUFFIXES = frozenset({".csv"})
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
HEADER_SEARCH_ROWS = 10

ROLE_HINT = "、".join(ROLE_BY_LABEL)

_ZERO_WIDTH = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"))
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u00b7\u30fb"
_SPACE_NEAR_CJK = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
_USERID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-@.]{0,63}")
_MOBILE = re.compile(r"1\d{10}")
_ROLE_SPLIT = re.compile(r"[、,;\s]+")
_PATH_LIST_SPLIT = re.compile(r"[;、,\n]+")
_HEADER_NOTE = re.compile(r"[(（\[【].*?[)）\]】]")


class RosterError(ValueError):
    """The file is rejected; the message lists every problem, one `第 N 行：原因` line per bad row."""

    def __init__(self, message: str, problems: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class RowStatus(StrEnum):
    IN = "in"  # an empty 状态: in the organisation
    LEFT = "left"  # 已转出
    RENAMED = "renamed"  # 改名: the name really changed, although by one character


@dataclass(frozen=True)
class IgnoredColumn:
    header: str
    probably: str | None = None  # the known column it looks like


@dataclass
class Row:
    number: int
    org_path: str = ""
    name: str = ""
    userid: str | None = None
    mobile: str | None = None
    roles: set[Role] = field(default_factory=set)
    liaises: list[str] = field(default_factory=list)
    new: bool = False
    status: RowStatus = RowStatus.IN
    category: MemberCategory | None = None
    post_type: PostType | None = None
    problems: list[str] = field(default_factory=list)
    person: object | None = None  # the plan's person, once the row is attributed to one


@dataclass
class ParsedFile:
    rows: list[Row]
    present: set[str]  # the columns the file has
    ignored: list[IgnoredColumn]
    footer_rows: list[int]
    is_xlsx: bool


def read_table(path: Path, raw: bytes | None = None) -> list[tuple[int, list[object]]]:
    """Every row of the file as (Excel row number, raw cells); CSV or the first sheet of an XLSX."""
    suffix = path.suffix.lower()
    if raw is None:
        raw = path.read_bytes()
    if suffix in CSV_SUFFIXES:
        return _read_csv(raw)
    if suffix in XLSX_SUFFIXES:
        return _read_xlsx(raw)
    shown = suffix or "（无扩展名）"
    hint = "，请在 Excel 中另存为 .xlsx" if suffix in (".xls", ".et", ".numbers", ".ods") else ""
    raise RosterError(f"不支持的文件类型「{shown}」：名册须为 CSV（UTF-8）或 XLSX 文件{hint}")


def _read_csv(raw: bytes) -> list[tuple[int, list[object]]]:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = raw.decode("gb18030")
            except UnicodeDecodeError:
                raise RosterError("无法识别 CSV 文件的编码：请另存为「CSV UTF-8（逗号分隔）」") from None
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    try:
        return [(n, list(cells)) for n, cells in enumerate(csv.reader(io.StringIO(text, newline=""),
                                                                       delimiter=delimiter), 1)]
    except csv.Error as exc:
        raise RosterError(f"CSV 文件格式有误：{exc}") from None


def _read_xlsx(raw: bytes) -> list[tuple[int, list[object]]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise RosterError(f"无法读取 XLSX 文件（{type(exc).__name__}）：请确认文件没有损坏，并另存为 .xlsx") from None
    try:
        if not workbook.worksheets:
            return []
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # do not trust the stored used range: some writers get it wrong
        return [(n, list(cells)) for n, cells in enumerate(sheet.iter_rows(values_only=True), 1)]
    finally:
        workbook.close()


def text_of(value: object) -> str:
    """One cell as clean text: Excel numbers as digits, NFKC, no zero-width characters, stripped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return unicodedata.normalize("NFKC", str(value)).translate(_ZERO_WIDTH).strip()


def _header_name(value: object) -> str:
    text = _HEADER_NOTE.sub("", text_of(value))
    return re.sub(r"[\s*:：]", "", text)


def _column(header: str) -> str | None:
    return COLUMN_BY_HEADER.get(header.casefold())


def _probably(header: str) -> str | None:
    """The known column an unknown header most likely means (职务名称 → 职务), if any."""
    if header in OFFICE_COLUMNS:
        return None
    folded = header.casefold()
    best, best_ratio = None, 0.0
    for known, column in COLUMN_BY_HEADER.items():
        if len(known) >= 2 and (known in folded or (len(folded) >= 2 and folded in known)):
            ratio = 1.0 + len(known) / 100  # containment wins; the longer known name the better
        else:
            ratio = difflib.SequenceMatcher(None, folded, known).ratio()
        if ratio > best_ratio:
            best, best_ratio = column, ratio
    return best if best_ratio >= 0.6 else None


def is_footer(cells: list[object]) -> bool:
    first = next((text_of(c) for c in cells if text_of(c)), "")
    return bool(FOOTER.match(first))


def parse(table: list[tuple[int, list[object]]], *, is_xlsx: bool) -> ParsedFile:
    """Find the header, map the columns and normalise each non-blank row; row problems are kept on the row."""
    non_blank = [(n, cells) for n, cells in table if any(text_of(c) for c in cells)]
    if not non_blank:
        raise RosterError("名册是空的：第一行应为表头（组织、姓名 等）")
    header_at = 0
    for i, (_n, cells) in enumerate(non_blank[:HEADER_SEARCH_ROWS]):
        if {_column(_header_name(c)) for c in cells} & set(REQUIRED):
            header_at = i
            break
    header_row, header_cells = non_blank[header_at]
    index: dict[str, int] = {}
    ignored: list[IgnoredColumn] = []
    for i, cell in enumerate(header_cells):
        name = _header_name(cell)
        if not name:
            continue
        column = _column(name)
        if column is None:
            ignored.append(IgnoredColumn(text_of(cell), _probably(name)))
        elif column in index:
            first = text_of(header_cells[index[column]])
            raise RosterError(f"表头（第 {header_row} 行）中「{first}」和「{text_of(cell)}」都是「{column}」列，"
                              "请删去其中一列")
        else:
            index[column] = i
    missing = [c for c in REQUIRED if c not in index]
    if missing:
        found = "、".join(text_of(c) for c in header_cells if text_of(c)) or "无"
        raise RosterError(
            f"名册缺少必填列{'、'.join(f'「{c}」' for c in missing)}（表头在第 {header_row} 行，现有列：{found}）"
        )

    def cell(cells: list[object], column: str) -> str:
        i = index.get(column)
        return text_of(cells[i]) if i is not None and i < len(cells) else ""

    rows, footers = [], []
    for number, cells in non_blank[header_at + 1:]:
        if is_footer(cells):
            footers.append(number)
            continue
        rows.append(_row(number, lambda column, cells=cells: cell(cells, column), is_xlsx=is_xlsx))
    return ParsedFile(rows, set(index), ignored, footers, is_xlsx)


def _row(number: int, cell, *, is_xlsx: bool) -> Row:
    row = Row(number)
    merged = "（如使用了合并单元格，请取消合并并逐行填写）" if is_xlsx else ""
    row.org_path = cell(ORG)
    row.name = clean_name(cell(NAME))
    if not row.name:
        row.problems.append("缺少姓名" + merged)
    elif len(row.name) > 50:
        row.problems.append("姓名过长（最多 50 个字）")
    userid = cell(USERID)
    if userid:
        if _USERID.fullmatch(userid):
            row.userid = userid
        else:
            row.problems.append(f"企业微信账号「{userid}」格式不对：只能由字母、数字和 _-@. 组成，以字母或数字开头，最长 64 位")
    mobile = cell(MOBILE)
    if mobile:
        row.mobile = clean_mobile(mobile)
        if row.mobile is None:
            hint = "（看起来被 Excel 写成了科学计数法，请把该列设为文本）" if "E+" in mobile.upper() else ""
            row.problems.append(f"手机号「{mobile}」不是以 1 开头的 11 位号码{hint}")
    for label in _ROLE_SPLIT.split(cell(ROLES)):
        if not label:
            continue
        role = ROLE_BY_LABEL.get(label)
        if role is None:
            row.problems.append(f"未知职务「{label}」（可填：{ROLE_HINT}）")
        elif role is not Role.MEMBER:
            row.roles.add(role)
    row.liaises = [p for p in (s.strip() for s in _PATH_LIST_SPLIT.split(cell(LIAISES))) if p]
    new = cell(NEW).casefold()
    if new in YES:
        row.new = True
    elif new not in NO:
        row.problems.append(f"新建「{cell(NEW)}」无法识别：确需新建组织请填「是」，否则留空")
    status = re.sub(r"\s+", "", cell(STATUS))
    if status in (STATUS_LEFT, "转出"):
        row.status = RowStatus.LEFT
    elif status in (STATUS_RENAMED, "更名"):
        row.status = RowStatus.RENAMED
    elif status not in ("", "在册", "正常"):
        row.problems.append(f"状态「{status}」无法识别：在组织中的留空，已转出的填「{STATUS_LEFT}」，"
                            f"确已改名的填「{STATUS_RENAMED}」")
    category = cell(CATEGORY)
    if category:
        row.category = CATEGORY_BY_LABEL.get(category) or CATEGORY_BY_LABEL.get(category + "党员")
        if row.category is None:
            row.problems.append(f"党员类别「{category}」无法识别：请填「正式党员」或「预备党员」")
    post_type = cell(POST_TYPE)
    if post_type:
        row.post_type = POST_TYPE_BY_LABEL.get(post_type)
        if row.post_type is None:
            row.problems.append(f"岗位类型「{post_type}」无法识别：请填「机关」「外勤」或「驻外」")
    return row


def clean_name(text: str) -> str:
    """Spaces between Chinese characters are alignment (张  伟), not part of the name."""
    return re.sub(r"\s+", " ", _SPACE_NEAR_CJK.sub("", text)).strip()


def clean_mobile(text: str) -> str | None:
    digits = re.sub(r"[\s\-()]", "", text)
    digits = re.sub(r"^(\d+)\.0+$", r"\1", digits)  # a number that went through a float
    digits = re.sub(r"^(\+?86|0086)(?=1\d{10}$)", "", digits)
    return digits if _MOBILE.fullmatch(digits) else None


def split_path(text: str) -> list[str]:
    """`/`-separated names without spaces; outer slashes are forgiven, an empty level is returned as ''."""
    parts = [re.sub(r"\s+", "", part) for part in text.split("/")]
    while parts and not parts[0]:
        parts.pop(0)
    while parts and not parts[-1]:
        parts.pop()
    return parts
