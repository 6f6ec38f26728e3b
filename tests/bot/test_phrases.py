"""The phrase corpus (tests/data/phrases.tsv), every line: what people type → the route and
arguments the router yields, the command offered for what it cannot read, and times resolved
against a fixed clock. Matching is pure: no database, no endpoint."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import router
from bot.messages import InboundKind, InboundMessage
from bot.timefmt import format_time
from bot.timeparse import TimeParseError, parse_time
from handlers.help import closest
from models.identity import Channel

CORPUS = Path(__file__).parents[1] / "data" / "phrases.tsv"
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 11, 45, tzinfo=UTC)  # 2026年11月21日 19:45 in Shanghai, a Saturday


def corpus() -> list[tuple[int, str, str, str]]:
    """(line number, text, intent, expected) for every line that is not a comment."""
    rows = []
    for number, line in enumerate(CORPUS.read_text(encoding="utf-8").split("\n"), start=1):
        if not line or line.startswith("#"):
            continue
        text, intent, expected = line.split("\t")
        rows.append((number, text, intent, expected))
    return rows


ROWS = corpus()


def text_msg(text: str) -> InboundMessage:
    return InboundMessage(channel=Channel.WECOM, sender="u1", kind=InboundKind.TEXT, created_at=NOW,
                          dedupe_key="msg:1", text=text)


def test_the_corpus_is_large_and_covers_every_kind():
    assert len(ROWS) >= 400
    intents = {intent for _, _, intent, _ in ROWS}
    assert {"ack", "complete", "study_confirm", "leave", "leave_approve", "leave_reject", "checkin_code", "todo",
            "progress", "meeting", "publish", "?", "time"} <= intents


@pytest.mark.parametrize(("number", "text", "intent", "expected"),
                         [row for row in ROWS if row[2] not in ("?", "time")], ids=lambda v: str(v))
def test_phrase_yields_its_route_and_arguments(number, text, intent, expected):
    found = router.match(text_msg(text))
    assert found.route is not None and found.route.name == intent, f"line {number}: {text!r}"
    assert words(found.command.args) == expected.split(), f"line {number}: {text!r}"


def words(args: str) -> list[str]:
    """The arguments as the corpus writes them: split at white space and list punctuation (colons
    stay: they are part of times and URLs)."""
    return [w for w in re.split(r"[\s,，、;；#]+", args) if w]


@pytest.mark.parametrize(("number", "text", "intent", "expected"),
                         [row for row in ROWS if row[2] == "?"], ids=lambda v: str(v))
def test_unread_text_offers_the_closest_command(number, text, intent, expected):
    found = router.match(text_msg(text))
    assert found.route.name == "help" and found.command.word == "", f"line {number}: {text!r}"  # 没看懂
    offered = closest(found.command.args, [r for r in router.routes() if r.usage])
    assert (offered.words[0] if offered else "") == expected, f"line {number}: {text!r}"


@pytest.mark.parametrize(("number", "text", "intent", "expected"),
                         [row for row in ROWS if row[2] == "time"], ids=lambda v: str(v))
def test_time_expression_resolves_against_the_clock(number, text, intent, expected):
    if expected == "error":
        with pytest.raises(TimeParseError) as refused:
            parse_time(text, now=NOW, tz=TZ)
        assert str(refused.value)
    else:
        assert format_time(parse_time(text, now=NOW, tz=TZ), TZ) == expected, f"line {number}: {text!r}"
