"""A quarter's figures per organisation, from the records: the ground of the observation points
(SPEC §11) and of the portrait's 发挥作用.

Everything is counted per branch with a few grouped queries and then added up the tree by path,
so the whole committee (100,000 members) costs the same handful of queries as one branch:
- acknowledgement lag: for task deliveries of directives issued in the quarter, the minutes from
  issue to 收到, as a histogram per branch (median and slowest come from the merged histogram, to
  the minute);
- acknowledgement in time: acknowledged without being late, out of every task delivery;
- required meetings: per branch, each month's 支委会 and 主题党日 (and 党小组会 where it has groups)
  and the quarter's 支部党员大会 and 党课; held when a meeting of that type closed in that period;
- study completion: study deliveries of items assigned in the quarter, confirmed out of all;
- members: home memberships of people not transferred out (`models.person.home_memberships`, as the
  季度通报 counts them).
A branch founded after the quarter ended is owed no meetings in it.
Leavers' deliveries are left out as in 进度 and 概况."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, case, cast, func, select, text
from sqlalchemy.orm import Session

from models.directive import Delivery, DeliveryRole, Directive, DirectiveKind, UnreachableReason
from models.leaving import counted_delivery
from models.meeting import Meeting, MeetingStatus, MeetingType, Period
from models.org import BRANCH_KINDS, Organisation, OrgKind
from models.person import home_memberships

_QUARTER = re.compile(r"(\d{4})\s*[Qq]([1-4])")


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int  # 1–4

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """`2026Q4` → Quarter(2026, 4); ValueError for anything else."""
        found = _QUARTER.fullmatch(text.strip())
        if found is None:
            raise ValueError(text)
        return cls(int(found[1]), int(found[2]))

    @classmethod
    def containing(cls, at: datetime, tz: ZoneInfo) -> Quarter:
        local = at.astimezone(tz)
        return cls(local.year, (local.month - 1) // 3 + 1)

    @classmethod
    def last_complete(cls, now: datetime, tz: ZoneInfo) -> Quarter:
        return cls.containing(now, tz).previous()

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)

    @property
    def key(self) -> str:
        return f"{self.year}Q{self.number}"

    def months(self) -> list[tuple[int, int]]:
        first = 3 * (self.number - 1) + 1
        return [(self.year, m) for m in range(first, first + 3)]

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) as aware UTC."""
        first = 3 * (self.number - 1) + 1
        start = datetime(self.year, first, 1, tzinfo=tz)
        end = datetime(self.year + 1, 1, 1, tzinfo=tz) if self.number == 4 else datetime(self.year, first + 3, 1, tzinfo=tz)
        return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class Lag:
    """Acknowledgements counted, and the median and slowest whole minutes from issue to 收到."""

    count: int
    median: int | None
    slowest: int | None


@dataclass
class Figures:
    """One organisation's quarter, its subtree added up."""

    members: int = 0
    # Whole minutes from issue to 收到 → deliveries (added up the tree), unless `lag` was measured in SQL.
    lag_minutes: dict[int, int] = field(default_factory=dict)
    lag: Lag | None = None
    tasks: int = 0  # task deliveries of directives issued in the quarter
    in_time: int = 0  # of those, acknowledged and not late
    meetings_required: int = 0
    meetings_held: int = 0
    study_total: int = 0
    study_done: int = 0
    branches: int = 0

    def lag_stats(self) -> Lag:
        if self.lag is not None:
            return self.lag
        count = sum(self.lag_minutes.values())
        if not count:
            return Lag(0, None, None)
        middle, seen, median = (count + 1) // 2, 0, None  # the lower middle, as percentile_disc(0.5)
        for minutes in sorted(self.lag_minutes):
            seen += self.lag_minutes[minutes]
            if seen >= middle:
                median = minutes
                break
        return Lag(count, median, max(self.lag_minutes))

    @property
    def acknowledged(self) -> int:
        return self.lag_stats().count

    @property
    def median_lag(self) -> int | None:
        return self.lag_stats().median

    @property
    def slowest_lag(self) -> int | None:
        return self.lag_stats().slowest

    def add(self, other: Figures) -> None:
        self.members += other.members
        for minutes, n in other.lag_minutes.items():
            self.lag_minutes[minutes] = self.lag_minutes.get(minutes, 0) + n
        self.tasks += other.tasks
        self.in_time += other.in_time
        self.meetings_required += other.meetings_required
        self.meetings_held += other.meetings_held
        self.study_total += other.study_total
        self.study_done += other.study_done
        self.branches += other.branches


