"""One file per matter (一事一档): the facts of a directive, study item or meeting, in time order.

`matter_of(session, number, tz)` reads the item, its delivery or attendance rows and its events
and returns a `Matter`: the header, what was issued and to whom, every step with its instant, the
per-organisation summaries and the totals, already worded in Chinese. `bot/reports/docx_file.py`
lays it out as a DOCX. Times are the stored UTC instants; the writer shows them in the zone.

A matter with many recipients is summarised per organisation (counts, first and last
acknowledgement) instead of one line per person; people are named only where the counts are
small: the pending, the late, those the bot could not reach."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.texts.directive import delivery_reason, plain_reason
from bot.texts.reminders import skip_reason
from bot.timefmt import format_time
from models.cards import CardCodeUse
from models.directive import Delivery, DeliveryRole, DeliveryStatus, Directive, DirectiveKind
from models.event import Event
from models.meeting import Attendance, AttendanceStatus, LeaveRequest, LeaveStatus, Meeting, MeetingMinutes
from models.org import Organisation
from models.outbox import OutboxMessage
from models.person import Person
from models.reminder import ReminderKind, SkipReason

# Up to this many task recipients every acknowledgement and completion is a step of its own.
PERSON_STEPS_MAX = 300
# Per organisation, people are named when at most this many are in a group (pending, late…).
NAMES_MAX = 30
# Completion notes and 心得 listed in full, at most this many (the rest counted).
NOTES_MAX = 500

REMINDER_LABELS = {
    "directive_24h": "截止前 24 小时提醒未确认的同志",
    "directive_2h": "截止前 2 小时提醒未确认的同志",
    "directive_deadline": "截止时向进度滞后支部的书记和联络员发出提醒",
    "directive_summary": "截止 24 小时后向发布组织发出汇总",
    "study_24h": "截止前 24 小时提醒未学习的同志",
    "meeting_day_before": "会前一天提醒参会人",
    "meeting_hour_before": "会前 1 小时提醒参会人",
}
# Events of the item itself and how the file words them (withdrawal and moves come from 撤回/改期/取消).
ITEM_EVENTS = {
    "directive.withdrawn": "撤回", "study.withdrawn": "撤回", "directive.rescheduled": "改期",
    "study.rescheduled": "改期", "directive.deadline_moved": "改期", "study.deadline_moved": "改期",
    "meeting.rescheduled": "改期", "meeting.moved": "改期", "meeting.cancelled": "取消会议",
}


@dataclass(frozen=True)
class Step:
    at: datetime
    text: str
    order: int = 0  # ties at one instant keep the order they happen in (issued before sent)


@dataclass
class Matter:
    number: int
    kind: str  # 通知 / 学习 / 会议
    title: str
    organisation: str
    issuer: str
    issued_at: datetime
    due_label: str  # 截止时间 / 开始时间
    due_at: datetime | None
    issued_text: list[str] = field(default_factory=list)  # what was issued, line by line
    recipients: list[tuple[str, int]] = field(default_factory=list)  # organisation path, people
    copies: list[str] = field(default_factory=list)  # 抄送: "组织 姓名"
    steps: list[Step] = field(default_factory=list)
    summaries: list[tuple[str, list[str]]] = field(default_factory=list)  # organisation → lines
    totals: list[tuple[str, str]] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)  # further header lines (地点…)

    @property
    def date(self) -> datetime:
        """The instant a period export files it under: the meeting's start, else when issued."""
        return self.due_at if self.kind == "会议" and self.due_at else self.issued_at

    def ordered_steps(self) -> list[Step]:
        return sorted(self.steps, key=lambda s: (s.at, s.order))


class NoSuchMatter(LookupError):
    pass


