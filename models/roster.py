"""Roster import (SPEC §2.5): the organisation tree and its people from a CSV or XLSX file.

`import_roster(session, path, now=...)` reads the whole file, validates every row against the file
itself and the database, and only then writes, in the caller's transaction. Any bad row aborts the
import with a `RosterError` listing every bad row as `第 N 行：原因` (N is the row number the secretary
sees in Excel; the header is normally row 1), and nothing is written. Importing the same file again
writes nothing at all, not even an event.

File format
    CSV in UTF-8 with or without BOM (UTF-16 with BOM and GB18030, what Excel on a Chinese Windows
    saves as "CSV", are accepted too; a tab-separated header switches to tabs), or the first sheet
    of an XLSX. The header is the first row that names 组织 or 姓名, so a title row above it is fine.
    Unknown columns are ignored and reported; blank rows are skipped. Cells are NFKC-normalised, so
    full-width spaces, slashes, commas and digits count as their half-width forms. Numbers Excel
    stored as numbers (账号, 手机) become their digits (13800138000, not 13800138000.0).

Who is who (the identity rule)
    1. A row with 企业微信账号 is the person with that account (compared without case, as WeCom
       does). All rows with the account must carry the same 姓名 (and no two different 手机).
    2. A row without an account but with 手机 is the person with that (姓名, 手机): the account
       person of the file with the same 姓名 and 手机 if there is exactly one, else a person
       keyed by (姓名, 手机).
    3. A row with neither is keyed by (姓名, 组织): two such rows are the same person only when they
       name the same organisation. To link a 临时党支部 row to the person's home row, give the
       account or the mobile.
    The database is matched the same way: by account; else (姓名, 手机) or (姓名 + an organisation
    of the row) among people without an account. A person first imported without an account and
    later listed with one keeps their row (matched by 姓名 + 手机, or 姓名 + organisation).

What a row gives
    A row in a 党支部/联合党支部/党小组 gives a home membership, in a 临时党支部 a temporary one;
    one person has at most one home membership. A row in a higher organisation (党委, 二级党委,
    党总支) gives no membership, so it must carry a role there. Roles other than 党员 (the default,
    which the membership itself expresses) are held in the row's organisation. 联系组织 needs the
    联络员 role in the same row; each entry is a full path or, when unambiguous, the end of one.

The database follows the file for the people in it: their name, mobile, memberships, roles and
liaison assignments become what the file says, within what the file covers (the organisations its
rows name and everything under them). So one branch's own roster leaves a member's seat on a 党委
or a 临时党支部 membership elsewhere alone, while a file that names the top organisation covers
everything; a home membership the file gives replaces one held anywhere. An optional column that
is absent from the file (手机, 职务, 联系组织) leaves that data alone. People in the database but
not in the file are reported, never deleted.

Reads are one query per table; writes are bulk statements, so the objects the caller's session
already holds are expired at the end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from models.event import Event
from models.identity import Channel, ChannelIdentity
from models.org import Organisation, OrgKind, kind_from_name, path_within
from models.person import ROLE_BY_LABEL, Liaison, Membership, MembershipKind, OrgRole, Person, Role

ORG = "组织"
NAME = "姓名"
USERID = "企业微信账号"
MOBILE = "手机"
ROLES = "职务"
LIAISES = "联系组织"
COLUMNS = (ORG, NAME, USERID, MOBILE, ROLES, LIAISES)
REQUIRED = (ORG, NAME)

CSV_SUFFIXES = frozenset({".csv"})
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
HEADER_SEARCH_ROWS = 10
ABSENT_SHOWN = 200  # render_report lists at most this many people who are not in the file

ROLE_HINT = "、".join(ROLE_BY_LABEL)
KIND_HINT = "党委、党总支、党支部、党小组、临时党支部或联合党支部"

# Depth rank of each kind: a child must rank below its parent.
_RANK = {
    OrgKind.COMMITTEE: 0,
    OrgKind.SUB_COMMITTEE: 1,
    OrgKind.GENERAL_BRANCH: 2,
    OrgKind.BRANCH: 3,
    OrgKind.JOINT_BRANCH: 3,
    OrgKind.TEMPORARY_BRANCH: 3,
    OrgKind.GROUP: 4,
}
MEMBERSHIP_KINDS = {OrgKind.BRANCH, OrgKind.JOINT_BRANCH, OrgKind.TEMPORARY_BRANCH, OrgKind.GROUP}

_ZERO_WIDTH = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"))
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u00b7\u30fb"
_SPACE_NEAR_CJK = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
_USERID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-@.]{0,63}")
_MOBILE = re.compile(r"1\d{10}")
_ROLE_SPLIT = re.compile(r"[、,;\s]+")
_PATH_LIST_SPLIT = re.compile(r"[;、,\n]+")
_HEADER_NOTE = re.compile(r"[(（\[【].*?[)）\]】]")
_ADVISORY_LOCK_KEY = 0x5A485F524F53  # "ZH_ROS": one roster import at a time per database


class RosterError(ValueError):
    """The file is rejected; the message lists every problem, one `第 N 行：原因` line per bad row."""

    def __init__(self, message: str, problems: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class AbsentPerson:
    name: str
    wecom_userid: str | None


@dataclass
class ImportReport:
    rows: int = 0
    people_in_file: int = 0
    organisations_created: int = 0
    people_created: int = 0
    people_updated: int = 0
    people_unchanged: int = 0
    memberships_added: int = 0
    memberships_changed: int = 0
    memberships_removed: int = 0
    roles_added: int = 0
    roles_removed: int = 0
    liaisons_added: int = 0
    liaisons_removed: int = 0
    not_in_file: list[AbsentPerson] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.organisations_created or self.people_created or self.people_updated
            or self.memberships_added or self.memberships_changed or self.memberships_removed
            or self.roles_added or self.roles_removed or self.liaisons_added or self.liaisons_removed
        )

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "people_in_file": self.people_in_file,
            "organisations_created": self.organisations_created,
            "people_created": self.people_created,
            "people_updated": self.people_updated,
            "people_unchanged": self.people_unchanged,
            "memberships_added": self.memberships_added,
            "memberships_changed": self.memberships_changed,
            "memberships_removed": self.memberships_removed,
            "roles_added": self.roles_added,
            "roles_removed": self.roles_removed,
            "liaisons_added": self.liaisons_added,
            "liaisons_removed": self.liaisons_removed,
            "not_in_file": len(self.not_in_file),
        }


def render_report(report: ImportReport) -> str:
    """The Chinese summary the CLI prints."""
    if report.changed:
        lines = [
            f"导入完成：共 {report.rows} 行，{report.people_in_file} 人；"
            f"组织 新增 {report.organisations_created}；"
            f"人员 新增 {report.people_created}，更新 {report.people_updated}，未变 {report.people_unchanged}；"
            f"组织关系 新增 {report.memberships_added}，变更 {report.memberships_changed}，"
            f"移除 {report.memberships_removed}；"
            f"职务 新增 {report.roles_added}，撤销 {report.roles_removed}；"
            f"联系组织 新增 {report.liaisons_added}，移除 {report.liaisons_removed}。"
        ]
    else:
        lines = [f"名册与系统一致，没有变化（共 {report.rows} 行，{report.people_in_file} 人）。"]
    if report.ignored_columns:
        lines.append(f"已忽略无法识别的列：{'、'.join(report.ignored_columns)}")
    if report.not_in_file:
        lines.append(f"以下 {len(report.not_in_file)} 人不在本次名册中，未删除：")
        for person in report.not_in_file[:ABSENT_SHOWN]:
            lines.append(f"· {person.name}（{person.wecom_userid or '无企业微信账号'}）")
        if len(report.not_in_file) > ABSENT_SHOWN:
            lines.append(f"……另有 {len(report.not_in_file) - ABSENT_SHOWN} 人")
    return "\n".join(lines)


def import_roster(session: Session, path: Path, *, now: datetime) -> ImportReport:
    """Validate the whole file, then create or update organisations and people in the caller's transaction."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    path = Path(path)
    raw = path.read_bytes()
    table = read_table(path, raw)
    rows, present, ignored = _parse(table, is_xlsx=path.suffix.lower() in XLSX_SUFFIXES)
    if not rows:
        raise RosterError("名册中没有任何人员行")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_ADVISORY_LOCK_KEY)))
    snapshot = _Snapshot.load(session)
    plan = _Planner(rows, present, snapshot).plan()
    report = ImportReport(rows=len(rows), people_in_file=len(plan.people), ignored_columns=ignored)
    _apply(session, plan, snapshot, report, now=now, source={
        "file": path.name, "sha256": hashlib.sha256(raw).hexdigest(),
    })
    session.expire_all()
    return report


