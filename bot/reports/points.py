"""Points publications (SPEC §8) as data: the month's branch table (月度公示), the quarter's report
per organisation (季度通报) and the year's summary with the candidates for 年度表彰.

A report reads the ledger and the rules its period opened with; it does not know whether a page,
the command line or the scheduler asked. Words are in bot/texts/points.py, the spreadsheet in
bot/reports/points_xlsx.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import String, case, func, literal, select, union_all
from sqlalchemy.orm import Session

from config.points_rules import Category, Rules
from models.options import effective_many
from models.org import BRANCH_KINDS, Organisation, tree_order
from models.person import Membership, MembershipKind, Person, home_memberships
from models.points import PointsEntry, Totals, period_points, rules_for, summarise, totals
from models.publication import PublicationKind
from models.self_report import ReportStatus, SelfReport


class PeriodError(ValueError):
    """A period the command line cannot read; the message is Chinese (the administrator reads it)."""


@dataclass(frozen=True)
class Period:
    kind: PublicationKind
    key: str  # 2026-11, 2026Q4, 2026
    year: int
    first_month: int
    last_month: int

    @property
    def first(self) -> str:
        return f"{self.year}-{self.first_month:02d}"

    @property
    def last(self) -> str:
        return f"{self.year}-{self.last_month:02d}"

    @property
    def months(self) -> int:
        return self.last_month - self.first_month + 1

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC."""
        start = datetime.combine(date(self.year, self.first_month, 1), time(), tz)
        end_year, end_month = (self.year + 1, 1) if self.last_month == 12 else (self.year, self.last_month + 1)
        return start, datetime.combine(date(end_year, end_month, 1), time(), tz)


_PATTERNS = {
    PublicationKind.MONTHLY: (re.compile(r"^(\d{4})-(\d{1,2})$"), "2026-11"),
    PublicationKind.QUARTERLY: (re.compile(r"^(\d{4})[Qq]([1-4])$"), "2026Q4"),
    PublicationKind.YEARLY: (re.compile(r"^(\d{4})$"), "2026"),
}


def make_period(kind: PublicationKind, year: int, n: int = 1) -> Period:
    if kind is PublicationKind.MONTHLY:
        return Period(kind, f"{year}-{n:02d}", year, n, n)
    if kind is PublicationKind.QUARTERLY:
        return Period(kind, f"{year}Q{n}", year, 3 * n - 2, 3 * n)
    return Period(kind, str(year), year, 1, 12)


def parse_period(kind: PublicationKind, text: str) -> Period:
    pattern, example = _PATTERNS[kind]
    found = pattern.match(text.strip())
    if found is None:
        raise PeriodError(f"期间「{text}」看不懂，应写成 {example} 这样")
    year, n = int(found.group(1)), int(found.group(2)) if kind is not PublicationKind.YEARLY else 1
    if kind is PublicationKind.MONTHLY and not 1 <= n <= 12:
        raise PeriodError(f"期间「{text}」的月份应在 1 到 12 之间")
    return make_period(kind, year, n)


def last_complete(kind: PublicationKind, now: datetime, tz: ZoneInfo) -> Period:
    """The last period of `kind` that has ended by `now`."""
    local = now.astimezone(tz)
    if kind is PublicationKind.MONTHLY:
        year, month = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
        return make_period(kind, year, month)
    if kind is PublicationKind.QUARTERLY:
        quarter = (local.month - 1) // 3
        return make_period(kind, local.year - 1, 4) if quarter == 0 else make_period(kind, local.year, quarter)
    return make_period(kind, local.year - 1)


def summarise_period(session: Session, period: Period, now: datetime) -> None:
    """Write the month totals of the period's months that are over (each once)."""
    for month in range(period.first_month, period.last_month + 1):
        summarise(session, f"{period.year}-{month:02d}", at=now)


def period_rules(session: Session, period: Period) -> Rules:
    """The rules the period's last month opened with (stars and thresholds come from there)."""
    return rules_for(session, period.last)


def stars_for(rules: Rules, total: int, period: Period) -> int:
    """Stars on a period's total: the month's thresholds for a month, scaled by the months of a
    quarter, the year's thresholds for a year."""
    if period.kind is PublicationKind.YEARLY:
        return rules.stars(total, year=True)
    return sum(1 for t in rules.month_stars if total >= t * period.months)


# -- 月度公示 -------------------------------------------------------------------------------------

@dataclass
class MemberLine:
    person: Person
    totals: Totals
    stars: int


