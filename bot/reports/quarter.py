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
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, case, cast, func, or_, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from models.directive import Delivery, DeliveryRole, Directive, DirectiveKind, UnreachableReason
from models.leaving import counted_delivery
from models.meeting import Meeting, MeetingStatus, MeetingType, Period, watched_in
from models.org import BRANCH_KINDS, Organisation, OrgKind
from models.person import home_memberships

R = TypeVar("R")  # what a read run `beside` the session returns

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


# PostgreSQL: the median and slowest lag of every organisation over its subtree, for several
# quarters in one statement. Each organisation is passed in (two or more arrays, unnested) with its
# ancestor at each depth of the tree (itself at its own depth); the quarters' acknowledgements are
# read once, joined to that row and sorted once by (quarter, ancestors from the top), and one pass
# of grouping sets, each a prefix of the next (a rollup), gives every level's percentile_disc.
_PG_LAGS = """
WITH lag AS (
  SELECT {which} AS q, d.organisation_id,
         GREATEST(0, floor(extract(epoch FROM d.acknowledged_at - r.created_at) / 60))::int AS m
  FROM delivery d JOIN directive r ON r.id = d.directive_id
  WHERE r.kind = 'directive' AND ({spans}) AND d.role = 'task'
    AND d.acknowledged_at IS NOT NULL AND (d.reason IS NULL OR d.reason != :left)
)
SELECT q, GROUPING({levels}), {levels}, count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY m), max(m)
FROM lag JOIN unnest(CAST(:ids AS int[]), {arrays}) AS a(org_id, {levels}) ON a.org_id = lag.organisation_id
GROUP BY GROUPING SETS ({sets})
"""
# The lag statement's one sort holds both quarters' acknowledgements (about a million rows for
# 100,000 members): with the default 4 MB it spills to disk. And the statements reading a quarter's
# deliveries and ledger are costed past the threshold where PostgreSQL compiles them (JIT; the lag
# statement's join cannot be estimated, arrays passed in, which inflates its cost most): some 0.2 to
# 0.6 s of compiling each, for statements that run in one or two seconds.
LARGE_READS = {"work_mem": "128MB", "jit": "off"}



def beside(session: Session, work: Callable[[Session], R]) -> Callable[[], R]:
    """`work` started on a PostgreSQL connection of its own (in its own transaction, under
    `large_reads`), so that the database works on it while `session` reads something else: a
    report's largest reads on the machine's cores at once. Returns what waits for the result.
    Where that cannot be (SQLite; a session bound to one connection) `work` runs on `session`,
    under `large_reads` too, when the result is asked for. The other connection sees what is
    committed: what `session` wrote in its open transaction is not there, so `work` must not
    depend on it."""
    bind = session.get_bind()
    if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        def here() -> R:
            with large_reads(session):
                return work(session)
        return here

    def run() -> R:
        with Session(bind) as own, own.begin(), large_reads(own):
            return work(own)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-read")
    try:
        return pool.submit(run).result
    finally:
        pool.shutdown(wait=False)

@contextmanager
def large_reads(session: Session) -> Iterator[None]:
    """PostgreSQL settings (`LARGE_READS`) for the report statements run inside, as they were
    afterwards. In a transaction they are local to it (rolled back with it on an error); on an
    autocommit connection, set for the connection and restored. Nothing on other databases."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    autocommit = session.connection().get_isolation_level() == "AUTOCOMMIT"
    names = sorted(LARGE_READS)
    old = session.execute(text("SELECT " + ", ".join(f"current_setting('{n}')" for n in names))).one()

    def apply(values: dict[str, str]) -> None:
        session.execute(text("SELECT " + ", ".join(f"set_config('{n}', :{n}, :local)" for n in names)),
                        {**values, "local": not autocommit})

    apply(LARGE_READS)
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        if autocommit or not failed:
            apply(dict(zip(names, old, strict=True)))


def _spans(quarters: list[Quarter], tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    return [q.bounds(tz) for q in quarters]


def _pg_lags(session: Session, orgs: dict[int, Organisation], spans: list[tuple[datetime, datetime]]
             ) -> dict[tuple[int, int], Lag]:
    """(index of the span, organisation) → its subtree's lag, over every organisation of `orgs`."""
    by_path = {o.path: o.id for o in orgs.values()}
    depth = max((o.path.count("/") + 1 for o in orgs.values()), default=0)
    if not depth or not spans:
        return {}
    ids: list[int] = []
    columns: list[list[int | None]] = [[] for _ in range(depth)]
    for org in orgs.values():
        parts = org.path.split("/")
        ids.append(org.id)
        for k, column in enumerate(columns):
            column.append(by_path.get("/".join(parts[:k + 1])) if k < len(parts) else None)
    params: dict = {"ids": ids, "left": UnreachableReason.LEFT.value}
    for k, column in enumerate(columns):
        params[f"d{k}"] = column
    which, spans_sql = [], []
    for i, (start, end) in enumerate(spans):
        params[f"s{i}"], params[f"e{i}"] = start, end
        which.append(f"WHEN r.created_at >= :s{i} AND r.created_at < :e{i} THEN {i}")
        spans_sql.append(f"(r.created_at >= :s{i} AND r.created_at < :e{i})")
    levels = [f"d{k}" for k in range(depth)]
    statement = _PG_LAGS.format(
        which="CASE " + " ".join(which) + " END", spans=" OR ".join(spans_sql), levels=", ".join(levels),
        arrays=", ".join(f"CAST(:{level} AS int[])" for level in levels),
        sets=", ".join("(q, " + ", ".join(levels[:k + 1]) + ")" for k in range(depth)))
    found: dict[tuple[int, int], Lag] = {}
    for q, grouping, *rest in session.execute(text(statement), params):
        ancestors, (count, median, slowest) = rest[:depth], rest[depth:]
        level = depth - bin(grouping).count("1")  # the columns grouped by: d0 … d(level - 1)
        org_id = ancestors[level - 1]
        if org_id is not None:  # the group of rows with no ancestor in scope at that depth
            found[q, org_id] = Lag(count, int(median), int(slowest))
    return found


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


