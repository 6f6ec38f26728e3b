"""`python -m bot demo`: a sample organisation and a local fake of WeCom's server, served by the
real app; `bot/chat.py` is the terminal client that chats with it.

The demo runs on the embedded default (SQLite under `instance/`, no Redis), so a newcomer sees the
whole flow — a directive published once, pushed straight to every branch, acknowledged with a tap —
without a WeCom account. The roster it imports is `bot/demo_data/roster.csv`, through the same
importer as `python -m bot import-roster`."""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
from flask import Flask

from config.settings import DEFAULT_INSTANCE_DIR, Settings, WeComSettings

DEMO_ROSTER = Path(__file__).resolve().parent / "demo_data" / "roster.csv"
DEMO_DB_NAME = "demo.sqlite3"
DEMO_INFO_NAME = "demo.json"

# Fixed, public demo credentials: they only ever talk to the local fake server.
DEMO_CORP_ID = "wwdemo0000000001"
DEMO_AGENT_ID = 1000002
DEMO_SECRET = "zhitong-demo-secret"
DEMO_TOKEN = "zhitongdemo"
DEMO_AES_KEY = "emhpdG9uZy1kZW1vLWFlcy1rZXktMzItYnl0ZXMhISE"  # base64 of a 32-byte key, minus "="

class DemoError(click.ClickException):
    """Something the person running the demo or the chat client must fix; the text is for them.

    Under click it is printed as is (without click's English "Error:" prefix) and exits with 1."""

    def show(self, file=None) -> None:
        click.echo(self.message, err=True, file=file)


# -- the demo server ------------------------------------------------------------------------------


def demo_wecom_settings(api_base: str) -> WeComSettings:
    return WeComSettings(
        corp_id=DEMO_CORP_ID,
        agent_id=DEMO_AGENT_ID,
        secret=DEMO_SECRET,
        token=DEMO_TOKEN,
        aes_key=DEMO_AES_KEY,
        api_base=api_base if api_base.endswith("/") else api_base + "/",
    )


def demo_settings(instance_dir: Path, *, api_base: str, database_url: str | None = None) -> Settings:
    """Settings for the demo, built in code: SQLite in `instance_dir`, no Redis, WeCom → the fake."""
    import secrets

    return Settings(
        database_url=database_url or f"sqlite:///{instance_dir / DEMO_DB_NAME}",
        redis_url=None,
        wecom=demo_wecom_settings(api_base),
        secret_key=secrets.token_hex(32),
        instance_dir=instance_dir,
        scheduler_tick_seconds=5.0,
    )


def seed_demo(runtime, roster: Path = DEMO_ROSTER):
    """Migrate the database and import the demo roster with the real importer.

    Idempotent: importing the same roster again changes nothing. Returns the importer's report."""
    from bot.roster import import_roster
    from migrations import upgrade

    upgrade(runtime.settings.database_url)
    with runtime.db.session() as session:
        report = import_roster(session, roster, now=runtime.now())
    if report.changed:
        runtime.directory.changed()
    return report


@dataclass(frozen=True)
class DemoSummary:
    committees: int
    general_branches: int
    branches: int
    temporary_branches: int
    people: int


def summarise(runtime) -> DemoSummary:
    from sqlalchemy import func, select

    from models.org import Organisation, OrgKind
    from models.person import Person

    with runtime.db.session() as session:
        kinds = dict(session.execute(select(Organisation.kind, func.count()).group_by(Organisation.kind)).all())
        people = session.scalar(select(func.count()).select_from(Person)) or 0
    return DemoSummary(
        committees=kinds.get(OrgKind.COMMITTEE, 0),
        general_branches=kinds.get(OrgKind.GENERAL_BRANCH, 0),
        branches=kinds.get(OrgKind.BRANCH, 0),
        temporary_branches=kinds.get(OrgKind.TEMPORARY_BRANCH, 0),
        people=people,
    )


