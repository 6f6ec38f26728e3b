"""进度: acknowledgement of a directive, level by level, so the flattening is visible."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.context import Context
from bot.texts.directive import delivery_reason, not_sent_to
from models.directive import Delivery, DeliveryRole, DeliveryStatus, Directive
from models.leaving import counted_delivery
from models.org import BRANCH_KINDS, Organisation, subtree, tree_order
from models.person import Person

NAMES_SHOWN = 20
# A WeCom passive text reply carries at most 2,048 bytes; keep room for the envelope.
REPLY_BUDGET_BYTES = 1900
UNREACHED = (DeliveryStatus.UNREACHABLE, DeliveryStatus.FAILED)


@dataclass
class Tally:
    total: int = 0
    acked: int = 0
    pending: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)  # why the unreachable were not reached
    first_ack: datetime | None = None
    last_ack: datetime | None = None

    def merge(self, other: Tally) -> None:
        self.total += other.total
        self.acked += other.acked
        self.pending += other.pending
        self.unreachable += other.unreachable
        self.reasons.update(other.reasons)
        for at in (other.first_ack, other.last_ack):
            if at is not None:
                self.first_ack = at if self.first_ack is None else min(self.first_ack, at)
                self.last_ack = at if self.last_ack is None else max(self.last_ack, at)


LABELS = {"acknowledged": ("已确认", "未确认", "确认"), "completed": ("已学", "未学", "学完")}


def progress_report(ctx: Context, directive: Directive, scopes: list[Organisation],
                    metric: str = "acknowledged", link: str | None = None) -> str:
    """First line exactly `已确认 A/B` (`已学 A/B` for study) over the scopes; then each scope
    level by level: organisation → sub-organisations → branches; with `link`, a last line
    pointing at the full page (and a condensed reply says the rest is there)."""
    done_label = LABELS[metric][0]
    sections = [_tree_lines(ctx, directive, scope, metric) for scope in scopes]
    acked = sum(whole.acked for whole, _ in sections)
    total = sum(whole.total for whole, _ in sections)
    due = f"，截止 {ctx.fmt(directive.deadline)}" if directive.deadline else ""
    head = [
        f"{done_label} {acked}/{total}",
        f"#{directive.number}「{directive.title}」{directive.organisation.name} 发布于 {ctx.fmt(directive.created_at)}{due}",
    ]
    if directive.withdrawn_at is not None:
        because = f"，原因：{directive.withdraw_reason}" if directive.withdraw_reason else ""
        head.append(f"已于 {ctx.fmt(directive.withdrawn_at)} 撤回{because}；提醒已停止，以下为撤回时的情况。")
    if total == 0:  # a 范围 that left out the viewer's part: say so rather than a bare 0/0
        head.append(f"{not_sent_to(directive.number, scopes)}（发布时限定了范围）。")
    reasons: Counter[str] = Counter()
    for whole, _ in sections:
        reasons.update(whole.reasons)
    if reasons:
        head.append(_unreachable_line(reasons))
    rows = [row for _, section in sections for row in section]
    foot = [f"完整页面：{link}"] if link else []
    full = "\n".join(head + [line for _, _, line in rows] + foot)
    if _size(full) <= REPLY_BUDGET_BYTES:
        return full
    return _condensed(head, rows, directive, metric, link)


REASONS_SHOWN = 3


def _unreachable_line(reasons: Counter[str]) -> str:
    """`无法送达 N 人：<reason> n 人；…`, the commonest reasons first."""
    common = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    parts = [f"{reason} {n} 人" for reason, n in common[:REASONS_SHOWN]]
    if len(common) > REASONS_SHOWN:
        parts.append(f"其他原因 {sum(n for _, n in common[REASONS_SHOWN:])} 人")
    return f"无法送达 {sum(reasons.values())} 人：" + "；".join(parts)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _condensed(head: list[str], rows: list, directive: Directive, metric: str, link: str | None = None) -> str:
    """Too big for one chat message: the levels above branches and the branches still behind,
    as many as fit, and how to see the rest."""
    wanted = [line for o, t, line in rows if o.kind not in BRANCH_KINDS or t.acked < t.total]
    tail = "……其余 {n} 个组织未列出。发送「{cmd} {id} 组织名称」查看某一组织的明细。"
    if link:
        tail = "……其余 {n} 个组织未列出，完整名单见页面：" + link.replace("{", "{{").replace("}", "}}")
    cmd = "学习进度" if metric == "completed" else "进度"
    lines, used = list(head), _size("\n".join(head)) + _size(tail) + 20
    for line in wanted:
        if used + _size(line) + 1 > REPLY_BUDGET_BYTES:
            break
        lines.append(line)
        used += _size(line) + 1
    omitted = len(rows) - (len(lines) - len(head))
    if omitted:
        lines.append(tail.format(n=omitted, cmd=cmd, id=directive.id))
    elif link:
        lines.append(f"完整页面：{link}")
    return "\n".join(lines)


def _tree_lines(ctx: Context, directive: Directive, scope: Organisation, metric: str) -> tuple[Tally, list]:
    orgs, totals = scope_totals(ctx.session, directive, scope, metric)
    lines = []
    for o in orgs:
        t = totals[o.id]
        if t.total == 0:
            continue
        line = f"{'  ' * (o.depth - scope.depth)}{o.name}：{LABELS[metric][0]} {t.acked}/{t.total}"
        if o.kind in BRANCH_KINDS:
            line += _branch_detail(directive, t, metric)
        lines.append((o, t, line))
    return totals[scope.id], lines


def scope_totals(session, directive: Directive, scope: Organisation, metric: str = "acknowledged", *,
                 names: bool = True) -> tuple[list[Organisation], dict[int, Tally]]:
    """The scope's organisations depth-first (each branch under its parent) and each one's tally,
    rolled up the tree. Counts and first/last times come from one grouped query; with `names`,
    the people still to name (not done) are fetched too, in roster order. The chat's 进度 and the
    progress page both read this."""
    orgs = subtree(session, scope)
    by_id = {o.id: o for o in orgs}
    tallies: dict[int, Tally] = defaultdict(Tally)
    tasks = (Delivery.directive_id == directive.id, Delivery.role == DeliveryRole.TASK, counted_delivery())
    done_at = Delivery.completed_at if metric == "completed" else Delivery.acknowledged_at
    for org_id, total, acked, first_ack, last_ack in session.execute(
        select(Delivery.organisation_id, func.count(), func.count(done_at), func.min(done_at), func.max(done_at))
        .where(*tasks).group_by(Delivery.organisation_id)
    ):
        if org_id in by_id:
            t = tallies[org_id]
            t.total, t.acked, t.first_ack, t.last_ack = total, acked, first_ack, last_ack
    if names:
        rows = session.execute(
            select(Delivery.organisation_id, Delivery.status, Person.name, Delivery.reason)
            .join(Person, Person.id == Delivery.person_id)
            .where(*tasks, done_at.is_(None))
            .order_by(Person.id)  # roster order
        )
        for org_id, status, name, reason in rows:
            if org_id in by_id:
                t = tallies[org_id]
                (t.unreachable if status in UNREACHED else t.pending).append(name)
                if status in UNREACHED:
                    t.reasons[delivery_reason(reason)] += 1

    # Roll branch tallies up the tree, deepest first.
    totals: dict[int, Tally] = {o.id: Tally() for o in orgs}
    for o in sorted(orgs, key=lambda o: -o.depth):
        totals[o.id].merge(tallies.get(o.id, Tally()))
        if o.parent_id in totals and o.id != scope.id:
            totals[o.parent_id].merge(totals[o.id])
    return sorted(orgs, key=lambda o: tree_order(o, by_id)), totals


def _branch_detail(directive: Directive, t: Tally, metric: str) -> str:
    _, pending, verb = LABELS[metric]
    parts = []
    if t.pending:
        parts.append(f"{pending}：" + _names(t.pending))
    if t.unreachable:
        parts.append("无法送达：" + _names(t.unreachable))
    if t.first_ack is not None:
        parts.append(f"首位{verb}用时 {_span(t.first_ack - directive.created_at)}")
        if t.acked == t.total:
            parts.append(f"全部{verb}用时 {_span(t.last_ack - directive.created_at)}")
    return ("；" + "；".join(parts)) if parts else ""


def _names(names: list[str]) -> str:
    shown = "、".join(names[:NAMES_SHOWN])
    return shown if len(names) <= NAMES_SHOWN else f"{shown} 等 {len(names)} 人"


def _span(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes == 0:
        return "不到 1 分钟"
    if minutes < 60:
        return f"{minutes} 分钟"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} 小时 {minutes} 分钟"
    days, hours = divmod(hours, 24)
    return f"{days} 天 {hours} 小时"