# --- reading -------------------------------------------------------------------------------------------


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


def _text(value: object) -> str:
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
    text = _HEADER_NOTE.sub("", _text(value))
    return re.sub(r"[\s*:：]", "", text)


@dataclass
class _Row:
    number: int
    org_path: str = ""
    name: str = ""
    userid: str | None = None
    mobile: str | None = None
    roles: set[Role] = field(default_factory=set)
    liaises: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    person: _FilePerson | None = None  # set once the row is attributed to a person


def _parse(table: list[tuple[int, list[object]]], *, is_xlsx: bool) -> tuple[list[_Row], set[str], list[str]]:
    """Find the header, map the columns and normalise each non-blank row; row problems are kept on the row."""
    non_blank = [(n, cells) for n, cells in table if any(_text(c) for c in cells)]
    if not non_blank:
        raise RosterError("名册是空的：第一行应为表头（组织、姓名 等）")
    header_at = 0
    for i, (_n, cells) in enumerate(non_blank[:HEADER_SEARCH_ROWS]):
        if {_header_name(c) for c in cells} & set(REQUIRED):
            header_at = i
            break
    header_row, header_cells = non_blank[header_at]
    index: dict[str, int] = {}
    ignored: list[str] = []
    for i, cell in enumerate(header_cells):
        name = _header_name(cell)
        if not name:
            continue
        if name in COLUMNS:
            if name in index:
                raise RosterError(f"表头（第 {header_row} 行）中「{name}」列出现了两次")
            index[name] = i
        else:
            ignored.append(_text(cell))
    missing = [c for c in REQUIRED if c not in index]
    if missing:
        found = "、".join(_text(c) for c in header_cells if _text(c)) or "无"
        raise RosterError(
            f"名册缺少必填列{'、'.join(f'「{c}」' for c in missing)}（表头在第 {header_row} 行，现有列：{found}）"
        )

    def cell(cells: list[object], column: str) -> str:
        i = index.get(column)
        return _text(cells[i]) if i is not None and i < len(cells) else ""

    rows = []
    for number, cells in non_blank[header_at + 1:]:
        row = _Row(number)
        raw_path = cell(cells, ORG)
        if raw_path:
            row.org_path = raw_path
        else:
            row.problems.append("缺少组织" + ("（如使用了合并单元格，请取消合并并逐行填写）" if is_xlsx else ""))
        row.name = _clean_name(cell(cells, NAME))
        if not row.name:
            row.problems.append("缺少姓名" + ("（如使用了合并单元格，请取消合并并逐行填写）" if is_xlsx else ""))
        elif len(row.name) > 50:
            row.problems.append("姓名过长（最多 50 个字）")
        userid = cell(cells, USERID)
        if userid:
            if _USERID.fullmatch(userid):
                row.userid = userid
            else:
                row.problems.append(f"企业微信账号「{userid}」格式不对：只能由字母、数字和 _-@. 组成，以字母或数字开头，最长 64 位")
        mobile = cell(cells, MOBILE)
        if mobile:
            row.mobile = _clean_mobile(mobile)
            if row.mobile is None:
                hint = "（看起来被 Excel 写成了科学计数法，请把该列设为文本）" if "E+" in mobile.upper() else ""
                row.problems.append(f"手机号「{mobile}」不是以 1 开头的 11 位号码{hint}")
        for label in _ROLE_SPLIT.split(cell(cells, ROLES)):
            if not label:
                continue
            role = ROLE_BY_LABEL.get(label)
            if role is None:
                row.problems.append(f"未知职务「{label}」（可填：{ROLE_HINT}）")
            elif role is not Role.MEMBER:
                row.roles.add(role)
        row.liaises = [p for p in (s.strip() for s in _PATH_LIST_SPLIT.split(cell(cells, LIAISES))) if p]
        rows.append(row)
    return rows, set(index), ignored


