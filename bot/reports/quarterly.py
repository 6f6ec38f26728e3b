"""The one quarterly push (季度通报, SPEC §8 and §11): a message built from sections.

Each function in `QUARTERLY_SECTIONS` takes the session, the recipient's scope (the organisations
they receive the report for) and the quarter, and returns its part of the message, or None to
leave it out. The points figures are the first section; the quarterly observation points of the
portrait feature (§11) are appended here as another section, so the top committee and the liaisons
get one message, not two."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.channels.base import TEXT_LIMIT_BYTES
from bot.reports.points import Period, organisation_figures
from bot.texts import points as texts
from models.org import Organisation


@dataclass(frozen=True)
class QuarterlyScope:
    """Who a copy is for: the organisations it covers (a committee's tree or a liaison's units).

    `shared` is handed to every copy of one push: a section whose figures span the whole tree
    computes them once there, not once per recipient."""

    organisations: list[Organisation]
    tz: ZoneInfo
    shared: dict = field(default_factory=dict, compare=False)


Section = Callable[[Session, QuarterlyScope, Period], str | None]


def points_section(session: Session, scope: QuarterlyScope, period: Period) -> str | None:
    """Per organisation: members, average points, share with stars, self-reports verified. Every
    organisation of the copy's trees while that fits in one message; beyond, each organisation of
    the copy and those directly beneath it (each line counting its whole subtree), as the
    observation section lists them, with a line saying where the table of every branch is: a
    committee of 20,000 members has about a thousand branches, dozens of messages as chat lines."""
    return scope_lines(session, scope.organisations, period, scope.tz, shared=scope.shared)


def scope_lines(session: Session, organisations: list[Organisation], period: Period, tz: ZoneInfo, *,
                shared: dict | None = None) -> str:
    """The points lines of a copy for `organisations` (see `points_section`). With `shared` (one
    dict for every copy of a push) the whole tree's figures are computed once and each copy takes
    its organisations' part: a push to fifty liaisons reads the ledger once, not once per unit."""
    if shared is None:
        figures = [(top, f) for top in organisations for f in organisation_figures(session, top, period, tz)]
    else:
        key = ("points", period.kind, period.key)
        if key not in shared:
            shared[key] = organisation_figures(session, None, period, tz)  # in tree order
        figures = [(top, f) for top in organisations for f in shared[key] if f.organisation.is_within(top)]
    whole = texts.organisation_lines([f for _top, f in figures], period.key)
    if len(whole.encode("utf-8")) <= TEXT_LIMIT_BYTES:
        return whole
    near = [f for top, f in figures if f.organisation.id == top.id or f.organisation.parent_id == top.id]
    return texts.organisation_lines(near, period.key, cut=len(figures) - len(near))


def observation_points_section(session: Session, scope: QuarterlyScope, period: Period) -> str | None:
    """The quarterly observation points (§11) for this copy's organisations: top organisations get
    the units directly beneath them, a liaison's copy their own units (bot/reports/observation.py)."""
    from types import SimpleNamespace

    from bot.reports.observation import observation, observation_section
    from bot.reports.quarter import Quarter

    quarter = Quarter.parse(period.key)
    key = ("observation", quarter)
    if key not in scope.shared:
        scope.shared[key] = observation(session, quarter, tz=scope.tz)
    tops = [o for o in scope.organisations if o.parent_id is None]
    reader = SimpleNamespace(
        liaisons=[SimpleNamespace(organisation_id=o.id) for o in scope.organisations if o.parent_id is not None],
        led_organisations=lambda: tops)
    return observation_section(session, reader, quarter, tz=scope.tz, report=scope.shared[key])


QUARTERLY_SECTIONS: list[Section] = [points_section, observation_points_section]


def quarterly_message(session: Session, scope: QuarterlyScope, period: Period) -> str:
    parts = [texts.quarterly_title(period.key)]
    parts += [part for section in QUARTERLY_SECTIONS if (part := section(session, scope, period))]
    return "\n\n".join(parts)
