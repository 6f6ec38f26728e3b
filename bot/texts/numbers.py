"""Wording about numbers themselves: what kind of item a number is, and what to send for it, when
a command was given the number of another kind (one number space, `models.numbers`)."""

from __future__ import annotations

from models.numbers import ItemKind

KIND_NAMES = {ItemKind.DIRECTIVE: "通知", ItemKind.STUDY: "学习资料", ItemKind.MEETING: "会议",
              ItemKind.LEAVE: "请假申请", ItemKind.SELF_REPORT: "积分申报"}
# What to send for an item of each kind, as the person who holds its number usually needs it.
_HINTS = {
    ItemKind.DIRECTIVE: "确认收到请回复「收到 {n}」，查看进度请发送「进度 {n}」",
    ItemKind.STUDY: "学完请回复「已学 {n} 心得」，查看完成情况请发送「学习进度 {n}」",
    ItemKind.MEETING: "不能参加请回复「请假 {n} 理由」，查看详情请发送「详情 {n}」",
    ItemKind.LEAVE: "审批请回复「批准 {n}」或「驳回 {n} 理由」",
    ItemKind.SELF_REPORT: "审核请回复「核实 {n}」或「驳回 {n} 理由」",
}


def wrong_kind(number: int, kind: ItemKind, wanted: tuple[ItemKind, ...]) -> str:
    """`#12 是会议，不是通知。不能参加请回复「请假 12 理由」…`."""
    nouns = "或".join(dict.fromkeys(KIND_NAMES[k] for k in wanted))
    return f"#{number} 是{KIND_NAMES[kind]}，不是{nouns}。{_HINTS[kind].format(n=number)}。"