def run_demo(host: str = "127.0.0.1", port: int = 5000, *, create_app: Callable[[Settings], Flask],
             instance_dir: Path = DEFAULT_INSTANCE_DIR) -> None:
    """Reset and seed the demo database, start the fake WeCom server, then serve until Ctrl-C.

    `create_app` is the composition root's factory, handed down by the `demo` command."""
    from bot.serve import serve
    from fakewx.server import FakeServer

    if not _port_free(host, port):
        raise DemoError(
            f"端口 {port} 已被占用（也许演示已经在运行）。可以换一个端口：{bot_command('demo', '--port', str(port + 10))}"
        )
    fake_port = port + 1 if _port_free("127.0.0.1", port + 1) else 0
    fake = FakeServer(port=fake_port)  # serves from construction, in a daemon thread
    info_path = instance_dir / DEMO_INFO_NAME
    try:
        instance_dir.mkdir(parents=True, exist_ok=True)
        _remove_sqlite(instance_dir / DEMO_DB_NAME)  # a fresh organisation on every run
        page_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        settings = demo_settings(instance_dir, api_base=fake.base_url).with_overrides(
            public_base_url=f"http://{page_host}:{port}", wecom_oauth_url=fake.oauth_url)
        app = create_app(settings)
        _quiet_logs()
        runtime = app.extensions["zhitong"]
        report = seed_demo(runtime)
        summary = summarise(runtime)
        # The fake behaves like a real corp: only our app's credentials, only the roster's people.
        fake.state.add_wecom_app(DEMO_CORP_ID, DEMO_SECRET)
        fake.state.set_known_users(_userids(runtime))
        fake.oauth.set_people(oauth_people(runtime))  # the fake's authorize page asks who you are

        client_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        url = f"http://{client_host}:{port}"
        info = {
            "url": url,
            "database_url": settings.database_url,
            "corp_id": DEMO_CORP_ID,
            "agent_id": DEMO_AGENT_ID,
            "secret": DEMO_SECRET,
            "token": DEMO_TOKEN,
            "aes_key": DEMO_AES_KEY,
            "wecom_api_base": fake.base_url,
            "fake_server": fake.root_url,
            "pid": os.getpid(),
        }
        info_path.write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")

        from bot.roster import render_report

        click.echo(render_report(report))
        from models.points import period_of

        click.echo(welcome_text(url, info["fake_server"], instance_dir / DEMO_DB_NAME, summary,
                                month=period_of(runtime.now())))
        click.echo(pages_text(url))
        _stop_on_sigterm()
        serve(app, host=host, port=port)
    finally:
        info_path.unlink(missing_ok=True)
        fake.stop()


def bot_command(*args: str) -> str:
    """`python -m bot ARGS` as it will work when typed here: with the interpreter running now, shown
    relative to the working directory when it lies beneath it (`.venv/bin/python`), else in full.

    A plain `python` may be another interpreter, without the packages the README's venv holds."""
    executable = sys.executable or "python3"
    path = Path(executable)
    try:
        # Not resolved: a venv's python is a symlink to the base interpreter, which lacks the packages.
        shown = str(path.relative_to(Path.cwd())) if path.is_absolute() else executable
        if "/" not in shown:
            shown = "./" + shown
    except ValueError:
        shown = executable
    return " ".join(_shell_word(word) for word in (shown, "-m", "bot", *args))


def _shell_word(word: str) -> str:
    """`word` as a shell reads it; quoted only when it must be (a name like 张伟 is left as is)."""
    return shlex.quote(word) if not word or any(c.isspace() or c in "'\"\\$`!*?;&|<>(){}[]#~" for c in word) else word


