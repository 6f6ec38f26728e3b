"""What people write in a work group and which command it means: the phrase table.

The router reads this table; nothing here touches the database. `SYNONYMS` adds words to a route
(matched like the route's own words: the whole first line, or the word followed by a separator, a
number or closing punctuation). `IMPLIED_ARGS` gives a phrase its argument (`全部收到` is `收到 全部`).
`EXAMPLES` is the one example a `没看懂` answer offers for the closest command. Grow the table
from what real users type, and add each new phrasing to `tests/data/phrases.tsv`."""

from __future__ import annotations

import re

# Route name → further words for it, besides the route's own.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "help": ("帮助 全部", "帮助全部", "全部帮助", "全部命令", "怎么用", "使用说明", "命令", "指令"),
    "todo": ("待办?", "待办事项", "我的待办", "查看待办", "查待办", "代办", "代办事项", "我的代办", "待办事宜",
             "待处理", "还有什么事", "有什么待办"),
    "ack": ("收到了", "收到啦", "收到收到", "收到收到收到", "好的收到", "好的,收到", "好,收到", "好的 收到",
            "收到好的", "好的好的", "ok的", "收到,好的", "收到谢谢", "收到,谢谢", "收到了,谢谢", "已收悉", "收悉", "已阅", "已阅知",
            "已读", "阅", "确认", "确认收到", "已确认", "好的", "好", "好嘞", "好滴", "嗯嗯", "嗯", "知道了",
            "知悉", "明白", "明白了", "了解", "ok", "OK", "Ok", "okay", "OK了", "全部收到", "都收到了",
            "均已收到", "受到", "收到领导", "收到书记", "收到,马上办", "收到了,马上办", "马上办", "照办"),
    "complete": ("已完成", "完成了", "已办结", "办完了", "已办完", "做完了", "搞定", "已搞定", "已落实", "落实了"),
    "study_confirm": ("学完了", "已学习", "学习完毕", "已学完", "学完", "学好了", "已经学了", "已学习完毕"),
    "leave": ("我请假", "我要请假", "请个假", "想请假", "申请请假", "要请假", "请假一下"),
    "leave_approve": ("同意", "准假", "同意请假"),
    "points": ("我的积分", "查积分", "查看积分", "积分查询"),
    "leave_reject": ("不同意", "不批准", "不准假"),
    "meeting": ("开会",),
    "checkin": ("签个到", "我签到", "打卡", "已到"),
    "progress": ("进度?", "查进度", "看进度", "确认情况"),
    "study_list": ("学习任务", "我的学习", "学习?"),
    "withdraw": ("撤销", "撤回通知"),
    "reschedule": ("延期", "推迟", "改时间", "调整时间"),
    "meeting_cancel": ("取消会议",),
    "receipts": ("查回执", "看回执", "完成情况"),
    "published": ("我发的", "我发布的通知", "我的发布", "发布记录"),
    "export": ("导出档案", "导出文件", "一事一档"),
    "portrait": ("组织画像", "查看画像", "看画像"),
}

# A phrase that carries its own argument: what the handler reads as the argument before the rest.
IMPLIED_ARGS: dict[str, str] = {
    "全部收到": "全部", "都收到了": "全部", "均已收到": "全部", "帮助 全部": "全部", "帮助全部": "全部",
    "全部帮助": "全部", "全部命令": "全部",
}

# Route name → one example, for `没看懂` (the closest command) and for help.
EXAMPLES: dict[str, str] = {
    "help": "帮助", "todo": "待办", "ack": "收到 3", "complete": "完成 3 已组织学习",
    "publish": "发布 关于缴纳党费的通知 截止 12月20日", "progress": "进度 3", "nudge": "催办 3",
    "overview": "概况", "study_assign": "学习资料 党章第一章 https://example.cn/a 截止 12月5日",
    "study_progress": "学习进度 3", "study_list": "学习", "study_confirm": "已学 3 很有收获",
    "checkin": "签到 1234", "leave": "请假 3 出差在外", "detail": "详情 12", "meeting_code": "会议码 3",
    "meeting": "会议 支委会 下周一19:00 党员活动室", "leave_approve": "批准 3", "leave_reject": "驳回 3 人手不足",
    "meeting_close": "结束 3", "meeting_minutes": "纪要 3 学习了全会精神", "binding_code": "绑定码 张伟",
    "bind": "绑定 123456", "portrait": "画像 科研一处党支部", "export": "导出 3", "withdraw": "撤回 3 内容有误", "reschedule": "改期 3 12月5日17:00",
    "meeting_cancel": "取消 3 与上级会议冲突",
    "receipts": "回执 3", "published": "我发布的",
    "points": "积分", "self_report": "申报 工作履职 协助社区开展防汛值守", "self_report_verify": "核实 12 2",
}

# WeChat's own emoji are typed as `[抱拳]`, `[强]`: a bracketed name of up to four characters.
_BRACKET_EMOJI = re.compile(r"\[[\u4e00-\u9fffA-Za-z]{1,4}\]|/:[a-z]{1,8}")
# Spoken filler around an acknowledgement that changes nothing (`收到了，马上办`).
_TRAILING_CHATTER = re.compile(r"[,，。.!！~～ ]+(马上办|立即办|马上落实|谢谢|多谢|辛苦了|好的|明白)[。.!！~～]*$")


# Emoji and pictographs (with their joiners and variation selectors), dingbats, arrows and the like.
_EMOJI = re.compile("[\u200d\ufe0e\ufe0f\u2190-\u21ff\u2300-\u23ff\u2460-\u24ff\u25a0-\u27bf\u2b00-\u2bff"
                    "\u3030\u303d\u3297\u3299\U0001f000-\U0001faff]")


def strip_decoration(line: str) -> str:
    """The first line without emoji, WeChat's bracketed emoji and trailing filler, for matching."""
    if "[" in line or "/:" in line:
        line = _BRACKET_EMOJI.sub("", line)
    line = _EMOJI.sub("", line)
    line = _TRAILING_CHATTER.sub("", line)
    return line.strip()
