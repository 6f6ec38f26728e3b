"""收到 / 完成 and the 收到 button: members acknowledge directives and report them done."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from bot.command import Command, as_number
from bot.context import Context
from bot.messages import Reply
from bot.texts.directive import note_addition
from bot.texts.lifecycle import withdrawn_answer
from bot.texts.numbers import wrong_kind
from handlers.numbered import identify, resolve
from models.cards import queue_update, update_payload
from models.directive import (
    Acknowledgement,
    AckResult,
    Delivery,
    Directive,
    DirectiveKind,
    acknowledge,
    complete,
    open_items,
)
from models.identity import Channel
from models.numbers import ItemKind


def handle_ack(cmd: Command, ctx: Context) -> Reply:
    """`收到`, `收到 3`, `收到 1 3` / `收到 1、3` (each), `全部收到` (every open one)."""
    args = cmd.arg_list
    numbers = list(dict.fromkeys(n for n in map(as_number, args) if n is not None))
    if numbers:
        return Reply("\n".join(_ack_one(ctx, n) for n in numbers[:MAX_AT_ONCE]))
    owed = open_items(ctx.session, ctx.person.id, DirectiveKind.DIRECTIVE)
    if not owed:
        return Reply("您目前没有需要确认的通知。")
    if args[:1] == ["全部"]:
        return Reply("\n".join(_ack_reply(ctx, acknowledge(ctx.session, d.id, ctx.person.id, at=ctx.now,
                                                            via="text")).text for d, _ in owed[:MAX_AT_ONCE]))
    if len(owed) > 1:
        numbers = "、".join(f"#{d.number}" for d, _ in owed)
        return Reply(f"您有 {len(owed)} 条通知待确认（{numbers}），请写明编号，例如：收到 {owed[0][0].number}；"
                     f"都已收到可回复「全部收到」")
    return _ack_reply(ctx, acknowledge(ctx.session, owed[0][0].id, ctx.person.id, at=ctx.now, via="text"))


# One reply answers at most this many numbers (a pasted list of hundreds is not an acknowledgement).
MAX_AT_ONCE = 20


def _ack_one(ctx: Context, number: int) -> str:
    """`收到 N`: a directive's number acknowledges it; a study item's confirms the study (收到 is
    what people send for anything they were sent); any other kind is told what it is."""
    from handlers import study

    found = identify(ctx.session, number)
    if found is None:
        return f"没有编号为 #{number} 的通知。发送「待办」查看您需要确认的通知。"
    kind, item_id = found
    if kind is ItemKind.DIRECTIVE:  # the common case: no entity loaded, one compare-and-set
        return _ack_reply(ctx, acknowledge(ctx.session, item_id, ctx.person.id, at=ctx.now, via="text")).text
    if kind is ItemKind.STUDY:
        return study.confirm(ctx, ctx.session.get(Directive, item_id), "").text
    return wrong_kind(number, kind, (ItemKind.DIRECTIVE, ItemKind.STUDY))


def _ack_reply(ctx: Context, ack: Acknowledgement) -> Reply:
    if ack.result is AckResult.WITHDRAWN:
        return Reply(withdrawn_answer(ack.number, ack.title, ctx.fmt(ack.withdrawn_at)))
    if ack.result is AckResult.NOT_RECIPIENT:
        return Reply(f"#{ack.number} 不是发给您的任务，无需确认。")
    if ack.result is AckResult.ALREADY:
        return Reply(f"您已于 {ctx.fmt(ack.acknowledged_at)} 确认收到 #{ack.number}「{ack.title}」。")
    late = "（已过截止时间，记为逾期确认）" if ack.late else ""
    return Reply(f"已确认收到 #{ack.number}「{ack.title}」，时间 {ctx.fmt(ack.acknowledged_at)}{late}。"
                 f"办结后可回复「完成 {ack.number} 说明」。")


def handle_card_tap(cmd: Command, ctx: Context) -> Reply | None:
    """A button on a WeCom template card: the key says what it is (`ack:12`, `study:12`, …)."""
    from handlers import study

    prefix, _, arg = (cmd.args or "").partition(":")
    if prefix == "ack" and as_number(arg) is not None:
        ack = acknowledge(ctx.session, as_number(arg), ctx.person.id, at=ctx.now, via="button")
        if ack is None:
            return None
        if ack.delivery_id is not None:
            _update_card(ctx, "已确认", ack.delivery_id, ack.acknowledged_at)
        elif ack.result is AckResult.WITHDRAWN:
            _update_card(ctx, "已撤回", None, ack.withdrawn_at, subject=("directive", ack.directive_id))
        return _ack_reply(ctx, ack)
    if prefix == "study" and as_number(arg) is not None:
        reply = study.handle_card_tap(arg, ctx)
        if reply is not None:
            task = ctx.session.execute(select(Delivery.id, Delivery.completed_at).where(
                Delivery.directive_id == int(arg), Delivery.person_id == ctx.person.id)).first()
            if task is not None:
                _update_card(ctx, "已学", *task)
        return reply
    return None


def _update_card(ctx: Context, label: str, delivery_id: int | None, at: datetime | None, *,
                 subject: tuple[str, int] | None = None) -> None:
    """Grey the tapped button out with the recorded time (the tap's code updates its card once)."""
    subject_type, subject_id = subject or ("delivery", delivery_id)
    if ctx.msg.response_code and ctx.msg.channel is Channel.WECOM and at:
        queue_update(ctx.session, update_payload(ctx.msg.response_code, f"{label} {ctx.fmt(at)}"),
                     [(ctx.msg.sender, ctx.person.id)], at=ctx.now, purpose="tap",
                     subject=(subject_type, subject_id))



def _nothing_to_complete(ctx: Context) -> str:
    """`完成` without a number when no task is open: say so, and how to add to the last one reported."""
    last = ctx.session.scalar(
        select(Directive.number).join(Delivery, Directive.id == Delivery.directive_id).where(
            Delivery.person_id == ctx.person.id, Delivery.completed_at.is_not(None),
            Directive.kind == DirectiveKind.DIRECTIVE).order_by(Delivery.completed_at.desc()).limit(1))
    if last is None:
        return "您目前没有需要报告办结的任务。"
    return f"您目前没有未办结的任务。如需补充已办结任务的说明，请写明编号，例如：完成 {last} 补充内容"


def handle_complete(cmd: Command, ctx: Context) -> Reply:
    """`完成 3 说明`; `完成` alone when exactly one task is open; a second `完成 3 补充…` adds to the note."""
    args = cmd.arg_list
    number = as_number(args[0]) if args else None
    if number is None:
        open_tasks = [d for d, _ in open_items(ctx.session, ctx.person.id, DirectiveKind.DIRECTIVE,
                                                      until_completed=True)]
        if not open_tasks:
            return Reply(_nothing_to_complete(ctx))
        if len(open_tasks) != 1:
            listed = "、".join(f"#{d.number}" for d in open_tasks[:10])
            return Reply(f"您有 {len(open_tasks)} 项任务未办结（{listed}），请写明编号，例如：完成 {open_tasks[0].number} 已组织学习并上报")
        directive, note = open_tasks[0], cmd.free_text.strip()
    else:
        kind, directive, wrong = resolve(ctx.session, number, ItemKind.DIRECTIVE, ItemKind.STUDY)
        if wrong:
            return Reply(wrong)
        if directive is None:
            return Reply(f"没有编号为 #{number} 的通知。")
        note = cmd.after_number()
        if kind is ItemKind.STUDY:  # 完成 on a study item: it is done when it is studied
            from handlers import study

            return study.confirm(ctx, directive, note.strip())
    result, delivery = complete(ctx.session, directive, ctx.person, at=ctx.now, note=note,
                                addition=note_addition(note, ctx.fmt(ctx.now)) if note else None)
    if result is AckResult.WITHDRAWN:
        ctx.session.refresh(directive)
        return Reply(withdrawn_answer(directive.number, directive.title, ctx.fmt(directive.withdrawn_at)))
    if result is AckResult.NOT_RECIPIENT:
        return Reply(f"#{directive.number} 不是发给您的任务。")
    if result is AckResult.NOTE_ADDED:
        return Reply(f"已补充 #{directive.number}「{directive.title}」的办结说明（{ctx.fmt(ctx.now)}）：{note}")
    if result is AckResult.ALREADY:
        return Reply(f"您已于 {ctx.fmt(delivery.completed_at)} 报告 #{directive.number} 办结。"
                     f"如需补充说明，请回复「完成 {directive.number} 补充内容」。")
    noted = f"，说明：{delivery.note}" if delivery.note else ""
    return Reply(f"已记录 #{directive.number}「{directive.title}」办结，时间 {ctx.fmt(ctx.now)}{noted}。")