def welcome_text(url: str, fake_root: str, db_path: Path, summary: DemoSummary, *, month: str) -> str:
    """The banner; `month` (`2026-12`) is the month the demo runs in, the period its 月度公示 step names."""
    chat = bot_command("chat", "--as") + " "  # the name follows
    return f"""
════════════════ 直通车演示已启动 ════════════════
  服务地址        {url}（企业微信回调 {url}/wecom/callback）
  模拟企业微信    {fake_root}（推送消息“送达”这里）
  演示数据库      {_display_path(db_path)}（每次运行 demo 都会重新生成）

示例组织：机关党委 → 第一党总支、第二党总支 → 各 3 个党支部，另有 1 个驻村工作队临时党支部
（共 {summary.committees} 个党委、{summary.general_branches} 个党总支、{summary.branches} 个党支部、\
{summary.temporary_branches} 个临时党支部，{summary.people} 名党员）。

在另一个终端，以名册中某位同志的身份聊天：
  {chat}张伟

可以试试这些人：
  张伟     综合处党支部党员：发送「帮助」「待办」，收到通知卡片后输入 /点 收到
  李娜     科研一处党支部书记：「发布」的通知直达本支部每位党员
  王建国   机关党委书记：「发布」的通知一步直达全部支部，不用逐级转发
  吴磊     联络员，联系第二党总支的三个支部：发送「进度 编号」查看确认情况
  彭涛     驻村工作队临时党支部书记（组织关系仍在科研一处党支部）

完整走一遍：
  1. 终端二：{chat}王建国，输入（行末的 \\ 表示换行接着写）
       发布 学习贯彻全会精神 \\
       请各支部组织党员认真学习。 \\
       截止 明天17:00
  2. 终端三：{chat}张伟，会收到带「收到」按钮的卡片，输入 /点 收到
  3. 回到终端二，发送「进度 编号」（编号见发布后的回复，例如 进度 1）查看各支部逐级确认情况
  4. 张伟发送「积分」：刚才的确认已记入工作履职；再发「申报 工作履职 协助社区防汛值守」，
     由综合处党支部书记陈志强（{chat}陈志强）点「核实」或回复「核实 编号」
  5. 月度公示：DATABASE_URL=sqlite:///{db_path} {bot_command("report", "monthly", "--period", month)}
     打印本月各支部的积分表

按 Ctrl-C 停止演示。
══════════════════════════════════════════════════
"""


def pages_text(url: str) -> str:
    return f"""手机页面（在浏览器中打开，窄窗口效果最好）：
  {url}/m/          我的：待确认的通知、学习和会议，可直接点「收到」「已学」「请假」
  {url}/m/d/1       通知 #1 的逐级确认情况（书记、联络员），「进度 1」的回复末尾就是这个链接
打开后会先到模拟企业微信的授权页，选择您是谁（真实的企业微信会自动识别），再回到页面。
"""


def oauth_people(runtime) -> list[dict[str, str]]:
    """The roster people for the fake's authorize page: secretaries and liaisons first."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from models.person import Person

    with runtime.db.read_session() as session:
        people = session.scalars(select(Person).where(Person.wecom_userid.is_not(None)).options(
            selectinload(Person.roles), selectinload(Person.memberships))).all()
        rows = []
        for p in people:
            home = p.home_branch()
            rows.append((not p.roles, p.id, {"userid": p.wecom_userid, "name": p.name, "org": _who(p, home)}))
    return [row for *_, row in sorted(rows, key=lambda r: (r[0], r[1]))]


def _who(person, home) -> str:
    """`综合处党支部 书记` for a role in the home branch; a role elsewhere names its organisation
    (`综合处党支部（机关党委书记）`), so the page does not make the 机关党委 书记 a branch secretary."""
    at_home = sorted({r.role.label for r in person.roles if home is not None and r.organisation_id == home.id})
    elsewhere = sorted({f"{r.organisation.name}{r.role.label}" for r in person.roles
                        if home is None or r.organisation_id != home.id})
    where = (home.name if home else "") + (f" {'、'.join(at_home)}" if at_home else "")
    return (where + (f"（{'、'.join(elsewhere)}）" if elsewhere else "")).strip()


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _stop_on_sigterm() -> None:
    """`kill` stops the demo as Ctrl-C does, so the fake server stops and demo.json goes away."""
    import signal

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background by a script
            signal.signal(signal.SIGINT, interrupt)


def _quiet_logs() -> None:
    """Keep the welcome readable: migrations, scheduler ticks and request lines only when they fail."""
    import logging

    for name in ("alembic", "apscheduler", "werkzeug"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _userids(runtime) -> list[str]:
    from sqlalchemy import select

    from models.person import Person

    with runtime.db.session() as session:
        return list(session.scalars(select(Person.wecom_userid).where(Person.wecom_userid.is_not(None))))


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the servers do: connections of a demo that just stopped must not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
