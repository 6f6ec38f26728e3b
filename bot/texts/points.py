"""Points wording (SPEC §8): a member's record (积分), the self-report card and its decision, the
month's branch table and a member's own line, the quarter's report and the year's summary."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.timefmt import format_time
from config.points_rules import CATEGORY_LABELS, Category, Claim
from models.identity import Channel
from models.org import OrgKind
from models.outbox import card_payload, text_payload
from models.points import CapReason, PointsEntry, Totals
from models.publication import PublicationKind

RULE_LABELS = {
    "study_confirmed": "完成学习",
    "directive_acknowledged": "按时确认收到通知",
    "directive_completed": "报告任务办结",
    "meeting_attended": "参加会议签到",
    "meeting_absent": "无故缺席会议",
    "self_report": "申报核实",
}
CAP_LABELS = {CapReason.MONTH: "本月该类已达上限", CapReason.YEAR: "本年该类已达上限"}
CATEGORY_NAMES = "、".join(CATEGORY_LABELS.values())


def stars(n: int) -> str:
    return "★" * n if n else "—"


def by_category(t: Totals) -> str:
    """`学习培训 2、工作履职 3、参加活动 3、诚信品德 0`."""
    return "、".join(f"{c.label} {t.by_category[c]}" for c in Category)


def period_name(key: str) -> str:
    """`2026年11月`, `2026年第4季度`, `2026年`."""
    if "Q" in key:
        year, q = key.split("Q")
        return f"{year}年第{q}季度"
    if "-" in key:
        year, month = key.split("-")
        return f"{year}年{int(month)}月"
    return f"{key}年"


def entry_line(entry: PointsEntry, tz: ZoneInfo, number: int | None = None) -> str:
    """`2026年11月21日 19:45 按时确认收到通知 #12 工作履职 +1`, with the cap or the reversal."""
    what = RULE_LABELS.get(entry.rule, entry.rule)
    sign = f"+{entry.points}" if entry.points > 0 else str(entry.points)
    why = ""
    if entry.reverses_id is not None:
        why = "（事项已撤销，冲减）"
    elif entry.capped is not None:
        why = f"（{CAP_LABELS[entry.capped]}）"
    return f"{format_time(entry.created_at, tz)} {what} #{number or entry.source_id} " \
           f"{entry.category.label} {sign}{why}"


def record(name: str, month_key: str, month: Totals, month_stars: int, year_key: str, year: Totals,
           year_stars: int, entries: list[PointsEntry], tz: ZoneInfo, numbers: dict[int, int]) -> str:
    """The 积分 reply: this month and this year by category, stars, the last entries with their reason."""
    lines = [f"{name}的积分",
             f"{period_name(month_key)}：{month.total} 分（{by_category(month)}），星级 {stars(month_stars)}",
             f"{period_name(year_key)}：{year.total} 分（{by_category(year)}），星级 {stars(year_stars)}"]
    if entries:
        lines.append("最近记录：")
        lines += [entry_line(e, tz, numbers.get(e.id)) for e in entries]
    else:
        lines.append("还没有积分记录：确认收到通知、按时学习、参加会议都会记分。")
    lines.append("积分只记所做的事，不计在线时长和发消息多少。")
    return "\n".join(lines)


# -- 申报 -----------------------------------------------------------------------------------------

def claim_range(category: Category, claim: Claim | None) -> str:
    if claim is None:
        return f"{category.label}不接受申报"
    return f"{category.label}可申报 {claim.low}–{claim.high} 分"


def self_report_card(number: int, name: str, category: Category, content: str, claim: Claim | None,
                     at, channel: Channel, tz: ZoneInfo) -> dict:
    """The claim as the branch committee gets it: a card with 核实 / 驳回 in WeCom, text elsewhere."""
    details = (f"{name} 申报{category.label}：{content}\n申报时间：{format_time(at, tz)}\n"
               f"{claim_range(category, claim)}")
    how = f"回复「核实 {number} [分值]」或「驳回 {number} 理由」"
    if channel is Channel.WECOM:
        return card_payload(title=f"积分申报 #{number} {name}", description=f"{details}\n也可{how}。",
                            task_id=f"self-report-{number}",
                            buttons=[(f"claim_ok:{number}", "核实"), (f"claim_no:{number}", "驳回")])
    return text_payload(f"【积分申报】#{number}\n{details}\n{how}。")


def self_report_decided(number: int, category: Category, content: str, *, points: int | None, by: str,
                        reason: str | None) -> str:
    if points is not None:
        return f"您的积分申报 #{number}（{category.label}：{content}）已由{by}核实，记 {points} 分。发送「积分」查看。"
    return f"您的积分申报 #{number}（{category.label}：{content}）未通过，{by}的理由：{reason}。"


# -- publications ---------------------------------------------------------------------------------

KIND_LABELS = {PublicationKind.MONTHLY: "月度公示", PublicationKind.QUARTERLY: "季度通报",
               PublicationKind.YEARLY: "年度积分汇总"}
HEADER_LABELS = ("姓名", *CATEGORY_LABELS.values(), "合计", "星级")


def branch_table(table) -> str:
    """The month's publication for one branch: every member's points by category and stars."""
    order = "按积分排列" if table.ranked else "按名册顺序"
    lines = [f"【{KIND_LABELS[table.period.kind]}】{table.branch.name} {period_name(table.period.key)}（{order}）",
             " ".join(HEADER_LABELS)]
    for line in table.lines:
        cells = [line.person.name, *(str(line.totals.by_category[c]) for c in Category),
                 str(line.totals.total), stars(line.stars)]
        lines.append(" ".join(cells))
    if not table.lines and table.branch.kind is OrgKind.TEMPORARY_BRANCH:
        # Its members keep their home branch, where their points are published.
        lines.append("临时党支部党员的积分计入各自所在党支部，见所在党支部的公示。")
    elif not table.lines:
        lines.append("本支部暂无党员。")
    return "\n".join(lines)


def member_line(line, period_key: str) -> str:
    """A member's own line of the month's publication."""
    return (f"【{KIND_LABELS[PublicationKind.MONTHLY]}】{period_name(period_key)}您的积分：{by_category(line.totals)}，"
            f"合计 {line.totals.total} 分，星级 {stars(line.stars)}。发送「积分」查看明细。")


def one_decimal(value: float) -> str:
    """An average to one decimal; a small negative one rounds to 0.0, never to "-0.0"."""
    shown = f"{value:.1f}"
    return "0.0" if shown == "-0.0" else shown


def organisation_lines(figures: list, period_key: str, *, cut: int = 0) -> str:
    """The points part of the 季度通报: per organisation, members, average, share with stars,
    self-reports verified; `cut` organisations further down left out (said in a last line)."""
    lines = [f"积分情况（{period_name(period_key)}）"]
    for f in figures:
        lines.append(f"{f.organisation.name}：党员 {f.members} 人，人均 {one_decimal(f.average)} 分，"
                     f"获星 {f.star_share:.0%}，申报核实 {f.verified_reports} 项")
    if not figures:
        lines.append("本期暂无积分记录。")
    if cut:
        lines.append(f"（组织较多，以上列到下一级，每行含其下属组织；另有 {cut} 个下属组织的明细见季度通报表格，"
                     "可向党委办公室索取。）")
    return "\n".join(lines)


def quarterly_title(period_key: str) -> str:
    return f"【{KIND_LABELS[PublicationKind.QUARTERLY]}】{period_name(period_key)}"


def yearly(organisation_part: str, candidates: list, period_key: str, threshold: int) -> str:
    """The yearly summary: the organisations' lines (`organisation_lines`), then the candidates."""
    lines = [f"【{KIND_LABELS[PublicationKind.YEARLY]}】{period_name(period_key)}", organisation_part,
             f"年度表彰候选人（全年积分达到 {threshold} 分）："]
    lines += [f"{c.person.name}（{c.branch.name if c.branch else '无所在支部'}）{c.total} 分" for c in candidates] or ["无"]
    return "\n".join(lines)
