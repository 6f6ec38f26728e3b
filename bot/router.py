"""One explicit route table: first match wins. Matching is pure; acting is the handler's job."""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, replace
from functools import partial

from bot.command import (
    Command,
    Route,
    branch_committees,
    everyone,
    liaisons,
    looks_like_number,
    mp_followers,
    secretaries,
    secretaries_or_liaisons,
)
from bot.context import Context
from bot.messages import InboundKind, InboundMessage, Reply
from bot.phrases import EXAMPLES, SYNONYMS, strip_decoration
from handlers import (
    ack,
    binding,
    broadcast,
    detail,
    export,
    help,
    lifecycle,
    meeting,
    overview,
    points,
    portrait,
    readback,
    reject,
    study,
    todo,
    welcome,
)


def normalise(text: str) -> str:
    """Full-width → half-width (NFKC), trimmed, inner runs of white space folded to one space."""
    text = unicodedata.normalize("NFKC", text or "")
    lines = [re.sub(r"[ \t\u3000\u00a0]+", " ", line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def build_routes() -> list[Route]:
    """The table with the phrase table's words for each route."""
    return [replace(r, synonyms=SYNONYMS.get(r.name, ())) for r in _table()]


# A bare check-in code, as people type it into the chat when the host reads it out.
CHECKIN_CODE = re.compile(r"[0-9]{4}")


def _table() -> list[Route]:
    return [
        Route("subscribe", (), welcome.handle_subscribe, audience=everyone, event="subscribe"),
        Route("enter_agent", (), welcome.handle_enter, audience=everyone, event="enter_agent"),
        Route("help", ("帮助", "help", "?", "菜单"), partial(help.handle, table=routes), audience=everyone,
              usage="帮助 — 查看可用命令",
              read_only=True, detached_sender=True),
        # Meeting buttons first: the general card route below takes every other key.
        Route("meeting_card_tap", (), meeting.handle_card_tap, event="template_card_event",
              keys=("leave:", "approve:", "reject:")),
        Route("self_report_card_tap", (), points.handle_card_tap, event="template_card_event",
              keys=("claim_ok:", "claim_no:")),
        Route("card_tap", (), ack.handle_card_tap, event="template_card_event", detached_sender=True),
        Route("checkin_code", (), meeting.handle_bare_code, pattern=CHECKIN_CODE),
        Route("todo", ("待办",), todo.handle, usage="待办 — 查看我还需要处理的事项", read_only=True,
              detached_sender=True),
        Route("ack", ("收到", "已收到"), ack.handle_ack, numbered=True, usage="收到 [编号] — 确认收到通知", detached_sender=True),
        Route("complete", ("完成", "办结"), ack.handle_complete, numbered=True, usage="完成 [编号] [说明] — 报告任务已办结（再发一次可补充说明）",
              detached_sender=True),
        Route("publish", ("发布",), broadcast.handle_publish, audience=secretaries,
              usage="发布 标题 [截止 时间]（可换行写正文；「范围 组织名」或「范围 支委」只发部分）— 直达下属各支部全体党员"),
        Route("progress", ("进度",), broadcast.handle_progress, audience=secretaries_or_liaisons,
              numbered=True, usage="进度 [编号] — 查看通知的逐级确认情况（不写编号：最近发布的通知）", read_only=True),
        Route("nudge", ("催办",), broadcast.handle_nudge, audience=secretaries,
              numbered=True, usage="催办 编号 — 提醒本组织范围内尚未确认的同志（每人 30 分钟内只提醒一次）"),
        Route("receipts", ("回执",), readback.handle_receipts, audience=secretaries_or_liaisons,
              numbered=True, usage="回执 编号 — 查看通知的完成说明或学习心得（按时间顺序）", read_only=True),
        Route("published", ("我发布的",), readback.handle_mine, audience=secretaries,
              usage="我发布的 — 查看我最近发布的通知、学习和会议及其完成情况", read_only=True),
        Route("overview", ("概况",), overview.handle, audience=liaisons,
              usage="概况 — 查看联系组织的通知确认率、规定会议、学习完成和逾期事项", read_only=True),
        # 学习资料 and 学习进度 before 学习: first match wins and both begin with 学习.
        Route("study_assign", ("学习资料",), study.handle_assign, audience=secretaries,
              usage="学习资料 标题 [链接] [截止 时间]（另起一行「范围 组织名」可只发部分组织）— 给下属各支部党员布置学习"),
        Route("study_progress", ("学习进度",), study.handle_progress, audience=secretaries_or_liaisons,
              numbered=True, usage="学习进度 编号 — 查看学习完成情况", read_only=True),
        Route("study_list", ("学习",), study.handle_list, usage="学习 — 查看待完成的学习", read_only=True),
        Route("study_confirm", ("已学",), study.handle_confirm, numbered=True, usage="已学 编号 [心得] — 确认学完"),
        Route("checkin", ("签到",), meeting.handle_checkin, numbered=True, usage="签到 [会议码] — 会议签到（开会前后 30 分钟内）"),
        Route("leave", ("请假",), meeting.handle_leave, numbered=True, usage="请假 [编号] 理由 — 会前请假"),
        Route("points", ("积分",), points.handle_record, usage="积分 [姓名] — 查看本月和本年的积分（书记可查本支部党员）",
              read_only=True),
        Route("self_report", ("申报",), points.handle_submit, usage="申报 类别 内容 — 申报积分事项，由支部核实"),
        Route("detail", ("详情",), detail.handle, numbered=True, usage="详情 编号 — 查看通知、学习或会议的全文"),
        Route("export", ("导出",), export.handle, audience=secretaries_or_liaisons, numbered=True,
              usage="导出 编号 — 生成通知、学习或会议的一事一档文件"),
        # 会议码 before 会议 for clarity (会议 would not match `会议码 3` anyway: 码 is no boundary).
        Route("meeting_code", ("会议码",), meeting.handle_code, audience=secretaries,
              numbered=True, usage="会议码 编号 — 再次查看会议签到码", read_only=True),
        Route("meeting", ("会议",), meeting.handle_schedule, audience=branch_committees,
              usage="会议 类型 时间 [地点|线上] [时长 2小时]（第二行起写议题）— 安排支部党员大会、支委会、党小组会、党课、主题党日、"
                    "组织生活会、民主评议党员并通知参会人"),
        Route("leave_approve", ("批准",), meeting.handle_approve, audience=branch_committees,
              numbered=True, usage="批准 编号 — 批准请假"),
        Route("leave_reject", ("驳回",), reject.handle, audience=branch_committees,
              numbered=True, usage="驳回 编号 [理由] — 驳回请假或积分申报"),
        Route("self_report_verify", ("核实",), points.handle_verify, audience=branch_committees,
              numbered=True, usage="核实 编号 [分值] — 核实党员的积分申报"),
        Route("meeting_close", ("结束",), meeting.handle_close, audience=branch_committees,
              numbered=True, usage="结束 编号 — 结束会议，记录缺席并查看出勤"),
        Route("meeting_minutes", ("纪要",), meeting.handle_minutes, audience=branch_committees,
              numbered=True, usage="纪要 编号 [内容] — 记录会议纪要（不写内容：查看纪要）"),
        Route("withdraw", ("撤回",), lifecycle.handle_withdraw, audience=secretaries,
              numbered=True, usage="撤回 编号 [原因] — 撤回通知或学习，接收人会收到撤回通知"),
        Route("reschedule", ("改期",), lifecycle.handle_reschedule, audience=secretaries,
              numbered=True, usage="改期 编号 时间 — 修改通知、学习的截止时间或会议的开始时间"),
        Route("meeting_cancel", ("取消",), lifecycle.handle_cancel, audience=branch_committees,
              numbered=True, usage="取消 编号 [原因] — 取消会议，通知参会人"),
        # 绑定码 before 绑定: first match wins and 绑定码 begins with 绑定.
        Route("binding_code", ("绑定码",), binding.handle_issue, audience=secretaries,
              usage="绑定码 姓名 — 为本组织的党员生成公众号绑定验证码"),
        Route("bind", ("绑定",), binding.handle_bind, audience=mp_followers,
              usage="绑定 验证码 — 用书记发给您的 6 位验证码绑定身份"),
        Route("portrait", ("画像",), portrait.handle, audience=secretaries_or_liaisons,
              usage="画像 [组织] — 查看组织画像：七项特征与基线的对比图和距基线最远的三项"),
    ]


ROUTES: list[Route] = []
_BUILDING = threading.Lock()


def routes() -> list[Route]:
    """The route table, built on first use. The first messages after start-up arrive on several
    threads at once: only one of them may build it, or the table holds every route twice."""
    if not ROUTES:
        with _BUILDING:
            if not ROUTES:
                ROUTES.extend(build_routes())
    return ROUTES


@dataclass(frozen=True)
class Match:
    """What a message asks for: a route and its command, or no route (an event we do not act on)."""

    route: Route | None
    command: Command

    @property
    def read_only(self) -> bool:
        return self.route is not None and self.route.read_only


def match(msg: InboundMessage) -> Match:
    """The first route that matches; unknown text gets `没看懂`, anything else that is not text help."""
    text = matching_text(msg.text) if msg.kind is InboundKind.TEXT else ""
    for r in routes():
        command = r.match(msg, text)
        if command is not None:
            return Match(r, command)
    if msg.kind is InboundKind.EVENT:
        return Match(None, Command(msg.event or "", msg.event_key or ""))
    if msg.kind is InboundKind.TEXT:  # help answers it with 没看懂: a command without a word
        return Match(_route("help"), Command("", text))
    return Match(_route("help"), Command("帮助", ""))


def matching_text(text: str | None) -> str:
    """What the routes match: the normalised text, its first line without emoji and filler."""
    first, newline, rest = normalise(text).partition("\n")
    return strip_decoration(first) + newline + rest


def _route(name: str) -> Route:
    return next(r for r in routes() if r.name == name)


def act(found: Match, ctx: Context) -> Reply | None:
    """Run the matched route for the person in `ctx`, after the audience check."""
    r = found.route
    if r is None:
        return None  # events we do not act on get an empty 200
    if ctx.person is None and r.audience not in (everyone, mp_followers):
        return welcome.unknown_person(ctx)
    if not r.audience(ctx.person, ctx):
        return help.not_allowed(r, ctx)
    if r.numbered and (bad := _bad_number(r, found.command)):
        shown = bad if len(bad) <= 12 else bad[:12] + "…"
        return Reply(f"编号「{shown}」不对：编号是最多 9 位的阿拉伯数字，例如：{EXAMPLES.get(r.name, r.words[0])}")
    reply = r.handle(found.command, ctx)
    if reply is None and r.pattern is not None:  # a bare code with no meeting open: just unread text
        return _route("help").handle(Command("", found.command.args), ctx)
    return reply


def _bad_number(r: Route, command: Command) -> str | None:
    """The first argument meant as a number that cannot be one (every argument for 收到 1 3)."""
    args = command.arg_list
    return next((a for a in (args if r.name == "ack" else args[:1]) if looks_like_number(a)), None)
