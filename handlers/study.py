"""学习资料 / 学习 / 已学 / 学习进度: study material assigned through the directive machinery."""

from __future__ import annotations

import re

from bot.command import Command, as_number
from bot.context import Context
from bot.messages import Reply
from bot.texts import study as texts
from bot.texts.directive import note_addition
from bot.texts.lifecycle import withdrawn_answer
from bot.timeparse import TimeParseError, parse_future_time
from bot.web.links import page_url
from handlers.numbered import find, resolve
from handlers.targeting import recipients_line, resolve_scope, take_scope_line
from models.directive import AckResult, Delivery, Directive, DirectiveKind, complete, issue, open_items
from models.numbers import ItemKind

USAGE = ("格式：学习资料 标题 [链接] [截止 时间]，例如：学习资料 党章第一章 https://example.cn/a 截止 12月5日；"
         "书籍章节或纸质材料可不写链接，在下一行写明材料所在，如：纸质版已发至各支部")
_URL = re.compile(r"https?://\S+")
_DEADLINE = re.compile(r"(?:截止|截至)(?:时间|日期)?[\s:：]*")


def handle_assign(cmd: Command, ctx: Context) -> Reply:
    lines = [line.strip() for line in cmd.body.split("\n") if line.strip()]
    lines, scope_text = take_scope_line(lines)
    first = cmd.free_text.strip()
    url = _URL.search(first)
    body_lines = lines
    if url is None:  # the link may stand on a line of its own
        for i, line in enumerate(lines):
            if (found := _URL.fullmatch(line)) is not None:
                url, body_lines = found, lines[:i] + lines[i + 1:]
                first = f"{first} {line}"
                url = _URL.search(first)
                break
    if url is not None:
        title, rest = first[: url.start()].strip(), first[url.end():].strip()
        if rest and not rest.startswith(("截止", "截至")):
            return Reply(f"未布置：链接后面只能写「截止 时间」。\n{USAGE}")
    else:
        m = next(reversed(list(_DEADLINE.finditer(first))), None)
        title, rest = (first[: m.start()].strip(" ,，。;；"), first[m.start():]) if m else (first, "")
    if not rest:  # `截止 时间` on a line of its own
        for i, line in enumerate(body_lines):
            if _DEADLINE.match(line):
                rest, body_lines = line, body_lines[:i] + body_lines[i + 1:]
                break
    if not title:
        return Reply(f"未布置：缺少标题。\n{USAGE}")
    deadline = None
    if rest:
        try:
            deadline = parse_future_time(_DEADLINE.sub("", rest, count=1).strip(), now=ctx.now, tz=ctx.settings.tz)
        except TimeParseError as exc:
            return Reply(f"未布置：截止时间有误，{exc}。")
    org = min(ctx.person.led_organisations(), key=lambda o: (o.depth, o.path))
    scope, problem = resolve_scope(ctx, org, scope_text)
    if problem:
        return Reply(f"未布置：{problem}")
    item = issue(ctx.session, org=org, issuer=ctx.person, title=title[:200], body="\n".join(body_lines),
                 deadline=deadline, now=ctx.now,
                 render=lambda d, role, channel: texts.push(d, role, channel, ctx.settings.tz,
                                                            url=page_url(ctx.settings, f"d/{d.id}")),
                 kind=DirectiveKind.STUDY, link=url.group(0) if url else None,
                 targets=scope.parts, committees_only=scope.committees_only)
    due = f"，截止 {ctx.fmt(deadline)}" if deadline else ""
    sent = recipients_line(ctx, item, scope)
    return Reply(f"已布置学习 #{item.number}，{sent}{due}。发送「学习进度 {item.number}」查看完成情况。")


def _open_items(ctx: Context) -> list[tuple[Directive, Delivery]]:
    return open_items(ctx.session, ctx.person.id, DirectiveKind.STUDY)


def handle_list(_cmd: Command, ctx: Context) -> Reply:
    items = _open_items(ctx)
    if not items:
        return Reply("您目前没有待完成的学习。")
    lines = [f"您有 {len(items)} 项学习待完成："]
    for item, _ in items:
        due = f"，截止 {ctx.fmt(item.deadline)}" if item.deadline else ""
        where = texts.material(item).replace("\n", "\n  ")
        lines.append(f"· #{item.number} {item.title}{due}" + (f"\n  {where}" if where else ""))
    lines.append("学完后回复「已学 编号 心得」，心得可不写。")
    return Reply("\n".join(lines))


def handle_confirm(cmd: Command, ctx: Context) -> Reply:
    args = cmd.arg_list
    number = args[0] if args else ""
    if as_number(number) is None:
        items = _open_items(ctx)
        if len(items) != 1:
            return Reply("请写明编号，例如：已学 12 很有收获。发送「学习」查看待完成的学习。")
        item = items[0][0]
        reflection = cmd.free_text
    else:
        item, wrong = find(ctx.session, int(number), ItemKind.STUDY)
        if wrong:
            return Reply(wrong)
        if item is None:
            return Reply(f"没有编号为 #{number} 的学习资料。发送「学习」查看待完成的学习。")
        reflection = cmd.after_number()
    return confirm(ctx, item, reflection.strip())


def confirm(ctx: Context, item: Directive, reflection: str) -> Reply:
    result, delivery = complete(ctx.session, item, ctx.person, at=ctx.now, note=reflection,
                                addition=note_addition(reflection, ctx.fmt(ctx.now)) if reflection else None)
    if result is AckResult.WITHDRAWN:
        ctx.session.refresh(item)
        return Reply(withdrawn_answer(item.number, item.title, ctx.fmt(item.withdrawn_at)))
    if result is AckResult.NOT_RECIPIENT:
        return Reply(f"学习 #{item.number} 不是布置给您的。")
    if result is AckResult.NOTE_ADDED:
        return Reply(f"已补充学习 #{item.number}「{item.title}」的心得（{ctx.fmt(ctx.now)}）。")
    if result is AckResult.ALREADY:
        return Reply(f"您已于 {ctx.fmt(delivery.completed_at)} 确认学完 #{item.number}「{item.title}」。")
    late = "（已过截止时间）" if delivery.late else ""
    noted = "，心得已记录" if delivery.note else ""
    return Reply(f"已确认学完 #{item.number}「{item.title}」，时间 {ctx.fmt(ctx.now)}{late}{noted}。")


def handle_card_tap(key: str, ctx: Context) -> Reply | None:
    item = ctx.session.get(Directive, as_number(key)) if as_number(key) is not None else None
    if item is None or item.kind is not DirectiveKind.STUDY:
        return None
    return confirm(ctx, item, "")


def handle_progress(cmd: Command, ctx: Context) -> Reply:
    from handlers.broadcast import directive_or_study_progress

    args = cmd.arg_list
    if not args or as_number(args[0]) is None:
        return Reply("请写明编号，例如：学习进度 12")
    kind, item, wrong = resolve(ctx.session, int(args[0]), ItemKind.STUDY, ItemKind.DIRECTIVE)
    if wrong:
        return Reply(wrong)
    if item is None:
        return Reply(f"没有编号为 #{args[0]} 的学习资料。")
    return directive_or_study_progress(ctx, kind, item, cmd)