def _clean_name(text: str) -> str:
    """Spaces between Chinese characters are alignment (张  伟), not part of the name."""
    return re.sub(r"\s+", " ", _SPACE_NEAR_CJK.sub("", text)).strip()


def _clean_mobile(text: str) -> str | None:
    digits = re.sub(r"[\s\-()]", "", text)
    digits = re.sub(r"^(\d+)\.0+$", r"\1", digits)  # a number that went through a float
    digits = re.sub(r"^(\+?86|0086)(?=1\d{10}$)", "", digits)
    return digits if _MOBILE.fullmatch(digits) else None


def _split_path(text: str) -> list[str]:
    """`/`-separated names without spaces; outer slashes are forgiven, an empty level is returned as ''."""
    parts = [re.sub(r"\s+", "", part) for part in text.split("/")]
    while parts and not parts[0]:
        parts.pop(0)
    while parts and not parts[-1]:
        parts.pop()
    return parts


# --- the database as it is ---------------------------------------------------------------------------


@dataclass
class _DbPerson:
    id: int
    name: str
    userid: str | None
    mobile: str | None


@dataclass
class _Snapshot:
    orgs: dict[str, tuple[int, OrgKind]]
    people: dict[int, _DbPerson]
    by_userid: dict[str, int]
    identities: dict[str, tuple[int, str, int]]  # casefolded WeCom userid -> (identity id, external id, person id)
    memberships: dict[int, dict[int, tuple[int, MembershipKind]]]  # person -> org -> (id, kind)
    roles: dict[int, dict[tuple[int, Role], int]]  # person -> (org, role) -> id
    liaisons: dict[int, dict[int, int]]  # person -> org -> id

    @classmethod
    def load(cls, session: Session) -> _Snapshot:
        orgs = {path: (oid, kind) for oid, path, kind in session.execute(
            select(Organisation.id, Organisation.path, Organisation.kind))}
        people = {pid: _DbPerson(pid, name, userid, mobile) for pid, name, userid, mobile in session.execute(
            select(Person.id, Person.name, Person.wecom_userid, Person.mobile))}
        by_userid = {p.userid.casefold(): p.id for p in people.values() if p.userid}
        identities = {ext.casefold(): (iid, ext, pid) for iid, ext, pid in session.execute(
            select(ChannelIdentity.id, ChannelIdentity.external_id, ChannelIdentity.person_id)
            .where(ChannelIdentity.channel == Channel.WECOM))}
        memberships: dict[int, dict[int, tuple[int, MembershipKind]]] = defaultdict(dict)
        for mid, pid, oid, kind in session.execute(
                select(Membership.id, Membership.person_id, Membership.organisation_id, Membership.kind)):
            memberships[pid][oid] = (mid, kind)
        roles: dict[int, dict[tuple[int, Role], int]] = defaultdict(dict)
        for rid, pid, oid, role in session.execute(
                select(OrgRole.id, OrgRole.person_id, OrgRole.organisation_id, OrgRole.role)):
            roles[pid][(oid, role)] = rid
        liaisons: dict[int, dict[int, int]] = defaultdict(dict)
        for lid, pid, oid in session.execute(select(Liaison.id, Liaison.person_id, Liaison.organisation_id)):
            liaisons[pid][oid] = lid
        return cls(orgs, people, by_userid, identities, memberships, roles, liaisons)


