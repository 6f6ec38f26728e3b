"""`范围 …` in 发布 and 学习资料: send to some organisations of one's subtree, or to the branch
committees beneath only, and say exactly who it went to."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import func, select

from bot.context import Context
from models.directive import Delivery, DeliveryRole, Directive
from models.org import Organisation, OrgKind, find_org, subtree

# `范围 第一党总支、科研党支部`, `范围：支委`, `发送范围 …`.
_SCOPE_LINE = re.compile(r"^(?:发送|推送)?范围[\s:：]*(?P<names>.*)$")
_NAME_SEPARATORS = re.compile(r"[\s,，、;；]+")
COMMITTEES_WORDS = ("支委", "支委会", "各支委", "支部委员")
CANDIDATES_SHOWN = 8


@dataclass(frozen=True)
class Scope:
    """Who a 发布 / 学习资料 goes to: some parts of the issuing organisation (empty: all of it),
    and whether to the branch committees only."""

    parts: list[Organisation] = field(default_factory=list)
    committees_only: bool = False

    @property
    def narrowed(self) -> bool:
        return bool(self.parts) or self.committees_only


def take_scope_line(lines: list[str]) -> tuple[list[str], str | None]:
    """The `范围 …` line, if any, out of the body lines: (the other lines, what follows 范围)."""
    for i, line in enumerate(lines):
        m = _SCOPE_LINE.match(line.strip())
        if m:
            return lines[:i] + lines[i + 1:], m["names"].strip()
    return lines, None


def resolve_scope(ctx: Context, org: Organisation, text: str | None) -> tuple[Scope, str | None]:
    """The scope `text` names within `org`'s subtree, or a refusal naming the candidates."""
    if text is None:
        return Scope(), None
    names = [n for n in _NAME_SEPARATORS.split(text) if n]
    if not names:
        return Scope(), f"「范围」后请写组织名称或「支委」，例如：范围 {_example(ctx, org)}"
    committees_only = any(n in COMMITTEES_WORDS for n in names)
    inside = subtree(ctx.session, org)
    inside_ids = {o.id for o in inside}
    parts: list[Organisation] = []
    for name in (n for n in names if n not in COMMITTEES_WORDS):
        found = find_org(ctx.session, name)
        mine = [o for o in found if o.id in inside_ids]
        if len(mine) == 1:
            parts.append(mine[0])
            continue
        if len(mine) > 1:
            return Scope(), (f"「{name}」有 {len(mine)} 个同名组织，请写完整路径：\n"
                             + "\n".join(f"· {o.path}" for o in mine[:CANDIDATES_SHOWN]))
        where = f"不在{org.name}范围内" if found else "没有找到"
        return Scope(), f"{where}「{name}」。{org.name}下可以选择：{_candidates(inside, org, name)}"
    # Keep the top-most parts: a branch inside a named 党总支 is reached through it already.
    parts = sorted({o.id: o for o in parts}.values(), key=lambda o: (o.depth, o.path))
    top_most = [o for i, o in enumerate(parts) if not any(o.is_within(p) for p in parts[:i])]
    if top_most == [org]:
        top_most = []
    return Scope(top_most, committees_only), None


def _candidates(inside: list[Organisation], org: Organisation, name: str) -> str:
    """Organisations of one's subtree the person may have meant: similar names first, else the
    organisations right beneath."""
    below = [o for o in inside if o.id != org.id and o.kind is not OrgKind.GROUP]
    similar = [o for o in below if name in o.name or o.name in name or len(set(name) & set(o.name)) >= 2]
    shown = (similar or [o for o in below if o.parent_id == org.id] or below)[:CANDIDATES_SHOWN]
    return "、".join(o.name for o in shown) + "；或「支委」（只发各支部支委）。" if shown else "「支委」（只发各支部支委）。"


def _example(ctx: Context, org: Organisation) -> str:
    below = [o for o in subtree(ctx.session, org) if o.parent_id == org.id]
    return below[0].name if below else "支委"


def recipients_line(ctx: Context, directive: Directive, scope: Scope) -> str:
    """`推送 N 人`, and for a narrowed scope who they are: `推送 138 人：第一党总支 120 人、科研党支部 18 人`."""
    total = directive.recipient_count
    if not scope.narrowed:
        return f"推送 {total} 人"
    rows = ctx.session.execute(
        select(Organisation.path, func.count())
        .join(Delivery, Delivery.organisation_id == Organisation.id)
        .where(Delivery.directive_id == directive.id, Delivery.role == DeliveryRole.TASK)
        .group_by(Organisation.path)
    ).all()
    if scope.parts:
        counts = [(p.name, sum(n for path, n in rows if path == p.path or path.startswith(p.path + "/")))
                  for p in scope.parts]
    else:
        names = {o.path: o.name for o in subtree(ctx.session, directive.organisation)}
        counts = [(names.get(path, path), n) for path, n in sorted(rows)]
    who = "、".join(f"{name} {n} 人" for name, n in counts) or "无"
    return f"推送 {total} 人{'（仅支委）' if scope.committees_only else ''}：{who}"
