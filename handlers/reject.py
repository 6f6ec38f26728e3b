"""驳回 编号: one word for two kinds of item, decided by the kind the number is (SPEC §3):
a self-reported points item goes to handlers/points.py, anything else to the leave requests."""

from __future__ import annotations

from bot.command import Command, as_number
from bot.context import Context
from bot.messages import Reply
from handlers import meeting, points
from models.numbers import ItemKind, lookup


def handle(cmd: Command, ctx: Context) -> Reply:
    args = cmd.arg_list
    number = as_number(args[0]) if args else None
    if number is not None:
        found = lookup(ctx.session, number)
        if found is not None and found.kind is ItemKind.SELF_REPORT:
            return points.handle_reject(cmd, ctx)
    return meeting.handle_reject(cmd, ctx)