def find_item(session: Session, number: int, kind: str | None = None) -> Directive | Meeting | None:
    """The directive, study item or meeting that carries `number` (the one number space); with
    `kind` ("directive" covers study items, or "meeting"), `number` is the item's id, as a page's
    link or a download token names it."""
    if kind == "meeting":
        return session.get(Meeting, number)
    if kind == "directive":
        return session.get(Directive, number)
    from models.numbers import ItemKind, lookup

    found = lookup(session, number)
    if found is None or found.item_id is None:
        return None
    if found.kind in (ItemKind.DIRECTIVE, ItemKind.STUDY):
        return session.get(Directive, found.item_id)
    if found.kind is ItemKind.MEETING:
        return session.get(Meeting, found.item_id)
    return None


def matter_of(session: Session, number: int, tz: ZoneInfo, kind: str | None = None) -> Matter:
    item = find_item(session, number, kind)
    if item is None:
        raise NoSuchMatter(number)
    if isinstance(item, Directive):
        return directive_matter(session, item, tz)
    return meeting_matter(session, item, tz)


# -- directives and study items --------------------------------------------------------------

def directive_matter(session: Session, d: Directive, tz: ZoneInfo) -> Matter:
    study = d.kind is DirectiveKind.STUDY
    m = Matter(number=d.number, kind="学习" if study else "通知", title=d.title, organisation=d.organisation.path,
               issuer=d.issuer.name, issued_at=d.created_at, due_label="截止时间", due_at=d.deadline)
    m.issued_text = [f"标题：{d.title}"] + [line for line in (d.body or "").splitlines() if line.strip()]
    if d.link:
        m.issued_text.append(f"学习链接：{d.link}")
    orgs = {o.id: o for o in session.scalars(select(Organisation))}
    names = dict(session.execute(select(Person.id, Person.name).where(
        Person.id.in_(select(Delivery.person_id).where(Delivery.directive_id == d.id)))).all())

    rows = session.execute(
        select(Delivery.id, Delivery.person_id, Delivery.organisation_id, Delivery.role, Delivery.status,
               Delivery.reason, Delivery.acknowledged_at, Delivery.late, Delivery.completed_at, Delivery.note)
        .where(Delivery.directive_id == d.id).order_by(Delivery.id)).all()
    tasks = [r for r in rows if r.role is DeliveryRole.TASK]
    by_org: dict[int, list] = defaultdict(list)
    for r in tasks:
        by_org[r.organisation_id].append(r)
    order = sorted(by_org, key=lambda oid: orgs[oid].path.split("/") if oid in orgs else [""])
    m.recipients = [(_path(orgs, oid), len(by_org[oid])) for oid in order]
    m.copies = [f"{_path(orgs, r.organisation_id)} {names.get(r.person_id, '?')}"
                for r in rows if r.role is DeliveryRole.COPY]

    def who(r) -> str:
        return f"{names.get(r.person_id, '?')}（{_name(orgs, r.organisation_id)}）"

    ack_word, done_word = ("已学习", "确认学完") if study else ("确认收到", "报告完成")
    events = _events(session, "directive", d.id)
    cards = [e for e in events if _is_card_event(e)]
    for e in events:
        if not _is_card_event(e):
            m.steps.append(_directive_event_step(e, d, names, rows, tz))
    m.steps += _card_steps(session, cards)
    detailed = len(tasks) <= PERSON_STEPS_MAX
    if detailed:
        for r in tasks:
            if r.acknowledged_at and not (study and r.completed_at == r.acknowledged_at):
                late = "（逾期）" if r.late else ""
                m.steps.append(Step(r.acknowledged_at, f"{who(r)} {'确认收到' if not study else '已阅'}{late}", 2))
            if r.completed_at:
                note = f"：{r.note}" if r.note else ""
                late = "（逾期）" if study and r.late else ""
                m.steps.append(Step(r.completed_at, f"{who(r)} {done_word}{late}{note}", 3))
    else:
        notes = [r for r in tasks if r.completed_at and r.note]
        notes.sort(key=lambda r: r.completed_at)
        for r in notes[:NOTES_MAX]:
            m.steps.append(Step(r.completed_at, f"{who(r)} {done_word}：{r.note}", 3))
        if len(notes) > NOTES_MAX:
            m.extra.append(("说明", f"另有 {len(notes) - NOTES_MAX} 条{done_word}说明未逐条列出"))
    for oid in order:
        m.summaries.append((_path(orgs, oid), _org_summary(by_org[oid], names, tz, study, ack_word)))

    acked = sum(1 for r in tasks if r.acknowledged_at)
    late = sum(1 for r in tasks if r.late)
    done = sum(1 for r in tasks if r.completed_at)
    failed = sum(1 for r in tasks if r.status is DeliveryStatus.FAILED)
    unreachable = sum(1 for r in tasks if r.status is DeliveryStatus.UNREACHABLE)
    m.totals = [("应确认人数", str(len(tasks))), ("抄送", f"{len(m.copies)} 人"),
                ("已学习" if study else "已确认", f"{acked}/{len(tasks)}"),
                ("其中逾期", str(late))]
    if not study:
        m.totals.append(("已报告完成", str(done)))
    m.totals += [("未确认", str(len(tasks) - acked)), ("发送失败", str(failed)), ("无法送达", str(unreachable)),
                 ("涉及组织", str(len(order)))]
    return m


