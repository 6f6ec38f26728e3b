"""A text longer than one message, as several: split on line boundaries, each part marked （1/3）.

WeCom app text and the Official Account's customer-service text hold at most 2,048 bytes
(`bot.channels.base.TEXT_LIMIT_BYTES`); the channel cuts a longer one and nothing follows. So
every push built from text of unbounded length (a points publication, a reminder digest, a
correction with its reason, a decided self-report) is queued as `part_payloads(text)`, one outbox
row per part in the caller's transaction, and the chat's long replies are cut by the same
`split_lines` (bot/dispatch.py): a text is divided one way everywhere. A push is never more than
20 parts (5 on the Official Account, all a follower's window allows): the last one then says how
many lines were left out."""

from __future__ import annotations

from typing import Any

from bot.channels.base import TEXT_LIMIT_BYTES
from bot.channels.mp_window import MESSAGE_WINDOW
from models.identity import Channel
from models.outbox import text_payload

# A follower's message opens a window of 5 customer-service messages (bot/channels/mp_window.py):
# more parts than that cannot reach them, so an Official Account copy stops at the fifth.
MP_MOST_PARTS = MESSAGE_WINDOW[1]
# Elsewhere 20 parts (about 40 KB: a committee of some 300 organisations' quarterly lines) is as
# much as anyone reads in a chat; WeCom would also hold the rest back (30 a minute per member).
MOST_PARTS = 20


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def split_lines(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` UTF-8 bytes, cut between lines (the newline between two
    pieces is dropped: `"\\n".join(pieces) == text`); a single line longer than `limit` is cut
    inside, on a character boundary (never inside a character's bytes)."""
    if limit < 4:  # one character of UTF-8 must fit
        raise ValueError(f"limit must be at least 4 bytes, not {limit}")
    pieces: list[str] = []
    current: str | None = None  # None: nothing gathered yet ("" is an empty line gathered)
    for line in text.split("\n"):
        while size(line) > limit:  # one very long line: what came before goes first, then the cuts
            if current is not None:
                pieces.append(current)
                current = None
            cut = line.encode("utf-8")[:limit].decode("utf-8", "ignore")
            pieces.append(cut)
            line = line[len(cut):]
        candidate = line if current is None else f"{current}\n{line}"
        if size(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current is not None:
        pieces.append(current)
    return pieces


def marker(number: int, total: int) -> str:
    """The line that opens part `number` of `total`."""
    return f"（{number}/{total}）\n"


def parts(text: str, limit: int = TEXT_LIMIT_BYTES, *, most: int | None = None, mp: bool = False) -> list[str]:
    """`text` as the messages that carry it: itself when it fits in `limit` bytes; else pieces
    from `split_lines`, each opened by its `marker`, every one within `limit` bytes marker
    included. With `most`, never more than that many: the last one then ends by saying how many
    lines did not fit (`left_out`, worded for the Official Account with `mp`)."""
    if size(text) <= limit:
        return [text]
    total = 2
    while True:  # the marker's width depends on the count: settle it
        pieces = split_lines(text, limit - size(marker(total, total)))
        if len(str(len(pieces))) <= len(str(total)):
            break
        total = len(pieces)
    if most is not None and len(pieces) > most:
        pieces = pieces[:most - 1]
        rest = text[_end_of(text, pieces):]
        room = limit - size(marker(most, most)) - size(left_out(rest.count("\n") + 1, mp=mp))
        last = split_lines(rest, room)[0]
        pieces.append(last + left_out(rest[_end_of(rest, [last]):].count("\n") + 1, mp=mp))
    return [marker(n, len(pieces)) + piece for n, piece in enumerate(pieces, start=1)]


def _end_of(text: str, pieces: list[str]) -> int:
    """Where in `text` what follows `split_lines`' first `pieces` begins (past the newline a cut
    between lines dropped)."""
    at = 0
    for piece in pieces:
        at += len(piece)
        if text.startswith("\n", at):
            at += 1
    return at


def left_out(lines: int, *, mp: bool = False) -> str:
    """Ends the last part when the rest could not be sent."""
    why = "因公众号消息条数所限" if mp else "因内容过长"
    return f"\n……另有 {lines} 行{why}未能发送，完整内容请向党委办公室索取。"


def part_payloads(text: str, channel: Channel | None = None) -> list[dict[str, Any]]:
    """The text payloads of `parts(text)`, in order: queue each as its own outbox row. At most
    `MOST_PARTS`, on the Official Account `MP_MOST_PARTS`."""
    mp = channel is Channel.MP
    return [text_payload(part) for part in parts(text, most=MP_MOST_PARTS if mp else MOST_PARTS, mp=mp)]


def continued(number: int, total: int) -> str:
    """Opens a follow-up of a chat reply too long for one answer (the first part is the answer)."""
    return f"（续 {number}/{total}）\n"


def reply_rest_follows(count: int) -> str:
    return f"\n（内容较长，其余 {count} 条随后推送）"


REPLY_CUT_SHORT = "\n（内容较长，只显示了前一部分）"