# PostgreSQL: the median and slowest lag of every organisation over its subtree. The lags are
# read once (a materialised CTE); each level of the tree is one join of them to (organisation,
# its ancestor at that level) pairs passed in as two arrays, and one sort per level for
# percentile_disc: a few sorts of the quarter's acknowledgements instead of one large one.
_PG_LAGS = """
WITH lag AS MATERIALIZED (
  SELECT d.organisation_id, GREATEST(0, floor(extract(epoch FROM d.acknowledged_at - r.created_at) / 60))::int AS m
  FROM delivery d JOIN directive r ON r.id = d.directive_id
  WHERE r.kind = 'directive' AND r.created_at >= :start AND r.created_at < :end AND d.role = 'task'
    AND d.acknowledged_at IS NOT NULL AND (d.reason IS NULL OR d.reason != :left)
)
"""
_PG_LEVEL = """
SELECT a.anc_id, count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY lag.m), max(lag.m)
FROM lag JOIN unnest(CAST(:o{k} AS int[]), CAST(:a{k} AS int[])) AS a(org_id, anc_id) ON a.org_id = lag.organisation_id
GROUP BY a.anc_id
"""


def _pg_lags(session: Session, orgs: dict[int, Organisation], start: datetime, end: datetime) -> dict[int, Lag]:
    by_path = {o.path: o.id for o in orgs.values()}
    levels: dict[int, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for org in orgs.values():
        parts = org.path.split("/")
        for depth in range(1, len(parts) + 1):
            ancestor = by_path.get("/".join(parts[:depth]))
            if ancestor is not None:
                levels[depth][0].append(org.id)
                levels[depth][1].append(ancestor)
    if not levels:
        return {}
    params: dict = {"start": start, "end": end, "left": UnreachableReason.LEFT.value}
    selects = []
    for k, (left, right) in enumerate(levels.values()):
        params[f"o{k}"], params[f"a{k}"] = left, right
        selects.append(_PG_LEVEL.format(k=k))
    rows = session.execute(text(_PG_LAGS + " UNION ALL ".join(selects)), params)
    return {org_id: Lag(count, int(median), int(slowest)) for org_id, count, median, slowest in rows}


def _lag_minutes(session: Session):
    """Whole minutes from a directive's issue to a delivery's acknowledgement, in SQL."""
    if session.get_bind().dialect.name == "sqlite":
        # Julian days are floats: round to the second before whole minutes are taken.
        seconds = cast(func.round((func.julianday(Delivery.acknowledged_at) - func.julianday(Directive.created_at))
                                  * 86400), Integer)
        return cast(seconds / 60, Integer)
    return func.floor(func.extract("epoch", Delivery.acknowledged_at - Directive.created_at) / 60)


def _in_scope(within: Organisation | None):
    if within is None:
        return True
    return (Organisation.id == within.id) | Organisation.path.startswith(within.path + "/", autoescape=True)


def quarter_figures(session: Session, quarter: Quarter, *, tz: ZoneInfo, within: Organisation | None = None,
                    lags: bool = True) -> tuple[dict[int, Figures], dict[int, Organisation]]:
    """Figures per organisation (its subtree added up) for `quarter`, over the whole tree or the
    subtree of `within`; with the organisations by id. `lags=False` leaves the acknowledgement
    lag out (the portrait needs only the rates)."""
    start, end = quarter.bounds(tz)
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(_in_scope(within)))}
    own: dict[int, Figures] = defaultdict(Figures)

    home = home_memberships().subquery("home")
    for org_id, n in session.execute(
            select(home.c.organisation_id, func.count()).join(Organisation, Organisation.id == home.c.organisation_id)
            .where(_in_scope(within)).group_by(home.c.organisation_id)):
        own[org_id].members = n

    in_quarter = (Directive.created_at >= start, Directive.created_at < end)
    task = (Delivery.role == DeliveryRole.TASK, counted_delivery())
    scoped = (Organisation.id == Delivery.organisation_id)
    postgres = session.get_bind().dialect.name == "postgresql"
    if lags and not postgres:  # a histogram per branch, added up the tree below
        minutes = _lag_minutes(session).label("minutes")
        for org_id, m, n in session.execute(
                select(Delivery.organisation_id, minutes, func.count())
                .join(Directive, Directive.id == Delivery.directive_id).join(Organisation, scoped)
                .where(Directive.kind == DirectiveKind.DIRECTIVE, *in_quarter, *task,
                       Delivery.acknowledged_at.is_not(None), _in_scope(within))
                .group_by(Delivery.organisation_id, minutes)):
            own[org_id].lag_minutes[max(0, int(m))] = n
    on_time = case((Delivery.acknowledged_at.is_not(None) & ~Delivery.late, 1), else_=0)
    for org_id, total, kept in session.execute(
            select(Delivery.organisation_id, func.count(), func.sum(on_time))
            .join(Directive, Directive.id == Delivery.directive_id).join(Organisation, scoped)
            .where(Directive.kind == DirectiveKind.DIRECTIVE, *in_quarter, *task, _in_scope(within))
            .group_by(Delivery.organisation_id)):
        own[org_id].tasks, own[org_id].in_time = total, int(kept or 0)
    for org_id, total, done in session.execute(
            select(Delivery.organisation_id, func.count(), func.count(Delivery.completed_at))
            .join(Directive, Directive.id == Delivery.directive_id).join(Organisation, scoped)
            .where(Directive.kind == DirectiveKind.STUDY, *in_quarter, *task, _in_scope(within))
            .group_by(Delivery.organisation_id)):
        own[org_id].study_total, own[org_id].study_done = total, done

    _required_meetings(session, quarter, tz, orgs, own, start, end, within)
    total = rolled_up(orgs, own, Figures)
    if lags and postgres:
        for org_id, lag in _pg_lags(session, orgs, start, end).items():
            total[org_id].lag = lag
    return total, orgs


