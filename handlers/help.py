"""帮助: the commands this person may use, by role."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.command import Route, mp_followers, secretaries, secretaries_or_liaisons
from bot.context import Context
from bot.messages import Reply
from handlers import welcome


def handle(_cmd, ctx: Context, *, table: Callable[[], Sequence[Route]]) -> Reply:
    """`table` gives the route table (the router passes its own, so this module never imports it)."""

    if ctx.person is None:
        # Someone the roster does not know (yet) can do nothing but get access: say how.
        return welcome.unknown_person(ctx)
    allowed: dict = {}  # audience → verdict: a handful of audiences serve all the routes
    lines = [r.usage for r in table() if r.usage and _allowed(r.audience, ctx, allowed)]
    name = ctx.person.name if ctx.person else "您"
    roles = _role_line(ctx)
    head = f"{name}您好，我是直通车。{roles}您可以发送：" if ctx.person else "您好，我是直通车。您可以发送："
    return Reply("\n".join([head, *("· " + line for line in lines)]))


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

    if route.audience is secretaries:
        return Reply(f"「{route.words[0]}」只有书记、副书记或支委可以使用。发送「帮助」查看您可用的命令。")
    if route.audience is secretaries_or_liaisons:
        return Reply(f"「{route.words[0]}」只有书记、副书记、支委或联络员可以使用。发送「帮助」查看您可用的命令。")
    return Reply(f"您不能使用「{route.words[0] if route.words else route.name}」。发送「帮助」查看您可用的命令。")
