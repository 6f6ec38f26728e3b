"""Command line: thin wrappers over service functions, registered on the Flask app's CLI.

A command is a click command here, listed in COMMANDS; `create_app` registers them all, so each is
`python -m bot NAME` and `flask --app bot NAME`. With `@with_appcontext` it reaches the running
instance through `_runtime()`. This module never imports the composition root (`bot.app`): a command
that must build an app of its own takes `_create_app()`, the factory `init_app` was handed."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from bot.admin_commands import set_option_command
from bot.cli_schema import migration_logs, needs_current_schema, schema_is_current
from bot.export_command import export_command
from bot.portrait_commands import portrait_command, set_portrait_command
from bot.report_commands import report_group
from config.settings import Settings, SettingsError

_FACTORY = "zhitong.create_app"


def _runtime():
    return current_app.extensions["zhitong"]


def _create_app() -> Callable[..., Flask]:
    """`create_app`, as the composition root handed it to `init_app`."""
    return current_app.extensions[_FACTORY]


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """Web + scheduler + delivery worker in one process (the embedded default)."""
    from bot.holidays import warn_at_startup
    from bot.serve import serve

    warn_at_startup(_runtime())
    derive_public_base_url(_runtime(), host, port)
    serve(current_app._get_current_object(), host=host, port=port)


def derive_public_base_url(runtime, host: str, port: int) -> None:
    """`serve` and `demo` know their own address: PUBLIC_BASE_URL defaults to it (SPEC §2.3)."""
    if not runtime.settings.public_base_url:
        client_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        runtime.settings = runtime.settings.with_overrides(public_base_url=f"http://{client_host}:{port}")


def _needs_public_base_url(role: str):
    """A role's callback that starts only with PUBLIC_BASE_URL set (exit 2), checked before the
    database: a configuration error is the first thing to fix."""
    def wrap(command):
        @functools.wraps(command)
        def checked(*args, **kwargs):
            try:
                _runtime().settings.require_public_base_url(role)
            except SettingsError as exc:
                click.echo(f"启动失败：{exc}", err=True)
                sys.exit(2)
            return command(*args, **kwargs)

        return checked

    return wrap


@click.command("web")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=4, show_default=True, type=int)
@with_appcontext
@_needs_public_base_url("web")
@needs_current_schema
def web_command(host: str, port: int, workers: int) -> None:
    """Only the web role, under gunicorn."""
    from bot.serve import run_gunicorn

    run_gunicorn(host=host, port=port, workers=workers, create_app=_create_app())


@click.command("worker")
@with_appcontext
@_needs_public_base_url("worker")
@needs_current_schema  # else the worker's traceback, every quarter second
def worker_command() -> None:
    """Only the delivery worker: drains the outbox."""
    from bot.serve import run_worker_forever

    run_worker_forever(_runtime())


@click.command("scheduler")
@with_appcontext
@_needs_public_base_url("scheduler")
@needs_current_schema
def scheduler_command() -> None:
    """Only the scheduler: the periodic tick."""
    from bot.holidays import warn_at_startup
    from scheduler.setup import run_scheduler_forever

    warn_at_startup(_runtime())
    run_scheduler_forever(_runtime())


@click.command("import-roster")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--under", "under", default=None, metavar="ORG", help="名册中的「组织」均相对于这个已有组织")
@click.option("--dry-run", is_flag=True, help="只显示将要发生的变化，不写入任何数据")
@click.option("--verbose", is_flag=True, help="显示数据库升级的详细日志")
@with_appcontext
def import_roster_command(path: Path, under: str | None, dry_run: bool, verbose: bool) -> None:
    """Load or update the organisation tree and people from CSV or XLSX."""
    from bot.roster import RosterError, import_roster, render_report

    if not path.is_file():
        click.echo(f"找不到名册文件「{path}」" + ("：这是一个文件夹，请写出其中的名册文件" if path.is_dir() else
                                           "，请检查文件名和所在文件夹"), err=True)
        sys.exit(1)
    runtime = _runtime()
    if dry_run:
        if not schema_is_current(runtime.settings, verbose=verbose):
            click.echo("数据库尚未升级到最新版本：试运行不改动数据库，请先运行 python -m bot db upgrade", err=True)
            sys.exit(1)
    else:
        upgrade(runtime.settings, verbose=verbose)
    try:
        with runtime.db.session() as session:
            report = import_roster(session, path, now=runtime.now(), under=under, dry_run=dry_run,
                                   tz=runtime.settings.tz)
            if dry_run:
                session.rollback()
    except RosterError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    if report.changed and not dry_run:
        runtime.directory.changed()
    click.echo(render_report(report))


@click.group("member")
def member_group() -> None:
    """Roster people one by one."""


@member_group.command("leave")
@click.argument("who")
@click.option("--date", "on", default=None, metavar="YYYY-MM-DD", help="转出日期（默认今天）")
@with_appcontext
@needs_current_schema
def member_leave_command(who: str, on: str | None) -> None:
    """Mark a member as transferred out: no more pushes, history kept."""
    from bot.roster.leave import LeaveError, leave

    runtime = _runtime()
    try:
        with runtime.db.session() as session:
            message = leave(session, who, on=on, now=runtime.now(), tz=runtime.settings.tz)
    except LeaveError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    runtime.directory.changed()
    click.echo(message)


@click.command("set-webhook")
@click.argument("org_path")
@click.argument("key", required=False)
@with_appcontext
@needs_current_schema
def set_webhook_command(org_path: str, key: str | None) -> None:
    """Set (or clear, without KEY) an organisation's group-robot webhook key."""
    from models.event import record
    from models.org import find_by_path

    runtime = _runtime()
    with runtime.db.session() as session:
        org = find_by_path(session, org_path)
        if org is None:
            click.echo(f"找不到组织：{org_path}", err=True)
            sys.exit(1)
        org.webhook_key = key or None
        record(session, "organisation.webhook_set" if key else "organisation.webhook_cleared", subject=org,
               at=runtime.now())
    click.echo(f"已{'设置' if key else '清除'}「{org_path}」的群机器人")


