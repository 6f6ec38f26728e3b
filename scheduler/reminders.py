"""Firing reminder rows: the rules per kind, the per-person digest and quiet hours.

One round (`fire_due_reminders`, run by every tick):
1. In one transaction: claim due rows (`models.reminder.claim_due`: FOR UPDATE SKIP LOCKED), then
   for each row check it is still wanted (subject there and unchanged, not stale: `useful_until`),
   work out its recipients from the state *now* (who has still not acknowledged, who has no
   approved leave), and collect one notice per recipient.
2. In the same transaction: the notices are merged per person into ONE message (digest), and
   written as outbox rows — held until the end of quiet hours unless one of the person's notices is
   urgent — and the rows are marked sent/skipped/cancelled with one event each. Commit.
   An acknowledgement committed before step 1 reads the deliveries suppresses the reminder, also
   for a row claimed earlier in the same round.
3. The worker sends the outbox rows later, as for every other push.

Planning jobs create the rows that no request creates: meeting reminders (the meetings module
schedules meetings without knowing about reminders) and the required-meetings watch per period.
Both insert with the unique key and ON CONFLICT DO NOTHING, so several schedulers are harmless."""

from __future__ import annotations

import logging
import time as monotime
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, insert, select
from sqlalchemy.orm import Session

from bot.runtime import Runtime
from bot.timefmt import format_time
from config.settings import Settings
from models.directive import Delivery, DeliveryRole, DeliveryStatus, Directive, DirectiveKind
from models.identity import Channel, ChannelIdentity
from models.meeting import (
    AttendanceStatus,
    LeaveRequest,
    LeaveStatus,
    Meeting,
    MeetingStatus,
    MeetingType,
    Period,
    period_bounds,
)
from models.org import BRANCH_KINDS, Organisation, OrgKind, path_within
from models.outbox import OutboxChannel, OutboxMessage, OutboxStatus, content_key_of, text_payload
from models.person import COMMITTEE_ROLES, Liaison, OrgRole, Person, Role
from models.reminder import (
    DIRECTIVE_STEPS,
    STUDY_STEPS,
    Reminder,
    ReminderKind,
    ReminderStatus,
    claim_due,
    skip,
    write_events,
)
from scheduler.calendar import last_week_reminder_at

log = logging.getLogger(__name__)

CLAIM_LIMIT = 200  # rows per transaction; a row may fan out to many people
ROUND_SECONDS = 40.0  # stop claiming new batches after this; the next tick goes on
MP_WINDOW = timedelta(hours=48)
ID_CHUNK = 5000
NAMES_SHOWN = 20
BRANCHES_SHOWN = 15
UNREACHED = (DeliveryStatus.UNREACHABLE, DeliveryStatus.FAILED)
LEADING_ROLES = (Role.SECRETARY, Role.DEPUTY_SECRETARY)

MEETING_STEPS: tuple[tuple[ReminderKind, timedelta, timedelta], ...] = (
    # kind, due relative to the start, useful until relative to the start
    (ReminderKind.MEETING_DAY_BEFORE, -timedelta(hours=24), -timedelta(hours=1)),  # then the 1 h one
    (ReminderKind.MEETING_HOUR_BEFORE, -timedelta(hours=1), timedelta(0)),
)
# Closing 3 h after the start is the meetings module's own tick job (`close_meetings`, claiming
# meeting rows with SKIP LOCKED), so it is not a reminder row here.
MISSED_USEFUL_FOR = timedelta(days=7)


# -- quiet hours -----------------------------------------------------------------------------

def quiet_release(now: datetime, window: tuple[time, time] | None, tz: ZoneInfo) -> datetime | None:
    """When quiet hours that contain `now` end (aware UTC), or None when `now` is not quiet."""
    if window is None:
        return None
    start, end = window
    local = now.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    if start < end:
        quiet = start <= t < end
    else:  # crosses midnight, e.g. 22:00–07:30
        quiet = t >= start or t < end
    if not quiet:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)


# -- the digest ------------------------------------------------------------------------------

@dataclass
class Notice:
    text: str
    urgent: bool
    reminder_id: int