def _which(spans: list[tuple[datetime, datetime]]):
    """The index of the span a directive was issued in, and the condition that it is in one."""
    ranges = [(Directive.created_at >= start) & (Directive.created_at < end) for start, end in spans]
    return case(*((r, i) for i, r in enumerate(ranges))), or_(*ranges)


def quarter_figures(session: Session, quarter: Quarter, *, tz: ZoneInfo, within: Organisation | None = None,
                    lags: bool = True) -> tuple[dict[int, Figures], dict[int, Organisation]]:
    """Figures per organisation (its subtree added up) for `quarter`, over the whole tree or the
    subtree of `within`; with the organisations by id. `lags=False` leaves the acknowledgement
    lag out (the portrait needs only the rates)."""
    figures, orgs = quarters_figures(session, [quarter], tz=tz, within=within, lags=lags)
    return figures[quarter], orgs


def quarters_figures(session: Session, quarters: list[Quarter], *, tz: ZoneInfo, within: Organisation | None = None,
                     lags: bool = True) -> tuple[dict[Quarter, dict[int, Figures]], dict[int, Organisation]]:
    """`quarter_figures` for several quarters at once: each source (deliveries, meetings, lags) is
    read once for all of them."""
    with large_reads(session):
        return _quarters_figures(session, quarters, tz=tz, within=within, lags=lags)


def _quarters_figures(session: Session, quarters: list[Quarter], *, tz: ZoneInfo, within: Organisation | None,
                      lags: bool) -> tuple[dict[Quarter, dict[int, Figures]], dict[int, Organisation]]:
    spans = _spans(quarters, tz)
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(_in_scope(within)))}
    own: list[dict[int, Figures]] = [defaultdict(Figures) for _ in quarters]
    postgres = session.get_bind().dialect.name == "postgresql"
    if lags and postgres:  # the largest read, beside the others (plain copies: no ORM object crosses threads)
        tree = {o.id: SimpleNamespace(id=o.id, path=o.path) for o in orgs.values()}
        lag_result = beside(session, lambda other: _pg_lags(other, tree, spans))

    home = home_memberships().subquery("home")
    for org_id, n in session.execute(
            select(home.c.organisation_id, func.count()).join(Organisation, Organisation.id == home.c.organisation_id)
            .where(_in_scope(within)).group_by(home.c.organisation_id)):
        for figures in own:  # members are counted where they are now, the same in every quarter
            figures[org_id].members = n

    which, in_spans = _which(spans)
    task = (Delivery.role == DeliveryRole.TASK, counted_delivery())
    scoped = (Organisation.id == Delivery.organisation_id)
    if lags and not postgres:  # a histogram per branch, added up the tree below
        minutes = _lag_minutes(session).label("minutes")
        for q, org_id, m, n in session.execute(
                select(which, Delivery.organisation_id, minutes, func.count())
                .join(Directive, Directive.id == Delivery.directive_id).join(Organisation, scoped)
                .where(Directive.kind == DirectiveKind.DIRECTIVE, in_spans, *task,
                       Delivery.acknowledged_at.is_not(None), _in_scope(within))
                .group_by(which, Delivery.organisation_id, minutes)):
            own[q][org_id].lag_minutes[max(0, int(m))] = n
    # One pass over the quarters' task deliveries, directives (in time) and study items (confirmed)
    # alike: grouped per directive and organisation (integer keys), then per quarter and kind.
    on_time = case((Delivery.acknowledged_at.is_not(None) & ~Delivery.late, 1), else_=0)
    issued = select(Directive.id).where(Directive.kind.in_([DirectiveKind.DIRECTIVE, DirectiveKind.STUDY]), in_spans)
    per_directive = select(Delivery.directive_id, Delivery.organisation_id, func.count().label("n"),
                           func.sum(on_time).label("kept"), func.count(Delivery.completed_at).label("done")
                           ).where(Delivery.directive_id.in_(issued), *task)
    if within is not None:
        per_directive = per_directive.join(Organisation, scoped).where(_in_scope(within))
    per_directive = per_directive.group_by(Delivery.directive_id, Delivery.organisation_id).subquery("per_directive")
    for q, org_id, kind, total, kept, done in session.execute(
            select(which, per_directive.c.organisation_id, Directive.kind, func.sum(per_directive.c.n),
                   func.sum(per_directive.c.kept), func.sum(per_directive.c.done))
            .join(Directive, Directive.id == per_directive.c.directive_id)
            .group_by(which, per_directive.c.organisation_id, Directive.kind)):
        figures = own[q][org_id]
        if kind is DirectiveKind.DIRECTIVE:
            figures.tasks, figures.in_time = int(total), int(kept or 0)
        else:
            figures.study_total, figures.study_done = int(total), int(done)

    _required_meetings(session, quarters, tz, orgs, own, spans, within)
    totals = {q: rolled_up(orgs, own[i], Figures) for i, q in enumerate(quarters)}
    if lags and postgres:
        for (i, org_id), lag in lag_result().items():
            totals[quarters[i]][org_id].lag = lag
    return totals, orgs


