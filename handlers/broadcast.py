"""发布 / 进度 / 催办: secretaries broadcast a directive straight to every branch beneath them."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, or_, select

from bot.access import nudge_scopes, progress_scopes
from bot.command import Command
from bot.context import Context
from bot.messages import Reply
from bot.texts import directive as texts
from bot.timeparse import TimeParseError, parse_future_time, parse_time
from bot.web.links import page_url
from handlers.numbered import find, resolve
from handlers.targeting import recipients_line, resolve_scope, take_scope_line
from models.directive import Delivery, DeliveryRole, DeliveryStatus, Directive, issue
from models.numbers import ItemKind
from models.outbox import OutboxChannel, OutboxMessage, enqueue

NUDGE_INTERVAL = timedelta(minutes=30)
USAGE = "发布格式：\n发布 标题\n正文（可多行）\n截止 时间（可选，例如：截止 12月1日17:00；也可写在标题后：发布 标题 截止 12月1日）"


def handle_publish(cmd: Command, ctx: Context) -> Reply:
    title = cmd.free_text.strip()
    lines = [line for line in cmd.body.split("\n") if line.strip()]
    lines, scope_text = take_scope_line(lines)
    deadline = None
    try:
        title, when = _title_deadline(title, ctx)
        if when is None:
            lines, when = _body_deadline(lines, ctx)
        if when is not None:
            deadline = parse_future_time(when, now=ctx.now, tz=ctx.settings.tz)
    except TimeParseError as exc:
        return Reply(f"未发布：截止时间有误，{exc}。\n{USAGE}")
    if not title:
        return Reply(f"未发布：缺少标题。\n{USAGE}")
    if len(title) > 200:
        return Reply("未发布：标题太长（最多 200 字），请把细节写在正文里。")
    org = _issuing_org(ctx)
    scope, problem = resolve_scope(ctx, org, scope_text)
    if problem:
        return Reply(f"未发布：{problem}")
    directive = issue(ctx.session, org=org, issuer=ctx.person, title=title, body="\n".join(lines),
                      deadline=deadline, now=ctx.now, render=lambda d, role, channel: texts.push(
                          d, role, channel, ctx.settings.tz, url=page_url(ctx.settings, f"d/{d.id}")),
                      targets=scope.parts, committees_only=scope.committees_only)
    due = f"，截止 {ctx.fmt(deadline)}" if deadline else ""
    sent = recipients_line(ctx, directive, scope)
    return Reply(f"已发布 #{directive.number}，{sent}{due}。发送「进度 {directive.number}」查看确认情况。")


# `截止 12月20日`, `截止时间：12月20日`, `截至12月20日前`: the label and the time after it.
_DEADLINE = re.compile(r"(?:截止|截至)(?:时间|日期)?[\s:：]*(?P<when>.*)$")
_LABELLED = re.compile(r"^(?:截止|截至)(?:时间|日期|[\s:：])")
_SPACED_LABEL = re.compile(r"\s(?:截止|截至)(?:时间|日期)?(?:\s+|[:：]\s*)")


def _title_deadline(title: str, ctx: Context) -> tuple[str, str | None]:
    """`发布 标题 截止 时间` on one line: the title and the time, when what follows 截止 is a time
    (`关于截止日期调整的通知` keeps its title)."""
    for m in reversed(list(_DEADLINE.finditer(title))):
        before = title[:m.start()].rstrip(" \t\u3000,，。;；")
        if before and _is_time(m["when"], ctx):
            return before, m["when"]
    # `标题 截止 …` with the label set apart by a space is meant as a deadline: one that is not a time is
    # refused (by parse_future_time later) rather than published without a deadline inside the title.
    spaced = list(_SPACED_LABEL.finditer(title))
    if spaced and (before := title[:spaced[-1].start()].rstrip(" \t\u3000,，。;；")):
        return before, title[spaced[-1].end():].strip()
    return title, None


def _body_deadline(lines: list[str], ctx: Context) -> tuple[list[str], str | None]:
    """A `截止 时间` line anywhere in the body; it leaves the body. A labelled line that is not a
    time is refused (by parse_future_time later) when it is the last line, as people end with it."""
    for i, line in enumerate(lines):
        m = _DEADLINE.match(line.strip())
        if m and (_is_time(m["when"], ctx) or (i == len(lines) - 1 and _LABELLED.match(line.strip()))):
            return lines[:i] + lines[i + 1:], m["when"]
    return lines, None


def _is_time(text: str, ctx: Context) -> bool:
    try:
        parse_time(text, now=ctx.now, tz=ctx.settings.tz)
    except TimeParseError:
        return False
    return True


def _issuing_org(ctx: Context):
    """The highest organisation the secretary leads (a directive goes to everything beneath it)."""
    return min(ctx.person.led_organisations(), key=lambda o: (o.depth, o.path))


def _find_visible(ctx: Context, number: int) -> tuple[Directive | None, str | None]:
    directive, wrong = find(ctx.session, number, ItemKind.DIRECTIVE)
    if directive is None:
        return None, wrong or f"没有编号为 #{number} 的通知。"
    return directive, None


def _number(cmd: Command, ctx: Context, usage: str) -> tuple[int | None, Reply | None]:
    args = cmd.arg_list
    if not args or not args[0].isdigit():
        return None, Reply(f"请写明编号，例如：{usage}")
    return int(args[0]), None


RECENT_SHOWN = 5


def handle_progress(cmd: Command, ctx: Context) -> Reply:
    if not cmd.arg_list:
        return _recent_progress(ctx)
    number, error = _number(cmd, ctx, "进度 12")
    if error:
        return error
    kind, item, wrong = resolve(ctx.session, number, ItemKind.DIRECTIVE, ItemKind.STUDY)
    if item is None:
        return Reply(wrong or f"没有编号为 #{number} 的通知。")
    return directive_or_study_progress(ctx, kind, item, cmd)


def directive_or_study_progress(ctx: Context, kind: ItemKind, item: Directive, cmd: Command) -> Reply:
    """进度 N and 学习进度 N answer alike for one number: a study item's completions, a
    directive's acknowledgements."""
    if kind is ItemKind.STUDY:
        return scoped_progress(ctx, item, cmd, f"您无权查看学习 #{item.number} 的进度。", metric="completed")
    return scoped_progress(ctx, item, cmd, f"您无权查看 #{item.number} 的进度：只有发布组织、所涉组织的书记和支委"
                                           "以及联络员可以查看。")


