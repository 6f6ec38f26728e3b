"""Portrait scores set by hand (SPEC §11): the features the records cannot give.

A feature such as 业务性质 cannot be derived from the roster or the log; the committee or a liaison
scores it (`python -m bot set-portrait ORG 业务性质 55`, or the liaison's portrait page). Each row
keeps who set it and when; every change writes an event. The derived features are computed in
`bot.reports.portrait` and never stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UTCDateTime
from models.event import record
from models.options import PORTRAIT_FEATURES
from models.org import Organisation

# Features always derived from the records (levels, units, role, strength, by their place in
# PORTRAIT_FEATURES): a score typed by hand would only hide the figures.
ALWAYS_DERIVED: frozenset[str] = frozenset(PORTRAIT_FEATURES[i] for i in (0, 2, 5, 6))
SETTABLE: tuple[str, ...] = tuple(f for f in PORTRAIT_FEATURES if f not in ALWAYS_DERIVED)


class ScoreProblem(StrEnum):
    UNKNOWN_FEATURE = "unknown_feature"
    DERIVED = "derived"  # the feature is computed from the records
    BAD_SCORE = "bad_score"


class ScoreError(ValueError):
    def __init__(self, problem: ScoreProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


class PortraitScore(Base):
    """One feature's score for one organisation, as set by a person (None: the administrator's CLI)."""

    __tablename__ = "portrait_score"
    __table_args__ = (UniqueConstraint("organisation_id", "feature"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    feature: Mapped[str] = mapped_column(String(20))
    score: Mapped[int] = mapped_column()
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class SetScore:
    feature: str
    score: int
    before: int | None


def parse_score(feature: str, raw: str) -> tuple[str, int]:
    """The feature's name and the score as a number; ScoreError when either is wrong."""
    name = feature.strip()
    if name not in PORTRAIT_FEATURES:
        raise ScoreError(ScoreProblem.UNKNOWN_FEATURE)
    if name in ALWAYS_DERIVED:
        raise ScoreError(ScoreProblem.DERIVED)
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 3 or int(text) > 100:
        raise ScoreError(ScoreProblem.BAD_SCORE)
    return name, int(text)


def set_score(session: Session, org: Organisation, feature: str, raw: str, *, at: datetime,
              actor_id: int | None = None) -> SetScore:
    """Set `feature`'s score for `org` (replacing an earlier one); idempotent for the same score."""
    name, score = parse_score(feature, raw)
    row = session.scalar(select(PortraitScore).where(PortraitScore.organisation_id == org.id,
                                                     PortraitScore.feature == name))
    before = row.score if row is not None else None
    if row is None:
        session.add(PortraitScore(organisation_id=org.id, feature=name, score=score, set_by_id=actor_id, set_at=at))
    elif row.score != score:
        row.score, row.set_by_id, row.set_at = score, actor_id, at
    else:
        return SetScore(name, score, before)
    session.flush()
    record(session, "organisation.portrait_set", actor_id=actor_id, subject=org, at=at,
           data={"feature": name, "score": score, "before": before})
    return SetScore(name, score, before)


def scores_of(session: Session, org_ids: list[int]) -> dict[int, dict[str, PortraitScore]]:
    """The set scores of these organisations, by organisation id and feature."""
    out: dict[int, dict[str, PortraitScore]] = {}
    if not org_ids:
        return out
    for row in session.scalars(select(PortraitScore).where(PortraitScore.organisation_id.in_(org_ids))):
        out.setdefault(row.organisation_id, {})[row.feature] = row
    return out
