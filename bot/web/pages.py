"""The mobile pages: 我的, a directive's or study item's progress, a meeting, a liaison's overview.

Every page reads through the same access functions as the chat (bot.access), and every button
runs the chat's own handler for that command, so a tap does exactly what typing it does,
idempotency included (a second 收到 records nothing and says when the first was)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from urllib.parse import urlencode

from flask import Blueprint, abort, flash, g, redirect, render_template, request
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload
from wtforms import ValidationError

from bot import access
from bot.command import Command
from bot.context import Context
from bot.messages import InboundKind, InboundMessage
from bot.runtime import current_runtime
from bot.timefmt import format_time
from bot.web.auth import refuse, signed_in
from models.directive import Delivery, DeliveryRole, Directive, DirectiveKind, open_items
from models.event import Event
from models.org import BRANCH_KINDS, Organisation, subtree
from models.person import Liaison, Membership, OrgRole, Person

bp = Blueprint("pages", __name__, url_prefix="/m", template_folder="templates", static_folder="static",
               static_url_path="/static")

PAGE_SIZE = 50
INLINE_NAMES_UP_TO = 300  # a directive to at most this many people lists names under every branch


@bp.before_request
def check_csrf():
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except (ValidationError, CSRFError):
            return refuse(400, "页面已过期，请返回刷新后再操作。", hint="为防止他人冒用，每个按钮只在本页面内有效。")
    return None


@bp.app_template_filter("when")
def _when(at: datetime | None) -> str:
    return format_time(at, current_runtime().settings.tz) if at else ""


@bp.app_template_filter("place")
def _place(meeting) -> str:
    """A meeting's place as every message words it (地点另行通知 when none was given)."""
    from bot.texts.meeting import place

    return place(meeting)


@bp.context_processor
def _globals():
    return {"csrf_token": generate_csrf}


@bp.errorhandler(403)
def _forbidden(exc):
    return refuse(403, exc.description or "您无权查看此页面。")


@bp.errorhandler(404)
def _not_found(exc):
    return refuse(404, exc.description if exc.description and "URL" not in exc.description else "没有找到这一页。")


@contextmanager
def _context(write: bool = False) -> Iterator[Context]:
    """The same Context a chat handler gets: this person, the bot's clock, a session."""
    runtime = current_runtime()
    now = runtime.now()
    with (runtime.db.session() if write else runtime.db.read_session()) as s:
        person = s.execute(
            select(Person).where(Person.id == g.person_id).options(
                joinedload(Person.roles).joinedload(OrgRole.organisation),
                joinedload(Person.liaisons).joinedload(Liaison.organisation),
                joinedload(Person.memberships).joinedload(Membership.organisation))
        ).unique().scalar_one_or_none()
        if person is None:
            abort(403, description="您已不在党员名册中，无法查看这些页面。")
        g.person_name = person.name
        msg = InboundMessage(channel=g.channel, sender=g.external_id, kind=InboundKind.TEXT, created_at=now,
                             dedupe_key=f"page:{uuid.uuid4().hex}")
        yield Context(session=s, now=now, settings=runtime.settings, msg=msg, person=person)


def _found(s, model, key: int, missing: str):
    """The row, or a 404 page saying what is missing."""
    row = s.get(model, key)
    if row is None:
        abort(404, description=missing)
    return row


def _run(handler, word: str, number: int, text: str = "") -> str:
    """Run the chat handler for `word number text` as this person; its reply is what the page shows."""
    typed = f"{number} {text}".strip()
    with _context(write=True) as ctx:
        reply = handler(Command(word=word, args=typed, text=typed), ctx)
    return reply.text if reply else ""


# -- 我的 ----------------------------------------------------------------------------------------