def _org_summary(rows: list, names: dict[int, str], tz: ZoneInfo, study: bool, ack_word: str) -> list[str]:
    acked = [r for r in rows if r.acknowledged_at]
    pending = [r for r in rows if not r.acknowledged_at]
    late = [r for r in rows if r.late]
    lines = [f"应确认 {len(rows)} 人，{ack_word} {len(acked)} 人，未确认 {len(pending)} 人，逾期 {len(late)} 人"
             + ("" if study else f"，报告完成 {sum(1 for r in rows if r.completed_at)} 人")]
    if acked:
        first = min(r.acknowledged_at for r in acked)
        last = max(r.acknowledged_at for r in acked)
        lines.append(f"首个确认 {format_time(first, tz)}，最后确认 {format_time(last, tz)}")
    for label, group in (("未确认", pending), ("逾期确认", late),
                         ("发送失败", [r for r in rows if r.status is DeliveryStatus.FAILED]),
                         ("无法送达", [r for r in rows if r.status is DeliveryStatus.UNREACHABLE])):
        if group:
            lines.append(f"{label}：{_names(group, names)}")
    return lines


def _names(rows: list, names: dict[int, str]) -> str:
    if len(rows) > NAMES_MAX:
        return f"{len(rows)} 人"
    return "、".join(names.get(r.person_id, "?") for r in rows)


def _directive_event_step(e: Event, d: Directive, names: dict[int, str], rows: list, tz: ZoneInfo) -> Step:
    data = e.data or {}
    kind = e.kind
    if kind.endswith(".issued"):
        unreachable = data.get("unreachable") or 0
        extra = f"，无法送达 {unreachable} 人" if unreachable else ""
        return Step(e.at, f"发布，应确认 {data.get('recipients', 0)} 人，抄送 {data.get('copies', 0)} 人{extra}", 0)
    if kind == "delivery.sent":
        return Step(e.at, f"已送达 {data.get('count', 0)} 人", 1)
    if kind == "delivery.failed":
        ids = set(data.get("deliveries") or [])
        who = [names.get(r.person_id, "?") for r in rows if r.id in ids]
        shown = "、".join(who) if len(who) <= NAMES_MAX else f"{len(who)} 人"
        reason = plain_reason(delivery_reason(data.get("reason")))
        return Step(e.at, f"发送失败 {data.get('count', len(ids))} 人（{shown}），原因：{reason}", 1)
    if kind in ("outbox.sent", "outbox.failed"):  # the group robot's summary (one per group)
        if kind == "outbox.sent":
            return Step(e.at, "已在工作群发布摘要", 1)
        return Step(e.at, f"工作群摘要未能发出，原因：{plain_reason(data.get('reason'))}", 1)
    if kind == "directive.nudged":
        return Step(e.at, f"催办，提醒未确认的 {data.get('reminded', 0)} 人", 1)
    if kind.startswith("reminder."):
        return Step(e.at, _reminder_text(e), 1)
    return Step(e.at, _item_event_text(e, tz), 1)


