"""画像 [组织]: the organisation portrait in the chat (SPEC §11) — a link to the chart and the three
features furthest below the baseline, in words. For the leaders of the organisation (or of one
above it) and its liaisons."""

from __future__ import annotations

from bot import access
from bot.command import Command
from bot.context import Context
from bot.messages import Reply
from models.org import find_org


def handle(cmd: Command, ctx: Context) -> Reply:
    from bot.reports.portrait import portrait
    from bot.texts.portrait import chat_reply
    from bot.web.links import reply_link

    wanted = cmd.free_text.strip()
    mine = access.portrait_organisations(ctx.person)
    if not wanted:
        if len(mine) != 1:
            names = "、".join(o.name for o in mine[:5]) + (" 等" if len(mine) > 5 else "")
            return Reply(f"请写出要看哪个组织的画像，例如：画像 {mine[0].name if mine else '综合处党支部'}"
                         + (f"。您可以查看：{names}" if mine else ""))
        org = mine[0]
    else:
        found = find_org(ctx.session, wanted)
        if not found:
            return Reply(f"找不到组织「{wanted}」。请写组织名称或完整路径，例如：画像 {mine[0].name if mine else '综合处党支部'}")
        allowed = [o for o in found if access.may_view_portrait(ctx.person, o)]
        if not allowed:
            return Reply(f"您无权查看「{found[0].name}」的画像：只有该组织及上级组织的书记、副书记、支委和它的联络员可以查看。")
        if len(allowed) > 1:
            return Reply(f"「{wanted}」有 {len(allowed)} 个同名组织，请写完整路径：" + "；".join(o.path for o in allowed))
        org = allowed[0]
    found_portrait = portrait(ctx.session, org, now=ctx.now, tz=ctx.settings.tz)
    link = reply_link(ctx, f"portrait/{org.id}")
    return Reply(chat_reply(found_portrait, link), link=link)
