"""概况: what a liaison officer needs to know about each assigned organisation, in one message.

Per organisation: open directives with their acknowledgement rate, the required meetings held
this period (month / quarter), study completion, and what is overdue. Counts come from grouped
queries over the organisation's subtree; nothing is listed person by person."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select

from bot.access import liaison_organisations
from bot.command import Command
from bot.context import Context
from bot.messages import Reply
from models.directive import Delivery, DeliveryRole, Directive, DirectiveKind
from models.leaving import counted_delivery
from models.org import BRANCH_KINDS, Organisation, OrgKind, subtree

SHOWN_PER_LINE = 3
REPLY_BUDGET_BYTES = 1900  # a WeCom passive text reply carries at most 2,048 bytes


@dataclass
class Rate:
    directive: Directive
    total: int
    done: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100


def handle(_cmd: Command, ctx: Context) -> Reply:
    orgs = liaison_organisations(ctx.person)
    if not orgs:
        return Reply("您还没有联系的组织。请管理员在花名册的「联系组织」一列中填写。")
    lines = [f"概况（{ctx.fmt(ctx.now)}）"]
    for org in orgs:
        lines += organisation_section(ctx, org)
    from bot.web.links import reply_link

    link = reply_link(ctx, "overview")
    return Reply(_fit(lines, link), link=link)


def organisation_section(ctx: Context, org: Organisation) -> list[str]:
    scope = subtree(ctx.session, org)
    ids = [o.id for o in scope]
    directives = _rates(ctx, ids, DirectiveKind.DIRECTIVE)
    studies = _rates(ctx, ids, DirectiveKind.STUDY)
    now = ctx.now
    running = [r for r in directives if r.directive.deadline is None or r.directive.deadline > now]
    overdue = [r for r in directives if r.directive.deadline is not None and r.directive.deadline <= now
               and r.done < r.total]
    lines = [f"【{org.name}】"]
    if running:
        lines.append("通知：" + "；".join(
            f"#{r.directive.number}「{r.directive.title}」已确认 {r.done}/{r.total}（{r.percent}%）"
            + (f"，截止 {ctx.fmt(r.directive.deadline)}" if r.directive.deadline else "")
            for r in running[:SHOWN_PER_LINE]) + _more(running))
    else:
        lines.append("通知：无进行中的通知")
    meetings, missed = _meetings(ctx, [o for o in scope if o.kind in BRANCH_KINDS], scope)
    if meetings:
        lines.append(meetings)
    open_studies = [r for r in studies if r.directive.deadline is None or r.directive.deadline > now]
    if open_studies:
        lines.append("学习：" + "；".join(
            f"#{r.directive.number}「{r.directive.title}」已学 {r.done}/{r.total}（{r.percent}%）"
            for r in open_studies[:SHOWN_PER_LINE]) + _more(open_studies))
    late = [f"#{r.directive.number}「{r.directive.title}」截止 {ctx.fmt(r.directive.deadline)}，{r.total - r.done} 人未确认"
            for r in overdue]
    late += [f"#{r.directive.number}「{r.directive.title}」学习截止 {ctx.fmt(r.directive.deadline)}，{r.total - r.done} 人未学"
             for r in studies if r.directive.deadline is not None and r.directive.deadline <= now and r.done < r.total]
    late += missed
    lines.append("逾期：" + ("；".join(late[:SHOWN_PER_LINE * 2]) + (f" 等 {len(late)} 项" if len(late) > SHOWN_PER_LINE * 2 else "")
                            if late else "无"))
    lines.append(portrait_line(ctx, org))
    return lines


def portrait_line(ctx: Context, org: Organisation) -> str:
    """The portrait's classified guidance for the organisation (先进更先进, or what to work on)."""
    from bot.reports.portrait import portrait
    from bot.texts.portrait import guidance_line

    return "画像：" + guidance_line(portrait(ctx.session, org, now=ctx.now, tz=ctx.settings.tz))


def _more(items: list) -> str:
    return f" 等 {len(items)} 项" if len(items) > SHOWN_PER_LINE else ""


