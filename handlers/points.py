"""积分 / 积分 姓名 / 申报 / 核实 / 驳回 (a self-report), and the 核实 / 驳回 card buttons (SPEC §8)."""

from __future__ import annotations

from sqlalchemy import select

from bot.access import may_decide_self_report, may_view_points
from bot.command import Command, as_number
from bot.context import Context
from bot.messages import Reply
from bot.texts import points as texts
from bot.texts.parts import part_payloads
from config.points_rules import CATEGORY_BY_NAMES, Category
from models.meeting import branch_leaders, push
from models.person import Person, people_named
from models.points import PointsEntry, period_of, recent, rules_for, totals
from models.self_report import Decision, SelfReport, by_number, claim_of, reject, submit, verify

# Short forms people write for the four categories.
CATEGORY_SHORT_NAMES = {"学习": Category.STUDY, "培训": Category.STUDY, "工作": Category.DUTY, "履职": Category.DUTY,
                        "活动": Category.ACTIVITY, "诚信": Category.INTEGRITY, "品德": Category.INTEGRITY}
SELF_REPORT_USAGE = f"格式：申报 类别 内容，类别为 {texts.CATEGORY_NAMES}，例如：申报 工作履职 协助社区开展防汛值守"


# -- 积分 -----------------------------------------------------------------------------------------

def handle_record(cmd: Command, ctx: Context) -> Reply:
    name = cmd.free_text.strip()
    member = ctx.person
    if name:
        found = [p for p in people_named(ctx.session, name) if may_view_points(ctx.person, p)]
        if not found:
            return Reply(f"查不到您可以查看的「{name}」的积分：只有本人和所在支部的书记、副书记、委员可以查看。")
        member = found[0]
    return Reply(record_text(ctx, member))


def record_text(ctx: Context, member: Person) -> str:
    month = period_of(ctx.now)
    year_first = month[:4] + "-01"
    rules = rules_for(ctx.session, month)
    month_totals = totals(ctx.session, [member.id], month, month).get(member.id)
    year_totals = totals(ctx.session, [member.id], year_first, month).get(member.id)
    from models.points import Totals

    month_totals, year_totals = month_totals or Totals(), year_totals or Totals()
    entries = recent(ctx.session, member.id)
    return texts.record(member.name, month, month_totals, rules.stars(month_totals.total), month[:4], year_totals,
                        rules.stars(year_totals.total, year=True), entries, ctx.settings.tz,
                        _report_numbers(ctx, entries))


def _report_numbers(ctx: Context, entries: list[PointsEntry]) -> dict[int, int]:
    """Entry id → the number people know its source by (the directive's, meeting's or
    self-report's number in the one number space; an item's id is not its number)."""
    from models.directive import Directive
    from models.meeting import Meeting

    tables = {"directive": Directive, "meeting": Meeting, "self_report": SelfReport}
    numbers: dict[tuple[str, int], int] = {}
    for source_type, model in tables.items():
        ids = {e.source_id for e in entries if e.source_type == source_type}
        if ids:
            rows = ctx.session.execute(select(model.id, model.number).where(model.id.in_(ids))).all()
            numbers.update({(source_type, item_id): number for item_id, number in rows})
    return {e.id: numbers[(e.source_type, e.source_id)] for e in entries
            if (e.source_type, e.source_id) in numbers}


# -- 申报 -----------------------------------------------------------------------------------------

def _category(word: str) -> Category | None:
    return CATEGORY_BY_NAMES.get(word) or CATEGORY_SHORT_NAMES.get(word)


def handle_submit(cmd: Command, ctx: Context) -> Reply:
    word, _, content = cmd.free_text.strip().partition(" ")
    category = _category(word)
    content = content.strip()
    if category is None:
        return Reply(f"未申报：请先写类别。\n{SELF_REPORT_USAGE}")
    if not content:
        return Reply(f"未申报：请写明申报的内容。\n{SELF_REPORT_USAGE}")
    branch = ctx.person.home_branch()
    if branch is None:
        return Reply("未申报：名册里没有您所在的支部，请联系支部书记。")
    claim = claim_of(ctx.session, category, ctx.now)
    if claim is None:
        return Reply(f"未申报：{texts.claim_range(category, None)}。")
    report = submit(ctx.session, ctx.person, branch, category, content[:500], at=ctx.now)
    leaders = [p for p in branch_leaders(ctx.session, branch.id) if p.id != ctx.person.id]
    for leader in leaders:
        push(ctx.session, leader.id,
             lambda channel: texts.self_report_card(report.number, ctx.person.name, category, report.content, claim,
                                                    ctx.now, channel, ctx.settings.tz),
             now=ctx.now, subject_type="self_report", subject_id=report.id)
    sent = "已转支部书记核实，结果会通知您" if leaders else "支部暂无其他支委可核实，请联系上级党组织"
    return Reply(f"已提交积分申报 #{report.number}（{category.label}：{report.content}），{sent}。无需提供照片或截图。")


# -- 核实 / 驳回 ----------------------------------------------------------------------------------