@dataclass
class BranchTable:
    branch: Organisation
    period: Period
    lines: list[MemberLine]
    ranked: bool


def branch_members(session: Session, branch: Organisation) -> list[Person]:
    """The branch's members who have not left, in roster order (the order they were imported)."""
    return list(session.scalars(
        select(Person).join(Membership, Membership.person_id == Person.id)
        .where(Membership.organisation_id == branch.id, Membership.kind == MembershipKind.HOME,
               Person.left_on.is_(None))
        .order_by(Membership.id)))


def branches_under(session: Session, org: Organisation | None) -> list[Organisation]:
    """The branches at or beneath `org` (or in the whole tree), in tree order: as the roster draws
    it, not by the characters' code points."""
    stmt = select(Organisation).where(Organisation.kind.in_(BRANCH_KINDS))
    if org is not None:
        stmt = stmt.where((Organisation.id == org.id) | Organisation.path.startswith(org.path + "/", autoescape=True))
    return sorted(session.scalars(stmt), key=tree_order)


def branch_tables(session: Session, branches: list[Organisation], period: Period) -> list[BranchTable]:
    """Each branch's members with their points by category and stars over the period; ordered
    by points only where the organisation turned `ranking` on, else in roster order."""
    rules = period_rules(session, period)
    ranking = effective_many(session, branches, "ranking")
    tables = []
    for branch in branches:
        members = branch_members(session, branch)
        found = totals(session, [p.id for p in members], period.first, period.last)
        lines = [MemberLine(p, found.get(p.id, Totals()), 0) for p in members]
        for line in lines:
            line.stars = stars_for(rules, line.totals.total, period)
        option = ranking.get(branch.id)
        ranked = bool(option.value) if option is not None else False
        if ranked:
            lines.sort(key=lambda x: -x.totals.total)  # stable: ties keep roster order
        tables.append(BranchTable(branch, period, lines, ranked))
    return tables


# -- 季度通报 and the yearly summary -------------------------------------------------------------

@dataclass
class OrgFigures:
    organisation: Organisation
    members: int = 0
    points: int = 0
    with_stars: int = 0
    verified_reports: int = 0
    by_category: dict[Category, int] = field(default_factory=lambda: {c: 0 for c in Category})

    @property
    def average(self) -> float:
        return self.points / self.members if self.members else 0.0

    @property
    def star_share(self) -> float:
        return self.with_stars / self.members if self.members else 0.0


@dataclass
class MemberPoints:
    """Members and their points in a period, over an organisation or several added up."""

    members: int = 0
    points: int = 0

    def add(self, other: MemberPoints) -> None:
        self.members += other.members
        self.points += other.points

    @property
    def per_member(self) -> float | None:
        """Points per member; None where there is nobody to divide by."""
        return self.points / self.members if self.members else None


def members_points(session: Session, periods: list[Period]) -> list[dict[int, MemberPoints]]:
    """For each of `periods`, per organisation holding home memberships (a branch or a group), its
    own members (not its subtree's) and their points, for the whole tree, the ledger read in one
    statement (one join of its rows to the memberships, summed per period and organisation). The
    same members (`home_memberships`: where they are now, not transferred out) and the same points
    (`period_points`) as the 季度通报's average (`organisation_figures`), summed per organisation
    straight from the ledger rows: no grouping per person, which only the stars need."""
    if not periods:
        return []
    # A subquery, not a CTE: inlined, the planner hashes the 100,000 memberships, not the ledger rows.
    home = home_memberships().subquery("home")
    source = period_points(session, min(p.first for p in periods), max(p.last for p in periods),
                           with_month=True).subquery("source")
    members = {org_id: n for org_id, n in session.execute(
        select(home.c.organisation_id, func.count()).group_by(home.c.organisation_id))}
    found = [{org_id: MemberPoints(n) for org_id, n in members.items()} for _ in periods]
    # Summed per month and organisation (a few rows per organisation), each month then added to its period.
    for month, org_id, total in session.execute(
            select(source.c.period, home.c.organisation_id, func.sum(source.c.points))
            .select_from(source).join(home, home.c.person_id == source.c.person_id)
            .group_by(source.c.period, home.c.organisation_id)):
        for i, p in enumerate(periods):
            if p.first <= month <= p.last:  # a month between two periods is in neither
                found[i][org_id].points += int(total)
    return found


