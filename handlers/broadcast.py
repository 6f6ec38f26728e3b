"""发布 / 进度 / 催办: secretaries broadcast a directive straight to every branch beneath them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.access import may_nudge, progress_scopes
from bot.command import Command
from bot.context import Context
from bot.messages import Reply
from bot.texts import directive as texts
from bot.timeparse import TimeParseError, parse_future_time
from bot.web.links import page_url
from models.directive import Delivery, DeliveryRole, DeliveryStatus, Directive, issue
from models.outbox import OutboxChannel, enqueue

NUDGE_INTERVAL = timedelta(minutes=30)
USAGE = "发布格式：\n发布 标题\n正文（可多行）\n截止 时间（可选，例如：截止 12月1日17:00）"


def handle_publish(cmd: Command, ctx: Context) -> Reply:
    title = cmd.free_text.strip()
    lines = [line for line in cmd.body.split("\n") if line.strip()]
    deadline = None
    if lines and lines[-1].startswith("截止"):
        when = lines.pop()[2:].strip(" :：\u3000")
        try:
            deadline = parse_future_time(when, now=ctx.now, tz=ctx.settings.tz)
        except TimeParseError as exc:
            return Reply(f"未发布：截止时间有误，{exc}。\n{USAGE}")
    if not title:
        return Reply(f"未发布：缺少标题。\n{USAGE}")
    if len(title) > 200:
        return Reply("未发布：标题太长（最多 200 字），请把细节写在正文里。")
    org = _issuing_org(ctx)
    directive = issue(ctx.session, org=org, issuer=ctx.person, title=title, body="\n".join(lines),
                      deadline=deadline, now=ctx.now, render=lambda d, role, channel: texts.push(
                          d, role, channel, ctx.settings.tz, url=page_url(ctx.settings, f"d/{d.id}")))
    due = f"，截止 {ctx.fmt(deadline)}" if deadline else ""
    return Reply(f"已发布 #{directive.id}，推送 {directive.recipient_count} 人{due}。发送「进度 {directive.id}」查看确认情况。")


def _issuing_org(ctx: Context):
    """The highest organisation the secretary leads (a directive goes to everything beneath it)."""
    return min(ctx.person.led_organisations(), key=lambda o: (o.depth, o.path))


def _find_visible(ctx: Context, number: int) -> tuple[Directive | None, str | None]:
    directive = ctx.session.get(Directive, number)
    if directive is None:
        return None, f"没有编号为 #{number} 的通知。"
    return directive, None


def _number(cmd: Command, ctx: Context, usage: str) -> tuple[int | None, Reply | None]:
    args = cmd.arg_list
    if not args or not args[0].isdigit():
        return None, Reply(f"请写明编号，例如：{usage}")
    return int(args[0]), None


def handle_progress(cmd: Command, ctx: Context) -> Reply:
    number, error = _number(cmd, ctx, "进度 12")
    if error:
        return error
    directive, problem = _find_visible(ctx, number)
    if problem:
        return Reply(problem)
    return scoped_progress(ctx, directive, cmd, f"您无权查看 #{number} 的进度：只有发布组织、所涉组织的书记和支委以及联络员可以查看。")


def scoped_progress(ctx: Context, directive: Directive, cmd: Command, refusal: str, *,
                    metric: str = "acknowledged") -> Reply:
    """进度 / 学习进度 over what this person may see, narrowed by an organisation they name."""
    from handlers.progress import progress_report

    scopes = progress_scopes(ctx.person, directive)
    if not scopes:
        return Reply(refusal)
    scopes, problem = narrow_scopes(ctx, scopes, cmd)
    if problem:
        return Reply(problem)
    from bot.web.links import reply_link

    link = reply_link(ctx, f"d/{directive.id}" + (f"?org={scopes[0].id}" if len(scopes) == 1
                                                 and scopes[0].id != directive.organisation_id else ""))
    return Reply(progress_report(ctx, directive, scopes, metric=metric, link=link), link=link)


def narrow_scopes(ctx: Context, scopes: list, cmd: Command) -> tuple[list, str | None]:
    """`进度 12 综合处党支部`: only that organisation's part, if it lies within what one may see."""
    name = " ".join(cmd.arg_list[1:]).strip()
    if not name:
        return scopes, None
    from models.org import subtree

    for scope in scopes:
        for o in subtree(ctx.session, scope):
            if o.name == name or o.path.endswith("/" + name) or o.path == name:
                return [o], None
    return scopes, f"在您可以查看的范围内没有找到组织「{name}」。"


def handle_nudge(cmd: Command, ctx: Context) -> Reply:
    number, error = _number(cmd, ctx, "催办 12")
    if error:
        return error
    directive, problem = _find_visible(ctx, number)
    if problem:
        return Reply(problem)
    if not may_nudge(ctx.person, directive):
        return Reply(f"只有发布组织的书记和支委可以催办 #{number}。")
    if directive.last_nudged_at and ctx.now - directive.last_nudged_at < NUDGE_INTERVAL:
        wait = directive.last_nudged_at + NUDGE_INTERVAL
        return Reply(f"#{number} 已于 {ctx.fmt(directive.last_nudged_at)} 催办过，{ctx.fmt(wait)} 后才能再次催办。")
    from models.identity import ChannelIdentity

    pending = ctx.session.execute(
        select(Delivery.id, Delivery.person_id, ChannelIdentity.channel, ChannelIdentity.external_id)
        .join(ChannelIdentity, ChannelIdentity.person_id == Delivery.person_id)
        .where(Delivery.directive_id == directive.id, Delivery.role == DeliveryRole.TASK,
               Delivery.acknowledged_at.is_(None), Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENT]))
    ).all()
    seen: set[int] = set()
    payload = texts.nudge(directive, ctx.settings.tz)
    for delivery_id, person_id, channel, external_id in pending:
        if person_id in seen:
            continue
        seen.add(person_id)
        enqueue(ctx.session, OutboxChannel(channel.value), external_id, payload, person_id=person_id, at=ctx.now,
                subject_type="nudge", subject_id=delivery_id)
    directive.last_nudged_at = ctx.now
    from models.event import record

    record(ctx.session, "directive.nudged", actor=ctx.person, subject=directive, at=ctx.now, data={"reminded": len(seen)})
    if not seen:
        return Reply(f"#{number} 所有人都已确认，无需催办。")
    return Reply(f"已向 {len(seen)} 位尚未确认的同志推送 #{number} 的催办提醒。")