@click.command("holidays")
@click.argument("year", required=False)
@with_appcontext
def holidays_command(year: str | None) -> None:
    """Which calendar data is in force for YEAR (default: this year and the next)."""
    from bot.holidays import default_years, report

    runtime = _runtime()
    if year is not None and not (year.isascii() and year.isdigit() and 1900 <= int(year) <= 2999):
        click.echo(f"年份应为四位数字，例如 2027，现在是「{year}」", err=True)
        sys.exit(2)
    today = runtime.now().astimezone(runtime.settings.tz).date()
    for line in report([int(year)] if year else default_years(today), runtime.settings.holidays_file):
        click.echo(line)


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def demo_command(host: str, port: int) -> None:
    """Seed a sample organisation and start `serve` with the local fake WeCom server."""
    from bot.demo import run_demo

    run_demo(host=host, port=port, create_app=_create_app())


@click.command("chat")
@click.option("--as", "as_name", required=True, help="姓名，例如 张伟")
@click.option("--url", default=None, help="直通车服务地址（默认取正在运行的演示的地址）")
@click.option("--say", default=None, help="只发送这一条消息，显示回复后退出")
def chat_command(as_name: str, url: str | None, say: str | None) -> None:
    """Chat with the demo bot as a roster person, through the real encrypted callback."""
    from bot.chat import run_chat

    run_chat(as_name=as_name, url=url, lines=None if say is None else [say])


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.option("--verbose", is_flag=True, help="显示每一步迁移的日志")
@with_appcontext
def db_upgrade_command(revision: str, verbose: bool) -> None:
    """Apply migrations."""
    upgrade(_runtime().settings, revision, verbose=verbose)
    click.echo("数据库已升级到最新版本")


def upgrade(settings: Settings, revision: str = "head", *, verbose: bool = False) -> None:
    """Apply migrations."""
    with migration_logs(verbose):
        from migrations import upgrade as run_upgrade

        run_upgrade(settings.database_url, revision)


COMMANDS = [
    serve_command,
    web_command,
    worker_command,
    scheduler_command,
    import_roster_command,
    member_group,
    set_webhook_command,
    set_option_command,
    report_group,
    portrait_command,
    set_portrait_command,
    holidays_command,
    demo_command,
    chat_command,
    db_group,
    export_command,
]


def init_app(app: Flask, *, create_app: Callable[..., Flask]) -> None:
    """Register every command; `create_app` is kept for the commands that build an app of their own."""
    app.extensions[_FACTORY] = create_app
    for command in COMMANDS:
        app.cli.add_command(command)
