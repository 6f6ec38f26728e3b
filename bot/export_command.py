"""`python -m bot export NUMBER [-o FILE]` and `export --org ORG --period P [-o FILE]` (SPEC §2.4):
one matter's DOCX, or an organisation's period as a ZIP of such files with an index XLSX."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from bot.admin_commands import resolve_org_or_exit
from bot.cli_schema import needs_current_schema


@click.command("export")
@click.argument("number", required=False)
@click.option("--org", "org_text", default=None, help="组织（完整路径或唯一名称），与 --period 一起导出一个期间")
@click.option("--period", default=None, help="期间：2026Q4、2026-11 或 2026")
@click.option("-o", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="输出文件（默认按编号或期间命名，写在当前目录）")
@with_appcontext
@needs_current_schema
def export_command(number: str | None, org_text: str | None, period: str | None, output: Path | None) -> None:
    """One file per matter (DOCX), or every matter of an organisation in a period (ZIP)."""
    from bot.reports.docx_file import matter_docx
    from bot.reports.matter import NoSuchMatter, matter_of
    from bot.reports.period import BadPeriod, matter_filename, parse_period, period_matters, period_zip, safe_filename

    runtime = current_app.extensions["zhitong"]
    tz = runtime.settings.tz
    if number is not None and (org_text or period):
        _fail("请只写编号（导出一件事），或只写 --org 和 --period（导出一个期间），不要同时写。")
    if number is None:
        if not (org_text and period):
            _fail("请写要导出的编号，例如：python -m bot export 12；"
                  "或写组织和期间，例如：python -m bot export --org 综合处党支部 --period 2026Q4")
        try:
            bounds = parse_period(period, tz)
        except BadPeriod as exc:
            _fail(str(exc))
        with runtime.db.read_session() as session:
            org = resolve_org_or_exit(session, org_text)
            count = len(period_matters(session, org, bounds, tz))
            data = period_zip(session, org, bounds, tz)
            target = output or Path(safe_filename(f"{org.name} {bounds.label} 一事一档") + ".zip")
        target.write_bytes(data)
        click.echo(f"已导出 {org.path} {bounds.label} 的 {count} 件事项：{target}")
        return
    if not (number.isascii() and number.isdigit()) or len(number) > 10:
        _fail(f"编号「{number}」不对：编号是阿拉伯数字，例如：python -m bot export 12")
    with runtime.db.read_session() as session:
        try:
            matter = matter_of(session, int(number), tz)
        except NoSuchMatter:
            _fail(f"没有编号为 #{number} 的通知、学习或会议。")
        data = matter_docx(matter, tz)
    target = output or Path(matter_filename(matter, tz))
    target.write_bytes(data)
    click.echo(f"已导出 #{matter.number}「{matter.title}」：{target}")


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)