def _required_meetings(session: Session, quarter: Quarter, tz: ZoneInfo, orgs: dict[int, Organisation],
                       own: dict[int, Figures], start: datetime, end: datetime, within: Organisation | None) -> None:
    with_groups = {o.parent_id for o in orgs.values() if o.kind is OrgKind.GROUP}
    monthly = [t for t in MeetingType if t.period is Period.MONTH]
    quarterly = [t for t in MeetingType if t.period is Period.QUARTER]
    held: dict[int, set] = defaultdict(set)
    # The quarter's months as UTC starts, so each meeting's local month is one bisection.
    month_starts = [datetime(y, m, 1, tzinfo=tz).astimezone(UTC) for y, m in quarter.months()]
    month_of = [m for _, m in quarter.months()]
    for org_id, meeting_type, starts_at in session.execute(
            select(Meeting.organisation_id, Meeting.type, Meeting.starts_at)
            .join(Organisation, Organisation.id == Meeting.organisation_id)
            .where(Meeting.status == MeetingStatus.CLOSED, Meeting.starts_at >= start, Meeting.starts_at < end,
                   _in_scope(within))):
        month = month_of[bisect_right(month_starts, starts_at) - 1]
        held[org_id].add((meeting_type, month) if meeting_type.period is Period.MONTH else (meeting_type, 0))
    for org in orgs.values():
        if org.kind not in BRANCH_KINDS or org.created_at >= end:
            continue  # a branch founded after the quarter owed nothing in it
        wanted = [(t, month) for t in monthly if t is not MeetingType.GROUP or org.id in with_groups
                  for _, month in quarter.months()] + [(t, 0) for t in quarterly]
        figures = own[org.id]
        figures.branches = 1
        figures.meetings_required = len(wanted)
        figures.meetings_held = sum(1 for w in wanted if w in held[org.id])


T = TypeVar("T", bound="Addable")


class Addable(Protocol):
    def add(self, other: Any, /) -> None: ...


def rolled_up(orgs: dict[int, Organisation], own: dict[int, T], make: Callable[[], T]) -> dict[int, T]:
    """Every organisation of `orgs` with what its subtree holds: `own` (per organisation, its own
    part) added into each ancestor by path; `make` gives an empty one."""
    by_path = {o.path: o.id for o in orgs.values()}
    total: dict[int, T] = {oid: make() for oid in orgs}
    for org_id, figures in own.items():
        org = orgs.get(org_id)
        if org is None:
            continue
        parts = org.path.split("/")
        for depth in range(len(parts), 0, -1):
            ancestor = by_path.get("/".join(parts[:depth]))
            if ancestor is not None:
                total[ancestor].add(figures)
    return total

