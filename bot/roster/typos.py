"""Probable typos: organisation names one or two characters from a sibling's, names one character apart."""

from __future__ import annotations

import re

_NUMERAL_RUN = re.compile(r"[〇零一二两三四五六七八九十百]+")
_ORDINAL = re.compile(r"\d+|[甲乙丙丁戊己庚辛壬癸]")
_SUFFIXES = ("临时党支部", "联合党支部", "党总支", "党支部", "党小组", "党委")


def _digit(c: str) -> int:
    return {"〇": 0, "零": 0, "两": 2}.get(c, "一二三四五六七八九".find(c) + 1)


def _arabic(run: str) -> str:
    """A run of Chinese numerals as digits: 一 → 1, 十二 → 12, 二十 → 20, 一〇一 → 101."""
    if "十" not in run and "百" not in run:
        return "".join(str(_digit(c)) for c in run)
    total, current = 0, 0
    for c in run:
        if c in "十百":
            total += (current or 1) * (10 if c == "十" else 100)
            current = 0
        else:
            current = _digit(c)
    return str(total + current)


def _core(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def probable_typo(name: str, other: str, *, share: int = 3) -> bool:
    """Two sibling names that are probably one organisation mistyped (第1党总支 / 第一党总支).

    Numbers written differently are the same number (第1 = 第一); names that differ only in their
    number or ordinal (第一/第二, 甲/乙) are real siblings; otherwise one or two characters apart, and
    at most 1/`share` of the name before the kind's suffix, is a probable typo. Beside an existing
    sibling a third is the limit (人事处 next to an existing 外事处 needs 新建 是); between two new
    siblings of one file a quarter, since a first import of a whole tree holds many real near pairs.
    """
    if name == other:
        return False
    a, b = (_NUMERAL_RUN.sub(lambda m: _arabic(m.group()), s) for s in (name, other))
    if a == b:
        return True
    if _ORDINAL.sub("#", a) == _ORDINAL.sub("#", b):
        return False
    core_a, core_b = _core(name), _core(other)
    if (name[len(core_a):]) != (other[len(core_b):]):
        return False  # another kind of organisation
    d = _distance(core_a, core_b)
    return 1 <= d <= 2 and d * share <= max(len(core_a), len(core_b))


def one_character_apart(name: str, other: str) -> bool:
    """Two names of the same length that differ in exactly one character (张伟 / 张玮)."""
    return len(name) == len(other) and sum(a != b for a, b in zip(name, other, strict=True)) == 1
