"""The share of the phrase corpus (tests/data/phrases.tsv) a checkout's router understands.

    .venv/bin/python bench/phrases.py                # this checkout
    .venv/bin/python bench/phrases.py --root DIR     # another checkout, e.g. an older commit:
    git archive COMMIT | tar -x -C DIR

Matching only (the router and the time parser; no database). Command lines count when the route
and its arguments are as the corpus says; unread lines when no command is misread from them (`没看懂`, or
the whole help on a router without it); time lines when the time is as the corpus says.
The corpus is always this checkout's."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "phrases.tsv"
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 11, 45, tzinfo=UTC)  # the corpus's clock


def rows() -> list[tuple[str, str, str]]:
    found = []
    for line in CORPUS.read_text(encoding="utf-8").split("\n"):
        if line and not line.startswith("#"):
            text, intent, expected = line.split("\t")
            found.append((text, intent, expected))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("-v", action="store_true", help="list the lines not understood")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))

    from bot import router
    from bot.messages import InboundKind, InboundMessage
    from bot.timefmt import format_time
    from bot.timeparse import parse_time
    from models.identity import Channel

    def routed(text: str):
        return router.match(InboundMessage(channel=Channel.WECOM, sender="u1", kind=InboundKind.TEXT,
                                           created_at=NOW, dedupe_key="m", text=text))

    def understood(text: str, intent: str, expected: str) -> bool:
        if intent == "time":
            try:
                return format_time(parse_time(text, now=NOW, tz=TZ), TZ) == expected
            except ValueError:
                return expected == "error"
            except OverflowError:  # a traceback, not an answer
                return False
        found = routed(text)
        name = found.route.name if found.route else None
        if intent == "?":
            return name == "help" and (found.command.word == "" or found.command.args == "")
        return name == intent and [w for w in re.split(r"[\s,，、;；#]+", found.command.args) if w] == expected.split()

    totals: dict[str, list[int]] = {}
    missed = []
    for text, intent, expected in rows():
        kind = {"time": "times", "?": "unread text"}.get(intent, "commands")
        ok = understood(text, intent, expected)
        totals.setdefault(kind, [0, 0])
        totals[kind][0] += ok
        totals[kind][1] += 1
        if not ok:
            missed.append((text, intent, expected))
    right = sum(r for r, _ in totals.values())
    count = sum(n for _, n in totals.values())
    print(f"{args.root}: {right}/{count} = {100 * right / count:.1f} % understood")
    for kind, (r, n) in totals.items():
        print(f"  {kind:<12} {r}/{n} = {100 * r / n:.1f} %")
    if args.v:
        for text, intent, expected in missed:
            print(f"    {text!r} → {intent} {expected}")


if __name__ == "__main__":
    main()
