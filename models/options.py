"""Per-organisation options, inherited by the subtree unless set lower.

An option is set on one organisation (`python -m bot set-option ORG NAME VALUE`) and holds for it
and everything beneath it, until an organisation lower down sets its own value. Each value keeps
who set it and when; every change writes an event. The names are the administrator's words (the
same Chinese names the command line takes): `ranking`, `职工人数`, `业务性质`, `基线.<feature>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UTCDateTime
from models.event import record
from models.org import Organisation

# The seven portrait features (DOMAIN.md, SPEC §11), in the order the chart draws them.
PORTRAIT_FEATURES: tuple[str, ...] = ("组织层级", "业务性质", "下属机构", "党员比例", "党员岗位特点", "发挥作用", "党建力量")
# The option names as the administrator types them (the command line takes these words).
OPTION_NAMES = {"ranking": "ranking", "staff": "职工人数", "business": "业务性质", "baseline": "基线."}
DEFAULT_BASELINE = 60
BASELINE_PREFIX = OPTION_NAMES["baseline"]


class OptionKind(StrEnum):
    SWITCH = "switch"  # on / off
    COUNT = "count"  # a whole number ≥ 0
    SCORE = "score"  # a whole number 0–100
    TEXT = "text"  # free text, ≤ 100 characters


@dataclass(frozen=True)
class OptionSpec:
    name: str
    kind: OptionKind
    default: object


SPECS: dict[str, OptionSpec] = {
    spec.name: spec
    for spec in (
        OptionSpec(OPTION_NAMES["ranking"], OptionKind.SWITCH, False),  # points tables ordered by points (SPEC §8)
        OptionSpec(OPTION_NAMES["staff"], OptionKind.COUNT, None),  # staff of the unit, for 党员比例 (SPEC §11)
        OptionSpec(OPTION_NAMES["business"], OptionKind.TEXT, None),  # nature of business (SPEC §11)
        *(OptionSpec(BASELINE_PREFIX + f, OptionKind.SCORE, DEFAULT_BASELINE) for f in PORTRAIT_FEATURES),
    )
}


class OptionProblem(StrEnum):
    UNKNOWN_NAME = "unknown_name"
    BAD_VALUE = "bad_value"


class OptionError(ValueError):
    def __init__(self, problem: OptionProblem, spec: OptionSpec | None = None) -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.spec = spec


SWITCH_NAMES = {"on": ("on", "开", "开启", "是", "1", "true", "yes"),
                "off": ("off", "关", "关闭", "否", "0", "false", "no")}


def parse_value(name: str, raw: str) -> tuple[OptionSpec, str]:
    """The option's spec and its value in stored form; OptionError when either is wrong."""
    spec = SPECS.get(name.strip())
    if spec is None:
        raise OptionError(OptionProblem.UNKNOWN_NAME)
    text = raw.strip()
    if spec.kind is OptionKind.SWITCH:
        low = text.lower()
        for stored, words in SWITCH_NAMES.items():
            if low in words:
                return spec, stored
        raise OptionError(OptionProblem.BAD_VALUE, spec)
    if spec.kind in (OptionKind.COUNT, OptionKind.SCORE):
        if not text.isascii() or not text.isdigit() or len(text) > 7:
            raise OptionError(OptionProblem.BAD_VALUE, spec)
        number = int(text)
        if spec.kind is OptionKind.SCORE and number > 100:
            raise OptionError(OptionProblem.BAD_VALUE, spec)
        return spec, str(number)
    if not text or len(text) > 100:
        raise OptionError(OptionProblem.BAD_VALUE, spec)
    return spec, text


def typed(spec: OptionSpec, stored: str | None) -> object:
    if stored is None:
        return spec.default
    if spec.kind is OptionKind.SWITCH:
        return stored == "on"
    if spec.kind in (OptionKind.COUNT, OptionKind.SCORE):
        return int(stored)
    return stored


class OrgOption(Base):
    """One option's value as set on one organisation (not the inherited value)."""

    __tablename__ = "org_option"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    name: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(100))
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))  # None: the administrator's CLI
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class EffectiveOption:
    """An option's value for an organisation and where it comes from (None: the default)."""

    spec: OptionSpec
    value: object
    source: Organisation | None
    set_by_id: int | None
    set_at: datetime | None


def set_option(session: Session, org: Organisation, name: str, raw: str, *, at: datetime,
               actor_id: int | None = None) -> EffectiveOption:
    """Set `name` on `org` (creating or replacing its own value); the subtree inherits it."""
    spec, value = parse_value(name, raw)
    row = session.scalar(select(OrgOption).where(OrgOption.organisation_id == org.id, OrgOption.name == spec.name))
    before = row.value if row is not None else None
    if row is None:
        row = OrgOption(organisation_id=org.id, name=spec.name, value=value, set_by_id=actor_id, set_at=at)
        session.add(row)
    else:
        row.value, row.set_by_id, row.set_at = value, actor_id, at
    session.flush()
    record(session, "organisation.option_set", actor_id=actor_id, subject=org, at=at,
           data={"name": spec.name, "value": value, "before": before})
    return EffectiveOption(spec, typed(spec, value), org, actor_id, at)


def effective(session: Session, org: Organisation, name: str) -> EffectiveOption:
    """The value that holds for `org`: its own, else the nearest ancestor's, else the default."""
    spec = SPECS[name]
    values = effective_many(session, [org], name)
    return values.get(org.id) or EffectiveOption(spec, spec.default, None, None, None)


def effective_many(session: Session, orgs: list[Organisation], name: str) -> dict[int, EffectiveOption]:
    """`effective` for many organisations with one query (every value of `name` set anywhere
    above or at them: a handful of rows)."""
    spec = SPECS[name]
    rows = session.execute(
        select(OrgOption, Organisation).join(Organisation, Organisation.id == OrgOption.organisation_id)
        .where(OrgOption.name == spec.name)
    ).all()
    by_path = {o.path: (opt, o) for opt, o in rows}
    out: dict[int, EffectiveOption] = {}
    for org in orgs:
        parts = org.path.split("/")
        found = None
        for depth in range(len(parts), 0, -1):
            hit = by_path.get("/".join(parts[:depth]))
            if hit is not None:
                found = hit
                break
        if found is None:
            out[org.id] = EffectiveOption(spec, spec.default, None, None, None)
        else:
            opt, source = found
            out[org.id] = EffectiveOption(spec, typed(spec, opt.value), source, opt.set_by_id, opt.set_at)
    return out