@bp.get("/")
@signed_in
def mine():
    from models.meeting import LeaveRequest, Meeting, MeetingStatus, led_branches, meetings_of

    with _context() as ctx:
        person, s = ctx.person, ctx.session
        directives = open_items(s, person.id, DirectiveKind.DIRECTIVE)
        studies = open_items(s, person.id, DirectiveKind.STUDY)
        meetings = meetings_of(s, person, statuses=(MeetingStatus.SCHEDULED,), starts_after=ctx.now)
        leaves = {lr.meeting_id: lr for lr in s.scalars(select(LeaveRequest).where(
            LeaveRequest.person_id == person.id, LeaveRequest.meeting_id.in_([m.id for m in meetings])))}
        followed = []
        if person.is_secretary() or person.is_liaison():
            recent = s.scalars(select(Directive).options(joinedload(Directive.organisation))
                               .order_by(Directive.id.desc()).limit(100)).all()
            followed = [d for d in recent if access.may_view_progress(person, d)][:20]
        branch_ids = [b.id for b in led_branches(person)]
        led_meetings = s.scalars(select(Meeting).where(Meeting.organisation_id.in_(branch_ids))
                                 .order_by(Meeting.starts_at.desc()).limit(20)).all() if branch_ids else []
        from handlers.points import record_text

        points_lines = record_text(ctx, person).splitlines()[1:]  # the chat's 积分, without its name line
        return render_template("mine.html", person=person, directives=directives, studies=studies,
                               points_lines=points_lines,
                               meetings=meetings, leaves=leaves, followed=followed, led_meetings=led_meetings,
                               liaison_orgs=access.liaison_organisations(person), now=ctx.now)


@bp.post("/act")
@signed_in
def act():
    """收到 / 已学 / 请假 from 我的 or an item page: the chat's handlers, the chat's answers."""
    from handlers.ack import handle_ack
    from handlers.meeting import handle_leave
    from handlers.study import handle_confirm

    handlers = {"ack": (handle_ack, "收到"), "study": (handle_confirm, "已学"), "leave": (handle_leave, "请假")}
    action, number = request.form.get("action", ""), request.form.get("number", "")
    if action not in handlers or not number.isdigit() or len(number) > 12:
        return refuse(400, "操作无法识别，请返回刷新后再试。")
    text = " ".join(request.form.get("text", "").split())[:500]
    if action == "leave" and not text:
        flash("请假需要写明理由。", "error")
    else:
        handler, word = handlers[action]
        flash(_run(handler, word, int(number), text))
    return redirect(_back())


def _back() -> str:
    back = request.form.get("back", "")
    return back if back.startswith("/m/") and "//" not in back else "/m/"


# -- a directive or study item -------------------------------------------------------------------

@bp.get("/d/<int:number>")
@signed_in
def directive_page(number: int):
    from handlers.progress import scope_totals

    with _context() as ctx:
        s = ctx.session
        item = _found(s, Directive, number, f"没有编号为 #{number} 的通知或学习资料。")
        mine = s.scalars(select(Delivery).where(Delivery.directive_id == item.id, Delivery.person_id == ctx.person.id,
                                                Delivery.role == DeliveryRole.TASK)).first()
        scopes = access.progress_scopes(ctx.person, item)
        if mine is None and not scopes:
            abort(403, description=f"您无权查看 #{number}：只有收到它的同志、发布组织和所涉组织的书记和支委以及联络员可以查看。")
        study = item.kind is DirectiveKind.STUDY
        metric = "completed" if study else "acknowledged"
        view = None
        if scopes:
            view = _progress_view(ctx, item, scopes, metric, scope_totals)
        return render_template("directive.html", item=item, study=study, mine=mine, view=view,
                               may_nudge=not study and item.withdrawn_at is None and access.may_nudge(ctx.person, item),
                               now=ctx.now,
                               export_path=_export_path(ctx, item))