@dataclass
class Firing:
    """What one round collects before writing: notices per person, and the rows it decided."""

    session: Session
    now: datetime
    settings: Settings
    notices: dict[int, list[Notice]] = field(default_factory=lambda: defaultdict(list))

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.tz

    def fmt(self, at: datetime) -> str:
        return format_time(at, self.tz)

    def notify(self, row: Reminder, person_ids: Iterable[int], text: str) -> int:
        notice = Notice(text, row.kind.urgent, row.id)  # shared: the same text for everyone of a step
        count = 0
        for person_id in dict.fromkeys(person_ids):
            self.notices[person_id].append(notice)
            count += 1
        return count

    def forget(self, row: Reminder) -> None:
        for person_id in list(self.notices):
            kept = [n for n in self.notices[person_id] if n.reminder_id != row.id]
            if kept:
                self.notices[person_id] = kept
            else:
                del self.notices[person_id]


def digest_text(notices: list[Notice]) -> str:
    """One notice as it is; several as one numbered message."""
    if len(notices) == 1:
        return notices[0].text
    lines = [f"【直通车提醒】您有 {len(notices)} 条提醒："]
    lines += [f"{i}. {n.text}" for i, n in enumerate(notices, 1)]
    return "\n".join(lines)


def write_outbox(f: Firing) -> dict[int, int]:
    """One outbox row per person (WeCom, else an Official Account follower seen within 48 h).
    Returns reminder id → people reached. A person whose notices are all non-urgent is held until
    quiet hours end; one urgent notice takes the others along."""
    release = quiet_release(f.now, f.settings.quiet_window, f.tz)
    addresses = resolve_addresses(f.session, list(f.notices), f.now)
    reached: dict[int, int] = defaultdict(int)
    keys: dict[tuple[str, str], str] = {}
    rows = []
    for person_id, notices in f.notices.items():
        address = addresses.get(person_id)
        if address is None:
            continue
        channel, external_id = address
        text = digest_text(notices)
        key = keys.get((channel.value, text))
        if key is None:
            key = keys[(channel.value, text)] = content_key_of(channel, text_payload(text))
        urgent = any(n.urgent for n in notices)
        rows.append({
            "channel": channel, "recipient": external_id, "person_id": person_id,
            "payload": text_payload(text), "content_key": key, "status": OutboxStatus.PENDING, "attempts": 0,
            "next_attempt_at": f.now if urgent or release is None else release, "created_at": f.now,
            "subject_type": "reminder", "subject_id": notices[0].reminder_id,
        })
        for n in notices:
            reached[n.reminder_id] += 1
    for chunk in _chunks(rows, ID_CHUNK):
        f.session.execute(insert(OutboxMessage.__table__), chunk)
    return reached


def resolve_addresses(session: Session, person_ids: list[int], now: datetime) -> dict[int, tuple[OutboxChannel, str]]:
    found: dict[int, tuple[OutboxChannel, str]] = {}
    fresh = now - MP_WINDOW
    for chunk in _chunks(sorted(person_ids), ID_CHUNK):
        for person_id, channel, external_id, last_inbound in session.execute(
            select(ChannelIdentity.person_id, ChannelIdentity.channel, ChannelIdentity.external_id,
                   ChannelIdentity.last_inbound_at)
            .where(ChannelIdentity.person_id.in_(chunk)).order_by(ChannelIdentity.id)
        ):
            if channel is Channel.WECOM:
                if person_id not in found or found[person_id][0] is not OutboxChannel.WECOM:
                    found[person_id] = (OutboxChannel.WECOM, external_id)
            elif channel is Channel.MP and last_inbound is not None and last_inbound >= fresh:
                found.setdefault(person_id, (OutboxChannel.MP, external_id))
    return found


# -- the round -------------------------------------------------------------------------------

def fire_due_reminders(runtime: Runtime, *, limit: int = CLAIM_LIMIT,
                       between: Callable[[Session, list[Reminder]], None] | None = None) -> int:
    """Claim and fire due rows, batch by batch, until none is due. Returns rows decided.
    `between(session, rows)` runs after the claim and before firing (tests use it to act in that gap)."""
    decided = 0
    started = monotime.monotonic()
    while True:
        now = runtime.now()
        with runtime.db.session() as session:
            rows = claim_due(session, now, limit)
            if not rows:
                break
            if between is not None:
                between(session, rows)
            fire(session, rows, now, runtime.settings)
        decided += len(rows)
        if len(rows) < limit or monotime.monotonic() - started > ROUND_SECONDS:
            break
    return decided


