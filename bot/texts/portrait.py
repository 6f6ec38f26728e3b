"""Portrait wording (SPEC §11): what each score came from, the three features furthest below the
baseline, the guidance, and the formulas the page's footnote states. The chat's 画像, 概况, the
portrait page and its chart all word a portrait here."""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.timefmt import format_time
from models.options import PORTRAIT_FEATURES
from models.portrait import ALWAYS_DERIVED, SETTABLE, ScoreError, ScoreProblem

if TYPE_CHECKING:
    from bot.reports.portrait import Feature, Portrait

# The formula of each feature, as the page's footnote and docs/PORTRAIT.md state it.
FORMULAS: dict[str, str] = {
    "组织层级": "100 − 20 × 下设层级数（本组织以下还有几级组织），最低 0",
    "业务性质": "不能由记录得出，由党委或联络员评分（0–100）",
    "下属机构": "100 − 5 × 下属组织个数（各级合计），最低 0",
    "党员比例": "200 × 党员人数 ÷ 职工人数，最高 100（党员占职工一半及以上为 100）；须在本组织设置职工人数，未设置时用手工评分",
    "党员岗位特点": "100 × 机关岗位党员 ÷ 填写了岗位类型的党员（外勤、驻外越多分越低）；无人填写岗位类型时用手工评分",
    "发挥作用": "上一个完整季度的按时确认率、规定会议召开率、学习完成率的平均数 × 100（没有数据的一项不计）",
    "党建力量": "50 × 有书记的组织占比 + 50 × min(1, 支委人数 ÷ (党员人数 ÷ 10))（每 10 名党员有 1 名支委为满分）",
}

GUIDANCE_TITLES = {"advanced": "先进更先进", "weak": "重点改进", "on_track": "总体达标"}


def quarter_name(quarter) -> str:
    return f"{quarter.year}年第{quarter.number}季度"


def basis(feature: Feature, tz: ZoneInfo) -> str:
    """Where a score came from: the figures, or who set it and when."""
    f = feature.figures
    if feature.source == "set":
        who = feature.set_by or "管理员"
        return f"手工评分：{who}，{format_time(feature.set_at, tz)}"
    if feature.source == "missing":
        if f.get("staff_missing"):
            return "尚未设置职工人数，也没有手工评分"
        if f.get("posts_missing"):
            return "名册未填写岗位类型，也没有手工评分"
        if feature.name == "发挥作用":
            return "上季度没有通知、规定会议或学习记录"
        return "尚未评分"
    if feature.name == "组织层级":
        return f"下设 {f['levels']} 级组织"
    if feature.name == "下属机构":
        return f"下属组织 {f['units']} 个"
    if feature.name == "党员比例":
        return f"党员 {f['members']} 人 / 职工 {f['staff']} 人"
    if feature.name == "党员岗位特点":
        text = f"机关 {f['office']} 人、外勤 {f['field']} 人、驻外 {f['posted']} 人"
        return text + (f"（{f['unknown']} 人未填岗位类型）" if f["unknown"] else "")
    if feature.name == "发挥作用":
        parts = [f"按时确认 {f['in_time']}/{f['tasks']}" if f["tasks"] else "无通知",
                 f"规定会议 {f['meetings_held']}/{f['meetings_required']}" if f["meetings_required"] else "无规定会议",
                 f"学习完成 {f['study_done']}/{f['study_total']}" if f["study_total"] else "无学习"]
        return f"{quarter_name(f['quarter'])}：" + "、".join(parts)
    return f"有书记的组织 {f['with_secretary']}/{f['units']}，支委 {f['committee']} 人 / 党员 {f['members']} 人"


def score_text(feature: Feature) -> str:
    return "未评分" if feature.score is None else str(feature.score)


def furthest_words(portrait: Portrait) -> str:
    """`党建力量 40（基线 60，低 20）；…`, or that nothing is below the baseline."""
    furthest = portrait.furthest
    if not furthest:
        return "各项均不低于基线"
    return "；".join(f"{f.name} {f.score}（基线 {f.baseline}，低 {f.gap}）" for f in furthest)


def guidance_line(portrait: Portrait) -> str:
    """The classified guidance in one line."""
    kind = portrait.guidance.value
    title = GUIDANCE_TITLES[kind]
    if kind == "advanced":
        spread = "、".join(f.name for f in portrait.strongest)
        return f"{title}：各项均达到基线，可总结推广「{spread}」方面的做法"
    if kind == "weak":
        return f"{title}：{'、'.join(f.name for f in portrait.to_work_on)}明显低于基线，是指导的重点"
    below = [f.name for f in portrait.furthest]
    missing = [f.name for f in portrait.features if f.score is None]
    text = f"{title}：" + (f"{'、'.join(below)}略低于基线，宜关注" if below else "评分项均达到基线")
    return text + (f"；{'、'.join(missing)}尚未评分" if missing else "")


def chat_reply(portrait: Portrait, link: str | None) -> str:
    """`画像`'s answer: the three features furthest below the baseline in words, the guidance, the link."""
    lines = [f"「{portrait.org.name}」画像",
             f"距基线最远：{furthest_words(portrait)}",
             guidance_line(portrait)]
    lines.append(f"图表：{link}" if link else "图表页面暂不可用：请管理员设置对外访问地址。")
    return "\n".join(lines)


def minutes_text(minutes: int | None) -> str:
    """`35分钟`, `2小时5分`, `3天4小时`; `—` for none."""
    if minutes is None:
        return "—"
    if minutes < 60:
        return f"{minutes}分钟"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}小时{rest}分" if rest else f"{hours}小时"
    days, hours = divmod(hours, 24)
    return f"{days}天{hours}小时" if hours else f"{days}天"


def score_refusal(exc: ScoreError, feature: str, score: str) -> str:
    """Why a score was refused and what to write instead (the command line and the page)."""
    if exc.problem is ScoreProblem.UNKNOWN_FEATURE:
        return f"没有「{feature}」这一项。画像的七项是：{'、'.join(PORTRAIT_FEATURES)}；可手工评分的是：{'、'.join(SETTABLE)}"
    if exc.problem is ScoreProblem.DERIVED:
        return (f"「{feature}」由记录计算得出，不能手工评分（{'、'.join(sorted(ALWAYS_DERIVED))}均是）。"
                f"可手工评分的是：{'、'.join(SETTABLE)}")
    return f"分数「{score}」不对：请写 0 到 100 之间的整数，例如 55"
