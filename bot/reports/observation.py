"""Quarterly observation points (SPEC §11): per organisation and per type of organisation, the
lag from issue to acknowledgement (median and slowest), required meetings held vs required, study
completion and points per member, each with the quarter before beside it.

The same figures reach people three ways: `python -m bot report observation` (text, or XLSX with
`-o FILE.xlsx`), and `observation_section`, which the one quarterly push (the points' 季度通报, SPEC
§8) includes for each of its recipients. A type of organisation is its 业务性质 where one is set (on
it or above it), else its kind (党支部, 临时党支部, …); the per-type rows add up branches, so no
member is counted twice.

Points per member (人均积分) are the 季度通报's average, counted the same way (`members_points`, one
grouped statement for both quarters and the whole tree): the points of the quarter's months of every
member counted where they are now — a home membership, not transferred out — divided by those
members. A member who joined during the quarter counts with the points they have in it (wherever
they earned them); one who left during the quarter (已转出) counts nowhere, nor do their points; the
quarter before is read with today's members too, so both columns divide by the same people. A type
divides the points of its branches' members by those members; an organisation without members
shows `—`."""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.reports.points import MemberPoints, make_period, members_points
from bot.reports.quarter import Figures, Quarter, beside, quarters_figures, rolled_up
from bot.texts.points import one_decimal
from bot.texts.portrait import minutes_text, quarter_name
from models.options import OPTION_NAMES, effective_many
from models.org import BRANCH_KINDS, Organisation, OrgKind, tree_order
from models.person import Person
from models.publication import PublicationKind

SHANGHAI = ZoneInfo("Asia/Shanghai")
SECTION_SLOWEST = 3  # branches named as the slowest to acknowledge in the push


def points_by_organisation(session: Session, orgs: dict[int, Organisation], quarters: list[Quarter]
                           ) -> list[dict[int, MemberPoints]]:
    """Members and their points in each quarter per organisation of `orgs`, its subtree added up;
    the quarters' ledger read in one statement."""
    return [rolled_up(orgs, own, MemberPoints) for own in members_points(session, _periods(quarters))]


def _periods(quarters: list[Quarter]):
    return [make_period(PublicationKind.QUARTERLY, q.year, q.number) for q in quarters]


@dataclass(frozen=True)
class Row:
    label: str  # an organisation's path, or a type's name
    now: Figures
    before: Figures
    points_now: float | None
    points_before: float | None
    org: Organisation | None = None  # None for a type row


@dataclass(frozen=True)
class Observation:
    quarter: Quarter
    organisations: list[Row]  # tree order, groups left out
    types: list[Row]


def observation(session: Session, quarter: Quarter, *, tz: ZoneInfo = SHANGHAI) -> Observation:
    """The quarter's observation points and the quarter before, over the whole tree."""
    quarters = [quarter, quarter.previous()]
    ledger = beside(session, lambda other: members_points(other, _periods(quarters)))  # while the records are read
    figures, orgs = quarters_figures(session, quarters, tz=tz)  # under large_reads, as the ledger read
    points_now, points_before = (rolled_up(orgs, own, MemberPoints) for own in ledger())
    now, before = figures[quarter], figures[quarter.previous()]
    shown = sorted((o for o in orgs.values() if o.kind is not OrgKind.GROUP), key=lambda o: tree_order(o, orgs))
    rows = [Row(o.path, now[o.id], before.get(o.id, Figures()),
                points_now[o.id].per_member, points_before[o.id].per_member, o)
            for o in shown]
    branches = [o for o in shown if o.kind in BRANCH_KINDS]
    business = effective_many(session, branches, OPTION_NAMES["business"])
    by_type: dict[str, tuple[Figures, Figures, MemberPoints, MemberPoints]] = {}
    for branch in branches:
        name = business[branch.id].value or branch.kind.label
        sums = by_type.setdefault(name, (Figures(), Figures(), MemberPoints(), MemberPoints()))
        # A branch's figures already hold its groups'.
        for total, part in zip(sums, (now[branch.id], before.get(branch.id, Figures()),
                                      points_now[branch.id], points_before[branch.id]), strict=True):
            total.add(part)
    types = [Row(name, a, b, pa.per_member, pb.per_member) for name, (a, b, pa, pb) in sorted(by_type.items())]
    return Observation(quarter, rows, types)


def _rate(done: int, total: int) -> str:
    return f"{done}/{total}（{round(100 * done / total)}%）" if total else "—"