def fire(session: Session, rows: list[Reminder], now: datetime, settings: Settings) -> None:
    """Decide every claimed row, write the digests, mark the rows, write the events."""
    f = Firing(session, now, settings)
    decided: list[Reminder] = []
    for row in rows:
        if row.useful_until is not None and now > row.useful_until:
            skip(row, now, "补发时已过时：" + STALE_REASON.get(row.kind, "不再有用"))
            decided.append(row)
            continue
        try:
            with session.begin_nested():
                RULES[row.kind](f, row)
        except Exception:
            # Left pending (unclaimed) for the next tick; its notices are dropped.
            log.exception("reminder %s (%s %s#%s) failed", row.id, row.kind.value, row.subject_type, row.subject_id)
            f.forget(row)
            row.claimed_at = None
            continue
        decided.append(row)
    reached = write_outbox(f)
    for row in decided:
        if row.status is ReminderStatus.PENDING:
            row.recipients = reached.get(row.id, 0)
            row.status = ReminderStatus.SENT
            row.fired_at = now
    session.flush()
    write_events(session, decided, now)
    if decided:
        log.info("reminders: %d rows decided (%d sent), %d people notified", len(decided),
                 sum(r.status is ReminderStatus.SENT for r in decided), len(f.notices))


STALE_REASON = {
    ReminderKind.DIRECTIVE_24H: "离截止已不足 2 小时，由 2 小时提醒代替",
    ReminderKind.DIRECTIVE_2H: "截止时间已过",
    ReminderKind.DIRECTIVE_DEADLINE: "截止已满 24 小时，由汇总代替",
    ReminderKind.DIRECTIVE_SUMMARY: "截止已超过 8 天",
    ReminderKind.STUDY_24H: "学习截止时间已过",
    ReminderKind.MEETING_DAY_BEFORE: "离开会已不足 1 小时，由 1 小时提醒代替",
    ReminderKind.MEETING_HOUR_BEFORE: "会议已开始",
    ReminderKind.REQUIRED_MEETING_DUE: "该周期已结束",
    ReminderKind.REQUIRED_MEETING_MISSED: "周期结束已超过 7 天",
}


# -- directives and study --------------------------------------------------------------------

def _directive_for(f: Firing, row: Reminder) -> Directive | None:
    """The directive, when it still exists with the deadline the row was made for."""
    directive = f.session.get(Directive, row.subject_id)
    if directive is None:
        skip(row, f.now, "通知已不存在", ReminderStatus.CANCELLED)
        return None
    steps = STUDY_STEPS if directive.kind is DirectiveKind.STUDY else DIRECTIVE_STEPS
    offset = next((o for k, o, _ in steps if k is row.kind), None)
    if directive.deadline is None or offset is None or directive.deadline + offset != row.due_at:
        skip(row, f.now, "截止时间已变更", ReminderStatus.CANCELLED)
        return None
    return directive


def _tasks(directive: Directive):
    return (Delivery.directive_id == directive.id, Delivery.role == DeliveryRole.TASK)


def _not_done(directive: Directive):
    return Delivery.completed_at if directive.kind is DirectiveKind.STUDY else Delivery.acknowledged_at


def fire_directive_reminder(f: Firing, row: Reminder) -> None:
    """24 h / 2 h before: everyone who has still not acknowledged (study: not confirmed), now."""
    directive = _directive_for(f, row)
    if directive is None:
        return
    people = f.session.scalars(
        select(Delivery.person_id).where(*_tasks(directive), _not_done(directive).is_(None),
                                         Delivery.status.not_in(UNREACHED))
    ).all()
    if not people:
        skip(row, f.now, "所有人都已确认" if directive.kind is DirectiveKind.DIRECTIVE else "所有人都已学完")
        return
    left = "24 小时" if row.kind in (ReminderKind.DIRECTIVE_24H, ReminderKind.STUDY_24H) else "2 小时"
    org = directive.organisation.name
    if directive.kind is DirectiveKind.STUDY:
        text = (f"【学习提醒】{org}布置的学习 #{directive.id}「{directive.title}」将于 {f.fmt(directive.deadline)}"
                f" 截止（还剩 {left}），您还没有确认学完。学完后回复「已学 {directive.id}」。")
    else:
        text = (f"【截止提醒】{org}发布的 #{directive.id}「{directive.title}」将于 {f.fmt(directive.deadline)}"
                f" 截止（还剩 {left}），您还没有确认。请回复「收到 {directive.id}」。")
    f.notify(row, people, text)


