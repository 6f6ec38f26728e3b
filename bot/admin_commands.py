"""Administrator commands for per-organisation settings: `set-option` (and, beside it, the other
commands that take an `ORG` the way SPEC §2.4 says: a full path or a name unique in the tree)."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from bot.cli_schema import needs_current_schema
from models.options import BASELINE_PREFIX, PORTRAIT_FEATURES, OptionError, OptionKind, OptionProblem, set_option
from models.org import Organisation, find_org


def resolve_org_or_exit(session, text: str) -> Organisation:
    """The one organisation `text` names, or a Chinese message naming the candidates and exit 1."""
    found = find_org(session, text)
    if len(found) == 1:
        return found[0]
    if not found:
        click.echo(f"找不到组织「{text}」。请写完整路径，例如：机关党委/第一党总支/综合处党支部", err=True)
    else:
        click.echo(f"「{text}」有 {len(found)} 个同名组织，请写完整路径：", err=True)
        for org in found:
            click.echo(f"  {org.path}", err=True)
    sys.exit(1)


_VALUE_HINTS = {
    OptionKind.SWITCH: "请写 on（开启）或 off（关闭）",
    OptionKind.COUNT: "请写一个不小于 0 的整数，例如 120",
    OptionKind.SCORE: "请写 0 到 100 之间的整数，例如 65",
    OptionKind.TEXT: "请写 1 到 100 个字，例如 科研",
}


def _known_names() -> str:
    return "ranking（积分排名）、职工人数、业务性质、" + "、".join(BASELINE_PREFIX + f for f in PORTRAIT_FEATURES)


@click.command("set-option")
@click.argument("org_text", metavar="ORG")
@click.argument("name")
@click.argument("value")
@with_appcontext
@needs_current_schema
def set_option_command(org_text: str, name: str, value: str) -> None:
    """Set an organisation's option; the organisations beneath it inherit it unless they set their own."""
    runtime = current_app.extensions["zhitong"]
    with runtime.db.session() as session:
        org = resolve_org_or_exit(session, org_text)
        try:
            result = set_option(session, org, name, value, at=runtime.now())
        except OptionError as exc:
            session.rollback()
            if exc.problem is OptionProblem.UNKNOWN_NAME:
                click.echo(f"没有「{name}」这一设置。可设置的有：{_known_names()}", err=True)
            else:
                click.echo(f"「{name}」的值「{value}」不对：{_VALUE_HINTS[exc.spec.kind]}", err=True)
            sys.exit(1)
        shown = {True: "开启", False: "关闭"}.get(result.value, result.value) if result.spec.kind is OptionKind.SWITCH \
            else result.value
        click.echo(f"已将「{org.path}」的「{result.spec.name}」设为 {shown}，下属组织未单独设置的同样适用")
