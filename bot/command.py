"""The neutral types of command routing: a matched `Command`, the `Route` it came from and who may
use it (`Audience`). Handlers import these; the route table (`bot.router`) imports the handlers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from bot.context import Context
from bot.messages import InboundKind, InboundMessage, Reply
from bot.phrases import IMPLIED_ARGS
from models.identity import Channel
from models.person import Person

# Punctuation people type between a command and its arguments, in either width.
_SEPARATORS = re.compile(r"[\s,，、:：;；#＃]+")


@dataclass(frozen=True)
class Command:
    """A matched command: its keyword and the argument text after it (first line and the rest).

    `args` is normalised (half-width digits and punctuation) for numbers and codes; `text` is the
    argument as typed and `body` the lines after the first as typed, for titles and free text."""

    word: str
    args: str
    body: str = ""  # lines after the first, as typed, for multi-line commands like 发布
    text: str = ""  # the first line's argument as typed

    @property
    def arg_list(self) -> list[str]:
        return [a for a in _SEPARATORS.split(self.args) if a]

    @property
    def free_text(self) -> str:
        return self.text or self.args

    def after_number(self) -> str:
        """The argument as typed, without a leading 编号 (for notes and reflections)."""
        return _LEADING_NUMBER.sub("", self.free_text, count=1).strip()


Audience = Callable[[Person | None, Context], bool]


def everyone(_person: Person | None, _ctx: Context) -> bool:
    return True


def anyone_known(person: Person | None, _ctx: Context) -> bool:
    return person is not None


def secretaries(person: Person | None, _ctx: Context) -> bool:
    return person is not None and person.is_secretary()


def liaisons(person: Person | None, _ctx: Context) -> bool:
    return person is not None and person.is_liaison()


def secretaries_or_liaisons(person: Person | None, ctx: Context) -> bool:
    return secretaries(person, ctx) or liaisons(person, ctx)


def mp_followers(_person: Person | None, ctx: Context) -> bool:
    return ctx.msg.channel is Channel.MP


def branch_committees(person: Person | None, _ctx: Context) -> bool:
    """Committee members of a branch (党支部, 临时党支部): meetings are held by branches, so a
    committee secretary above them is not offered 会议 and is told why when they send it."""
    from models.org import BRANCH_KINDS

    return person is not None and any(o.kind in BRANCH_KINDS for o in person.led_organisations())


# Who each audience is, as 帮助 and a refusal both say it.
AUDIENCE_NAMES: dict[Callable, str] = {
    secretaries: "书记、副书记或支委",
    secretaries_or_liaisons: "书记、副书记、支委或联络员",
    branch_committees: "书记、副书记或支委",
}


MAX_NUMBER_DIGITS = 9  # numbers are database integers: more digits name nothing


def as_number(word: str) -> int | None:
    """`12` / `#12` → 12; anything else (other scripts' digits, 10 digits or more) → None."""
    word = word.lstrip("#")
    if word.isascii() and word.isdigit() and len(word) <= MAX_NUMBER_DIGITS:
        return int(word)
    return None


def looks_like_number(word: str) -> bool:
    """Meant as a number but not one we can use: `፩`, `三`, `99999999999`."""
    word = word.lstrip("#")
    return bool(word) and as_number(word) is None and all(
        ch.isdigit() or unicodedata.numeric(ch, None) is not None for ch in word)


@dataclass(frozen=True)
class Route:
    name: str
    words: tuple[str, ...]  # command keywords; empty for event routes
    handle: Callable[[Command, Context], Reply | None]
    audience: Audience = anyone_known
    usage: str = ""  # one line for 帮助
    event: str | None = None  # for event routes: the event name (lower case)
    keys: tuple[str, ...] = ()  # for event routes: only event keys with one of these prefixes
    # Reads only: answered without a receipt or a commit, from the cached sender (bot.directory).
    # Enforced: a read-only handler that writes fails instead of losing the write.
    read_only: bool = False
    # The handler reads only what the sender cache loads (roles, liaisons, memberships and their
    # organisations) and queries by id: the cached sender is used as it is, without being attached
    # to the session.
    detached_sender: bool = False
    # Further words from the phrase table (bot.phrases), matched after `words`; help shows `words`.
    synonyms: tuple[str, ...] = ()
    # The whole first line must match this instead of a word (a bare check-in code).
    pattern: re.Pattern | None = None
    # The first argument is an item's number: one that cannot be (`፩`, 10,000 digits) is refused
    # before the handler runs.
    numbered: bool = False

    def match(self, msg: InboundMessage, text: str) -> Command | None:
        if self.event is not None:
            key = msg.event_key or ""
            if msg.kind is InboundKind.EVENT and msg.event == self.event and (
                    not self.keys or key.startswith(self.keys)):
                return Command(word=self.event, args=key)
            return None
        if msg.kind is not InboundKind.TEXT:
            return None
        first = text.partition("\n")[0]
        if self.pattern is not None:
            return Command(word="", args=first, text=first) if self.pattern.fullmatch(first) else None
        for word in self.words + self.synonyms:
            if first == word or (first.startswith(word) and _is_boundary(first[len(word):])):
                args = first[len(word):]
                args = "" if _only_closing(args) else args.strip(" ,，、:：;；").lstrip(_CLOSING)
                raw_first, raw_body = _as_typed(msg.text)
                raw_args = raw_first[len(word):] if raw_first.startswith(word) else ""
                raw_args = "" if not args else raw_args.strip(_TRIM).lstrip(_CLOSING + _TRIM)
                if implied := IMPLIED_ARGS.get(word):
                    args, raw_args = f"{implied} {args}".strip(), f"{implied} {raw_args}".strip()
                return Command(word=word, args=args, body=raw_body, text=raw_args)
        return None


_LEADING_NUMBER = re.compile(r"^[#＃]?[0-9０-９]+[\s\u3000,，、:：;；]*")
_TRIM = " \t\u3000\u00a0,，、:：;；"
_CLOSING = "。.!！~～"  # `收到！坚决完成任务`: after the word, not at the end of a note


def _as_typed(text: str) -> tuple[str, str]:
    """The first non-empty line and the following non-empty lines, trimmed but otherwise as typed."""
    lines = [line.strip(" \t\u3000\u00a0") for line in (text or "").splitlines()]
    lines = [line for line in lines if line]
    return (lines[0] if lines else ""), "\n".join(lines[1:])


def _is_boundary(rest: str) -> bool:
    """`收到 3`, `收到3`, `收到#3`, `收到！` match 收到; `收到了吗` does not."""
    return bool(rest) and (rest[0] in " ,，、:：;；#＃。!！~～" or rest[0].isdigit() or _only_closing(rest))


def _only_closing(rest: str) -> bool:
    """Nothing but closing punctuation, as people end `收到。` / `收到！`; `?` is a question, not this."""
    return bool(rest) and not rest.strip("。.!！~～ ")


