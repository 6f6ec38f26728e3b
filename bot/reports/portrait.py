"""The organisation portrait (画像, SPEC §11): seven features scored 0–100 against a baseline.

Each feature is derived from the records where they allow it, with the figures it came from, or
else taken from the score the committee or a liaison set (`models.portrait`), with who and when.
The formulas (docs/PORTRAIT.md, and the portrait page's footnote, which words them in
`bot.texts.portrait`):
- 组织层级 = max(0, 100 − 20 × levels beneath the organisation);
- 下属机构 = max(0, 100 − 5 × organisations beneath it);
- 党员比例 = min(100, round(200 × members ÷ staff)), once 职工人数 is set on the organisation itself;
- 党员岗位特点 = round(100 × members at 机关 ÷ members with a 岗位类型), once any has one;
- 发挥作用 = round(100 × mean of the available rates over the last complete quarter: acknowledged
  in time, required meetings held, study confirmed);
- 党建力量 = round(50 × units with a 书记 ÷ units + 50 × min(1, 10 × committee members ÷ members));
- 业务性质: set by hand only.
Guidance: every feature scored and none below its baseline → 先进更先进; any feature at least
FAR_BELOW under its baseline → the features to work on; otherwise on track."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.reports.quarter import Figures, Quarter, quarter_figures
from models.options import BASELINE_PREFIX, OPTION_NAMES, PORTRAIT_FEATURES, effective_many
from models.org import Organisation, OrgKind, subtree
from models.person import COMMITTEE_ROLES, Membership, MembershipKind, OrgRole, Person, PostType, Role
from models.portrait import scores_of

FAR_BELOW = 15  # points under the baseline that make a feature one to work on
FURTHEST_SHOWN = 3
SECRETARIES_PER_MEMBER = 0.1  # one committee member per ten members fills 党建力量's second half


class Source(StrEnum):
    DERIVED = "derived"  # computed from the records; `figures` holds what it came from
    SET = "set"  # set by hand; `set_by` / `set_at` say who and when
    MISSING = "missing"  # neither: no score


class Guidance(StrEnum):
    ADVANCED = "advanced"  # 先进更先进: what to spread
    WEAK = "weak"  # bars far below: the features to work on
    ON_TRACK = "on_track"


@dataclass(frozen=True)
class Feature:
    name: str
    score: int | None
    baseline: int
    source: Source
    figures: dict = field(default_factory=dict)
    set_by: str | None = None  # the person's name; None with a SET source: the administrator
    set_at: datetime | None = None

    @property
    def gap(self) -> int | None:
        """How far below the baseline (positive) or above it (negative); None without a score."""
        return None if self.score is None else self.baseline - self.score

    @property
    def below(self) -> bool:
        return self.score is not None and self.score < self.baseline


@dataclass(frozen=True)
class Portrait:
    org: Organisation
    features: list[Feature]
    quarter: Quarter  # the quarter 发挥作用 looks at

    @property
    def furthest(self) -> list[Feature]:
        """Up to three features below their baselines, furthest first (then in chart order)."""
        below = [f for f in self.features if f.below]
        return sorted(below, key=lambda f: -f.gap)[:FURTHEST_SHOWN]

    @property
    def guidance(self) -> Guidance:
        if any(f.below and f.gap >= FAR_BELOW for f in self.features):
            return Guidance.WEAK
        if all(f.score is not None and not f.below for f in self.features):
            return Guidance.ADVANCED
        return Guidance.ON_TRACK

    @property
    def to_work_on(self) -> list[Feature]:
        return [f for f in self.furthest if f.gap >= FAR_BELOW]

    @property
    def strongest(self) -> list[Feature]:
        """The features furthest above their baselines: what an advanced organisation can spread."""
        scored = [f for f in self.features if f.score is not None]
        return sorted(scored, key=lambda f: f.gap)[:FURTHEST_SHOWN]


def portrait(session: Session, org: Organisation, *, now: datetime, tz: ZoneInfo) -> Portrait:
    """The seven features of `org`, in chart order."""
    quarter = Quarter.last_complete(now, tz)
    scope = subtree(session, org)
    baselines = {f: effective_many(session, [org], BASELINE_PREFIX + f)[org.id].value for f in PORTRAIT_FEATURES}
    staff = effective_many(session, [org], OPTION_NAMES["staff"])[org.id]
    staff_count = staff.value if staff.source is not None and staff.source.id == org.id else None
    hand = scores_of(session, [org.id]).get(org.id, {})
    names = _setters(session, hand.values())
    members = _member_posts(session, org)
    figures, _ = quarter_figures(session, quarter, tz=tz, within=org, lags=False)

    derived: dict[str, tuple[int, dict] | None] = {
        "组织层级": _levels(org, scope),
        "业务性质": None,
        "下属机构": _units(scope),
        "党员比例": _share_of_staff(sum(members.values()), staff_count),
        "党员岗位特点": _posts(members),
        "发挥作用": _role(figures[org.id], quarter),
        "党建力量": _strength(session, org, scope, sum(members.values())),
    }
    features = []
    for name in PORTRAIT_FEATURES:
        found, row = derived[name], hand.get(name)
        if found is not None:
            score, basis = found
            features.append(Feature(name, score, baselines[name], Source.DERIVED, basis))
        elif row is not None:
            features.append(Feature(name, row.score, baselines[name], Source.SET,
                                    set_by=names.get(row.set_by_id), set_at=row.set_at))
        else:
            features.append(Feature(name, None, baselines[name], Source.MISSING,
                                    {"staff_missing": name == "党员比例", "posts_missing": name == "党员岗位特点"}))
    return Portrait(org, features, quarter)


def _setters(session: Session, rows) -> dict[int, str]:
    ids = {r.set_by_id for r in rows if r.set_by_id is not None}
    if not ids:
        return {}
    return dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(ids))).all())


def _levels(org: Organisation, scope: list[Organisation]) -> tuple[int, dict]:
    levels = max(o.depth for o in scope) - org.depth
    return max(0, 100 - 20 * levels), {"levels": levels}


def _units(scope: list[Organisation]) -> tuple[int, dict]:
    beneath = len(scope) - 1
    return max(0, 100 - 5 * beneath), {"units": beneath}


def _member_posts(session: Session, org: Organisation) -> dict[PostType | None, int]:
    """Members of the subtree (home memberships) by 岗位类型 (None: not given)."""
    rows = session.execute(
        select(Person.post_type, func.count(func.distinct(Person.id)))
        .join(Membership, Membership.person_id == Person.id)
        .join(Organisation, Organisation.id == Membership.organisation_id)
        .where(Membership.kind == MembershipKind.HOME, Person.left_on.is_(None),
               (Organisation.id == org.id) | Organisation.path.startswith(org.path + "/", autoescape=True))
        .group_by(Person.post_type)
    ).all()
    return {post: n for post, n in rows}


def _share_of_staff(members: int, staff: int | None) -> tuple[int, dict] | None:
    if not staff:
        return None
    return min(100, round(200 * members / staff)), {"members": members, "staff": staff}


def _posts(members: dict[PostType | None, int]) -> tuple[int, dict] | None:
    known = sum(n for post, n in members.items() if post is not None)
    if not known:
        return None
    office = members.get(PostType.OFFICE, 0)
    figures = {"office": office, "field": members.get(PostType.FIELD, 0), "posted": members.get(PostType.POSTED, 0),
               "unknown": members.get(None, 0)}
    return round(100 * office / known), figures


def _role(figures: Figures, quarter: Quarter) -> tuple[int, dict] | None:
    rates = []
    if figures.tasks:
        rates.append(figures.in_time / figures.tasks)
    if figures.meetings_required:
        rates.append(figures.meetings_held / figures.meetings_required)
    if figures.study_total:
        rates.append(figures.study_done / figures.study_total)
    if not rates:
        return None
    return round(100 * sum(rates) / len(rates)), {
        "quarter": quarter, "tasks": figures.tasks, "in_time": figures.in_time,
        "meetings_required": figures.meetings_required, "meetings_held": figures.meetings_held,
        "study_total": figures.study_total, "study_done": figures.study_done}


def _strength(session: Session, org: Organisation, scope: list[Organisation], members: int) -> tuple[int, dict]:
    units = [o for o in scope if o.kind is not OrgKind.GROUP]
    ids = [o.id for o in units]
    rows = session.execute(select(OrgRole.organisation_id, OrgRole.role, OrgRole.person_id)
                           .where(OrgRole.organisation_id.in_(ids), OrgRole.role.in_(COMMITTEE_ROLES))).all()
    with_secretary = len({oid for oid, role, _ in rows if role is Role.SECRETARY})
    committee = len({pid for _, _, pid in rows})
    staffing = min(1.0, committee / (SECRETARIES_PER_MEMBER * members)) if members else (1.0 if committee else 0.0)
    score = round(50 * with_secretary / len(units) + 50 * staffing)
    return score, {"units": len(units), "with_secretary": with_secretary, "committee": committee, "members": members}
