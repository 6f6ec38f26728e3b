"""One explicit route table: first match wins. Matching is pure; acting is the handler's job."""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import partial

from bot.command import Command, Route, everyone, liaisons, mp_followers, secretaries, secretaries_or_liaisons
from bot.context import Context
from bot.messages import InboundKind, InboundMessage, Reply
from handlers import ack, binding, broadcast, detail, help, meeting, overview, study, todo, welcome


def normalise(text: str) -> str:
    """Full-width → half-width (NFKC), trimmed, inner runs of white space folded to one space."""
    text = unicodedata.normalize("NFKC", text or "")
    lines = [re.sub(r"[ \t\u3000\u00a0]+", " ", line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def build_routes() -> list[Route]:
    return [
        Route("subscribe", (), welcome.handle_subscribe, audience=everyone, event="subscribe"),
        Route("enter_agent", (), welcome.handle_enter, audience=everyone, event="enter_agent"),
        Route("help", ("帮助", "help", "?", "菜单"), partial(help.handle, table=routes), audience=everyone,
              usage="帮助 — 查看可用命令",
              read_only=True, detached_sender=True),
        # Meeting buttons first: the general card route below takes every other key.
        Route("meeting_card_tap", (), meeting.handle_card_tap, event="template_card_event",
              keys=("leave:", "approve:", "reject:")),
        Route("card_tap", (), ack.handle_card_tap, event="template_card_event", detached_sender=True),
        Route("todo", ("待办",), todo.handle, usage="待办 — 查看我还需要处理的事项", read_only=True,
              detached_sender=True),
        Route("ack", ("收到", "已收到"), ack.handle_ack, usage="收到 [编号] — 确认收到通知", detached_sender=True),
        Route("complete", ("完成", "办结"), ack.handle_complete, usage="完成 编号 [说明] — 报告任务已办结",
              detached_sender=True),
        Route("publish", ("发布",), broadcast.handle_publish, audience=secretaries,
              usage="发布 标题（换行写正文，最后一行可写「截止 时间」）— 直达下属各支部全体党员"),
        Route("progress", ("进度",), broadcast.handle_progress, audience=secretaries_or_liaisons,
              usage="进度 编号 — 查看通知的逐级确认情况", read_only=True),
        Route("nudge", ("催办",), broadcast.handle_nudge, audience=secretaries,
              usage="催办 编号 — 提醒尚未确认的同志"),
        Route("overview", ("概况",), overview.handle, audience=liaisons,
              usage="概况 — 查看联系组织的通知确认率、规定会议、学习完成和逾期事项", read_only=True),
        # 学习资料 and 学习进度 before 学习: first match wins and both begin with 学习.
        Route("study_assign", ("学习资料",), study.handle_assign, audience=secretaries,
              usage="学习资料 标题 链接 截止 时间 — 给下属各支部党员布置学习"),
        Route("study_progress", ("学习进度",), study.handle_progress, audience=secretaries_or_liaisons,
              usage="学习进度 编号 — 查看学习完成情况", read_only=True),
        Route("study_list", ("学习",), study.handle_list, usage="学习 — 查看待完成的学习", read_only=True),
        Route("study_confirm", ("已学",), study.handle_confirm, usage="已学 编号 [心得] — 确认学完"),
        Route("checkin", ("签到",), meeting.handle_checkin, usage="签到 [会议码] — 会议签到（开会前后 30 分钟内）"),
        Route("leave", ("请假",), meeting.handle_leave, usage="请假 [编号] 理由 — 会前请假"),
        Route("detail", ("详情",), detail.handle, usage="详情 编号 — 查看通知、学习或会议的全文"),
        # 会议码 before 会议 for clarity (会议 would not match `会议码 3` anyway: 码 is no boundary).
        Route("meeting_code", ("会议码",), meeting.handle_code, audience=secretaries,
              usage="会议码 编号 — 再次查看会议签到码", read_only=True),
        Route("meeting", ("会议",), meeting.handle_schedule, audience=secretaries,
              usage="会议 类型 时间 [地点|线上] — 安排支部党员大会、支委会、党小组会、党课、主题党日并通知参会人"),
        Route("leave_approve", ("批准",), meeting.handle_approve, audience=secretaries,
              usage="批准 编号 — 批准请假"),
        Route("leave_reject", ("驳回",), meeting.handle_reject, audience=secretaries,
              usage="驳回 编号 [理由] — 驳回请假"),
        Route("meeting_close", ("结束",), meeting.handle_close, audience=secretaries,
              usage="结束 编号 — 结束会议，记录缺席并查看出勤"),
        Route("meeting_minutes", ("纪要",), meeting.handle_minutes, audience=secretaries,
              usage="纪要 编号 内容 — 记录会议纪要"),
        # 绑定码 before 绑定: first match wins and 绑定码 begins with 绑定.
        Route("binding_code", ("绑定码",), binding.handle_issue, audience=secretaries,
              usage="绑定码 姓名 — 为本组织的党员生成公众号绑定验证码"),
        Route("bind", ("绑定",), binding.handle_bind, audience=mp_followers,
              usage="绑定 验证码 — 用书记发给您的 6 位验证码绑定身份"),
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
    """The first route that matches; unknown text (and anything that is not text) is help."""
    text = normalise(msg.text) if msg.kind is InboundKind.TEXT else ""
    for r in routes():
        command = r.match(msg, text)
        if command is not None:
            return Match(r, command)
    if msg.kind is InboundKind.EVENT:
        return Match(None, Command(msg.event or "", msg.event_key or ""))
    return Match(_help_route(), Command("帮助", ""))


def _help_route() -> Route:
    return next(r for r in routes() if r.name == "help")


def act(found: Match, ctx: Context) -> Reply | None:
    """Run the matched route for the person in `ctx`, after the audience check."""
    r = found.route
    if r is None:
        return None  # events we do not act on get an empty 200
    if ctx.person is None and r.audience not in (everyone, mp_followers):
        return welcome.unknown_person(ctx)
    if not r.audience(ctx.person, ctx):
        return help.not_allowed(r, ctx)
    return r.handle(found.command, ctx)