# --- validation and planning ----------------------------------------------------------------------------


@dataclass
class _NewOrg:
    path: str
    name: str
    kind: OrgKind
    parent_path: str | None


@dataclass
class _FilePerson:
    name: str
    userid: str | None
    mobile: str | None
    first_row: int
    org_paths: list[str] = field(default_factory=list)  # every organisation of the person's rows
    memberships: dict[str, tuple[MembershipKind, int]] = field(default_factory=dict)  # path -> (kind, row)
    roles: set[tuple[str, Role]] = field(default_factory=set)
    liaises: set[str] = field(default_factory=set)
    db_id: int | None = None


@dataclass
class _Plan:
    new_orgs: list[_NewOrg]
    people: list[_FilePerson]
    manage_mobile: bool
    manage_roles: bool
    manage_liaisons: bool


class _Planner:
    def __init__(self, rows: list[_Row], present: set[str], snapshot: _Snapshot) -> None:
        self.rows = rows
        self.present = present
        self.snapshot = snapshot
        self.kinds: dict[str, OrgKind] = {path: kind for path, (_id, kind) in snapshot.orgs.items()}
        self.new_orgs: dict[str, _NewOrg] = {}
        self.people: list[_FilePerson] = []
        self.bare_rows: list[_Row] = []  # rows in a higher organisation without a role

    def problem(self, row: _Row, reason: str) -> None:
        row.problems.append(reason)

    def plan(self) -> _Plan:
        for row in self.rows:
            if row.org_path:
                row.org_path = self._organisation(row, row.org_path) or ""
        self._group_people()
        for row in self.rows:
            self._liaisons(row)
        bad = sorted((row for row in self.rows if row.problems), key=lambda r: r.number)
        if bad:
            lines = [f"名册有 {len(bad)} 行有误，本次未导入任何数据："]
            lines += [f"第 {row.number} 行：" + "；".join(row.problems) for row in bad]
            raise RosterError("\n".join(lines), [(row.number, reason) for row in bad for reason in row.problems])
        self._match_database()
        return _Plan(
            new_orgs=list(self.new_orgs.values()),  # parents are always registered before children
            people=self.people,
            manage_mobile=MOBILE in self.present,
            manage_roles=ROLES in self.present,
            manage_liaisons=LIAISES in self.present,
        )

    def _organisation(self, row: _Row, text: str) -> str | None:
        """Normalise a path and register the organisations it creates; None (with a problem) when bad."""
        names = _split_path(text)
        if not names or "" in names:
            self.problem(row, f"组织路径「{text}」中有空的层级")
            return None
        parent_path: str | None = None
        parent_kind: OrgKind | None = None
        for name in names:
            path = f"{parent_path}/{name}" if parent_path else name
            kind = self.kinds.get(path)
            if kind is None:
                kind = kind_from_name(name, parent_kind)
                if kind is None:
                    self.problem(row, f"无法判断「{name}」是哪类组织：名称应以{KIND_HINT}结尾")
                    return None
                if parent_kind is not None and (
                    _RANK[kind] <= _RANK[parent_kind] or (kind is OrgKind.GROUP and not parent_kind.is_branch)
                ):
                    self.problem(row, f"「{name}」（{kind.label}）不能设在「{parent_path}」（{parent_kind.label}）之下")
                    return None
                if len(name) > 100 or len(path) > 500:
                    self.problem(row, f"组织名称或路径过长：「{path}」")
                    return None
                self.kinds[path] = kind
                self.new_orgs[path] = _NewOrg(path, name, kind, parent_path)
            parent_path, parent_kind = path, kind
        return parent_path

    def _group_people(self) -> None:
        by_userid: dict[str, tuple[_FilePerson, _Row]] = {}
        by_name_mobile: dict[tuple[str, str], _FilePerson] = {}
        by_name_org: dict[tuple[str, str], _FilePerson] = {}
        account_by_name_mobile: dict[tuple[str, str], list[_FilePerson]] = defaultdict(list)
        person_rows: dict[str, list[_Row]] = {}
        usable = [row for row in self.rows if row.name]

        for row in (r for r in usable if r.userid):
            key = row.userid.casefold()
            if key not in by_userid:
                person = _FilePerson(row.name, row.userid, row.mobile, row.number)
                by_userid[key] = (person, row)
                person_rows[key] = [row]
                self.people.append(person)
                self._add_row(person, row)
                continue
            person, first = by_userid[key]
            mobile_row = next((r for r in person_rows[key] if r.mobile), first)
            if row.name != person.name:
                self.problem(row, f"企业微信账号「{row.userid}」在第 {first.number} 行是「{person.name}」，"
                                  f"此行是「{row.name}」：同一账号不能对应两个姓名")
                continue
            if row.mobile and person.mobile and row.mobile != person.mobile:
                self.problem(row, f"企业微信账号「{row.userid}」在第 {mobile_row.number} 行的手机是 {person.mobile}，"
                                  f"此行是 {row.mobile}：同一人只能有一个手机号")
                continue
            person.mobile = person.mobile or row.mobile
            person_rows[key].append(row)
            self._add_row(person, row)
        for person, _row in by_userid.values():
            if person.mobile:
                account_by_name_mobile[(person.name, person.mobile)].append(person)

        for row in (r for r in usable if not r.userid and r.mobile):
            key = (row.name, row.mobile)
            candidates = account_by_name_mobile.get(key, [])
            person = candidates[0] if len(candidates) == 1 else by_name_mobile.get(key)
            if person is None:
                person = by_name_mobile[key] = _FilePerson(row.name, None, row.mobile, row.number)
                self.people.append(person)
            self._add_row(person, row)

        for row in (r for r in usable if not r.userid and not r.mobile):
            key = (row.name, row.org_path)
            person = by_name_org.get(key)
            if person is None:
                person = by_name_org[key] = _FilePerson(row.name, None, None, row.number)
                self.people.append(person)
            self._add_row(person, row)

        for row in self.bare_rows:
            if not any(path == row.org_path for path, _role in row.person.roles):
                self.problem(row, f"「{row.org_path}」是{self.kinds[row.org_path].label}，不是党支部或党小组："
                                  "此行须填写在该组织的职务（党员请填写到所在党支部）")

        mobiles: dict[str, _FilePerson] = {}
        row_at = {row.number: row for row in self.rows}
        for person in self.people:
            if not person.mobile:
                continue
            other = mobiles.setdefault(person.mobile, person)
            if other is not person:
                later = max(person, other, key=lambda p: p.first_row)
                earlier = other if later is person else person
                self.problem(row_at[later.first_row], f"手机号 {person.mobile} 与第 {earlier.first_row} 行的「{earlier.name}」重复")

    def _add_row(self, person: _FilePerson, row: _Row) -> None:
        row.person = person
        if not row.org_path:
            return  # the row already has a problem
        person.org_paths.append(row.org_path)
        kind = self.kinds[row.org_path]
        if kind in MEMBERSHIP_KINDS:
            mkind = MembershipKind.TEMPORARY if kind is OrgKind.TEMPORARY_BRANCH else MembershipKind.HOME
            if mkind is MembershipKind.HOME:
                home = next(((p, n) for p, (k, n) in person.memberships.items()
                             if k is MembershipKind.HOME and p != row.org_path), None)
                if home is not None:
                    self.problem(row, f"「{person.name}」已在第 {home[1]} 行属于「{home[0]}」，"
                                      "一个人只能有一个所在党支部（临时党支部除外）")
                    return
            person.memberships.setdefault(row.org_path, (mkind, row.number))
        elif not row.roles and ROLES in self.present:
            self.bare_rows.append(row)  # fine if another row gives the person a role there
            return
        person.roles.update((row.org_path, role) for role in row.roles)

    def _liaisons(self, row: _Row) -> None:
        if not row.liaises:
            return
        if Role.LIAISON not in row.roles:
            self.problem(row, "填写了联系组织，但职务中没有「联络员」")
            return
        for text in row.liaises:
            path = self._resolve(row, text)
            if path and row.person is not None:
                row.person.liaises.add(path)

    def _resolve(self, row: _Row, text: str) -> str | None:
        names = _split_path(text)
        if not names or "" in names:
            self.problem(row, f"联系组织「{text}」路径有误")
            return None
        path = "/".join(names)
        if path in self.kinds:
            return path
        matches = [p for p in self.kinds if p.endswith("/" + path)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            shown = "、".join(sorted(matches)[:3]) + ("等" if len(matches) > 3 else "")
            self.problem(row, f"联系组织「{text}」有 {len(matches)} 个同名组织（{shown}），请写完整路径")
        else:
            self.problem(row, f"联系组织「{text}」既不在系统中，也不在本名册中")
        return None

    def _match_database(self) -> None:
        snap = self.snapshot
        claimed: set[int] = set()
        no_account = [p for p in snap.people.values() if not p.userid]
        by_name_mobile: dict[tuple[str, str], list[int]] = defaultdict(list)
        by_name: dict[str, list[int]] = defaultdict(list)
        for p in no_account:
            by_name[p.name].append(p.id)
            if p.mobile:
                by_name_mobile[(p.name, p.mobile)].append(p.id)

        def org_ids_of(pid: int) -> set[int]:
            return set(snap.memberships.get(pid, {})) | {oid for oid, _role in snap.roles.get(pid, {})}

        def by_name_and_org(person: _FilePerson) -> list[int]:
            wanted = {snap.orgs[p][0] for p in person.org_paths if p in snap.orgs}
            return [pid for pid in by_name.get(person.name, []) if org_ids_of(pid) & wanted]

        def take(person: _FilePerson, candidates: list[int]) -> None:
            free = [pid for pid in candidates if pid not in claimed]
            if len(free) == 1:
                person.db_id = free[0]
                claimed.add(free[0])

        for person in self.people:  # 1. by account
            if person.userid:
                key = person.userid.casefold()
                pid = snap.by_userid.get(key)
                if pid is None and key in snap.identities:
                    owner = snap.identities[key][2]
                    pid = owner if not snap.people[owner].userid else None
                if pid is not None and pid not in claimed:
                    person.db_id = pid
                    claimed.add(pid)
        for person in self.people:  # 2. by name and mobile, 3. by name and organisation
            if not person.userid:
                take(person, by_name_mobile.get((person.name, person.mobile), []) if person.mobile
                     else by_name_and_org(person))
        for person in self.people:  # 4. an account added to someone imported without one
            if person.userid and person.db_id is None:
                take(person, by_name_mobile.get((person.name, person.mobile), []) if person.mobile
                     else by_name_and_org(person))


# --- writing ---------------------------------------------------------------------------------------------


def _chunks(items: list, size: int = 1000):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _mask(mobile: str | None) -> str | None:
    return f"{mobile[:3]}****{mobile[-4:]}" if mobile else None


def _apply(session: Session, plan: _Plan, snap: _Snapshot, report: ImportReport, *, now: datetime,
           source: dict) -> None:
    # Inserts are Core inserts on the tables: the ORM bulk path leaves None out of a row's parameters and
    # splits the batch wherever the set of non-None columns changes (one statement per few rows).
    events: list[dict] = []

    def event(kind: str, subject_type: str, subject_id: int | None, data: dict) -> None:
        events.append({"at": now, "actor_id": None, "subject_type": subject_type, "subject_id": subject_id,
                       "kind": kind, "data": data})

    # Organisations, top-down so every parent has its id before its children are inserted.
    org_ids = {path: oid for path, (oid, _kind) in snap.orgs.items()}
    by_depth: dict[int, list[_NewOrg]] = defaultdict(list)
    for org in plan.new_orgs:
        by_depth[org.path.count("/")].append(org)
    for depth in sorted(by_depth):
        level = by_depth[depth]
        rows = [{"name": o.name, "path": o.path, "kind": o.kind,
                 "parent_id": org_ids[o.parent_path] if o.parent_path else None, "created_at": now} for o in level]
        returned = session.execute(insert(Organisation.__table__).returning(Organisation.id, Organisation.path), rows)
        org_ids.update((path, oid) for oid, path in returned)
        for o in level:
            event("organisation.created", "organisation", org_ids[o.path], {"path": o.path, "kind": o.kind.value})
    report.organisations_created = len(plan.new_orgs)
    path_of = {oid: path for path, oid in org_ids.items()}

    # People: new ones in one bulk insert, changed ones in one bulk update.
    new_people = [p for p in plan.people if p.db_id is None]
    if new_people:
        # RETURNING the columns rather than relying on row order: ordered RETURNING has no sentinel for a
        # serial key and falls back to one statement per row. New rows with equal columns are interchangeable.
        result = session.execute(
            insert(Person.__table__).returning(Person.id, Person.name, Person.wecom_userid, Person.mobile),
            [{"name": p.name, "wecom_userid": p.userid, "mobile": p.mobile, "created_at": now} for p in new_people],
        )
        ids: dict[tuple, list[int]] = defaultdict(list)
        for pid, name, userid, mobile in result:
            ids[(name, userid, mobile)].append(pid)
        for person in new_people:
            person.db_id = ids[(person.name, person.userid, person.mobile)].pop()
    created = {p.db_id for p in new_people}
    updated: set[int] = set()
    person_updates = []
    for person in plan.people:
        if person.db_id in created:
            continue
        old = snap.people[person.db_id]
        new_userid = person.userid or old.userid
        new_mobile = person.mobile if plan.manage_mobile else old.mobile
        changes: dict = {}
        if old.name != person.name:
            changes["name"] = [old.name, person.name]
        if old.userid != new_userid:
            changes["wecom_userid"] = [old.userid, new_userid]
        if old.mobile != new_mobile:
            changes["mobile"] = [_mask(old.mobile), _mask(new_mobile)]
        if changes:
            person_updates.append({"id": old.id, "name": person.name, "wecom_userid": new_userid, "mobile": new_mobile})
            event("person.updated", "person", old.id, {"changes": changes})
            updated.add(old.id)
    if person_updates:
        session.execute(update(Person), person_updates)

    # WeCom identities: the bot recognises a sender through them.
    new_identities, moved_identities = [], []
    for person in plan.people:
        if not person.userid:
            continue
        found = snap.identities.get(person.userid.casefold())
        if found is None:
            new_identities.append({"channel": Channel.WECOM, "external_id": person.userid,
                                   "person_id": person.db_id, "created_at": now})
            if person.db_id not in created:
                event("channel_identity.linked", "person", person.db_id,
                      {"channel": Channel.WECOM.value, "external_id": person.userid})
                updated.add(person.db_id)
        elif found[2] != person.db_id or found[1] != person.userid:
            moved_identities.append({"id": found[0], "person_id": person.db_id, "external_id": person.userid})
            event("channel_identity.linked", "person", person.db_id,
                  {"channel": Channel.WECOM.value, "external_id": person.userid, "previous_person_id": found[2]})
            updated.add(person.db_id)
    if new_identities:
        session.execute(insert(ChannelIdentity.__table__), new_identities)
    if moved_identities:
        session.execute(update(ChannelIdentity), moved_identities)

    # Memberships, roles and liaison assignments follow the file for everyone in it, within what
    # the file covers: the organisations its rows name and everything under them. A branch's own
    # roster therefore leaves a member's 党委 委员 seat or 临时党支部 membership elsewhere alone;
    # a file that names the top organisation covers everything. A person has one home branch, so a
    # home membership given by the file replaces one held anywhere.
    covered = sorted({path for person in plan.people for path in person.org_paths})
    scope: dict[int, bool] = {}

    def in_scope(oid: int) -> bool:
        if oid not in scope:
            scope[oid] = any(path_within(path_of[oid], top) for top in covered)
        return scope[oid]

    add_members, change_members, drop_members = [], [], []
    add_roles, drop_roles, add_liaisons, drop_liaisons = [], [], [], []
    for person in plan.people:
        pid = person.db_id
        is_new = pid in created
        want_members = {org_ids[path]: kind for path, (kind, _row) in person.memberships.items()}
        have_members = snap.memberships.get(pid, {})
        new_home = MembershipKind.HOME in want_members.values()
        want_members = {**{oid: kind for oid, (_mid, kind) in have_members.items()
                           if not in_scope(oid) and not (new_home and kind is MembershipKind.HOME)},
                        **want_members}
        for oid, kind in want_members.items():
            if oid not in have_members:
                add_members.append({"person_id": pid, "organisation_id": oid, "kind": kind})
                if not is_new:
                    event("membership.added", "person", pid, {"path": path_of[oid], "kind": kind.value})
            elif have_members[oid][1] is not kind:
                change_members.append({"id": have_members[oid][0], "kind": kind})
                event("membership.changed", "person", pid,
                      {"path": path_of[oid], "from": have_members[oid][1].value, "to": kind.value})
        for oid, (mid, kind) in have_members.items():
            if oid not in want_members:
                drop_members.append(mid)
                event("membership.removed", "person", pid, {"path": path_of[oid], "kind": kind.value})

        have_roles = snap.roles.get(pid, {})
        want_roles = {(org_ids[path], role) for path, role in person.roles}
        want_roles |= {(oid, role) for oid, role in have_roles if not plan.manage_roles or not in_scope(oid)}
        for oid, role in sorted(want_roles - set(have_roles), key=lambda r: (r[0], r[1].value)):
            add_roles.append({"person_id": pid, "organisation_id": oid, "role": role})
            if not is_new:
                event("role.granted", "person", pid, {"path": path_of[oid], "role": role.value})
        for (oid, role), rid in have_roles.items():
            if (oid, role) not in want_roles:
                drop_roles.append(rid)
                event("role.revoked", "person", pid, {"path": path_of[oid], "role": role.value})

        have_liaisons = snap.liaisons.get(pid, {})
        want_liaisons = {org_ids[path] for path in person.liaises}
        want_liaisons |= {oid for oid in have_liaisons if not plan.manage_liaisons or not in_scope(oid)}
        for oid in sorted(want_liaisons - set(have_liaisons)):
            add_liaisons.append({"person_id": pid, "organisation_id": oid})
            if not is_new:
                event("liaison.assigned", "person", pid, {"path": path_of[oid]})
        for oid, lid in have_liaisons.items():
            if oid not in want_liaisons:
                drop_liaisons.append(lid)
                event("liaison.removed", "person", pid, {"path": path_of[oid]})

        if is_new:
            event("person.created", "person", pid, {
                "name": person.name,
                "wecom_userid": person.userid,
                "mobile": _mask(person.mobile),
                "memberships": [{"path": p, "kind": k.value} for p, (k, _r) in person.memberships.items()],
                "roles": [{"path": p, "role": r.value} for p, r in sorted(person.roles, key=lambda x: (x[0], x[1]))],
                "liaisons": sorted(person.liaises),
            })
        elif (want_members.keys() ^ have_members.keys()
              or any(have_members[o][1] is not k for o, k in want_members.items() if o in have_members)
              or want_roles ^ set(have_roles) or want_liaisons ^ set(have_liaisons)):
            updated.add(pid)

    for model, ids in ((Membership, drop_members), (OrgRole, drop_roles), (Liaison, drop_liaisons)):
        for chunk in _chunks(ids):
            session.execute(delete(model).where(model.id.in_(chunk)))
    if change_members:
        session.execute(update(Membership), change_members)
    for model, rows in ((Membership, add_members), (OrgRole, add_roles), (Liaison, add_liaisons)):
        if rows:
            session.execute(insert(model.__table__), rows)

    report.people_created = len(created)
    report.people_updated = len(updated)
    report.people_unchanged = len(plan.people) - len(created) - len(updated)
    report.memberships_added = len(add_members)
    report.memberships_changed = len(change_members)
    report.memberships_removed = len(drop_members)
    report.roles_added = len(add_roles)
    report.roles_removed = len(drop_roles)
    report.liaisons_added = len(add_liaisons)
    report.liaisons_removed = len(drop_liaisons)
    in_file = {p.db_id for p in plan.people}
    report.not_in_file = sorted(
        (AbsentPerson(p.name, p.userid) for p in snap.people.values() if p.id not in in_file),
        key=lambda a: (a.name, a.wecom_userid or ""),
    )

    if report.changed:
        event("roster.imported", "roster", None, {**source, **report.counts()})
        session.execute(insert(Event.__table__), events)
