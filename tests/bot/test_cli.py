"""The command line: the same commands under `python -m bot` and `flask --app bot`, and the
commands that build an app of their own get the composition root's factory handed down."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.demo import DemoSummary, bot_command, welcome_text

ROOT = Path(__file__).resolve().parents[2]
# Every command the project registers (bot.cli.COMMANDS), plus those the SPEC fixes by name.
SPEC_COMMANDS = {"serve", "web", "worker", "scheduler", "import-roster", "demo", "db", "set-option"}


def listed_commands(*args: str, tmp_path: Path) -> set[str]:
    env = {**os.environ, "BOT_INSTANCE_DIR": str(tmp_path / "instance"), "DATABASE_URL": "", "REDIS_URL": ""}
    result = subprocess.run([sys.executable, *args, "--help"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("Commands:", 1)[1]
    return set(re.findall(r"^  (\S+)", commands, flags=re.M))


def test_python_m_bot_and_flask_app_bot_offer_the_same_commands(tmp_path):
    as_module = listed_commands("-m", "bot", tmp_path=tmp_path)
    under_flask = listed_commands("-m", "flask", "--app", "bot", tmp_path=tmp_path)
    from bot.cli import COMMANDS

    registered = {c.name for c in COMMANDS}
    assert SPEC_COMMANDS <= registered
    assert as_module == registered
    assert registered <= under_flask


def test_web_workers_and_the_demo_build_their_apps_with_the_composition_roots_factory(app, runtime, monkeypatch):
    import bot.demo
    import bot.serve
    from bot.app import create_app

    handed: dict[str, object] = {}
    monkeypatch.setattr(bot.serve, "run_gunicorn", lambda **kw: handed.update(web=kw))
    monkeypatch.setattr(bot.demo, "run_demo", lambda **kw: handed.update(demo=kw))
    runner = app.test_cli_runner()
    runtime.settings = runtime.settings.with_overrides(public_base_url="https://dj.example.cn")  # web needs it

    assert runner.invoke(args=["web", "--port", "7201", "--workers", "1"]).exit_code == 0
    assert runner.invoke(args=["demo", "--port", "7202"]).exit_code == 0

    assert handed["web"] == {"host": "0.0.0.0", "port": 7201, "workers": 1, "create_app": create_app}
    assert handed["demo"] == {"host": "127.0.0.1", "port": 7202, "create_app": create_app}


SUMMARY = DemoSummary(committees=1, general_branches=2, branches=6, temporary_branches=1, people=60)


def test_the_demo_names_the_venv_python_it_runs_on_relative_to_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / ".venv" / "bin" / "python"))
    assert bot_command("chat", "--as", "张伟") == ".venv/bin/python -m bot chat --as 张伟"
    banner = welcome_text("http://127.0.0.1:5000", "http://127.0.0.1:5001", tmp_path / "demo.sqlite3", SUMMARY,
                          month="2026-12")
    assert "  .venv/bin/python -m bot chat --as 张伟\n" in banner
    # The 月度公示 step names the month as `--period` takes it, ready to paste (本月 is refused).
    assert ".venv/bin/python -m bot report monthly --period 2026-12\n" in banner and "本月\n" not in banner
    assert "终端二：.venv/bin/python -m bot chat --as 王建国，" in banner
    assert banner.count("python -m bot") == banner.count(".venv/bin/python -m bot") == 5


@pytest.mark.parametrize(("executable", "shown"), [
    ("/usr/local/bin/python3.12", "/usr/local/bin/python3.12 -m bot demo"),  # elsewhere: in full
    ("/opt/my apps/venv/bin/python", "'/opt/my apps/venv/bin/python' -m bot demo"),  # quoted for the shell
])
def test_the_demo_names_any_other_interpreter_in_full(tmp_path, monkeypatch, executable, shown):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "executable", executable)
    assert bot_command("demo") == shown


def run_bot(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BOT_INSTANCE_DIR": str(tmp_path / "instance"), "DATABASE_URL": "", "REDIS_URL": ""}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


# The commands that never read the database, or upgrade it themselves (import-roster checks it
# first only for --dry-run, which must not change the database).
NO_SCHEMA_CHECK = {"serve", "demo", "chat", "holidays", "import-roster", "db upgrade"}


def _leaf_commands(commands, prefix: str = "") -> dict[str, object]:
    found = {}
    for command in commands:
        name = f"{prefix}{command.name}"
        if hasattr(command, "commands"):
            found |= _leaf_commands(command.commands.values(), name + " ")
        else:
            found[name] = command
    return found


def test_every_command_that_uses_the_database_checks_it_is_upgraded_first():
    from bot.cli import COMMANDS

    commands = _leaf_commands(COMMANDS)
    checked = {name for name, c in commands.items() if getattr(c.callback, "needs_current_schema", False)}
    assert NO_SCHEMA_CHECK <= set(commands)
    assert checked == set(commands) - NO_SCHEMA_CHECK


@pytest.mark.parametrize("args", [
    ("member", "leave", "张伟"), ("set-webhook", "机关党委", "KEY"), ("worker",), ("scheduler",), ("web",),
    ("set-option", "机关党委", "ranking", "on"), ("export", "1"), ("portrait", "机关党委"),
    ("set-portrait", "机关党委", "党建力量", "70"), ("report", "observation"), ("report", "monthly"),
])
def test_commands_on_a_database_never_upgraded_answer_in_chinese(tmp_path, args):
    result = run_bot(*args, tmp_path=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr == "数据库尚未建立或不是最新版本，请先运行 python -m bot db upgrade\n"  # one line, no traceback
    assert not (tmp_path / "instance" / "zhitong.sqlite3").exists()  # nothing was created


def test_import_roster_names_a_missing_file_in_chinese(tmp_path):
    missing = run_bot("import-roster", str(tmp_path / "名册.xlsx"), "--dry-run", tmp_path=tmp_path)
    assert missing.returncode == 1
    assert f"找不到名册文件「{tmp_path / '名册.xlsx'}」" in missing.stderr and "does not exist" not in missing.stderr
    folder = run_bot("import-roster", str(tmp_path), tmp_path=tmp_path)
    assert folder.returncode == 1 and "这是一个文件夹" in folder.stderr
