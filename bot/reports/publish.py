"""Sending the points publications (SPEC §8) as the scheduler and `report … --send` do.

月度公示: each branch's committee gets the branch table, each member their own line. 季度通报 and
the yearly summary: the top committee's secretaries get the whole tree, every liaison their own
organisations. A copy longer than one message goes as several, marked （1/3）… (bot/texts/parts.py;
on the Official Account at most the five a follower's window allows, the last saying what is left).
Each recipient's copy is claimed in `points_publication` in the same transaction that queues all
its parts, so any number of senders push it once, whole: a crash before the commit leaves neither
the claim nor any part, a commit leaves both. `force` sends again regardless. Pushes in quiet hours
are held until they end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from bot.reports.points import (
    Period,
    branch_tables,
    branches_under,
    commendation_candidates,
    period_rules,
    summarise_period,
)
from bot.reports.quarterly import QuarterlyScope, quarterly_message, scope_lines
from bot.texts import points as texts
from bot.texts.parts import part_payloads
from models.meeting import branch_leaders, push
from models.org import Organisation, tree_order
from models.person import COMMITTEE_ROLES, Liaison, OrgRole, Person
from models.points import PointsEntry, open_period
from models.publication import PublicationKind, already_sent, claim, finish, finished


@dataclass(frozen=True)
class Copy:
    """One recipient's text of a publication."""

    person_id: int
    text: str


def render(session: Session, period: Period, org: Organisation | None, tz: ZoneInfo, *, now: datetime) -> str:
    """The publication as the command line prints it (all of it, for `org` or the whole tree).
    Writes the month totals of the period's months that are over, once."""
    summarise_period(session, period, now)
    if period.kind is PublicationKind.MONTHLY:
        tables = branch_tables(session, branches_under(session, org), period)
        return "\n\n".join(texts.branch_table(t) for t in tables) or "没有支部。"
    tops = [org] if org is not None else top_organisations(session)
    if period.kind is PublicationKind.QUARTERLY:
        return quarterly_message(session, QuarterlyScope(tops, tz), period)
    return _yearly_text(session, tops, period, tz)


def top_organisations(session: Session) -> list[Organisation]:
    return list(session.scalars(select(Organisation).where(Organisation.parent_id.is_(None))
                                .order_by(Organisation.path)))


def _yearly_text(session: Session, tops: list[Organisation], period: Period, tz: ZoneInfo, *,
                 shared: dict | None = None) -> str:
    if shared is None:
        candidates = [c for top in tops for c in commendation_candidates(session, top, period)]
    else:  # the year's ledger read once for every copy of the push
        key = ("candidates", period.key)
        if key not in shared:
            shared[key] = commendation_candidates(session, None, period)
        candidates = [c for top in tops for c in shared[key] if c.branch is not None and c.branch.is_within(top)]
    return texts.yearly(scope_lines(session, tops, period, tz, shared=shared), candidates, period.key,
                        period_rules(session, period).commendation)


def copies(session: Session, period: Period, org: Organisation | None, tz: ZoneInfo) -> list[Copy]:
    """Who gets what: one text per recipient, in a stable order."""
    if period.kind is PublicationKind.MONTHLY:
        out = []
        for table in branch_tables(session, branches_under(session, org), period):
            whole = texts.branch_table(table)
            out += [Copy(p.id, whole) for p in branch_leaders(session, table.branch.id)]
            out += [Copy(line.person.id, texts.member_line(line, period.key)) for line in table.lines]
        return _first_each(out)
    tops = [org] if org is not None else top_organisations(session)
    shared: dict = {}  # what the quarterly sections compute once for every copy

    def text_for(scope: list[Organisation]) -> str:
        if period.kind is PublicationKind.QUARTERLY:
            return quarterly_message(session, QuarterlyScope(scope, tz, shared), period)
        return _yearly_text(session, scope, period, tz, shared=shared)

    out = []
    for top in tops:
        whole = text_for([top])
        secretaries = session.scalars(select(OrgRole.person_id).where(
            OrgRole.organisation_id == top.id, OrgRole.role.in_(COMMITTEE_ROLES)).order_by(OrgRole.person_id))
        out += [Copy(pid, whole) for pid in dict.fromkeys(secretaries)]
    liaisons: dict[int, list[Organisation]] = {}
    for row in session.scalars(select(Liaison).order_by(Liaison.person_id, Liaison.id)):
        if org is None or row.organisation.id == org.id or row.organisation.is_within(org):
            liaisons.setdefault(row.person_id, []).append(row.organisation)
    out += [Copy(pid, text_for(sorted(orgs, key=tree_order))) for pid, orgs in liaisons.items()]
    return _first_each(out)


def _first_each(copies_: list[Copy]) -> list[Copy]:
    """A person who is both (a secretary who is also a member) gets the first, fuller copy only."""
    seen: dict[int, Copy] = {}
    for c in copies_:
        seen.setdefault(c.person_id, c)
    return list(seen.values())


def send(session: Session, period: Period, org: Organisation | None, *, now: datetime, tz: ZoneInfo,
         release: Callable[[datetime], datetime | None] = lambda _now: None, force: bool = False) -> int:
    """Queue every recipient's copy not sent before (all of them with `force`); returns how many.
    Opens the period's last month so its rules are fixed from now on."""
    open_period(session, period.last, at=now)
    summarise_period(session, period, now)
    due = release(now) or now
    sent = 0
    for c in copies(session, period, org, tz):
        if not claim(session, period.key, period.kind, c.person_id, at=now) and not force:
            continue
        person = session.get(Person, c.person_id)
        if person is None or person.has_left:
            continue
        if push(session, c.person_id, lambda channel, t=c.text: part_payloads(t, channel), now=due,
                subject_type="points_publication", subject_id=None):
            sent += 1
    if org is None:
        finish(session, period.key, period.kind, at=now)
    return sent


def was_sent(session: Session, period: Period) -> bool:
    """Some copy went out (to anyone)."""
    return already_sent(session, period.key, period.kind)


def was_published(session: Session, period: Period) -> bool:
    """It went to everyone it is for: a send for one organisation alone does not count."""
    return finished(session, period.key, period.kind)


def has_records(session: Session, period: Period) -> bool:
    """Whether any points entry falls in `period`: a period the bot has no record of (before it
    was installed) is not published on schedule (scheduler/publications.py)."""
    return bool(session.scalar(select(exists().where(PointsEntry.period >= period.first,
                                                     PointsEntry.period <= period.last))))


PUBLISH_AT = time(9, 0)
