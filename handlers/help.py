"""帮助 and 没看懂: the commands this person uses most, by role, and the closest command to unread text."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rapidfuzz.distance import Hamming

from bot.command import AUDIENCE_NAMES, Command, Route, branch_committees, mp_followers
from bot.context import Context
from bot.messages import InboundKind, Reply
from bot.phrases import EXAMPLES
from handlers import welcome

# What each role sends most, in the order shown; `帮助 全部` lists every command one may use.
# Nine commands at most, with the greeting and the `帮助 全部` line: one phone screen (≤ 12 lines).
MOST_USED = {
    "secretary": ("publish", "progress", "nudge", "meeting", "leave_approve", "leave_reject", "study_assign",
                  "todo", "ack"),
    "liaison": ("overview", "progress", "study_progress", "todo", "ack", "complete", "study_confirm"),
    "member": ("help", "todo", "ack", "complete", "study_list", "study_confirm", "checkin", "leave", "detail"),
}
MOST_SHOWN = 9
# What one passive reply holds (bot/dispatch.py's REPLY_LIMIT_BYTES): 帮助 全部 stays one message.
ONE_MESSAGE_BYTES = 2000
# Below this similarity (0–1) nothing is close: the answer offers 帮助 instead of a guess.
CLOSE_ENOUGH = 0.5
_MARKUP = re.compile(r"[<>]|]]")
_FIRST_WORD = re.compile(r"[\s0-9#,，、:：;；]+")


def handle(cmd: Command, ctx: Context, *, table: Callable[[], Sequence[Route]]) -> Reply:
    """`table` gives the route table (the router passes its own, so this module never imports it).
    A command without a word is text nothing else matched: `没看懂`."""
    if not cmd.word and ctx.msg.kind is InboundKind.TEXT:
        return not_understood(cmd, ctx, table=table)
    if ctx.person is None:
        # Someone the roster does not know (yet) can do nothing but get access: say how.
        return welcome.unknown_person(ctx)
    usable = _usable(table(), ctx)
    head = f"{ctx.person.name}您好，我是直通车。{_role_line(ctx)}您可以发送："
    if cmd.args.startswith("全部"):
        full = "\n".join([head, *("· " + r.usage for r in usable)])
        if len(full.encode("utf-8")) <= ONE_MESSAGE_BYTES:
            return Reply(full)
        # Too long for one message (a secretary may use every command): the forms alone, one screen.
        forms = [r.usage.split(" — ", 1)[0] for r in usable]
        return Reply("\n".join([head, *("· " + f for f in forms), "发送「帮助」查看常用命令的说明。"]))
    shown = _most_used(usable, ctx)
    lines = [head, *("· " + r.usage for r in shown)]
    if rest := len(usable) - len(shown):
        lines.append(f"· 帮助 全部 — 查看其余 {rest} 个命令")
    return Reply("\n".join(lines))


def _usable(table: Sequence[Route], ctx: Context) -> list[Route]:
    allowed: dict = {}  # audience → verdict: a handful of audiences serve all the routes
    return [r for r in table if r.usage and _allowed(r.audience, ctx, allowed)]


def _most_used(usable: list[Route], ctx: Context) -> list[Route]:
    person = ctx.person
    roles = [role for role, has in (("secretary", person.is_secretary()), ("liaison", person.is_liaison()))
             if has] or ["member"]
    by_name = {r.name: r for r in usable}
    names = list(dict.fromkeys(name for role in roles for name in MOST_USED[role] if name in by_name))
    return [by_name[name] for name in names[:MOST_SHOWN]]


def not_understood(cmd: Command, ctx: Context, *, table: Callable[[], Sequence[Route]]) -> Reply:
    """`没看懂「…」`, the closest command this person may use and one example; never the whole help."""
    if ctx.person is None:
        return welcome.unknown_person(ctx)
    typed = (ctx.msg.text or "").strip().partition("\n")[0].strip() or cmd.args
    # What was typed is echoed, short, unless it carries markup: a reply never repeats `]]><x/>`.
    shown = "您的消息" if _MARKUP.search(typed) else f"「{typed if len(typed) <= 20 else typed[:20] + '…'}」"
    route = closest(cmd.args, _usable(table(), ctx))
    if route is None:
        return Reply(f"没看懂{shown}。发送「帮助」查看常用命令，例如：待办")
    example = EXAMPLES.get(route.name, route.words[0])
    return Reply(f"没看懂{shown}。您是想用「{route.words[0]}」吗？例如：{example}\n发送「帮助」查看常用命令。")


def closest(text: str, usable: Sequence[Route]) -> Route | None:
    """The route whose word is most like the text's first word (`收倒 3` → 收到): the command
    words first, then the phrase table's. Typos in Chinese are mostly a character swapped for
    another of the same sound, so characters are compared in place (Hamming similarity, padded
    to the longer): `你好` is like no command, although it shares a character with `好的`."""
    token = _FIRST_WORD.split(text.strip(), maxsplit=1)[0][:12]
    if not token:
        return None
    for words_of in (lambda r: r.words, lambda r: r.synonyms):
        best, found = 0.0, None
        for r in usable:
            for word in words_of(r):
                score = _similarity(token, word)
                if score > best:
                    best, found = score, r
        if best >= CLOSE_ENOUGH:
            return found
    return None


def _similarity(token: str, word: str) -> float:
    """0–1; a text that begins with the word is close (`帮助我`), the closer the more of it the word is."""
    if token.startswith(word):
        return 0.5 + 0.49 * len(word) / len(token)
    return Hamming.normalized_similarity(token, word)


def _allowed(audience, ctx: Context, seen: dict) -> bool:
    if audience not in seen:
        seen[audience] = audience(ctx.person, ctx)
    return seen[audience]


def _role_line(ctx: Context) -> str:
    person = ctx.person
    if person is None:
        return ""
    parts = []
    for org in person.led_organisations():
        titles = "、".join(sorted({r.role.label for r in person.roles if r.organisation_id == org.id and r.role.is_committee}))
        parts.append(f"{org.name}{titles}")
    if person.is_liaison():
        parts.append("联络员")
    return f"（{'；'.join(parts)}）" if parts else ""


def not_allowed(route: Route, ctx: Context) -> Reply:
    if route.audience is mp_followers:  # 绑定 sent in WeCom, where the roster already says who you are
        if ctx.person is None:
            return welcome.unknown_person(ctx)
        return Reply("企业微信账号已通过名册识别，无需绑定。绑定只用于微信公众号。发送「帮助」查看可用命令。")
    word = route.words[0] if route.words else route.name
    who = AUDIENCE_NAMES.get(route.audience)
    if who is None:
        return Reply(f"您不能使用「{word}」。发送「帮助」查看您可用的命令。")
    if route.audience is branch_committees:
        return Reply(f"「{word}」由党支部安排，只有{who}可以使用，您不是党支部的支委。发送「帮助」查看您可用的命令。")
    return Reply(f"「{word}」只有{who}可以使用。发送「帮助」查看您可用的命令。")