def _is_card_event(e: Event) -> bool:
    """An update of the WeCom cards already sent: the worker's `card.updated`/`card.update_failed`
    (one per update call), or, recorded before those, a WeCom outbox event on the item (one per
    person: only card updates were queued with the item as their subject on WeCom)."""
    return e.kind in ("card.updated", "card.update_failed") or (
        e.kind in ("outbox.sent", "outbox.failed") and (e.data or {}).get("channel") == "wecom")


@dataclass(frozen=True)
class _CardUpdate:
    at: datetime
    failed: bool
    code: str | None
    text: str
    whole_card: bool
    people: int
    updated: int
    reason: str


def _card_steps(session: Session, events: list[Event]) -> list[Step]:
    """The card updates as a secretary files them: ONE line per update that 撤回, 改期 or a tap
    queued (its calls grouped by their codes' spending: a 100,000-recipient 撤回 is a hundred calls,
    one line), at the time its last call ended, with the people counted; failures apart, with the
    reason in words."""
    found: list[_CardUpdate] = []
    legacy = [e for e in events if e.kind.startswith("outbox.")]
    payloads: dict[int, dict] = {}
    ids = sorted({int((e.data or {}).get("outbox_id") or 0) for e in legacy})
    for i in range(0, len(ids), 5000):
        payloads.update(session.execute(select(OutboxMessage.id, OutboxMessage.payload)
                                        .where(OutboxMessage.id.in_(ids[i:i + 5000]))).all())
    for e in events:
        data = e.data or {}
        failed = e.kind in ("card.update_failed", "outbox.failed")
        if e.kind.startswith("outbox."):
            payload = payloads.get(int(data.get("outbox_id") or 0)) or {}
            people, updated = 1, 0 if failed else 1
            data = {**data, "response_code": payload.get("response_code"), "text": payload.get("replace_text"),
                    "whole_card": "card" in payload}
        else:
            people, updated = int(data.get("people") or 0), int(data.get("updated") or 0)
        found.append(_CardUpdate(e.at, failed, data.get("response_code"), str(data.get("text") or ""),
                                 bool(data.get("whole_card")), people, updated,
                                 plain_reason(data.get("reason")) if failed else ""))
    codes = sorted({u.code for u in found if u.code})
    spent: dict[str, tuple[str, datetime]] = {}
    for i in range(0, len(codes), 5000):
        spent.update((code, (purpose, at)) for code, purpose, at in session.execute(
            select(CardCodeUse.code, CardCodeUse.purpose, CardCodeUse.used_at)
            .where(CardCodeUse.code.in_(codes[i:i + 5000]))))
    groups: dict[tuple, list[_CardUpdate]] = defaultdict(list)
    for u in found:
        queued = spent.get(u.code or "", ("", u.at))
        groups[(queued, u.failed, u.text, u.whole_card, u.reason)].append(u)
    steps = []
    for (_queued, failed, text, whole, reason), group in groups.items():
        at = max(u.at for u in group)
        shows = f"新的截止时间（按钮显示「{text}」）" if whole else f"「{text}」"
        if failed:
            steps.append(Step(at, f"卡片未能更新为{shows}，共 {sum(u.people for u in group)} 人，原因：{reason}", 1))
            continue
        updated = sum(u.updated for u in group)
        refused = sum(u.people for u in group) - updated
        extra = f"，另有 {refused} 人未能更新" if refused else ""
        steps.append(Step(at, f"卡片已更新为{shows}，共 {updated} 人{extra}", 1))
    return steps