@dataclass
class BranchLag:
    branch: Organisation
    total: int
    acked: int
    missing: list[str] = field(default_factory=list)

    def line(self) -> str:
        names = "、".join(self.missing[:NAMES_SHOWN])
        if len(self.missing) > NAMES_SHOWN:
            names += f" 等 {len(self.missing)} 人"
        return f"{self.branch.name} 未确认 {self.total - self.acked}/{self.total}：{names}"


def lagging_branches(session: Session, directive: Directive) -> list[BranchLag]:
    """Branches where someone has not acknowledged, with their names, by branch path."""
    counts = session.execute(
        select(Delivery.organisation_id, func.count(), func.count(Delivery.acknowledged_at))
        .where(*_tasks(directive)).group_by(Delivery.organisation_id)
    ).all()
    lag = {org_id: (total, acked) for org_id, total, acked in counts if acked < total}
    if not lag:
        return []
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(list(lag))))}
    found = {org_id: BranchLag(orgs[org_id], total, acked) for org_id, (total, acked) in lag.items()}
    for org_id, name in session.execute(
        select(Delivery.organisation_id, Person.name).join(Person, Person.id == Delivery.person_id)
        .where(*_tasks(directive), Delivery.acknowledged_at.is_(None)).order_by(Person.name, Person.id)
    ):
        if org_id in found:
            found[org_id].missing.append(name)
    return sorted(found.values(), key=lambda b: b.branch.path)


def leaders_of(session: Session, org_ids: list[int]) -> dict[int, list[int]]:
    """Organisation → its 书记 and 副书记 (the whole committee when it has neither)."""
    by_org: dict[int, dict[Role, list[int]]] = defaultdict(lambda: defaultdict(list))
    for chunk in _chunks(sorted(set(org_ids)), ID_CHUNK):
        for org_id, person_id, role in session.execute(
            select(OrgRole.organisation_id, OrgRole.person_id, OrgRole.role)
            .where(OrgRole.organisation_id.in_(chunk), OrgRole.role.in_(COMMITTEE_ROLES))
            .order_by(OrgRole.person_id)
        ):
            by_org[org_id][role].append(person_id)
    found = {}
    for org_id, roles in by_org.items():
        leading = [p for r in LEADING_ROLES for p in roles.get(r, [])]
        found[org_id] = leading or [p for people in roles.values() for p in people]
    return found


def liaisons_of(session: Session, branches: list[Organisation]) -> dict[int, list[Organisation]]:
    """Liaison person → the given organisations they look after (assigned to it or an ancestor)."""
    found: dict[int, list[Organisation]] = defaultdict(list)
    for person_id, path in session.execute(
        select(Liaison.person_id, Organisation.path).join(Organisation, Organisation.id == Liaison.organisation_id)
    ):
        for b in branches:
            if path_within(b.path, path):
                if b not in found[person_id]:
                    found[person_id].append(b)
    return found


def fire_directive_deadline(f: Firing, row: Reminder) -> None:
    """At the deadline: each lagging branch's secretaries get who is missing there; each liaison
    one message listing all their lagging organisations."""
    directive = _directive_for(f, row)
    if directive is None:
        return
    lagging = lagging_branches(f.session, directive)
    if not lagging:
        skip(row, f.now, "截止时所有人都已确认")
        return
    head = f"#{directive.id}「{directive.title}」（{directive.organisation.name}发布）已于 {f.fmt(directive.deadline)} 截止"
    leaders = leaders_of(f.session, [b.branch.id for b in lagging])
    for b in lagging:
        f.notify(row, leaders.get(b.branch.id, []),
                 f"【逾期提醒】{head}，本支部{b.line()}。请督促尽快回复「收到 {directive.id}」。")
    by_id = {b.branch.id: b for b in lagging}
    for person_id, branches in liaisons_of(f.session, [b.branch for b in lagging]).items():
        lines = [by_id[o.id].line() for o in branches[:BRANCHES_SHOWN]]
        if len(branches) > BRANCHES_SHOWN:
            lines.append(f"……另有 {len(branches) - BRANCHES_SHOWN} 个支部未列出，发送「进度 {directive.id}」查看。")
        f.notify(row, [person_id], f"【联络员预警】{head}，您联系的组织中有 {len(branches)} 个支部未全部确认：\n"
                 + "\n".join(lines))