def _report(cmd: Command, ctx: Context, word: str) -> tuple[SelfReport | None, str | None]:
    args = cmd.arg_list
    if not args or as_number(args[0]) is None:
        return None, f"请写明申报编号，例如：{word} 12" + (" 理由" if word == "驳回" else "")
    report = by_number(ctx.session, as_number(args[0]))
    if report is None:
        return None, f"没有编号为 #{args[0]} 的积分申报。"
    if not may_decide_self_report(ctx.person, report.branch_id):
        return None, f"积分申报 #{report.number} 属于{report.branch.name}，只有该支部的书记、副书记或支委可以核实或驳回。"
    return report, None


def _already(ctx: Context, report: SelfReport) -> str:
    done = "核实" if report.points is not None else "驳回"
    by = ctx.session.get(Person, report.decided_by_id)
    return f"积分申报 #{report.number}（{report.person.name}）已于 {ctx.fmt(report.decided_at)} 由{by.name if by else ''}{done}，无需再次处理。"


def handle_verify(cmd: Command, ctx: Context) -> Reply:
    report, problem = _report(cmd, ctx, "核实")
    if problem:
        return Reply(problem)
    args = cmd.arg_list
    value = None
    if len(args) > 1:
        value = as_number(args[1].removesuffix("分"))
        if value is None:
            return Reply(f"分值「{args[1]}」不对，请写整数，例如：核实 {report.number} 2")
    return Reply(_verify(ctx, report, value))


def _verify(ctx: Context, report: SelfReport, value: int | None) -> str:
    outcome = verify(ctx.session, report, ctx.person, value, at=ctx.now)
    if outcome.decision is Decision.ALREADY:
        return _already(ctx, outcome.report)
    if outcome.decision is Decision.OUT_OF_RANGE:
        return (f"未核实：{texts.claim_range(report.category, outcome.claim)}，"
                f"例如：核实 {report.number} {outcome.claim.default if outcome.claim else 1}")
    told = _tell(ctx, report, texts.self_report_decided(report.number, report.category, report.content,
                                                         points=report.points, by=ctx.person.name, reason=None))
    return f"已核实 {report.person.name} 的积分申报 #{report.number}（{report.category.label}），记 {report.points} 分。{told}。"


def handle_reject(cmd: Command, ctx: Context) -> Reply:
    report, problem = _report(cmd, ctx, "驳回")
    if problem:
        return Reply(problem)
    reason = cmd.after_number().strip()
    if not reason:
        return Reply(f"请写明驳回理由，例如：驳回 {report.number} 内容与本人无关")
    outcome = reject(ctx.session, report, ctx.person, reason[:500], at=ctx.now)
    if outcome.decision is Decision.ALREADY:
        return Reply(_already(ctx, outcome.report))
    told = _tell(ctx, report, texts.self_report_decided(report.number, report.category, report.content,
                                                         points=None, by=ctx.person.name, reason=report.reason))
    return Reply(f"已驳回 {report.person.name} 的积分申报 #{report.number}，理由：{report.reason}。{told}。")


def _tell(ctx: Context, report: SelfReport, text: str) -> str:
    reached = push(ctx.session, report.person_id, lambda channel: part_payloads(text, channel), now=ctx.now,
                   subject_type="self_report", subject_id=report.id)
    return "已通知本人" if reached else "本人未绑定可推送的账号，请另行告知"


def handle_card_tap(cmd: Command, ctx: Context) -> Reply | None:
    """Buttons on a self-report card: `claim_ok:<number>` verifies at the default value,
    `claim_no:<number>` asks for the reason."""
    prefix, _, arg = (cmd.args or "").partition(":")
    number = as_number(arg)
    if number is None:
        return None
    report = by_number(ctx.session, number)
    if report is None:
        return None
    if not may_decide_self_report(ctx.person, report.branch_id):
        return Reply(f"积分申报 #{report.number} 属于{report.branch.name}，只有该支部的书记、副书记或支委可以核实或驳回。")
    if prefix == "claim_ok":
        return Reply(_verify(ctx, report, None))
    if report.decided_at is not None:
        return Reply(_already(ctx, report))
    return Reply(f"请回复「驳回 {report.number} 理由」，例如：驳回 {report.number} 内容与本人无关")




def self_report_todo_items(session, person: Person) -> list:
    """待办 of a branch committee member: the self-reports of the branch waiting for 核实 or 驳回
    (no 截止: listed after what has one)."""
    from handlers.todo_item import TodoItem
    from models.self_report import ReportStatus

    branches = [r.organisation_id for r in person.roles if r.role.is_committee]
    if not branches:
        return []
    waiting = session.scalars(select(SelfReport).where(SelfReport.branch_id.in_(branches),
                                                       SelfReport.status == ReportStatus.PENDING)
                              .order_by(SelfReport.number))
    return [TodoItem("申报", r.number, f"{r.person.name} 申报{r.category.label}：{r.content}", None,
                     f"核实 {r.number}」或「驳回 {r.number} 理由") for r in waiting]