def _rates(ctx: Context, org_ids: list[int], kind: DirectiveKind) -> list[Rate]:
    """Per directive of `kind` with task deliveries in these organisations: total and done
    (acknowledged; study: confirmed), newest first."""
    done = Delivery.completed_at if kind is DirectiveKind.STUDY else Delivery.acknowledged_at
    rows = ctx.session.execute(
        select(Delivery.directive_id, func.count(), func.count(done))
        .join(Directive, Directive.id == Delivery.directive_id)
        .where(Delivery.role == DeliveryRole.TASK, Delivery.organisation_id.in_(org_ids), Directive.kind == kind,
               counted_delivery(), Directive.withdrawn_at.is_(None))  # a withdrawn item is owed by nobody
        .group_by(Delivery.directive_id)
    ).all()
    if not rows:
        return []
    found = {d.id: d for d in ctx.session.scalars(select(Directive).where(Directive.id.in_([r[0] for r in rows])))}
    rates = [Rate(found[directive_id], total, acked) for directive_id, total, acked in rows]
    return sorted(rates, key=lambda r: r.directive.id, reverse=True)


def _meetings(ctx: Context, branches: list[Organisation], scope: list[Organisation]) -> tuple[str | None, list[str]]:
    """`会议（本月/本季度）：…` held vs required across the branches, and last period's misses."""
    from models.meeting import MeetingType, Period, requirement_status

    if not branches:
        return None, []
    with_groups = {o.parent_id for o in scope if o.kind is OrgKind.GROUP}
    held: dict[MeetingType, int] = defaultdict(int)
    required: dict[MeetingType, int] = defaultdict(int)
    for branch in branches:
        for req in requirement_status(ctx.session, branch, ctx.now, tz=ctx.settings.tz):
            if (req.meeting_type is MeetingType.GROUP and branch.id not in with_groups) or not req.required:
                continue
            required[req.meeting_type] += 1
            held[req.meeting_type] += 1 if req.met else 0
    parts = []
    names = {Period.MONTH: "本月", Period.QUARTER: "本季度", Period.YEAR: "本年"}
    for period in (Period.MONTH, Period.QUARTER, Period.YEAR):
        items = [f"{t.label} {held[t]}/{required[t]}" for t in MeetingType if t.period is period and required[t]]
        if items:
            parts.append(names[period] + " " + "、".join(items))
    unit = "（按支部计）" if len(branches) > 1 else ""
    line = f"会议{unit}：" + "；".join(parts) if parts else None
    return line, _last_period_misses(ctx, branches, with_groups)


def _last_period_misses(ctx: Context, branches: list[Organisation], with_groups: set[int]) -> list[str]:
    """Required meetings of the period that ended last (month, and quarter when it just ended)."""
    from datetime import timedelta

    from models.meeting import MeetingType, Period, period_bounds, requirement_status

    month_start, _ = period_bounds(Period.MONTH, ctx.now, ctx.settings.tz)
    previous = month_start - timedelta(minutes=1)
    quarter_ended = previous.astimezone(ctx.settings.tz).month % 3 == 0
    misses: dict[MeetingType, list[str]] = defaultdict(list)
    for branch in branches:
        for req in requirement_status(ctx.session, branch, previous, tz=ctx.settings.tz):
            if req.meeting_type is MeetingType.GROUP and branch.id not in with_groups:
                continue
            if (req.period is Period.QUARTER and not quarter_ended) or not req.required:
                continue
            if req.period is Period.YEAR and previous.astimezone(ctx.settings.tz).month != 12:
                continue
            if not req.met:
                misses[req.meeting_type].append(branch.name)
    local = previous.astimezone(ctx.settings.tz)
    out = []
    for t, names in misses.items():
        when = f"{local.year}年第{(local.month - 1) // 3 + 1}季度" if t.period is Period.QUARTER else f"{local.year}年{local.month}月"
        if t.period is Period.YEAR:
            when = f"{local.year}年"
        who = "、".join(names[:SHOWN_PER_LINE]) + (f" 等 {len(names)} 个支部" if len(names) > SHOWN_PER_LINE else "")
        out.append(f"{when}{t.label}未召开：{who}")
    return out


def _fit(lines: list[str], link: str | None = None) -> str:
    text = "\n".join(lines + ([f"完整页面：{link}"] if link else []))
    if len(text.encode()) <= REPLY_BUDGET_BYTES:
        return text
    kept, used = [], 0
    tail = "……内容较多，其余组织未列出。发送「进度 编号」查看某项通知的明细。"
    if link:
        tail = f"……内容较多，其余组织未列出，完整内容见页面：{link}"
    for line in lines:
        size = len(line.encode()) + 1
        if used + size + len(tail.encode()) > REPLY_BUDGET_BYTES:
            break
        kept.append(line)
        used += size
    return "\n".join([*kept, tail])
