"""The roster importer (SPEC §2.5): CSV and XLSX, the tree, people, roles, all-or-nothing, re-import."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from bot.roster import RosterError, import_roster, render_report
from models.event import Event
from models.identity import Channel, ChannelIdentity
from models.org import Organisation, OrgKind
from models.person import Liaison, Membership, MembershipKind, OrgRole, Person, Role

HEADER = ["组织", "姓名", "企业微信账号", "手机", "职务", "联系组织"]
TOP = "机关党委"
GB1 = "机关党委/第一党总支"
BRANCH_A = "机关党委/第一党总支/综合处党支部"
BRANCH_B = "机关党委/第一党总支/财务处党支部"
SUB = "机关党委/研究院党委"
INSTITUTE = "机关党委/研究院党委/一所党支部"
JOINT = "机关党委/研究院党委/后勤联合党支部"
GROUP = "机关党委/第一党总支/综合处党支部/第一党小组"
TEMP = "机关党委/雄安项目临时党支部"

ROSTER = [
    [TOP, "王书记", "wangsj", "13900000001", "书记", ""],
    [TOP, "孙联络", "sunll", "", "联络员", f"{BRANCH_A}；研究院党委"],
    [BRANCH_A, "李娜", "lina", "13800138000", "书记、组织委员", ""],
    [BRANCH_A, "张伟", "zhangwei", "13800138001", "党员", ""],
    [BRANCH_B, "陈静", "chenjing", "", "书记，宣传委员", ""],
    [BRANCH_B, "赵磊", "zhaolei", "", "", ""],
    [GROUP, "刘洋", "liuyang", "", "", ""],
    [INSTITUTE, "周敏", "zhoumin", "", "副书记", ""],
    [JOINT, "吴强", "", "13700000000", "", ""],
    [TEMP, "张伟", "zhangwei", "", "", ""],
    [TEMP, "黄丽", "", "", "书记", ""],
    [GB1, "马超", "machao", "", "书记", ""],
]


def write_csv(path, rows, *, header=HEADER, bom=True):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(("\ufeff" if bom else "").encode() + buffer.getvalue().encode("utf-8"))
    return path


def write_xlsx(path, rows, *, header=HEADER, title=None):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    if title:
        sheet.append([title])
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def do_import(db, path, clock):
    with db.session() as session:
        return import_roster(session, path, now=clock())


MODELS = (Organisation, Person, Membership, OrgRole, Liaison, ChannelIdentity, Event)


def counts(db) -> dict[str, int]:
    with db.session() as session:
        return {m.__name__: session.scalar(select(func.count()).select_from(m)) for m in MODELS}


def person(session, userid) -> Person:
    return session.scalar(select(Person).where(Person.wecom_userid == userid))


def memberships(session, p: Person) -> dict[str, MembershipKind]:
    return {m.organisation.path: m.kind for m in p.memberships}


def roles(session, p: Person) -> set[tuple[str, Role]]:
    return {(r.organisation.path, r.role) for r in p.roles}


@pytest.mark.parametrize("bom", [True, False], ids=["bom", "no-bom"])
def test_csv_builds_tree_people_roles_and_liaisons(db, clock, tmp_path, bom):
    report = do_import(db, write_csv(tmp_path / "名册.csv", ROSTER, bom=bom), clock)

    assert (report.organisations_created, report.people_created, report.people_updated) == (9, 11, 0)
    assert report.not_in_file == []
    with db.session() as s:
        kinds = dict(s.execute(select(Organisation.path, Organisation.kind)).all())
        assert kinds == {
            TOP: OrgKind.COMMITTEE,
            GB1: OrgKind.GENERAL_BRANCH,
            BRANCH_A: OrgKind.BRANCH,
            BRANCH_B: OrgKind.BRANCH,
            GROUP: OrgKind.GROUP,
            SUB: OrgKind.SUB_COMMITTEE,
            INSTITUTE: OrgKind.BRANCH,
            JOINT: OrgKind.JOINT_BRANCH,
            TEMP: OrgKind.TEMPORARY_BRANCH,
        }
        branch_a = s.scalar(select(Organisation).where(Organisation.path == BRANCH_A))
        assert branch_a.parent.path == GB1 and branch_a.parent.parent.path == TOP

        # One person, two rows: a home branch and a temporary branch.
        zhang = person(s, "zhangwei")
        assert memberships(s, zhang) == {BRANCH_A: MembershipKind.HOME, TEMP: MembershipKind.TEMPORARY}
        assert zhang.mobile == "13800138001"
        assert s.scalar(select(func.count()).select_from(Person).where(Person.name == "张伟")) == 1

        # A row in a higher organisation gives the role there and no membership.
        top = person(s, "wangsj")
        assert memberships(s, top) == {} and roles(s, top) == {(TOP, Role.SECRETARY)}
        assert roles(s, person(s, "machao")) == {(GB1, Role.SECRETARY)}
        assert roles(s, person(s, "lina")) == {(BRANCH_A, Role.SECRETARY), (BRANCH_A, Role.ORGANISATION_MEMBER)}
        assert roles(s, person(s, "chenjing")) == {(BRANCH_B, Role.SECRETARY), (BRANCH_B, Role.PUBLICITY_MEMBER)}
        assert roles(s, person(s, "zhangwei")) == set()  # 党员 is what the membership says
        assert memberships(s, person(s, "liuyang")) == {GROUP: MembershipKind.HOME}

        liaison = person(s, "sunll")
        assert liaison.is_liaison() and roles(s, liaison) == {(TOP, Role.LIAISON)}
        assert {link.organisation.path for link in liaison.liaisons} == {BRANCH_A, SUB}  # short name resolved

        # People without an account are keyed by (name, mobile) or (name, organisation).
        wu = s.scalar(select(Person).where(Person.name == "吴强"))
        assert wu.wecom_userid is None and wu.mobile == "13700000000"
        assert memberships(s, wu) == {JOINT: MembershipKind.HOME}
        huang = s.scalar(select(Person).where(Person.name == "黄丽"))
        assert memberships(s, huang) == {TEMP: MembershipKind.TEMPORARY}

        # Each person with an account gets the WeCom identity the bot recognises senders by.
        identities = dict(s.execute(select(ChannelIdentity.external_id, ChannelIdentity.person_id)
                                    .where(ChannelIdentity.channel == Channel.WECOM)).all())
        assert len(identities) == 9 and identities["zhangwei"] == zhang.id

        kinds_of_events = dict(s.execute(select(Event.kind, func.count()).group_by(Event.kind)).all())
        assert kinds_of_events == {"organisation.created": 9, "person.created": 11, "roster.imported": 1}
        summary = s.scalar(select(Event).where(Event.kind == "roster.imported"))
        assert summary.data["people_created"] == 11 and summary.data["file"] == "名册.csv"
        assert summary.at == clock()

    text = render_report(report)
    assert text.startswith("导入完成：共 12 行，11 人；组织 新增 9；人员 新增 11，更新 0，未变 0；")


def test_xlsx_first_sheet_with_numbers_full_width_and_blank_rows(db, clock, tmp_path):
    rows = [
        ["机关党委／第一党总支／综合处党支部　", "　李 娜 ", 10001, 13800138000, "书记", None],
        [" 机关党委 / 第一党总支 / 综合处党支部", "张　伟", "zhangwei", 13800138001.0, "党员，组织委员", None],
        [BRANCH_A, "Anna Li", "anna.li", "+86 138-0013-8002", None, None],
        [None, None, None, None, None, None],
        [TOP, "孙联络", "sunll", None, "联络员", "综合处党支部；机关党委/第一党总支"],
        [None, None, None, None, None, None],
        [None, None, None, None, None, None],
    ]
    path = write_xlsx(tmp_path / "roster.xlsx", rows, header=["组织*", "姓名 ", "企业微信账号", "手机（选填）", "职务", "联系组织", "备注"],
                      title="机关党委党员名册（2026年）")
    import openpyxl

    extra = openpyxl.load_workbook(path)
    extra.create_sheet("第二页").append(["这一页不读"])
    extra.save(path)

    report = do_import(db, path, clock)

    assert report.people_created == 4 and report.ignored_columns == ["备注"]
    assert "已忽略无法识别的列：备注" in render_report(report)
    with db.session() as s:
        li = person(s, "10001")
        assert (li.name, li.mobile) == ("李娜", "13800138000")
        assert memberships(s, li) == {BRANCH_A: MembershipKind.HOME}
        zhang = person(s, "zhangwei")
        assert (zhang.name, zhang.mobile) == ("张伟", "13800138001")
        assert roles(s, zhang) == {(BRANCH_A, Role.ORGANISATION_MEMBER)}
        anna = person(s, "anna.li")
        assert (anna.name, anna.mobile) == ("Anna Li", "13800138002")
        assert {link.organisation.path for link in person(s, "sunll").liaisons} == {BRANCH_A, GB1}
    assert do_import(db, path, clock).changed is False


def test_gb18030_csv_from_excel_is_read_too(db, clock, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("组织,姓名,企业微信账号\r\n机关党委/综合处党支部,张伟,zhangwei\r\n".encode("gb18030"))
    assert do_import(db, path, clock).people_created == 1


def test_every_bad_row_is_listed_and_nothing_is_written(db, clock, tmp_path):
    do_import(db, write_csv(tmp_path / "first.csv", [ROSTER[0], *ROSTER[2:5]]), clock)
    before = counts(db)
    rows = [
        [BRANCH_A, "张伟", "zhangwei", "", "", ""],  # row 2: fine
        ["", "缺组织", "a1", "", "", ""],  # 3
        [BRANCH_A, "", "a2", "", "", ""],  # 4
        [BRANCH_A, "错职务", "a3", "", "书记、支书", ""],  # 5
        ["机关党委/综合处", "错路径", "a4", "", "", ""],  # 6
        [BRANCH_A, "张卫", "zhangwei", "", "", ""],  # 7: same account, other name (row 2)
        [TOP, "错联络", "a5", "", "联络员", "机关党委/不存在的党支部"],  # 8
        [BRANCH_A, "错手机", "a6", "1380013800", "", ""],  # 9
        [BRANCH_A, "无职务联络", "a7", "", "", BRANCH_A],  # 10
        [BRANCH_B, "两个家", "a8", "", "", ""],  # 11
        [BRANCH_A, "两个家", "a8", "", "", ""],  # 12
        [TOP, "无职务", "a9", "", "", ""],  # 13
        ["机关党委/综合处党支部/第一党总支", "倒置", "a10", "", "", ""],  # 14
        [BRANCH_A, "重号甲", "a11", "13600000000", "", ""],  # 15
        [BRANCH_A, "重号乙", "a12", "13600000000", "", ""],  # 16
        [BRANCH_A, "坏账号", "张 三", "", "", ""],  # 17
        [BRANCH_A, "科学计数", "a13", "1.38001E+10", "", ""],  # 18
        [TEMP, "重号甲", "A11", "13900000009", "", ""],  # 19: the same account (any case), another mobile
    ]
    with pytest.raises(RosterError) as caught:
        do_import(db, write_csv(tmp_path / "bad.csv", rows), clock)

    message = str(caught.value)
    lines = message.splitlines()
    assert lines[0] == "名册有 15 行有误，本次未导入任何数据："
    expected = {
        3: "缺少组织",
        4: "缺少姓名",
        5: "未知职务「支书」",
        6: "无法判断「综合处」是哪类组织",
        7: "企业微信账号「zhangwei」在第 2 行是「张伟」，此行是「张卫」",
        8: "联系组织「机关党委/不存在的党支部」既不在系统中，也不在本名册中",
        9: "手机号「1380013800」不是以 1 开头的 11 位号码",
        10: "填写了联系组织，但职务中没有「联络员」",
        12: "「两个家」已在第 11 行属于「机关党委/第一党总支/财务处党支部」",
        13: "「机关党委」是党委，不是党支部或党小组",
        14: "「第一党总支」（党总支）不能设在「机关党委/综合处党支部」（党支部）之下",
        16: "手机号 13600000000 与第 15 行的「重号甲」重复",
        17: "企业微信账号「张 三」格式不对",
        18: "科学计数法",
        19: "企业微信账号「A11」在第 15 行的手机是 13600000000，此行是 13900000009",
    }
    for number, reason in expected.items():
        line = next((line for line in lines if line.startswith(f"第 {number} 行：")), None)
        assert line is not None and reason in line, (number, message)
    assert not any(line.startswith(("第 2 行", "第 11 行", "第 15 行")) for line in lines)
    assert {n for n, _ in caught.value.problems} == set(expected)
    assert counts(db) == before


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("old.xls", b"\xd0\xcf\x11\xe0", "不支持的文件类型「.xls」"),
        ("roster.txt", b"x", "不支持的文件类型「.txt」"),
        ("broken.xlsx", b"not a zip", "无法读取 XLSX 文件"),
        ("empty.csv", b"\xef\xbb\xbf", "名册是空的"),
        ("nohead.csv", "名字,账号\n张伟,zw\n".encode(), "名册缺少必填列「组织」、「姓名」"),
        ("onlyhead.csv", "组织,姓名\n".encode(), "名册中没有任何人员行"),
    ],
)
def test_files_that_are_rejected_whole(db, clock, tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    before = counts(db)
    with pytest.raises(RosterError, match=reason):
        do_import(db, path, clock)
    assert counts(db) == before


def test_missing_required_column_is_named(db, clock, tmp_path):
    path = write_csv(tmp_path / "r.csv", [["张伟", "zhangwei"]], header=["姓名", "企业微信账号"])
    with pytest.raises(RosterError) as caught:
        do_import(db, path, clock)
    assert "名册缺少必填列「组织」" in str(caught.value) and "现有列：姓名、企业微信账号" in str(caught.value)


def test_reimport_changes_nothing(db, clock, tmp_path):
    path = write_csv(tmp_path / "r.csv", ROSTER)
    do_import(db, path, clock)
    before = counts(db)
    clock.advance(days=1)

    report = do_import(db, path, clock)

    assert counts(db) == before
    assert report.changed is False and report.people_unchanged == 11
    text = render_report(report)
    assert text.splitlines()[0] == "名册与系统一致，没有变化（共 12 行，11 人）。"
    assert "以下 2 人没有企业微信账号，暂时收不到任何消息：" in text  # SPEC §2.5: listed on every import
    xlsx = write_xlsx(tmp_path / "r.xlsx", ROSTER)  # the same data as XLSX is the same roster
    assert do_import(db, xlsx, clock).changed is False
    assert counts(db) == before


def test_changes_update_the_database_and_leavers_are_reported_not_deleted(db, clock, tmp_path):
    do_import(db, write_csv(tmp_path / "v1.csv", ROSTER), clock)
    with db.session() as s:
        old_id = person(s, "lina").id
    before = counts(db)
    clock.advance(days=30)
    rows = [list(r) for r in ROSTER if r[2] not in ("zhaolei", "machao")]  # two people left
    for row in rows:
        if row[2] == "lina":
            row[1], row[3], row[4] = "李丽娜", "13800138999", "书记"  # renamed, new mobile, 组织委员 revoked
        if row[2] == "zhangwei" and row[0] == BRANCH_A:
            row[0], row[4] = BRANCH_B, "纪检委员"  # moved to another branch and made a committee member
        if row[2] == "sunll":
            row[5] = "研究院党委"  # one liaison assignment dropped
        if row[2] == "wangsj":
            row[3] = ""  # mobile removed
    rows.append([INSTITUTE, "新人", "xinren", "", "", ""])

    report = do_import(db, write_csv(tmp_path / "v2.csv", rows), clock)

    assert (report.people_created, report.people_updated, report.people_unchanged) == (1, 4, 5)
    assert (report.memberships_added, report.memberships_removed) == (2, 1)
    assert (report.roles_added, report.roles_removed) == (1, 1)
    assert (report.liaisons_added, report.liaisons_removed) == (0, 1)
    assert [(a.name, a.wecom_userid) for a in report.not_in_file] == [("赵磊", "zhaolei"), ("马超", "machao")]
    text = render_report(report)
    assert "以下 2 人不在本次名册中，未删除：\n· 赵磊（zhaolei）\n· 马超（machao）" in text

    after = counts(db)
    assert after["Person"] == before["Person"] + 1  # nobody deleted
    with db.session() as s:
        li = person(s, "lina")
        assert (li.id, li.name, li.mobile) == (old_id, "李丽娜", "13800138999")
        assert roles(s, li) == {(BRANCH_A, Role.SECRETARY)}
        zhang = person(s, "zhangwei")
        assert memberships(s, zhang) == {BRANCH_B: MembershipKind.HOME, TEMP: MembershipKind.TEMPORARY}
        assert roles(s, zhang) == {(BRANCH_B, Role.DISCIPLINE_MEMBER)}
        assert {link.organisation.path for link in person(s, "sunll").liaisons} == {SUB}
        assert person(s, "wangsj").mobile is None
        leaver = person(s, "machao")
        assert roles(s, leaver) == {(GB1, Role.SECRETARY)}  # people not in the file are left alone
        new_events = s.execute(select(Event.kind, Event.data).where(Event.at == clock())).all()
    kinds = sorted(kind for kind, _data in new_events)
    assert kinds == sorted([
        "person.created", "person.updated", "person.updated", "role.revoked", "membership.added", "membership.removed",
        "role.granted", "liaison.removed", "roster.imported",
    ])  # a new person's memberships and roles are in their person.created event
    updates = [data["changes"] for kind, data in new_events if kind == "person.updated"]
    assert {"name": ["李娜", "李丽娜"], "mobile": ["138****8000", "138****8999"]} in updates
    assert {"mobile": ["139****0001", None]} in updates


def test_account_added_later_keeps_the_person(db, clock, tmp_path):
    do_import(db, write_csv(tmp_path / "v1.csv", [[BRANCH_A, "张伟", "", "13800138001", "", ""],
                                                   [BRANCH_B, "赵磊", "", "", "", ""]]), clock)
    with db.session() as s:
        ids = dict(s.execute(select(Person.name, Person.id)).all())
    report = do_import(db, write_csv(tmp_path / "v2.csv", [[BRANCH_A, "张伟", "zhangwei", "13800138001", "", ""],
                                                            [BRANCH_B, "赵磊", "zhaolei", "", "", ""]]), clock)
    assert (report.people_created, report.people_updated) == (0, 2)
    with db.session() as s:
        assert dict(s.execute(select(Person.name, Person.id)).all()) == ids
        assert person(s, "zhangwei").id == ids["张伟"] and person(s, "zhaolei").id == ids["赵磊"]
        assert s.scalar(select(func.count()).select_from(ChannelIdentity)) == 2


def test_optional_columns_absent_from_the_file_are_left_alone(db, clock, tmp_path):
    do_import(db, write_csv(tmp_path / "v1.csv", ROSTER), clock)
    before = counts(db)
    slim = [[org, name, userid] for org, name, userid, *_rest in ROSTER if userid]
    report = do_import(db, write_csv(tmp_path / "v2.csv", slim, header=["组织", "姓名", "企业微信账号"]), clock)
    assert report.changed is False
    assert [a.name for a in report.not_in_file] == ["吴强", "黄丽"]  # keyed by mobile / no key in this file
    assert counts(db) == before


def test_import_roster_command_end_to_end(app, db, tmp_path):
    runner = app.test_cli_runner()
    path = write_csv(tmp_path / "r.csv", ROSTER)
    # bot/cli.py registers plain click commands on app.cli, which (unlike `python -m bot`'s FlaskGroup)
    # pushes no app context by itself.
    with app.app_context():
        first = runner.invoke(args=["import-roster", str(path)])
        again = runner.invoke(args=["import-roster", str(path)])
        bad = runner.invoke(args=["import-roster", str(write_csv(tmp_path / "bad.csv", [[BRANCH_A, "", "x", "", "", ""]]))])

    assert first.exit_code == 0, first.output
    assert "导入完成：共 12 行，11 人；组织 新增 9；人员 新增 11" in first.output
    assert again.exit_code == 0 and "名册与系统一致，没有变化" in again.output
    assert bad.exit_code == 1
    assert "第 2 行：缺少姓名" in bad.stderr
    assert counts(db)["Person"] == 11


def test_wecom_sender_from_the_roster_is_recognised(db, clock, tmp_path, chat):
    do_import(db, write_csv(tmp_path / "r.csv", ROSTER), clock)
    reply = chat.say("lina", "帮助")
    assert reply.startswith("李娜您好")
    assert "综合处党支部" in reply  # her committee roles are known too


def test_a_branch_roster_leaves_what_it_does_not_cover_alone(db, clock, tmp_path):
    """A secretary's own branch file: roles and memberships elsewhere stay; a home branch moves."""
    do_import(db, write_csv(tmp_path / "all.csv", [*ROSTER, [TOP, "张伟", "zhangwei", "", "纪检委员", ""]]), clock)
    branch_a = [
        [BRANCH_A, "李娜", "lina", "13800138000", "书记", ""],  # 组织委员 dropped: the file covers this branch
        [BRANCH_A, "张伟", "zhangwei", "13800138001", "党员", ""],
        [BRANCH_A, "新党员", "xindangyuan", "", "", ""],
    ]
    report = do_import(db, write_csv(tmp_path / "branch_a.csv", branch_a), clock)
    assert (report.roles_removed, report.memberships_removed, report.people_created) == (1, 0, 1)
    with db.session() as s:
        assert roles(s, person(s, "lina")) == {(BRANCH_A, Role.SECRETARY)}
        zhang = person(s, "zhangwei")
        assert roles(s, zhang) == {(TOP, Role.DISCIPLINE_MEMBER)}  # the 党委 seat is outside this file
        assert memberships(s, zhang) == {BRANCH_A: MembershipKind.HOME, TEMP: MembershipKind.TEMPORARY}

    moved = do_import(db, write_csv(tmp_path / "branch_b.csv", [[BRANCH_B, "张伟", "zhangwei", "13800138001", "", ""]]),
                      clock)
    assert (moved.memberships_added, moved.memberships_removed, moved.roles_removed) == (1, 1, 0)
    with db.session() as s:
        zhang = person(s, "zhangwei")
        assert memberships(s, zhang) == {BRANCH_B: MembershipKind.HOME, TEMP: MembershipKind.TEMPORARY}
        assert roles(s, zhang) == {(TOP, Role.DISCIPLINE_MEMBER)}
    again = do_import(db, write_csv(tmp_path / "branch_b.csv", [[BRANCH_B, "张伟", "zhangwei", "13800138001", "", ""]]),
                      clock)
    assert not again.changed