def fire_directive_summary(f: Firing, row: Reminder) -> None:
    """24 h after the deadline: the issuing organisation's secretaries (and the issuer)."""
    directive = _directive_for(f, row)
    if directive is None:
        return
    total, acked, late = f.session.execute(
        select(func.count(), func.count(Delivery.acknowledged_at),
               func.coalesce(func.sum(case((Delivery.late, 1), else_=0)), 0))
        .where(*_tasks(directive))
    ).one()
    lagging = lagging_branches(f.session, directive)
    lines = [f"【汇总】#{directive.id}「{directive.title}」截止 {f.fmt(directive.deadline)}，已过 24 小时：",
             f"已确认 {acked}/{total}，其中逾期确认 {late} 人。"]
    if lagging:
        lines.append(f"未全部确认的支部 {len(lagging)} 个：")
        lines += [b.line() for b in lagging[:BRANCHES_SHOWN]]
        if len(lagging) > BRANCHES_SHOWN:
            lines.append(f"……其余 {len(lagging) - BRANCHES_SHOWN} 个见「进度 {directive.id}」。")
    else:
        lines.append("各支部均已全部确认。")
    people = leaders_of(f.session, [directive.organisation_id]).get(directive.organisation_id, [])
    f.notify(row, [*people, directive.issuer_id], "\n".join(lines))


# -- meetings --------------------------------------------------------------------------------

def _meeting_for(f: Firing, row: Reminder) -> Meeting | None:
    meeting = f.session.get(Meeting, row.subject_id)
    if meeting is None:
        skip(row, f.now, "会议已不存在", ReminderStatus.CANCELLED)
        return None
    offset = next(o for k, o, _ in MEETING_STEPS if k is row.kind)
    if meeting.starts_at + offset != row.due_at:
        skip(row, f.now, "会议时间已变更", ReminderStatus.CANCELLED)
        return None
    if meeting.status is MeetingStatus.CLOSED:
        skip(row, f.now, "会议已结束")
        return None
    return meeting


def fire_meeting_reminder(f: Firing, row: Reminder) -> None:
    """The day before / 1 h before: invitees not checked in and without approved leave."""
    from models.meeting import Attendance

    meeting = _meeting_for(f, row)
    if meeting is None:
        return
    approved = select(LeaveRequest.person_id).where(LeaveRequest.meeting_id == meeting.id,
                                                    LeaveRequest.status == LeaveStatus.APPROVED)
    people = f.session.scalars(
        select(Attendance.person_id).where(Attendance.meeting_id == meeting.id,
                                           Attendance.status == AttendanceStatus.EXPECTED,
                                           Attendance.person_id.not_in(approved))
    ).all()
    if not people:
        skip(row, f.now, "无需提醒：都已请假或签到")
        return
    what = f"#{meeting.id} {meeting.title}"
    if row.kind is ReminderKind.MEETING_DAY_BEFORE:
        text = (f"【会议提醒】{what} 将于 {f.fmt(meeting.starts_at)} 召开，地点：{meeting.place}。"
                f"不能参加请回复「请假 {meeting.id} 理由」。")
    else:
        how = "发送「签到」" if meeting.online else "发送「签到 会议码」"
        text = (f"【会议提醒】{what} 1 小时后（{f.fmt(meeting.starts_at)}）开始，地点：{meeting.place}。"
                f"会前 30 分钟起可{how}。")
    f.notify(row, people, text)