def _required_meetings(session: Session, quarters: list[Quarter], tz: ZoneInfo, orgs: dict[int, Organisation],
                       own: list[dict[int, Figures]], spans: list[tuple[datetime, datetime]],
                       within: Organisation | None) -> None:
    """Per branch and quarter, the required meetings and how many of them were held, counted in
    SQL: the closed meetings grouped into their slots (type and local month, or type and quarter),
    then the slots counted per branch, 党小组会 apart (owed only where the branch has groups)."""
    with_groups = {o.parent_id for o in orgs.values() if o.kind is OrgKind.GROUP}
    monthly = [t for t in MeetingType if t.period is Period.MONTH]
    quarterly = [t for t in MeetingType if t.period is Period.QUARTER]
    meeting = Meeting.__table__.c
    # Each quarter's months as UTC spans: 3 × the quarter's index + the month's place in it.
    months = []
    for quarter in quarters:
        for y, m in quarter.months():
            months.append(datetime(y, m, 1, tzinfo=tz).astimezone(UTC))
        months.append(None)  # the quarter's end closes its last month
    month_spans = [(i // 4, i % 4, start, months[i + 1] or spans[i // 4][1])
                   for i, start in enumerate(months) if start is not None]
    which = case(*(((meeting.starts_at >= start) & (meeting.starts_at < end), q) for q, _, start, end in month_spans))
    month = case(*(((meeting.starts_at >= start) & (meeting.starts_at < end), 3 * q + k)
                   for q, k, start, end in month_spans))
    slot = case((meeting.type.in_(monthly), month), else_=-1).label("slot")
    in_spans = or_(*((meeting.starts_at >= start) & (meeting.starts_at < end) for start, end in spans))
    slots = (select(which.label("q"), meeting.organisation_id, meeting.type, slot)
             .where(meeting.status == MeetingStatus.CLOSED, meeting.type.in_(monthly + quarterly), in_spans))
    if within is not None:
        slots = slots.join(Organisation, Organisation.id == meeting.organisation_id).where(_in_scope(within))
    slots = slots.group_by(which, meeting.organisation_id, meeting.type, slot).subquery("slots")
    is_group = (slots.c.type == MeetingType.GROUP)
    # Per quarter, branch, 党小组会 or not, and slot (the month's index, -1 for the quarter): the types held.
    held: dict[tuple[int, int], list[tuple[bool, int, int]]] = defaultdict(list)
    for q, org_id, group, slot_, n in session.execute(
            select(slots.c.q, slots.c.organisation_id, is_group, slots.c.slot, func.count())
            .group_by(slots.c.q, slots.c.organisation_id, is_group, slots.c.slot)):
        held[q, org_id].append((bool(group), slot_, n))
    month_starts = {(q, k): start for q, k, start, _end in month_spans}
    branches = [o for o in orgs.values() if o.kind in BRANCH_KINDS]
    for i, (start, _end) in enumerate(spans):
        for org in branches:
            # Only the periods that began once the branch was in the bot count (as the watch counts:
            # models.meeting.watched_in): a branch that came in during a month owes from the next.
            months = {3 * i + k for k in range(3) if watched_in(org, month_starts[i, k])}
            whole = watched_in(org, start)
            if not months and not whole:
                continue
            groups = org.id in with_groups
            figures = own[i][org.id]
            figures.branches = 1
            per_month = sum(1 for t in monthly if t is not MeetingType.GROUP or groups)
            figures.meetings_required = len(months) * per_month + (len(quarterly) if whole else 0)
            figures.meetings_held = sum(n for group, slot_, n in held.get((i, org.id), ())
                                        if (groups or not group) and (slot_ in months if slot_ >= 0 else whole))


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

