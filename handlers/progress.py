"""进度: acknowledgement of a directive, level by level, so the flattening is visible."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.context import Context
from models.directive import Delivery, DeliveryRole, DeliveryStatus, Directive
from models.org import BRANCH_KINDS, Organisation, subtree
from models.person import Person

NAMES_SHOWN = 20


@dataclass
class Tally:
    total: int = 0
    acked: int = 0
    pending: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    first_ack: datetime | None = None
    last_ack: datetime | None = None

    def add(self, name: str, status: DeliveryStatus, acked_at: datetime | None) -> None:
        self.total += 1
        if acked_at is not None:
            self.acked += 1
            self.first_ack = acked_at if self.first_ack is None else min(self.first_ack, acked_at)
            self.last_ack = acked_at if self.last_ack is None else max(self.last_ack, acked_at)
        elif status in (DeliveryStatus.UNREACHABLE, DeliveryStatus.FAILED):
            self.unreachable.append(name)
        else:
            self.pending.append(name)

    def merge(self, other: Tally) -> None:
        self.total += other.total
        self.acked += other.acked
        self.pending += other.pending
        self.unreachable += other.unreachable
        for at in (other.first_ack, other.last_ack):
            if at is not None:
                self.first_ack = at if self.first_ack is None else min(self.first_ack, at)
                self.last_ack = at if self.last_ack is None else max(self.last_ack, at)


def progress_report(ctx: Context, directive: Directive, scopes: list[Organisation]) -> str:
    """First line exactly `已确认 A/B` over the scopes; then each scope level by level."""
    sections = [_tree_lines(ctx, directive, scope) for scope in scopes]
    acked = sum(whole.acked for whole, _ in sections)
    total = sum(whole.total for whole, _ in sections)
    due = f"，截止 {ctx.fmt(directive.deadline)}" if directive.deadline else ""
    lines = [
        f"已确认 {acked}/{total}",
        f"#{directive.id}「{directive.title}」{directive.organisation.name} 发布于 {ctx.fmt(directive.created_at)}{due}",
    ]
    for _, section in sections:
        lines.extend(section)
    return "\n".join(lines)


def _tree_lines(ctx: Context, directive: Directive, scope: Organisation) -> tuple[Tally, list[str]]:
    orgs = subtree(ctx.session, scope)
    by_id = {o.id: o for o in orgs}
    tallies: dict[int, Tally] = defaultdict(Tally)
    rows = ctx.session.execute(
        select(Delivery.organisation_id, Delivery.status, Delivery.acknowledged_at, Person.name)
        .join(Person, Person.id == Delivery.person_id)
        .where(Delivery.directive_id == directive.id, Delivery.role == DeliveryRole.TASK)
        .order_by(Person.name)
    )
    for org_id, status, acked_at, name in rows:
        if org_id in by_id:
            tallies[org_id].add(name, status, acked_at)

    # Roll branch tallies up the tree, deepest first.
    totals: dict[int, Tally] = {o.id: Tally() for o in orgs}
    for o in sorted(orgs, key=lambda o: -o.depth):
        totals[o.id].merge(tallies.get(o.id, Tally()))
        if o.parent_id in totals and o.id != scope.id:
            totals[o.parent_id].merge(totals[o.id])

    lines = []
    for o in orgs:
        t = totals[o.id]
        if t.total == 0:
            continue
        line = f"{'  ' * (o.depth - scope.depth)}{o.name}：已确认 {t.acked}/{t.total}"
        if o.kind in BRANCH_KINDS:
            line += _branch_detail(directive, t)
        lines.append(line)
    return totals[scope.id], lines


def _branch_detail(directive: Directive, t: Tally) -> str:
    parts = []
    if t.pending:
        parts.append("未确认：" + _names(t.pending))
    if t.unreachable:
        parts.append("无法送达：" + _names(t.unreachable))
    if t.first_ack is not None:
        parts.append(f"首位确认用时 {_span(t.first_ack - directive.created_at)}")
        if t.acked == t.total:
            parts.append(f"全部确认用时 {_span(t.last_ack - directive.created_at)}")
    return ("；" + "；".join(parts)) if parts else ""


def _names(names: list[str]) -> str:
    shown = "、".join(names[:NAMES_SHOWN])
    return shown if len(names) <= NAMES_SHOWN else f"{shown} 等 {len(names)} 人"


def _span(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} 分钟"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} 小时 {minutes} 分钟"
    days, hours = divmod(hours, 24)
    return f"{days} 天 {hours} 小时"
