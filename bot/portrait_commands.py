"""Portrait and observation commands (SPEC §2.4): `portrait ORG [-o FILE.svg]`, `set-portrait ORG
FEATURE SCORE` and `report observation [--period 2026Q4] [-o FILE]`. Thin wrappers over
`bot.reports` and `models.portrait`, in Chinese for the administrator."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from bot.admin_commands import resolve_org_or_exit
from bot.cli_schema import needs_current_schema
from bot.texts.portrait import score_refusal
from models.portrait import ScoreError, set_score


def _runtime():
    return current_app.extensions["zhitong"]


@click.command("portrait")
@click.argument("org_text", metavar="ORG")
@click.option("-o", "output", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="写入 SVG 文件（默认在屏幕上列出各项得分）")
@with_appcontext
@needs_current_schema
def portrait_command(org_text: str, output: Path | None) -> None:
    """The organisation portrait: seven features against the baseline, as an SVG chart."""
    from bot.reports.chart import portrait_svg
    from bot.reports.portrait import portrait
    from bot.texts.portrait import basis, furthest_words, guidance_line, score_text

    runtime = _runtime()
    tz = runtime.settings.tz
    with runtime.db.read_session() as session:
        org = resolve_org_or_exit(session, org_text)
        found = portrait(session, org, now=runtime.now(), tz=tz)
        if output is not None:
            output.write_text(portrait_svg(found), encoding="utf-8")
        click.echo(f"「{org.path}」画像")
        for f in found.features:
            click.echo(f"  {f.name}：{score_text(f)}（基线 {f.baseline}）  {basis(f, tz)}")
        click.echo(f"距基线最远：{furthest_words(found)}")
        click.echo(guidance_line(found))
        if output is not None:
            click.echo(f"图表已写入 {output}")


@click.command("set-portrait")
@click.argument("org_text", metavar="ORG")
@click.argument("feature")
@click.argument("score")
@with_appcontext
@needs_current_schema
def set_portrait_command(org_text: str, feature: str, score: str) -> None:
    """Score a portrait feature the records cannot give (业务性质, …) for an organisation."""
    runtime = _runtime()
    with runtime.db.session() as session:
        org = resolve_org_or_exit(session, org_text)
        try:
            result = set_score(session, org, feature, score, at=runtime.now())
        except ScoreError as exc:
            session.rollback()
            click.echo(score_refusal(exc, feature, score), err=True)
            sys.exit(1)
    click.echo(f"已将「{org.path}」的「{result.feature}」评为 {result.score} 分"
               + (f"（原为 {result.before} 分）" if result.before is not None and result.before != result.score else ""))


@click.group("report")
def report_group() -> None:
    """Reports built from the records."""


@report_group.command("observation")
@click.option("--period", default=None, metavar="2026Q4", help="季度，例如 2026Q4（默认：上一个完整季度）")
@click.option("-o", "output", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="写入文件：.xlsx 为表格，其他为文本（默认显示在屏幕上）")
@with_appcontext
@needs_current_schema
def observation_command(period: str | None, output: Path | None) -> None:
    """The quarterly observation points across organisations, with the quarter before beside them."""
    from bot.reports.observation import observation, render_text, render_xlsx
    from bot.reports.quarter import Quarter

    runtime = _runtime()
    tz = runtime.settings.tz
    if period is None:
        quarter = Quarter.last_complete(runtime.now(), tz)
    else:
        try:
            quarter = Quarter.parse(period)
        except ValueError:
            click.echo(f"季度「{period}」不对：请写年份和季度，例如 2026Q4", err=True)
            sys.exit(1)
    with runtime.db.read_session() as session:
        obs = observation(session, quarter, tz=tz)
    if output is None:
        click.echo(render_text(obs), nl=False)
    elif output.suffix.lower() == ".xlsx":
        output.write_bytes(render_xlsx(obs))
        click.echo(f"观察点表格已写入 {output}")
    else:
        output.write_text(render_text(obs), encoding="utf-8")
        click.echo(f"观察点已写入 {output}")
