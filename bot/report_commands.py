"""`report monthly|quarterly|yearly`: the points publications on the command line (SPEC §2.4, §8),
beside `report observation` (bot/portrait_commands.py) in the one `report` group."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from bot.admin_commands import resolve_org_or_exit
from bot.cli_schema import needs_current_schema
from bot.portrait_commands import report_group


def _publication_options(command):
    """The options `report monthly`, `report quarterly` and `report yearly` share."""
    options = [
        click.option("--period", "period_text", default=None, help="2026-11、2026Q4 或 2026；默认为上一个完整的期间"),
        click.option("--org", "org_text", default=None, metavar="ORG", help="只看这个组织及其下属"),
        click.option("--send", is_flag=True, help="像定时任务一样推送（已推送过的期间不再推送）"),
        click.option("--force", is_flag=True, help="与 --send 同用：已推送过也再推送一次"),
        click.option("-o", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="另存为 XLSX 表格"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@report_group.command("monthly")
@_publication_options
@with_appcontext
@needs_current_schema
def monthly_command(**options) -> None:
    """月度公示: each branch's points this month (SPEC §8)."""
    publication("monthly", **options)


@report_group.command("quarterly")
@_publication_options
@with_appcontext
@needs_current_schema
def quarterly_command(**options) -> None:
    """季度通报: points per organisation this quarter (SPEC §8)."""
    publication("quarterly", **options)


@report_group.command("yearly")
@_publication_options
@with_appcontext
@needs_current_schema
def yearly_command(**options) -> None:
    """The yearly summary with the 年度表彰 candidates (SPEC §8)."""
    publication("yearly", **options)


def publication(kind: str, period_text: str | None, org_text: str | None, send: bool, force: bool,
                output: Path | None) -> None:
    """Points publications: 月度公示, 季度通报, the yearly summary (SPEC §8)."""
    from bot.reports.points import PeriodError, last_complete, parse_period
    from bot.reports.points_xlsx import workbook
    from bot.reports.publish import render, top_organisations, was_sent
    from bot.reports.publish import send as send_publication
    from models.publication import PublicationKind

    runtime = current_app.extensions["zhitong"]
    tz, now = runtime.settings.tz, runtime.now()
    publication_kind = PublicationKind(kind)
    try:
        period = parse_period(publication_kind, period_text) if period_text else last_complete(publication_kind, now, tz)
    except PeriodError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    with runtime.db.session() as session:
        org = resolve_org_or_exit(session, org_text) if org_text else None
        click.echo(render(session, period, org, tz, now=now))
        if output is not None:
            tops = [org] if org is not None else top_organisations(session)
            output.write_bytes(workbook(session, period, org, tops, tz))
            click.echo(f"已保存表格：{output}")
        if send:
            # Each copy is claimed once (bot/reports/publish.py): those sent before are left out.
            count = send_publication(session, period, org, now=now, tz=tz, force=force,
                                     release=_quiet_release(runtime.settings))
            if count == 0 and not force and was_sent(session, period):
                click.echo(f"{period.key} 已推送过，未再推送；确需再推送请加 --force")
                return
            click.echo(f"已推送 {count} 人")


def _quiet_release(settings):
    from scheduler.reminders import quiet_release

    return lambda now: quiet_release(now, settings.quiet_window, settings.tz)