def organisation_figures(session: Session, top: Organisation | None, period: Period, tz: ZoneInfo) -> list[OrgFigures]:
    """Per organisation at or beneath `top` (every one with members beneath it), in tree order:
    members, average points, share with stars, self-reports verified. One GROUP BY over the
    period's entries per person, joined to home memberships and summed per branch in the
    database; the tree above the branches is added up here."""
    rules = period_rules(session, period)
    threshold = (rules.year_stars[0] if period.kind is PublicationKind.YEARLY and rules.year_stars
                 else rules.month_stars[0] * period.months if rules.month_stars else None)
    # One statement, one pass over the period's month totals (entries for a month not summarised): per person and category (a CTE both
    # halves read), then per branch the members, points and stars, and per branch and category.
    home = home_memberships().cte("home")
    source = period_points(session, period.first, period.last).subquery("source")
    per_person = (select(source.c.person_id, source.c.category, func.sum(source.c.points).label("points"))
                  .group_by(source.c.person_id, source.c.category).cte("per_person"))
    person_total = (select(per_person.c.person_id, func.sum(per_person.c.points).label("total"))
                    .group_by(per_person.c.person_id).cte("person_total"))
    starred = case((person_total.c.total >= threshold, 1), else_=0) if threshold is not None else literal(0)
    by_branch = (select(home.c.organisation_id, literal(None, String).label("category"), func.count().label("n"),
                        func.coalesce(func.sum(person_total.c.total), 0).label("points"),
                        func.coalesce(func.sum(starred), 0).label("starred"))
                 .select_from(home).outerjoin(person_total, person_total.c.person_id == home.c.person_id)
                 .group_by(home.c.organisation_id))
    by_category = (select(home.c.organisation_id, per_person.c.category, literal(0).label("n"),
                          func.sum(per_person.c.points).label("points"), literal(0).label("starred"))
                   .select_from(home).join(per_person, per_person.c.person_id == home.c.person_id)
                   .group_by(home.c.organisation_id, per_person.c.category))
    rows = session.execute(union_all(by_branch, by_category)).all()
    branch_rows = [(o, n, p, st) for o, c, n, p, st in rows if c is None]
    category_rows = [(o, c, p) for o, c, _n, p, _st in rows if c is not None]
    start, end = period.bounds(tz)
    report_rows = session.execute(
        select(SelfReport.branch_id, func.count()).where(
            SelfReport.status == ReportStatus.VERIFIED, SelfReport.decided_at >= start, SelfReport.decided_at < end)
        .group_by(SelfReport.branch_id)).all()

    orgs = {o.id: o for o in session.scalars(select(Organisation))}
    figures: dict[int, OrgFigures] = {}

    chains: dict[int, list[OrgFigures]] = {}

    def chain(org_id: int) -> list[OrgFigures]:
        """The figures of the organisation and of every ancestor within `top` (built once per branch)."""
        if org_id not in chains:
            found, org = [], orgs.get(org_id)
            while org is not None:
                if top is None or org.id == top.id or org.is_within(top):
                    if org.id not in figures:
                        figures[org.id] = OrgFigures(org)
                    found.append(figures[org.id])
                org = orgs.get(org.parent_id) if org.parent_id else None
            chains[org_id] = found
        return chains[org_id]

    for org_id, members, points, with_stars in branch_rows:
        for f in chain(org_id):
            f.members += members
            f.points += int(points)
            f.with_stars += int(with_stars)
    for org_id, category, points in category_rows:
        for f in chain(org_id):
            f.by_category[Category(category)] += int(points or 0)
    for org_id, count in report_rows:
        for f in chain(org_id):
            f.verified_reports += count
    return sorted((f for f in figures.values() if f.members), key=lambda f: tree_order(f.organisation, orgs))


@dataclass
class Candidate:
    person: Person
    branch: Organisation | None
    total: int


def commendation_candidates(session: Session, top: Organisation | None, period: Period) -> list[Candidate]:
    """Members whose year total reaches the rules' 年度表彰 threshold, best first, then by name."""
    rules = period_rules(session, period)
    entry = PointsEntry.__table__
    total = func.sum(entry.c.points)
    rows = session.execute(
        select(entry.c.person_id, total).where(entry.c.period >= period.first, entry.c.period <= period.last)
        .group_by(entry.c.person_id).having(total >= max(rules.commendation, 1))).all()
    people = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_([r[0] for r in rows])))}
    found = []
    for person_id, points in rows:
        person = people[person_id]
        branch = person.home_branch()
        if person.has_left or (top is not None and (branch is None or not (branch.id == top.id or branch.is_within(top)))):
            continue
        found.append(Candidate(person, branch, int(points)))
    return sorted(found, key=lambda c: (-c.total, c.branch.path if c.branch else "", c.person.name))
