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
    """Per organisation: members, average points, share with stars, self-reports verified."""
    figures = [f for top in scope.organisations for f in organisation_figures(session, top, period, scope.tz)]
    return texts.organisation_lines(figures, period.key)


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
