"""Linking Official Account followers to roster people with one-time codes."""

from __future__ import annotations

import re

from bot.command import Command
from bot.context import Context
from bot.messages import Reply
from models.identity import BINDING_CODE_TTL, BindingResult, Channel, issue_binding_code, redeem_binding_code
from models.person import members_under, people_named

_CODE = re.compile(r"^\d{6}$")


def handle_issue(cmd: Command, ctx: Context) -> Reply:
    """绑定码 姓名: a secretary issues a code for someone in their own organisation."""
    name = cmd.args.strip()
    if not name:
        return Reply("请写明姓名，例如：绑定码 张伟")
    led = ctx.person.led_organisations()
    candidates = [
        p for p in people_named(ctx.session, name)
        if any(p in members_under(ctx.session, org) or _holds_role_under(p, org) for org in led)
    ]
    if not candidates:
        scope = "、".join(o.name for o in led)
        return Reply(f"在您负责的组织（{scope}）中没有找到「{name}」。请核对姓名，或确认此人已在名册中。")
    if len(candidates) > 1:
        return Reply(f"您负责的组织中有 {len(candidates)} 位「{name}」，无法确定是哪一位，请联系管理员处理。")
    person = candidates[0]
    code, row = issue_binding_code(
        ctx.session, person, issued_by=ctx.person, now=ctx.now, secret=ctx.settings.secret_key
    )
    hours = int(BINDING_CODE_TTL.total_seconds() // 3600)
    return Reply(
        f"已为{person.name}生成绑定验证码：{code}\n"
        f"有效期 {hours} 小时（至 {ctx.fmt(row.expires_at)}），只能使用一次。"
        f"请当面交给本人，由本人在公众号发送「绑定 {code}」。"
    )


def _holds_role_under(person, org) -> bool:
    return any(r.organisation.is_within(org) for r in person.roles)


def handle_bind(cmd: Command, ctx: Context) -> Reply:
    """绑定 验证码: an Official Account follower links to the person the code names (the route's
    audience keeps WeCom out; `help.not_allowed` answers there)."""
    code = cmd.args.replace(" ", "")
    if not _CODE.match(code):
        return Reply("验证码是 6 位数字，例如：绑定 123456")
    result, person = redeem_binding_code(
        ctx.session, Channel.MP, ctx.msg.sender, code, now=ctx.now, secret=ctx.settings.secret_key
    )
    if result is BindingResult.BOUND:
        ctx.roster_changed = True
        return Reply(f"{person.name}您好，绑定成功。发送「帮助」查看可用命令，发送「待办」查看待办事项。")
    if result is BindingResult.ALREADY_BOUND:
        return Reply(f"您已绑定为{person.name}，无需重复绑定。")
    if result is BindingResult.LOCKED:
        return Reply("验证码错误次数过多，请 1 小时后再试，或联系书记重新生成验证码。")
    if result is BindingResult.PAUSED:
        return Reply("近 1 小时内验证码错误次数过多，绑定暂停，请 1 小时后再试。如急需绑定，请联系书记。")
    if result is BindingResult.CODE_VOID:
        return Reply("这个验证码有效期间出现了过多的错误尝试，为安全起见已作废。请联系书记重新生成验证码。")
    return Reply("验证码不正确或已失效（验证码 24 小时内有效，只能使用一次）。请核对后重试。")