def _recent_progress(ctx: Context) -> Reply:
    """`进度` alone: the sender's latest directives, each with its acknowledgement rate."""
    from models.directive import DirectiveKind

    recent = ctx.session.execute(
        select(Directive.number, Directive.title, Directive.created_at, Directive.withdrawn_at,
               select(func.count()).where(Delivery.directive_id == Directive.id, Delivery.role == DeliveryRole.TASK)
               .scalar_subquery(),
               select(func.count(Delivery.acknowledged_at)).where(Delivery.directive_id == Directive.id,
                                                                  Delivery.role == DeliveryRole.TASK)
               .scalar_subquery())
        .where(Directive.issuer_id == ctx.person.id, Directive.kind == DirectiveKind.DIRECTIVE)
        .order_by(Directive.created_at.desc(), Directive.id.desc()).limit(RECENT_SHOWN)).all()
    if not recent:
        return Reply("您最近没有发布通知。查看某条通知请写明编号，例如：进度 12")
    lines = [f"您最近发布的 {len(recent)} 条通知："]
    for number, title, created_at, withdrawn, total, acked in recent:
        rate = f"{round(100 * acked / total)}%" if total else "无接收人"
        rate += f"（已于 {ctx.fmt(withdrawn)} 撤回）" if withdrawn else ""
        lines.append(f"· #{number} {title}（{ctx.fmt(created_at)}）已确认 {acked}/{total}，{rate}")
    lines.append(f"查看明细请发送「进度 编号」，例如：进度 {recent[0][0]}")
    return Reply("\n".join(lines))


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
    scopes = nudge_scopes(ctx.person, directive)
    if not scopes:
        return Reply(f"只有发布组织和所涉组织的书记、副书记、支委可以催办 #{number}（各自催办本组织范围内的同志）。")
    from models.identity import ChannelIdentity
    from models.org import Organisation

    # Two secretaries chasing at once: one after the other, so nobody is reminded twice. The lock
    # also waits for a 撤回 in progress, and reads the withdrawal as it committed.
    withdrawn_at = ctx.session.scalar(
        select(Directive.withdrawn_at).where(Directive.id == directive.id).with_for_update())
    if withdrawn_at is not None:
        return Reply(f"#{number} 已于 {ctx.fmt(withdrawn_at)} 撤回，无需催办。")
    whole = scopes == [directive.organisation]
    in_part = or_(*(or_(Organisation.id == o.id, Organisation.path.startswith(o.path + "/", autoescape=True))
                    for o in scopes))
    query = (
        select(Delivery.id, Delivery.person_id, ChannelIdentity.channel, ChannelIdentity.external_id)
        .join(ChannelIdentity, ChannelIdentity.person_id == Delivery.person_id)
        .where(Delivery.directive_id == directive.id, Delivery.role == DeliveryRole.TASK,
               Delivery.acknowledged_at.is_(None), Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENT]))
        .order_by(Delivery.id)
    )
    if not whole:
        query = query.join(Organisation, Organisation.id == Delivery.organisation_id).where(in_part)
        has_part = ctx.session.scalar(
            select(func.count()).select_from(Delivery).join(Organisation, Organisation.id == Delivery.organisation_id)
            .where(Delivery.directive_id == directive.id, Delivery.role == DeliveryRole.TASK, in_part))
        if not has_part:
            return Reply(f"{texts.not_sent_to(number, scopes)}，无需您催办。")
    pending = ctx.session.execute(query.where(Delivery.person_id != ctx.person.id)).all()
    # Whoever chases, a person is reminded of one item at most once per NUDGE_INTERVAL: the nudges
    # already queued for these deliveries say when each was last reminded.
    since = ctx.now - NUDGE_INTERVAL
    recent = dict(ctx.session.execute(
        select(OutboxMessage.subject_id, func.max(OutboxMessage.created_at))
        .where(OutboxMessage.subject_type == "nudge",
               OutboxMessage.subject_id.in_([row[0] for row in pending] or [0]),
               OutboxMessage.created_at > since)
        .group_by(OutboxMessage.subject_id)).all())
    reminded: set[int] = set()
    skipped: set[int] = set()
    payload = texts.nudge(directive, ctx.settings.tz)
    for delivery_id, person_id, channel, external_id in pending:
        if person_id in reminded or person_id in skipped:
            continue
        if delivery_id in recent:
            skipped.add(person_id)
            continue
        reminded.add(person_id)
        enqueue(ctx.session, OutboxChannel(channel.value), external_id, payload, person_id=person_id, at=ctx.now,
                subject_type="nudge", subject_id=delivery_id)
    if reminded:
        directive.last_nudged_at = ctx.now
    from models.event import record

    record(ctx.session, "directive.nudged", actor=ctx.person, subject=directive, at=ctx.now,
           data={"reminded": len(reminded), "skipped": len(skipped),
                 "scopes": None if whole else [o.path for o in scopes]})
    part = "" if whole else "、".join(o.name for o in scopes)
    if not reminded and not skipped:
        return Reply(f"#{number}{'（' + part + '）' if part else ''} 所有人都已确认，无需催办。")
    if not reminded:
        wait = min(recent.values()) + NUDGE_INTERVAL
        return Reply(f"#{number}{'（' + part + '）' if part else ''} 尚未确认的 {len(skipped)} 位同志刚被催办过，"
                     f"每人 30 分钟内只提醒一次，{ctx.fmt(wait)} 后才能再次催办。")
    also = f"；{len(skipped)} 位 30 分钟内刚被催办过，这次未再提醒" if skipped else ""
    return Reply(f"已向{part} {len(reminded)} 位尚未确认的同志推送 #{number} 的催办提醒{also}。")