def _points(value: float | None) -> str:
    return "—" if value is None else one_decimal(value)


COLUMNS = ("党员", "确认用时中位", "确认最慢", "规定会议", "学习完成", "人均积分")


def cells(row: Row, *, before: bool) -> list[str]:
    f = row.before if before else row.now
    points = row.points_before if before else row.points_now
    return [str(f.members), minutes_text(f.median_lag), minutes_text(f.slowest_lag),
            _rate(f.meetings_held, f.meetings_required), _rate(f.study_done, f.study_total), _points(points)]


def line(row: Row, label: str | None = None) -> str:
    """`label：确认用时 中位 12分钟（上季度 —）…` — one row with the quarter before beside each figure."""
    now, before = cells(row, before=False), cells(row, before=True)
    parts = [f"{name} {a}（上季度 {b}）" for name, a, b in zip(COLUMNS[1:], now[1:], before[1:], strict=True)]
    return f"{label or row.label}：党员 {now[0]} 人；" + "；".join(parts)


def render_text(obs: Observation) -> str:
    """The whole report as text: per type, then per organisation in tree order."""
    title = f"{quarter_name(obs.quarter)}观察点（括号内为{quarter_name(obs.quarter.previous())}）"
    out = [title, "", "按组织类型（各支部合计）："]
    out += [line(r) for r in obs.types] or ["（没有支部）"]
    out += ["", "按组织（含下属组织）："]
    out += [line(r) for r in obs.organisations] or ["（没有组织）"]
    return "\n".join(out) + "\n"


def _as_text(cell, value) -> None:
    """A cell whose text begins with = + - @ stays text, never a formula (SPEC §10)."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
        if value[:1] in ("=", "+", "-", "@"):
            cell.quotePrefix = True


def render_xlsx(obs: Observation) -> bytes:
    """Two sheets (按组织, 按类型), each figure of this quarter and the quarter before side by side."""
    from openpyxl import Workbook

    book = Workbook()
    header = ["组织"]
    for name in COLUMNS:
        header += [f"{name}（{quarter_name(obs.quarter)}）", f"{name}（{quarter_name(obs.quarter.previous())}）"]
    for sheet, rows, first in ((book.active, obs.organisations, "组织"), (book.create_sheet(), obs.types, "组织类型")):
        sheet.title = "按组织" if first == "组织" else "按类型"
        for col, value in enumerate([first, *header[1:]], start=1):
            _as_text(sheet.cell(row=1, column=col), value)
        for r, row in enumerate(rows, start=2):
            values = [row.label]
            for a, b in zip(cells(row, before=False), cells(row, before=True), strict=True):
                values += [a, b]
            for col, value in enumerate(values, start=1):
                _as_text(sheet.cell(row=r, column=col), value)
        sheet.column_dimensions["A"].width = 48
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def observation_section(session: Session, recipient: Person, period: Quarter | str, *, tz: ZoneInfo = SHANGHAI,
                        report: Observation | None = None) -> str:
    """The observation points as a section of the quarterly push, for one recipient: every type of
    organisation, then a liaison's own organisations, or for the top committee's secretaries the
    organisations directly beneath the top; and the slowest branches to acknowledge.

    `report` lets the push compute the quarter once for all its recipients."""
    quarter = Quarter.parse(period) if isinstance(period, str) else period
    obs = report if report is not None and report.quarter == quarter else observation(session, quarter, tz=tz)
    lines = [f"【观察点】{quarter_name(quarter)}（括号内为上季度）", "按组织类型："]
    lines += [line(r) for r in obs.types] or ["（没有支部）"]
    by_id = {r.org.id: r for r in obs.organisations}
    liaised = sorted({lia.organisation_id for lia in recipient.liaisons})
    if liaised:
        lines.append("联系组织：")
        lines += [line(by_id[i], by_id[i].org.name) for i in liaised if i in by_id]
    led_tops = {o.id for o in recipient.led_organisations() if o.parent_id is None}
    if led_tops:
        lines.append("各下属组织：")
        lines += [line(r, r.org.name) for r in obs.organisations if r.org.parent_id in led_tops]
    slow = sorted((r for r in obs.organisations if r.org.kind in BRANCH_KINDS and r.now.slowest_lag is not None),
                  key=lambda r: -r.now.median_lag)[:SECTION_SLOWEST]
    if slow:
        lines.append("确认用时中位最长的支部：" + "；".join(
            f"{r.org.name} {minutes_text(r.now.median_lag)}" for r in slow))
    return "\n".join(lines)