def plan_meeting_reminders(runtime: Runtime) -> int:
    """Rows for meetings scheduled since the last tick: the day before and 1 h before. A
    reminder whose time had passed when the meeting was scheduled is stored as skipped."""
    now = runtime.now()
    with runtime.db.session() as session:
        planned = select(Reminder.subject_id).where(Reminder.kind == ReminderKind.MEETING_HOUR_BEFORE,
                                                    Reminder.subject_type == "meeting")
        meetings = session.execute(
            select(Meeting.id, Meeting.starts_at, Meeting.created_at)
            .where(Meeting.status == MeetingStatus.SCHEDULED, Meeting.id.not_in(planned))
        ).all()
        rows = []
        for meeting_id, starts_at, created_at in meetings:
            for kind, offset, useful in MEETING_STEPS:
                due = starts_at + offset
                late = due <= created_at
                rows.append({"kind": kind, "subject_type": "meeting", "subject_id": meeting_id, "period": "",
                             "due_at": due, "useful_until": starts_at + useful,
                             "status": ReminderStatus.SKIPPED if late else ReminderStatus.PENDING,
                             "created_at": now, "fired_at": now if late else None, "recipients": 0,
                             "note": "安排会议时提醒时间已过" if late else None})
        inserted = _insert_ignore(session, rows)
        skipped = [r for r in inserted if r.status is ReminderStatus.SKIPPED]
        write_events(session, skipped, now)
    return len(inserted)


# -- required meetings (三会一课, 主题党日) -----------------------------------------------------

def period_key(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local.year}-{local.month:02d}"


