"""First contact: follows, entering the app, and people the roster does not know."""

from __future__ import annotations

from bot.context import Context
from bot.messages import Reply
from models.identity import Channel


def unknown_person(ctx: Context) -> Reply:
    if ctx.msg.channel is Channel.MP:
        return Reply(
            "您好，这里是直通车党务助手。您还没有绑定党员身份。\n"
            "请向所在党支部书记索取 6 位验证码，然后发送「绑定 验证码」完成绑定，例如：绑定 123456"
        )
    return Reply(
        "您好，这里是直通车党务助手。系统名册中还没有您的企业微信账号，"
        "请联系所在党支部书记或机关党委管理员把您加入名册后再使用。"
    )


def handle_subscribe(_cmd, ctx: Context) -> Reply:
    if ctx.person is None:
        return unknown_person(ctx)
    return Reply(f"{ctx.person.name}您好，欢迎回来。发送「帮助」查看可用命令，发送「待办」查看待办事项。")


def handle_enter(_cmd, ctx: Context) -> Reply | None:
    # Entering the app happens often; greeting every time would be noise.
    return None
