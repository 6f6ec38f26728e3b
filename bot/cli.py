"""Command line: thin wrappers over service functions, registered on the Flask app's CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from config.settings import Settings, SettingsError


def _runtime():
    return current_app.extensions["zhitong"]


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """Web + scheduler + delivery worker in one process (the embedded default)."""
    from bot.serve import serve

    derive_public_base_url(_runtime(), host, port)
    serve(current_app._get_current_object(), host=host, port=port)


def derive_public_base_url(runtime, host: str, port: int) -> None:
    """`serve` and `demo` know their own address: PUBLIC_BASE_URL defaults to it (SPEC §2.3)."""
    if not runtime.settings.public_base_url:
        client_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        runtime.settings = runtime.settings.with_overrides(public_base_url=f"http://{client_host}:{port}")


def _need_public_base_url(role: str) -> None:
    try:
        _runtime().settings.require_public_base_url(role)
    except SettingsError as exc:
        click.echo(f"启动失败：{exc}", err=True)
        sys.exit(2)


@click.command("web")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=4, show_default=True, type=int)
@with_appcontext
def web_command(host: str, port: int, workers: int) -> None:
    """Only the web role, under gunicorn."""
    from bot.serve import run_gunicorn

    _need_public_base_url("web")

    run_gunicorn(host=host, port=port, workers=workers)


@click.command("worker")
@with_appcontext
def worker_command() -> None:
    """Only the delivery worker: drains the outbox."""
    from bot.serve import run_worker_forever

    _need_public_base_url("worker")
    run_worker_forever(_runtime())


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Only the scheduler: the periodic tick."""
    from scheduler.setup import run_scheduler_forever

    _need_public_base_url("scheduler")
    run_scheduler_forever(_runtime())


@click.command("import-roster")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_roster_command(path: Path) -> None:
    """Load or update the organisation tree and people from CSV or XLSX."""
    from models.roster import RosterError, import_roster, render_report

    runtime = _runtime()
    upgrade(runtime.settings)
    try:
        with runtime.db.session() as session:
            report = import_roster(session, path, now=runtime.now())
    except RosterError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    if report.changed:
        runtime.directory.changed()
    click.echo(render_report(report))


@click.command("set-webhook")
@click.argument("org_path")
@click.argument("key", required=False)
@with_appcontext
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


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def demo_command(host: str, port: int) -> None:
    """Seed a sample organisation and start `serve` with the local fake WeCom server."""
    from bot.demo import run_demo

    run_demo(host=host, port=port)


@click.command("chat")
@click.option("--as", "as_name", required=True, help="姓名，例如 张伟")
@click.option("--url", default=None, help="直通车服务地址（默认取正在运行的演示的地址）")
@click.option("--say", default=None, help="只发送这一条消息，显示回复后退出")
def chat_command(as_name: str, url: str | None, say: str | None) -> None:
    """Chat with the demo bot as a roster person, through the real encrypted callback."""
    from bot.demo import run_chat

    run_chat(as_name=as_name, url=url, lines=None if say is None else [say])


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade_command(revision: str) -> None:
    """Apply migrations."""
    upgrade(_runtime().settings, revision)
    click.echo("数据库已升级到最新版本")


def upgrade(settings: Settings, revision: str = "head") -> None:
    from migrations import upgrade as run_upgrade

    run_upgrade(settings.database_url, revision)


COMMANDS = [
    serve_command,
    web_command,
    worker_command,
    scheduler_command,
    import_roster_command,
    set_webhook_command,
    demo_command,
    chat_command,
    db_group,
]


def init_app(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)


def main() -> None:
    """`python -m bot`: settings errors end start-up with the variable named."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        click.echo(f"启动失败：{exc}", err=True)
        sys.exit(2)

    def factory():
        from bot.app import create_app

        return create_app(settings)

    group = FlaskGroup(create_app=factory, add_default_commands=False, load_dotenv=False,
                       help="直通车 — 党务工作机器人")
    group.main(prog_name="python -m bot")
