"""`--dry-run` writes nothing and says what would change; leaving (状态 已转出, `member leave`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from bot.roster import render_report
from models.directive import Delivery, DeliveryStatus, Directive, UnreachableReason
from models.event import Event
from models.meeting import Attendance
from models.person import Membership, OrgRole, Person
from tests.bot.roster.conftest import (
    BASE_ROWS,
    BRANCH_A,
    BRANCH_B,
    BRANCH_C,
    TOP,
    do_import,
    plain_xlsx,
    whole_database,
)

ROOT = Path(__file__).resolve().parents[3]
STATUS_HEADER = ("组织", "姓名", "企业微信账号", "手机", "职务", "状态")


def _person(session, userid) -> Person:
    return session.scalar(select(Person).where(Person.wecom_userid == userid))


def _changed_roster():
    rows = [list(r) for r in BASE_ROWS if r[2] != "liuyang"]
    for row in rows:
        if row[2] == "zhangwei":
            row[0] = BRANCH_B  # moved
        if row[2] == "lina":
            row[3], row[4] = 13900000099, "书记、组织委员"
    rows.append([BRANCH_C, "周敏", "zhoumin", None, ""])
    rows.append(["机关党委/第二党总支/科研二处党支部", "孙丽", "sunli", None, "书记"])
    return rows


def test_dry_run_changes_nothing_and_prints_what_the_import_would(db, clock, tmp_path, base):
    path = plain_xlsx(tmp_path / "v2.xlsx", _changed_roster())
    before = whole_database(db)

    dry = do_import(db, path, clock, dry_run=True)

    assert whole_database(db) == before
    text = render_report(dry)
    assert text.startswith("试运行，未写入任何数据。如果导入，将会：共 8 行，8 人；组织 新增 1；人员 新增 2，更新 2，未变 4；")
    assert f"调动（1）：\n· 张伟（zhangwei）：{BRANCH_A} → {BRANCH_B}" in text
    assert "新增组织（1）：\n· 机关党委/第二党总支/科研二处党支部" in text
    assert f"新增人员（2）：\n· 周敏（zhoumin）：{BRANCH_C}\n· 孙丽（sunli）：机关党委/第二党总支/科研二处党支部" in text
    assert "信息变更（1）：\n· 李娜（lina）：手机" in text
    assert f"职务变更（1）：\n· 李娜（lina）：新增 {BRANCH_A} 组织委员" in text
    assert "以下 1 人不在本次名册中，未删除：\n· 刘洋（liuyang）" in text

    real = do_import(db, path, clock)
    assert render_report(real) == text.replace("试运行，未写入任何数据。如果导入，将会：", "导入完成：")
    with db.session() as s:
        assert {m.organisation.path for m in _person(s, "zhangwei").memberships} == {BRANCH_B}
        assert s.scalar(select(func.count()).select_from(Person)) == 9
    after = whole_database(db)
    assert render_report(do_import(db, path, clock, dry_run=True)).startswith("试运行：名册与系统一致，没有变化")
    assert whole_database(db) == after


def test_dry_run_command_refuses_an_unmigrated_database_and_writes_nothing(tmp_path):
    db_file = tmp_path / "fresh.sqlite3"
    roster = plain_xlsx(tmp_path / "r.xlsx", BASE_ROWS)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db_file}", "BOT_INSTANCE_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, "-m", "bot", "import-roster", str(roster), "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "数据库尚未升级到最新版本" in done.stderr
    assert not db_file.exists()


def test_migration_logs_stay_off_the_terminal_unless_verbose(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "BOT_INSTANCE_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    roster = plain_xlsx(tmp_path / "r.xlsx", BASE_ROWS)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)

    quiet = run("import-roster", str(roster))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout.startswith("导入完成：共 7 行，7 人")
    dry = run("import-roster", str(roster), "--dry-run")
    assert dry.stdout.startswith("试运行：名册与系统一致，没有变化") and dry.stderr == ""
    assert run("db", "upgrade").stderr == ""
    verbose = run("db", "upgrade", "--revision", "0006", "--verbose")  # already past it: alembic still speaks
    assert "alembic" in verbose.stderr and verbose.stdout == "数据库已升级到最新版本\n"


def test_a_row_marked_transferred_out_stops_pushes_keeps_history_and_can_come_back(db, clock, tmp_path, base, chat):
    assert chat.say("wangjg", "发布 学习全会精神\n请认真学习。\n截止 12月1日17:00").startswith("已发布 #1，推送 6 人")
    rows = [[*r, "已转出" if r[2] == "zhangwei" else ""] for r in BASE_ROWS]
    path = plain_xlsx(tmp_path / "left.xlsx", rows, header=STATUS_HEADER)

    report = do_import(db, path, clock)

    assert [p.name for p in report.left] == ["张伟"]
    assert "转出（不再推送，历史记录保留）（1）：\n· 张伟（zhangwei）" in render_report(report)
    with db.session() as s:
        zhang = _person(s, "zhangwei")
        assert zhang.left_on is not None and zhang.memberships == [] and zhang.roles == []
        delivery = s.scalar(select(Delivery).where(Delivery.person_id == zhang.id))
        assert (delivery.status, delivery.reason) == (DeliveryStatus.UNREACHABLE, UnreachableReason.LEFT)  # kept, closed
        assert s.scalar(select(func.count()).select_from(Event).where(Event.subject_id == zhang.id,
                                                                    Event.kind == "person.left")) == 1
    progress = chat.say("wangjg", "进度 1")
    assert progress.startswith("已确认 0/5") and "张伟" not in progress
    assert chat.say("wangjg", "发布 第二件事\n内容。\n截止 12月2日17:00").startswith("已发布 #2，推送 5 人")
    assert do_import(db, path, clock).changed is False  # the same file again: nothing

    back = do_import(db, plain_xlsx(tmp_path / "back.xlsx", BASE_ROWS), clock)
    assert [p.name for p in back.returned] == ["张伟"]
    with db.session() as s:
        zhang = _person(s, "zhangwei")
        assert zhang.left_on is None and [m.organisation.path for m in zhang.memberships] == [BRANCH_A]


def test_member_leave_command_by_name_or_account(app, db, clock, tmp_path, base, chat):
    chat.say("lina", "会议 支部党员大会 11月25日19:00 三楼会议室")
    with db.session() as s:
        zhang_id = _person(s, "zhangwei").id
        assert s.scalar(select(func.count()).select_from(Attendance).where(Attendance.person_id == zhang_id)) == 1
    runner = app.test_cli_runner()
    with app.app_context():
        unknown = runner.invoke(args=["member", "leave", "查无此人"])
        bad_date = runner.invoke(args=["member", "leave", "张伟", "--date", "下周"])
        by_account = runner.invoke(args=["member", "leave", "ZhangWei", "--date", "2026-11-20"])
        again = runner.invoke(args=["member", "leave", "张伟"])
        by_name = runner.invoke(args=["member", "leave", "李娜"])

    assert unknown.exit_code == 1 and "找不到「查无此人」：请给出名册中的姓名或企业微信账号" in unknown.stderr
    assert bad_date.exit_code == 1 and "日期「下周」看不懂：请写成 2026-11-30 这样的年-月-日" in bad_date.stderr
    assert by_account.exit_code == 0, by_account.output
    assert by_account.output.startswith(f"已将 张伟（zhangwei，{BRANCH_A}）标记为 2026年11月20日转出")
    assert "已于 2026年11月20日转出，未作改动" in again.output
    assert by_name.exit_code == 0 and "李娜（lina" in by_name.output
    with db.session() as s:
        zhang = _person(s, "zhangwei")
        assert str(zhang.left_on) == "2026-11-20"
        assert s.scalar(select(func.count()).select_from(Membership).where(Membership.person_id == zhang.id)) == 0
        assert s.scalar(select(func.count()).select_from(OrgRole).where(OrgRole.person_id == _person(s, "lina").id)) == 0
        assert s.scalar(select(func.count()).select_from(Attendance).where(Attendance.person_id == zhang.id)) == 0
        left = s.scalar(select(Event).where(Event.kind == "person.left", Event.subject_id == zhang.id))
        assert left.data["memberships"] == [{"path": BRANCH_A, "kind": "home"}]
        assert _person(s, "wangjg").left_on is None
    # Not "missing" in 概况 either: the next import does not list them as absent.
    report = do_import(db, plain_xlsx(tmp_path / "rest.xlsx", [r for r in BASE_ROWS if r[2] not in ("zhangwei", "lina")]),
                       clock)
    assert [a.name for a in report.not_in_file] == []


def test_an_ambiguous_name_is_refused_with_the_candidates(app, db, clock, tmp_path, base):
    do_import(db, plain_xlsx(tmp_path / "twin.xlsx", [[BRANCH_C, "张伟", "zhangwei2", None, ""]]), clock)
    runner = app.test_cli_runner()
    with app.app_context():
        result = runner.invoke(args=["member", "leave", "张伟"])
    assert result.exit_code == 1
    assert "名为「张伟」的有 2 人，请改用企业微信账号指明是哪一位：" in result.stderr
    assert f"· 张伟（zhangwei，{BRANCH_A}）" in result.stderr and f"· 张伟（zhangwei2，{BRANCH_C}）" in result.stderr
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Person).where(Person.left_on.is_not(None))) == 0


def test_a_leaver_gets_no_reminder_and_is_not_counted_in_overview(app, runtime, db, clock, tmp_path, chat):
    from datetime import timedelta

    from models.outbox import OutboxMessage
    from scheduler.jobs import tick

    header = ("组织", "姓名", "企业微信账号", "手机", "职务", "联系组织")
    rows = [[*r, ""] for r in BASE_ROWS] + [[TOP, "孙联络", "sunll", None, "联络员", BRANCH_A]]
    do_import(db, plain_xlsx(tmp_path / "r.xlsx", rows, header=header), clock)
    assert chat.say("wangjg", "发布 学习全会精神\n请认真学习。\n截止 11月25日17:00").startswith("已发布 #1，推送 6 人")
    assert "#1「学习全会精神」已确认 0/3（0%）" in chat.say("sunll", "概况")
    with app.app_context():
        assert app.test_cli_runner().invoke(args=["member", "leave", "zhangwei"]).exit_code == 0

    assert "#1「学习全会精神」已确认 0/2（0%）" in chat.say("sunll", "概况")
    with db.session() as s:
        deadline = s.scalar(select(Directive.deadline).where(Directive.id == 1))
    clock.set(deadline - timedelta(hours=24))
    tick(runtime)
    with db.session() as s:
        reminded = set(s.scalars(select(OutboxMessage.recipient).where(OutboxMessage.subject_type == "reminder")))
    assert reminded == {"lina", "liuyang", "chenjing", "zhaolei", "wulei"}  # not zhangwei


def test_one_branchs_roster_lists_as_absent_only_that_branchs_people(db, clock, tmp_path, base):
    branch_file = plain_xlsx(tmp_path / "branch.xlsx", [r for r in BASE_ROWS if r[0] == BRANCH_A and r[2] != "liuyang"])

    report = do_import(db, branch_file, clock, dry_run=True)

    assert [a.name for a in report.not_in_file] == ["刘洋"]  # not the other branches' 陈静, 赵磊, 吴磊 nor 王建国
    assert "以下 1 人不在本次名册中，未删除：\n· 刘洋（liuyang）" in render_report(report)
    whole = do_import(db, plain_xlsx(tmp_path / "whole.xlsx", [r for r in BASE_ROWS if r[2] != "zhaolei"]), clock,
                      dry_run=True)
    assert [a.name for a in whole.not_in_file] == ["赵磊"]