def _reminder_text(e: Event) -> str:
    """`会前一天提醒参会人：已发出`, or `…：未发出（所有人都已确认）` with why it was skipped or cancelled."""
    data = e.data or {}
    step = REMINDER_LABELS.get(str(data.get("step")), "自动提醒")
    status = e.kind.split(".", 1)[1]
    if status == "sent":
        return f"{step}：已发出"
    if status not in ("skipped", "cancelled"):
        return f"{step}：已处理"
    try:
        why = skip_reason(SkipReason(data.get("reason")), ReminderKind(data.get("step")))
    except ValueError:  # recorded before the reason was a code: the row's note held the words
        why = data.get("note") or "已无需提醒"
    return f"{step}：未发出（{why}）"


def _item_event_text(e: Event, tz: ZoneInfo) -> str:
    data = e.data or {}
    word = ITEM_EVENTS.get(e.kind, "记录")
    parts = [word]
    for key, label in (("deadline", "新截止时间"), ("starts_at", "新开始时间"), ("new_deadline", "新截止时间"),
                       ("new_starts_at", "新开始时间")):
        if data.get(key) and word == "改期":
            parts.append(f"{label} {format_time(datetime.fromisoformat(data[key]), tz)}")
    if data.get("to") and word == "改期":
        label = "新开始时间" if e.kind.startswith("meeting.") else "新截止时间"
        was = f"（原 {format_time(datetime.fromisoformat(data['from']), tz)}）" if data.get("from") else ""
        parts.append(f"{label} {format_time(datetime.fromisoformat(data['to']), tz)}{was}")
    if data.get("reason"):
        parts.append(f"原因：{data['reason']}")
    return "，".join(parts)


# -- meetings --------------------------------------------------------------------------------

