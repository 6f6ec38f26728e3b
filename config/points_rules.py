"""The points rules (SPEC §8), read from TOML: points per rule, caps, stars, what self-reports may claim.

The built-in rules are `config/points_rules.toml`; `POINTS_RULES` names a file of the same shape
that replaces them. A bad file is refused with a `ValueError` naming what is wrong, so start-up
stops rather than award wrong points (in Chinese: the administrator reads it). Each month keeps the
rules it opened with (models/points.py snapshots them), so a change applies from the next month on."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

BUILTIN_RULES = Path(__file__).resolve().parent / "points_rules.toml"


class Category(StrEnum):
    STUDY = "study"
    DUTY = "duty"
    ACTIVITY = "activity"
    INTEGRITY = "integrity"

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self]


CATEGORY_LABELS = {Category.STUDY: "学习培训", Category.DUTY: "工作履职", Category.ACTIVITY: "参加活动",
                   Category.INTEGRITY: "诚信品德"}
CATEGORY_BY_NAMES = {label: c for c, label in CATEGORY_LABELS.items()}


class RuleName(StrEnum):
    """The facts the bot records points for; `self_report` is a verified 申报."""

    STUDY_CONFIRMED = "study_confirmed"
    DIRECTIVE_ACKNOWLEDGED = "directive_acknowledged"
    DIRECTIVE_COMPLETED = "directive_completed"
    MEETING_ATTENDED = "meeting_attended"
    MEETING_ABSENT = "meeting_absent"
    SELF_REPORT = "self_report"


@dataclass(frozen=True)
class Rule:
    name: str
    category: Category
    points: int


@dataclass(frozen=True)
class Caps:
    month: int
    year: int


@dataclass(frozen=True)
class Claim:
    low: int
    high: int
    default: int


@dataclass(frozen=True)
class Rules:
    rules: dict[str, Rule]
    caps: dict[Category, Caps]
    month_stars: tuple[int, ...]
    year_stars: tuple[int, ...]
    commendation: int
    claims: dict[Category, Claim]
    source: dict[str, Any]  # the parsed file, kept as the period's snapshot

    def rule(self, name: str) -> Rule:
        return self.rules[name]

    def stars(self, total: int, *, year: bool = False) -> int:
        return sum(1 for t in (self.year_stars if year else self.month_stars) if total >= t)


def _int(value: Any, where: str, *, signed: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (not signed and value < 0):
        raise ValueError(f"积分规则：{where} 应为{'' if signed else '不小于 0 的'}整数")
    return value


def _category(value: Any, where: str) -> Category:
    try:
        return Category(value)
    except ValueError:
        raise ValueError(f"积分规则：{where} 应为 {'、'.join(c.value for c in Category)} 之一") from None


def parse(data: dict[str, Any]) -> Rules:
    """Validate the parsed TOML (or a stored snapshot of it)."""
    caps, claims, rules = {}, {}, {}
    for category in Category:
        cap = data.get("caps", {}).get(category.value)
        if not isinstance(cap, dict):
            raise ValueError(f"积分规则：缺少 [caps.{category.value}]")
        caps[category] = Caps(_int(cap.get("month"), f"caps.{category.value}.month"),
                              _int(cap.get("year"), f"caps.{category.value}.year"))
    for name in RuleName:
        if name is RuleName.SELF_REPORT:
            continue
        rule = data.get("rules", {}).get(name.value)
        if not isinstance(rule, dict):
            raise ValueError(f"积分规则：缺少 [rules.{name.value}]")
        rules[name.value] = Rule(name.value, _category(rule.get("category"), f"rules.{name.value}.category"),
                                 _int(rule.get("points"), f"rules.{name.value}.points", signed=True))
    for key, claim in data.get("self_report", {}).items():
        category = _category(key, f"[self_report.{key}]")
        low, high = _int(claim.get("min"), f"self_report.{key}.min"), _int(claim.get("max"), f"self_report.{key}.max")
        default = _int(claim.get("default", low), f"self_report.{key}.default")
        if not low <= default <= high:
            raise ValueError(f"积分规则：self_report.{key} 应满足 min ≤ default ≤ max")
        claims[category] = Claim(low, high, default)
    stars = data.get("stars", {})
    month_stars = tuple(_int(v, "stars.month") for v in stars.get("month", []))
    year_stars = tuple(_int(v, "stars.year") for v in stars.get("year", []))
    if list(month_stars) != sorted(month_stars) or list(year_stars) != sorted(year_stars):
        raise ValueError("积分规则：星级门槛应从小到大排列")
    commendation = _int(data.get("commendation", {}).get("year", 0), "commendation.year")
    return Rules(rules, caps, month_stars, year_stars, commendation, claims, data)


def load(path: Path | None = None) -> Rules:
    """The rules in `path`, or the built-in ones."""
    path = path or BUILTIN_RULES
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ValueError(f"积分规则文件 {path} 无法读取：{exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"积分规则文件 {path} 格式有误：{exc}") from None
    return parse(data)


_current: Rules | None = None


def configure(rules: Rules) -> None:
    """The rules new months open with (create_app sets them from POINTS_RULES)."""
    global _current
    _current = rules


def current() -> Rules:
    global _current
    if _current is None:
        _current = load()
    return _current
