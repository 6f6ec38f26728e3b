"""One explicit route table: first match wins. Matching is pure; acting is the handler's job."""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from bot.context import Context
from bot.messages import InboundKind, InboundMessage, Reply
from models.identity import Channel
from models.person import Person

# Punctuation people type between a command and its arguments, in either width.
_SEPARATORS = re.compile(r"[\s,，、:：;；#＃]+")


def normalise(text: str) -> str:
    """Full-width → half-width (NFKC), trimmed, inner runs of white space folded to one space."""
    text = unicodedata.normalize("NFKC", text or "")
    lines = [re.sub(r"[ \t\u3000\u00a0]+", " ", line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


@dataclass(frozen=True)
class Command:
    """A matched command: its keyword and the argument text after it (first line and the rest).

    `args` is normalised (half-width digits and punctuation) for numbers and codes; `text` is the
    argument as typed and `body` the lines after the first as typed, for titles and free text."""

    word: str
    args: str
    body: str = ""  # lines after the first, as typed, for multi-line commands like 发布
    text: str = ""  # the first line's argument as typed

    @property
    def arg_list(self) -> list[str]:
        return [a for a in _SEPARATORS.split(self.args) if a]

    @property
    def free_text(self) -> str:
        return self.text or self.args

    def after_number(self) -> str:
        """The argument as typed, without a leading 编号 (for notes and reflections)."""
        return _LEADING_NUMBER.sub("", self.free_text, count=1).strip()


Audience = Callable[[Person | None, Context], bool]


def everyone(_person: Person | None, _ctx: Context) -> bool:
    return True


def anyone_known(person: Person | None, _ctx: Context) -> bool:
    return person is not None


def secretaries(person: Person | None, _ctx: Context) -> bool:
    return person is not None and person.is_secretary()


def liaisons(person: Person | None, _ctx: Context) -> bool:
    return person is not None and person.is_liaison()


def secretaries_or_liaisons(person: Person | None, ctx: Context) -> bool:
    return secretaries(person, ctx) or liaisons(person, ctx)


def mp_followers(_person: Person | None, ctx: Context) -> bool:
    return ctx.msg.channel is Channel.MP


@dataclass(frozen=True)
class Route:
    name: str
    words: tuple[str, ...]  # command keywords; empty for event routes
    handle: Callable[[Command, Context], Reply | None]
    audience: Audience = anyone_known
    usage: str = ""  # one line for 帮助
    event: str | None = None  # for event routes: the event name (lower case)
    keys: tuple[str, ...] = ()  # for event routes: only event keys with one of these prefixes
    # Reads only: answered without a receipt or a commit, from the cached sender (bot.directory).
    # Enforced: a read-only handler that writes fails instead of losing the write.
    read_only: bool = False
    # The handler reads only what the sender cache loads (roles, liaisons, memberships and their
    # organisations) and queries by id: the cached sender is used as it is, without being attached
    # to the session.
    detached_sender: bool = False

    def match(self, msg: InboundMessage, text: str) -> Command | None:
        if self.event is not None:
            key = msg.event_key or ""
            if msg.kind is InboundKind.EVENT and msg.event == self.event and (
                    not self.keys or key.startswith(self.keys)):
                return Command(word=self.event, args=key)
            return None
        if msg.kind is not InboundKind.TEXT:
            return None
        first = text.partition("\n")[0]
        for word in self.words:
            if first == word or (first.startswith(word) and _is_boundary(first[len(word):])):
                args = first[len(word):]
                args = "" if _only_closing(args) else args.strip(" ,，、:：;；")
                raw_first, raw_body = _as_typed(msg.text)
                raw_args = raw_first[len(word):] if raw_first.startswith(word) else ""
                raw_args = "" if not args else raw_args.strip(_TRIM)
                return Command(word=word, args=args, body=raw_body, text=raw_args)
        return None


_LEADING_NUMBER = re.compile(r"^[#＃]?[0-9０-９]+[\s\u3000,，、:：;；]*")
_TRIM = " \t\u3000\u00a0,，、:：;；"


def _as_typed(text: str) -> tuple[str, str]:
    """The first non-empty line and the following non-empty lines, trimmed but otherwise as typed."""
    lines = [line.strip(" \t\u3000\u00a0") for line in (text or "").splitlines()]
    lines = [line for line in lines if line]
    return (lines[0] if lines else ""), "\n".join(lines[1:])


def _is_boundary(rest: str) -> bool:
    """`收到 3`, `收到3`, `收到#3`, `收到！` match 收到; `收到了吗` does not."""
    return bool(rest) and (rest[0] in " ,，、:：;；#＃" or rest[0].isdigit() or _only_closing(rest))


def _only_closing(rest: str) -> bool:
    """Nothing but closing punctuation, as people end `收到。` / `收到！`; `?` is a question, not this."""
    return bool(rest) and not rest.strip("。.!！~～ ")


def build_routes() -> list[Route]:
    # Imported here so that importing the router has no side effects on handler modules.
    from handlers import ack, binding, broadcast, help, meeting, overview, study, todo, welcome

    return [
        Route("subscribe", (), welcome.handle_subscribe, audience=everyone, event="subscribe"),
        Route("enter_agent", (), welcome.handle_enter, audience=everyone, event="enter_agent"),
        Route("help", ("帮助", "help", "?", "菜单"), help.handle, audience=everyone, usage="帮助 — 查看可用命令",
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
    from handlers import help as help_handler
    from handlers import welcome

    r = found.route
    if r is None:
        return None  # events we do not act on get an empty 200
    if ctx.person is None and r.audience not in (everyone, mp_followers):
        return welcome.unknown_person(ctx)
    if not r.audience(ctx.person, ctx):
        return help_handler.not_allowed(r, ctx)
    return r.handle(found.command, ctx)