def meeting_matter(session: Session, mt: Meeting, tz: ZoneInfo) -> Matter:
    m = Matter(number=mt.number, kind="会议", title=mt.title, organisation=mt.organisation.path,
               issuer=mt.convener.name, issued_at=mt.created_at, due_label="开始时间", due_at=mt.starts_at)
    where = "线上" if mt.online else (mt.location or "未定")
    m.extra.append(("地点", where))
    m.issued_text = [f"会议类型：{mt.type.label}", f"时间：{format_time(mt.starts_at, tz)}", f"地点：{where}"]
    orgs = {o.id: o for o in session.scalars(select(Organisation))}
    rows = session.execute(
        select(Attendance.person_id, Attendance.home_branch_id, Attendance.status, Attendance.checked_in_at,
               Attendance.recorded_at, Person.name)
        .join(Person, Person.id == Attendance.person_id)
        .where(Attendance.meeting_id == mt.id).order_by(Attendance.id)).all()
    by_org: dict[int | None, list] = defaultdict(list)
    for r in rows:
        by_org[r.home_branch_id].append(r)
    order = sorted(by_org, key=lambda oid: _path(orgs, oid).split("/"))
    m.recipients = [(_path(orgs, oid), len(by_org[oid])) for oid in order]

    for e in _events(session, "meeting", mt.id):
        data = e.data or {}
        if e.kind == "meeting.scheduled":
            m.steps.append(Step(e.at, f"安排会议，应到 {data.get('invited', mt.invited_count)} 人", 0))
        elif e.kind == "meeting.notified":
            sent = sum(int(data.get(k) or 0) for k in ("wecom", "mp"))
            left = int(data.get("unreachable") or 0)
            m.steps.append(Step(e.at, f"发出会议通知 {sent} 人" + (f"，无法送达 {left} 人" if left else ""), 1))
        elif e.kind == "meeting.closed":
            how = "自动结束" if data.get("automatic") else "结束会议"
            m.steps.append(Step(e.at, f"{how}：实到 {data.get('present', 0)} 人，请假 {data.get('on_leave', 0)} 人，"
                                      f"缺席 {data.get('absent', 0)} 人", 5))
        elif e.kind.startswith("reminder."):
            m.steps.append(Step(e.at, _reminder_text(e), 1))
        elif e.kind in ITEM_EVENTS:
            m.steps.append(Step(e.at, _item_event_text(e, tz), 1))
    for leave in session.scalars(select(LeaveRequest).where(LeaveRequest.meeting_id == mt.id)
                                 .order_by(LeaveRequest.requested_at, LeaveRequest.id)):
        m.steps.append(Step(leave.requested_at, f"{leave.person.name} 请假（#{leave.number}）：{leave.reason}", 2))
        if leave.decided_at and leave.status is not LeaveStatus.PENDING:
            by = leave.decided_by.name if leave.decided_by else "系统"
            note = f"：{leave.decision_note}" if leave.decision_note else ""
            word = "批准" if leave.status is LeaveStatus.APPROVED else "驳回"
            m.steps.append(Step(leave.decided_at, f"{by} {word} {leave.person.name} 的请假（#{leave.number}）{note}", 3))
    detailed = len(rows) <= PERSON_STEPS_MAX
    present = [r for r in rows if r.checked_in_at]
    if detailed:
        for r in present:
            m.steps.append(Step(r.checked_in_at, f"{r.name} 签到", 4))
    absent = [r for r in rows if r.status is AttendanceStatus.ABSENT]
    if absent:
        at = max(r.recorded_at or mt.closed_at or mt.starts_at for r in absent)
        m.steps.append(Step(at, f"记录缺席（未请假）{len(absent)} 人：{_plain_names(absent)}", 6))
    for minutes in session.scalars(select(MeetingMinutes).where(MeetingMinutes.meeting_id == mt.id)
                                   .order_by(MeetingMinutes.written_at, MeetingMinutes.id)):
        author = session.get(Person, minutes.author_id)
        m.steps.append(Step(minutes.written_at, f"{author.name if author else '?'} 记录纪要：{minutes.text}", 7))
    for oid in order:
        group = by_org[oid]
        lines = [f"应到 {len(group)} 人，签到 {sum(1 for r in group if r.checked_in_at)} 人，"
                 f"请假 {sum(1 for r in group if r.status is AttendanceStatus.ON_LEAVE)} 人，"
                 f"缺席 {sum(1 for r in group if r.status is AttendanceStatus.ABSENT)} 人"]
        missing = [r for r in group if r.status is AttendanceStatus.ABSENT]
        if missing:
            lines.append(f"缺席：{_plain_names(missing)}")
        m.summaries.append((_path(orgs, oid), lines))
    leaves = session.execute(select(LeaveRequest.status, func.count()).where(LeaveRequest.meeting_id == mt.id)
                             .group_by(LeaveRequest.status)).all()
    approved = sum(n for s, n in leaves if s is LeaveStatus.APPROVED)
    m.totals = [("应到", str(len(rows))), ("签到", str(len(present))),
                ("请假（已批准）", str(approved)),
                ("缺席（未请假）", str(len(absent))),
                ("未签到", str(sum(1 for r in rows if r.status is AttendanceStatus.EXPECTED))),
                ("纪要", f"{sum(1 for s in m.steps if s.order == 7)} 条"),
                ("状态", "已结束" if mt.closed_at else "未结束")]
    return m


def _plain_names(rows: list) -> str:
    return "、".join(r.name for r in rows) if len(rows) <= NAMES_MAX else f"{len(rows)} 人"


# -- helpers ---------------------------------------------------------------------------------

def _events(session: Session, subject_type: str, subject_id: int) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.subject_type == subject_type,
                                                    Event.subject_id == subject_id)
                                .order_by(Event.at, Event.id)))


def _path(orgs: dict[int, Organisation], oid: int | None) -> str:
    return orgs[oid].path if oid in orgs else "未归属支部"


def _name(orgs: dict[int, Organisation], oid: int | None) -> str:
    return orgs[oid].name if oid in orgs else "未归属支部"