def _progress_view(ctx: Context, item: Directive, scopes: list[Organisation], metric: str, scope_totals) -> dict:
    """Level by level with counts. A small directive shows its whole tree with the names under
    every branch; a large one is collapsed per level: one organisation and the level beneath
    it, each a link one level down, and at a branch its names PAGE_SIZE at a time, so a phone
    scrolls a 100,000-member directive one screen at a time."""
    s = ctx.session
    chosen = request.args.get("org", "")
    node = None
    if chosen:
        node = s.get(Organisation, int(chosen)) if chosen.isdigit() and len(chosen) < 12 else None
        if node is None or not any(node.is_within(scope) for scope in scopes):
            abort(404, description="在您可以查看的范围内没有这个组织。")
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    done = total = 0
    whole: list = []
    for scope in scopes:
        orgs, totals = scope_totals(s, item, scope, metric, names=False)
        done += totals[scope.id].acked
        total += totals[scope.id].total
        whole.append((scope, orgs, totals))
    inline = total <= INLINE_NAMES_UP_TO and node is None
    rows, people, listing, trail = [], {}, None, []
    if inline:
        for scope, orgs, totals in whole:
            rows += [(o, totals[o.id], o.depth - scope.depth) for o in orgs if totals[o.id].total]
        for row in _people(s, item, metric, org_ids=[o.id for o, _, _ in rows]):
            people.setdefault(row.organisation_id, []).append(row)
    else:
        if node is None and len(scopes) == 1:
            node = scopes[0]
        for scope, orgs, totals in whole:
            if node is None:
                rows.append((scope, totals[scope.id], 0))
            elif node.is_within(scope):
                trail = [o for o in orgs if node.is_within(o) and o.id != node.id]
                rows.append((node, totals[node.id], 0))
                rows += [(o, totals[o.id], 1) for o in orgs if o.parent_id == node.id and totals[o.id].total]
        if node is not None and node.kind in BRANCH_KINDS:
            count = next(t.total for o, t, _ in rows if o.id == node.id)
            pages = max(1, -(-count // PAGE_SIZE))
            page = min(page, pages)
            listing = {"org": node, "page": page, "pages": pages, "count": count,
                       "rows": _people(s, item, metric, org_ids=[node.id], offset=(page - 1) * PAGE_SIZE,
                                       limit=PAGE_SIZE)}
    notes = _notes(s, item, node or (scopes[0] if len(scopes) == 1 else None), scopes, limit=100)
    return {"rows": rows, "done": done, "total": total, "inline": inline, "people": people, "listing": listing,
            "node": node, "trail": trail, "notes": notes, "metric": metric, "branch_kinds": BRANCH_KINDS,
            "page_url": lambda **kw: f"/m/d/{item.id}?" + urlencode({k: v for k, v in kw.items() if v})}


def _people(s, item: Directive, metric: str, *, org_ids: list[int], offset: int = 0, limit: int | None = None):
    """Recipients in these organisations: not done first (unreachable among them), then in roster order,
    as the chat's 进度 names them (an order by the characters' code points means nothing to a reader)."""
    done_at = Delivery.completed_at if metric == "completed" else Delivery.acknowledged_at
    query = (select(Delivery.organisation_id, Delivery.status, done_at.label("done_at"), Delivery.late,
                    Delivery.completed_at, Delivery.note, Person.name)
             .join(Person, Person.id == Delivery.person_id)
             .where(Delivery.directive_id == item.id, Delivery.role == DeliveryRole.TASK,
                    Delivery.organisation_id.in_(org_ids))
             .order_by(done_at.is_not(None), Person.id, Delivery.id).offset(offset))
    return s.execute(query.limit(limit) if limit else query).all()


def _notes(s, item: Directive, node: Organisation | None, scopes: list[Organisation], limit: int):
    """完成 notes (心得 for study) in time order, as 回执 gives them, within the organisation shown
    (or all the scopes), by path rather than a list of ids: a subtree may hold thousands."""
    within = [node] if node is not None else scopes
    return s.execute(
        select(Person.name, Delivery.completed_at, Delivery.note, Organisation.name.label("org"))
        .join(Person, Person.id == Delivery.person_id).join(Organisation, Organisation.id == Delivery.organisation_id)
        .where(Delivery.directive_id == item.id, Delivery.role == DeliveryRole.TASK,
               Delivery.note.is_not(None), Delivery.note != "",
               or_(*(or_(Organisation.id == o.id, Organisation.path.startswith(o.path + "/", autoescape=True))
                     for o in within)))
        .order_by(Delivery.completed_at, Delivery.id).limit(limit)
    ).all()


@bp.post("/d/<int:number>/nudge")
@signed_in
def nudge(number: int):
    from handlers.broadcast import handle_nudge

    with _context() as ctx:  # the page's address carries the id; the chat's 催办 takes the 编号
        shown = ctx.session.scalar(select(Directive.number).where(Directive.id == number))
    flash(_run(handle_nudge, "催办", shown) if shown is not None else f"没有编号为 #{number} 的通知。")
    return redirect(f"/m/d/{number}")


# -- a meeting -----------------------------------------------------------------------------------

@bp.get("/meeting/<int:number>")
@signed_in
def meeting_page(number: int):
    from models.meeting import Attendance, LeaveRequest, Meeting, MeetingMinutes

    with _context() as ctx:
        s = ctx.session
        meeting = _found(s, Meeting, number, f"没有编号为 #{number} 的会议。")
        if not access.may_manage_meeting(ctx.person, meeting):
            abort(403, description=f"#{meeting.number} 是{meeting.organisation.name}的会议，只有该支部的书记、副书记或支委可以查看。")
        attendance = s.execute(select(Attendance.status, Attendance.checked_in_at, Person.name)
                               .join(Person, Person.id == Attendance.person_id)
                               .where(Attendance.meeting_id == meeting.id).order_by(Person.id)).all()
        leaves = s.scalars(select(LeaveRequest).options(joinedload(LeaveRequest.person))
                           .where(LeaveRequest.meeting_id == meeting.id).order_by(LeaveRequest.requested_at)).all()
        minutes = s.scalars(select(MeetingMinutes).options(joinedload(MeetingMinutes.author))
                            .where(MeetingMinutes.meeting_id == meeting.id).order_by(MeetingMinutes.written_at)).all()
        counts: dict[str, int] = {}
        for row in attendance:
            counts[row.status.value] = counts.get(row.status.value, 0) + 1
        return render_template("meeting.html", meeting=meeting, attendance=attendance, leaves=leaves,
                               minutes=minutes, counts=counts, now=ctx.now, export_path=_export_path(ctx, meeting),
                               moved_from=_first_start(s, meeting))


def _first_start(s, meeting) -> datetime | None:
    """When a moved meeting was first set to start (its first 改期's `from`); None if never moved."""
    moved = s.scalar(select(Event.data).where(Event.subject_type == "meeting", Event.subject_id == meeting.id,
                                              Event.kind == "meeting.rescheduled").order_by(Event.id).limit(1))
    return datetime.fromisoformat(moved["from"]) if moved else None


def _export_path(ctx: Context, item) -> str | None:
    """导出: the signed download of the item's file, for those who may export it."""
    from bot.web.files import file_path

    if not access.may_export(ctx.person, item):
        return None
    return file_path(ctx.settings, item.id, ctx.person.id, ctx.now, "directive" if isinstance(item, Directive) else "meeting")


# -- a liaison's organisations -------------------------------------------------------------------

@bp.get("/overview")
@signed_in
def overview():
    from handlers.overview import organisation_section

    with _context() as ctx:
        orgs = access.liaison_organisations(ctx.person)
        if not orgs:
            abort(403, description="概况页面供联络员查看：您还没有联系的组织。")
        sections = [(org, organisation_section(ctx, org)[1:]) for org in orgs]
        return render_template("overview.html", sections=sections, now=ctx.now)


@bp.get("/org/<int:org_id>")
@signed_in
def organisation_page(org_id: int):
    from handlers.overview import _rates, organisation_section
    from models.meeting import Meeting, MeetingStatus

    with _context() as ctx:
        s = ctx.session
        org = _found(s, Organisation, org_id, "没有这个组织。")
        if not access.may_view_overview(ctx.person, org):
            abort(403, description=f"只有「{org.name}」的联络员可以查看它的概况。")
        local = ctx.now.astimezone(ctx.settings.tz)
        year_start = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        ids = [o.id for o in subtree(s, org)]
        directives = [r for r in _rates(ctx, ids, DirectiveKind.DIRECTIVE) if r.directive.created_at >= year_start]
        studies = [r for r in _rates(ctx, ids, DirectiveKind.STUDY) if r.directive.created_at >= year_start]
        meetings = s.scalars(select(Meeting).where(Meeting.organisation_id.in_(ids), Meeting.starts_at >= year_start)
                             .order_by(Meeting.starts_at.desc())).all()
        return render_template("organisation.html", org=org, lines=organisation_section(ctx, org)[1:],
                               directives=directives, studies=studies, meetings=meetings, year=local.year,
                               closed=MeetingStatus.CLOSED, now=ctx.now)