def _month_bounds(key: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    year, month = (int(x) for x in key.split("-"))
    return period_bounds(Period.MONTH, datetime(year, month, 15, 12, tzinfo=tz), tz)


def types_ending(key: str, tz: ZoneInfo) -> list[MeetingType]:
    """The meeting types whose period ends with this month: monthly ones always, quarterly ones
    in March, June, September and December."""
    month = int(key.split("-")[1])
    return [t for t in MeetingType if t.period is Period.MONTH or month % 3 == 0]


def plan_required_meetings(runtime: Runtime) -> int:
    """For the current month, one `due` and one `missed` row per branch (created lazily, once:
    the unique key holds). Cheap when nothing is missing: two counts."""
    now = runtime.now()
    tz = runtime.settings.tz
    key = period_key(now, tz)
    _start, end = _month_bounds(key, tz)
    with runtime.db.session() as session:
        branches = select(Organisation.id).where(Organisation.kind.in_(BRANCH_KINDS))
        wanted = session.scalar(select(func.count()).select_from(branches.subquery())) or 0
        have = session.scalar(select(func.count()).where(
            Reminder.kind == ReminderKind.REQUIRED_MEETING_MISSED, Reminder.period == key)) or 0
        if have >= wanted:
            return 0
        branch_ids = session.scalars(branches).all()
        rows = []
        for kind, due, useful in (
            (ReminderKind.REQUIRED_MEETING_DUE, last_week_reminder_at(end, tz), end),
            (ReminderKind.REQUIRED_MEETING_MISSED, end, end + MISSED_USEFUL_FOR),
        ):
            rows += [{"kind": kind, "subject_type": "organisation", "subject_id": branch_id, "period": key,
                      "due_at": due, "useful_until": useful, "status": ReminderStatus.PENDING, "created_at": now,
                      "fired_at": None, "recipients": 0, "note": None} for branch_id in branch_ids]
        return _insert_ignore(session, rows, fetch=False)


def _branch_for(f: Firing, row: Reminder) -> Organisation | None:
    branch = f.session.get(Organisation, row.subject_id)
    if branch is None or branch.kind not in BRANCH_KINDS:
        skip(row, f.now, "支部已不存在", ReminderStatus.CANCELLED)
        return None
    return branch


def applicable_types(session: Session, branch: Organisation, key: str, tz: ZoneInfo) -> list[MeetingType]:
    """党小组会 only where the branch has groups."""
    types = types_ending(key, tz)
    if MeetingType.GROUP in types:
        has_groups = session.scalar(select(func.count()).where(Organisation.parent_id == branch.id,
                                                               Organisation.kind == OrgKind.GROUP)) or 0
        if not has_groups:
            types.remove(MeetingType.GROUP)
    return types


def _period_label(meeting_type: MeetingType, key: str) -> str:
    year, month = (int(x) for x in key.split("-"))
    if meeting_type.period is Period.QUARTER:
        return f"{year}年第{(month - 1) // 3 + 1}季度"
    return f"{year}年{month}月"


def fire_required_due(f: Firing, row: Reminder) -> None:
    """Start of the period's last week: the branch's secretaries, for each required meeting not
    scheduled (nor held) in its period."""
    branch = _branch_for(f, row)
    if branch is None:
        return
    missing = []
    for meeting_type in applicable_types(f.session, branch, row.period, f.tz):
        start, end = period_bounds(meeting_type.period, _month_bounds(row.period, f.tz)[0], f.tz)
        scheduled = f.session.scalar(select(func.count()).where(
            Meeting.organisation_id == branch.id, Meeting.type == meeting_type,
            Meeting.starts_at >= start, Meeting.starts_at < end)) or 0
        if not scheduled:
            missing.append(f"{_period_label(meeting_type, row.period)}的{meeting_type.label}")
    if not missing:
        skip(row, f.now, "规定会议都已安排")
        return
    _, end = _month_bounds(row.period, f.tz)
    text = (f"【规定动作提醒】{branch.name}尚未安排{'、'.join(missing)}，本周期将于 "
            f"{f.fmt(end - timedelta(minutes=1))} 结束。请发送「会议 类型 时间 [地点]」安排。")
    f.notify(row, leaders_of(f.session, [branch.id]).get(branch.id, []), text)


def fire_required_missed(f: Firing, row: Reminder) -> None:
    """Period over: for each required meeting not held, the branch's liaison officers."""
    branch = _branch_for(f, row)
    if branch is None:
        return
    from models.meeting import requirement_status

    _, end = _month_bounds(row.period, f.tz)
    last_day = end - timedelta(minutes=1)
    types = applicable_types(f.session, branch, row.period, f.tz)
    missed = [f"{_period_label(r.meeting_type, row.period)}的{r.meeting_type.label}"
              for r in requirement_status(f.session, branch, last_day, tz=f.tz)
              if r.meeting_type in types and not r.met]
    if not missed:
        skip(row, f.now, "规定会议都已召开")
        return
    liaisons = [p for p, orgs in liaisons_of(f.session, [branch]).items() if orgs]
    if not liaisons:
        skip(row, f.now, "该支部没有联络员")
        return
    f.notify(row, liaisons, f"【联络员预警】{branch.path.split('/')[-1]}未按期召开：{'、'.join(missed)}。")


RULES: dict[ReminderKind, Callable[[Firing, Reminder], None]] = {
    ReminderKind.DIRECTIVE_24H: fire_directive_reminder,
    ReminderKind.DIRECTIVE_2H: fire_directive_reminder,
    ReminderKind.STUDY_24H: fire_directive_reminder,
    ReminderKind.DIRECTIVE_DEADLINE: fire_directive_deadline,
    ReminderKind.DIRECTIVE_SUMMARY: fire_directive_summary,
    ReminderKind.MEETING_DAY_BEFORE: fire_meeting_reminder,
    ReminderKind.MEETING_HOUR_BEFORE: fire_meeting_reminder,
    ReminderKind.REQUIRED_MEETING_DUE: fire_required_due,
    ReminderKind.REQUIRED_MEETING_MISSED: fire_required_missed,
}


# -- helpers ---------------------------------------------------------------------------------

def _insert_ignore(session: Session, rows: list[dict], *, fetch: bool = True):
    """INSERT … ON CONFLICT DO NOTHING on the unique key; returns the rows actually inserted
    (only how many with `fetch=False`)."""
    if not rows:
        return [] if fetch else 0
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    inserted: list[int] = []
    for chunk in _chunks(rows, 2000):
        stmt = dialect_insert(Reminder).values(chunk).on_conflict_do_nothing().returning(Reminder.id)
        inserted += session.scalars(stmt).all()
    if not fetch:
        return len(inserted)
    if not inserted:
        return []
    found = []
    for chunk in _chunks(inserted, ID_CHUNK):
        found += session.scalars(select(Reminder).where(Reminder.id.in_(chunk))).all()
    return found


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]

