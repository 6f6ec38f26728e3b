"""导出 编号: the one-file-per-matter document (一事一档), answered at once and built by the worker.

A file for 100,000 recipients takes longer than WeChat waits for an answer (5 s), so the
handler only queues an export request in the message's transaction; the worker builds the DOCX
and sends it back (a file message in WeCom, a signed download link on the Official Account)."""

from __future__ import annotations

from bot.access import may_export
from bot.command import Command
from bot.context import Context
from bot.messages import Reply
from bot.reports.matter import find_item
from models.export import request_export

USAGE = "导出 12"
MAX_DIGITS = 10
ACCEPTED = "正在生成 #{number} 的档案文件，稍后发给您。"


def handle(cmd: Command, ctx: Context) -> Reply:
    args = cmd.arg_list
    if not args or not (args[0].isascii() and args[0].isdigit()) or len(args[0]) > MAX_DIGITS:
        return Reply(f"请写明要导出的编号，例如：{USAGE}")
    number = int(args[0])
    item = find_item(ctx.session, number)
    if item is None:
        return Reply(f"没有编号为 #{number} 的通知、学习或会议。")
    if not may_export(ctx.person, item):
        return Reply(f"您无权导出 #{number}：只有发布组织（或会议所在支部）的书记、支委和联络员可以导出。")
    request_export(ctx.session, number=number, person_id=ctx.person.id, channel=ctx.msg.channel.value,
                   recipient=ctx.msg.sender, now=ctx.now)
    return Reply(ACCEPTED.format(number=number))
