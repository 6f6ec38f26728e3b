"""Who may see or act on what: one place decides, for the chat handlers and the pages alike.

Each function takes the person asking and the item, and answers from the roster (roles, liaisons,
the organisation tree) alone; the caller words the refusal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.directive import Directive
    from models.meeting import Meeting
    from models.org import Organisation
    from models.person import Person


def progress_scopes(person: Person | None, directive: Directive) -> list[Organisation]:
    """The organisations whose part of a directive's (or study item's) progress this person may
    see, disjoint and top-most: the whole of it for the issuing organisation's leaders and the
    leaders and liaisons of any organisation above it; otherwise the parts beneath the
    organisations they lead or liaise with, in tree order. Empty: not theirs to see."""
    from models.org import tree_order

    if person is None:
        return []
    top = directive.organisation
    mine = person.led_organisations() + [lia.organisation for lia in person.liaisons]
    if any(top.is_within(o) for o in mine):
        return [top]
    inside = sorted({o.id: o for o in mine if o.is_within(top)}.values(), key=lambda o: (o.depth, o.path))
    scopes: list[Organisation] = []
    for o in inside:
        if not any(o.is_within(s) for s in scopes):
            scopes.append(o)
    return sorted(scopes, key=tree_order)  # found top-most first; shown as the roster draws the tree


def may_view_progress(person: Person | None, directive: Directive) -> bool:
    return bool(progress_scopes(person, directive))


def nudge_scopes(person: Person | None, directive: Directive) -> list[Organisation]:
    """The parts of a directive this person may chase (催办), disjoint and top-most: the whole of it
    for the leaders of the issuing organisation or of one above it; for the leaders of an
    organisation inside it, their own subtree's part. Empty: not theirs to chase."""
    if person is None:
        return []
    top = directive.organisation
    led = person.led_organisations()
    if any(top.is_within(o) for o in led):
        return [top]
    scopes: list[Organisation] = []
    for o in sorted((o for o in led if o.is_within(top)), key=lambda o: (o.depth, o.path)):
        if not any(o.is_within(s) for s in scopes):
            scopes.append(o)
    return scopes


def may_nudge(person: Person | None, directive: Directive) -> bool:
    """催办: the leaders of the issuing organisation, of one above it, or of one inside it (for their part)."""
    return bool(nudge_scopes(person, directive))


def may_manage_meeting(person: Person | None, meeting: Meeting) -> bool:
    """A meeting's code, close, minutes, attendance: the branch's 书记, 副书记 and 委员."""
    from models.meeting import leads

    return person is not None and leads(person, meeting.organisation)


def liaison_organisations(person: Person | None) -> list[Organisation]:
    """The organisations a liaison officer follows (概况), in tree order: each after its parent,
    siblings in roster order, as the tree and 进度 show them."""
    from models.org import tree_order

    if person is None:
        return []
    return sorted({lia.organisation.id: lia.organisation for lia in person.liaisons}.values(), key=tree_order)


def may_view_overview(person: Person | None, org: Organisation) -> bool:
    return any(o.id == org.id for o in liaison_organisations(person))


def may_correct(person: Person | None, directive: Directive) -> bool:
    """撤回 / 改期 of a directive or study item: the committee of the issuing organisation (or of
    one above it), and the issuer."""
    if person is None:
        return False
    return person.id == directive.issuer_id or any(
        o.id == directive.organisation_id or directive.organisation.is_within(o) for o in person.led_organisations())


def may_view_points(viewer: Person | None, member: Person) -> bool:
    """积分 姓名: the member themself, or a 书记, 副书记 or 委员 of the member's home branch."""
    if viewer is None:
        return False
    branch = member.home_branch()
    return viewer.id == member.id or (branch is not None and any(
        r.organisation_id == branch.id and r.role.is_committee for r in viewer.roles))


def may_decide_self_report(person: Person | None, branch_id: int) -> bool:
    """核实 / 驳回 a self-report: the committee of the branch it was made in."""
    return person is not None and any(r.organisation_id == branch_id and r.role.is_committee for r in person.roles)


def may_export(person: Person | None, item: Directive | Meeting) -> bool:
    """导出 (一事一档): a directive's or study item's issuing leaders (as for 撤回: the issuing
    organisation's committee or one above it, and the issuer), a meeting's branch committee, and
    liaisons of the item's organisation or one above it."""
    from models.directive import Directive

    if person is None:
        return False
    if isinstance(item, Directive):
        if may_correct(person, item):
            return True
    elif may_manage_meeting(person, item):
        return True
    return any(item.organisation.is_within(o) for o in liaison_organisations(person))


def portrait_organisations(person: Person | None) -> list[Organisation]:
    """The organisations whose portrait (画像) this person may see at the top: those they lead or
    liaise with, in tree order; everything beneath them too (`may_view_portrait`)."""
    if person is None:
        return []
    from models.org import tree_order

    mine = person.led_organisations() + [lia.organisation for lia in person.liaisons]
    return sorted({o.id: o for o in mine}.values(), key=tree_order)


def may_view_portrait(person: Person | None, org: Organisation) -> bool:
    """画像: the leaders of the organisation or of one above it, and its liaisons (or liaisons of one above)."""
    return any(org.is_within(o) for o in portrait_organisations(person))


def may_set_portrait(person: Person | None, org: Organisation) -> bool:
    """Scores set by hand: the organisation's liaisons and the committee above it, not its own leaders."""
    if person is None:
        return False
    return any(org.is_within(lia.organisation) for lia in person.liaisons) or any(
        org.is_within(o) and o.id != org.id for o in person.led_organisations())
