"""Rosters as offices keep them (SPEC §2.5): titles, aliases, extra columns, footers, typos, scope."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.roster import RosterError, render_report
from models.identity import ChannelIdentity
from models.org import Organisation, OrgKind
from models.person import MemberCategory, MembershipKind, Person, PostType, Role
from tests.bot.roster.conftest import (
    BRANCH_A,
    BRANCH_B,
    BRANCH_C,
    GB1,
    TOP,
    do_import,
    office_xlsx,
    plain_xlsx,
    whole_database,
)


def _person(session, userid) -> Person:
    return session.scalar(select(Person).where(func.lower(Person.wecom_userid) == userid.lower()))


def _roles(p: Person) -> set[tuple[str, Role]]:
    return {(r.organisation.path, r.role) for r in p.roles}


def _memberships(p: Person) -> dict[str, MembershipKind]:
    return {m.organisation.path: m.kind for m in p.memberships}


def test_office_sheet_with_merged_title_aliases_extra_columns_and_footer(db, clock, tmp_path):
    header = ["序号", "姓名", "性别", "出生年月", "所在组织", "党内职务", "联系电话", "企业微信号", "入党时间"]
    rows = [
        [1, "王建国 ", "男", "1970.05", f"{TOP} ", "书记", 13900000001, "wangjg ", "1995.07"],
        [2, "李娜", "女", "1985.03", BRANCH_A, "书记、组织委员", 13900000002, "lina", "2008.06"],
        [3, "张 伟", "男", "1990.11", f" {BRANCH_A}", "", 13900000003.0, "ZhangWei", "2015.01"],
        [4, "陈静", "女", "1988.02", BRANCH_B, "书记 ", "139-0000-0005", "chenjing", "2010.10"],
    ]
    path = office_xlsx(tmp_path / "花名册.xlsx", header, rows, footer=("填表人：王小明", "审核人：李书记",
                                                                       "制表日期：2026年11月30日"))

    report = do_import(db, path, clock)

    assert report.ignored_columns == ["序号", "性别", "出生年月", "入党时间"]
    assert report.column_hints == [] and report.footer_rows == [8, 9, 10]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 4
        wang = _person(s, "wangjg")
        assert (wang.name, wang.mobile) == ("王建国", "13900000001")
        assert _roles(wang) == {(TOP, Role.SECRETARY)}
        assert _roles(_person(s, "lina")) == {(BRANCH_A, Role.SECRETARY), (BRANCH_A, Role.ORGANISATION_MEMBER)}
        zhang = _person(s, "ZhangWei")
        assert (zhang.name, zhang.mobile) == ("张伟", "13900000003")
        assert _memberships(zhang) == {BRANCH_A: MembershipKind.HOME}
        assert _person(s, "chenjing").mobile == "13900000005"
        assert s.scalar(select(func.count()).select_from(ChannelIdentity)) == 4
    text = render_report(report)
    assert "已忽略无法识别的列：序号、性别、出生年月、入党时间" in text
    assert "已跳过表尾说明行：第 8、9、10 行。" in text
    assert do_import(db, path, clock).changed is False


def test_a_column_that_looks_like_a_known_one_is_named_with_it(db, clock, tmp_path):
    path = office_xlsx(tmp_path / "r.xlsx", ["组织", "姓名", "企业微信账号", "职务名称"],
                       [[BRANCH_A, "李娜", "lina", "书记"]])
    report = do_import(db, path, clock)
    assert report.column_hints == [("职务名称", "职务")]
    assert "「职务名称」列没有读取。如果它就是「职务」，请把表头改为「职务」后重新导入" in render_report(report)
    with db.session() as s:
        assert _roles(_person(s, "lina")) == set()  # nothing guessed


def test_gbk_csv_with_title_row_aliases_and_footer(db, clock, tmp_path):
    text = ("机关党委党员名册,,,\r\n"
            "序号,所在支部,姓名,手机号码,账号\r\n"
            f"1,{BRANCH_A},李娜 ,13900000002,lina\r\n"
            f"2,{BRANCH_A},张伟,13900000003,zhangwei\r\n"
            ",,,,\r\n"
            "填表人：王小明,,,,\r\n")
    path = tmp_path / "名册.csv"
    path.write_bytes(text.encode("gbk"))
    report = do_import(db, path, clock)
    assert (report.people_created, report.footer_rows) == (2, [6])
    with db.session() as s:
        assert _person(s, "lina").name == "李娜" and _person(s, "zhangwei").mobile == "13900000003"
        assert {o.path for o in s.scalars(select(Organisation))} == {TOP, GB1, BRANCH_A}


def test_an_organisation_one_character_from_a_sibling_is_refused_naming_it(db, clock, tmp_path, base):
    before = whole_database(db)
    rows = [
        ["机关党委/第1党总支/综合处党支部", "李娜", "lina", 13900000002, "书记"],
        ["机关党委/第1党总支/综合处党支部", "张伟", "zhangwei", 13900000003, ""],
        [BRANCH_A, "刘洋", "liuyang", 13900000004, ""],
    ]
    with pytest.raises(RosterError) as caught:
        do_import(db, plain_xlsx(tmp_path / "typo.xlsx", rows), clock)
    lines = str(caught.value).splitlines()
    assert lines[0] == "名册有 2 行有误，本次未导入任何数据："
    assert lines[1].startswith("第 2 行：「第1党总支」与已有的「第一党总支」只差一两个字，是否写错？")
    assert "确需新建请在此行「新建」列填「是」" in lines[1] and lines[2].startswith("第 3 行：")
    assert whole_database(db) == before  # no parallel branch, nobody moved

    header = ("组织", "姓名", "企业微信账号", "手机", "职务", "新建")
    confirmed = [[*row, "是" if i == 0 else ""] for i, row in enumerate(rows)]
    do_import(db, plain_xlsx(tmp_path / "new.xlsx", confirmed, header=header), clock)
    with db.session() as s:
        assert s.scalar(select(Organisation.kind).where(Organisation.path == "机关党委/第1党总支")) \
            is OrgKind.GENERAL_BRANCH
        assert _memberships(_person(s, "zhangwei")) == {"机关党委/第1党总支/综合处党支部": MembershipKind.HOME}


def test_real_siblings_with_numbers_are_not_typos(db, clock, tmp_path, base):
    rows = [["机关党委/第三党总支/科研二处党支部", "周敏", "zhoumin", 13900000010, ""],
            ["机关党委/第一党总支/研究室党支部", "孙丽", "sunli", 13900000011, ""]]
    report = do_import(db, plain_xlsx(tmp_path / "more.xlsx", rows), clock)
    assert report.organisations_added == ["机关党委/第三党总支", "机关党委/第三党总支/科研二处党支部",
                                          "机关党委/第一党总支/研究室党支部"]


def test_within_one_file_the_rarer_spelling_is_the_suspect(db, clock, tmp_path):
    rows = [["机关党委/第一党总支/综合处党支部", name, f"u{i}", None, ""] for i, name in enumerate("甲乙丙丁")]
    rows.insert(2, ["机关党委/第1党总支/综合处党支部", "戊", "u9", None, ""])
    rows.append(["机关党委/第一党总支/人事处党支部", "己", "u10", None, ""])  # beside 外事处: real siblings
    rows.append(["机关党委/第一党总支/外事处党支部", "庚", "u11", None, ""])
    with pytest.raises(RosterError) as caught:
        do_import(db, plain_xlsx(tmp_path / "r.xlsx", rows), clock)
    assert str(caught.value).splitlines()[1:] == [
        "第 4 行：「第1党总支」与本名册中的「第一党总支」只差一两个字，是否写错？"
        "如果是同一组织请改为「第一党总支」；确需新建请在此行「新建」列填「是」"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Organisation)) == 0


def test_a_name_one_character_from_the_same_account_or_mobile_is_refused(db, clock, tmp_path, base):
    before = whole_database(db)
    rows = [[BRANCH_A, "张玮", "ZHANGWEI", 13900000003, ""],  # the account, any case
            [BRANCH_B, "赵雷", "", 13900000006, ""]]  # the mobile
    with pytest.raises(RosterError) as caught:
        do_import(db, plain_xlsx(tmp_path / "r.xlsx", rows), clock)
    message = str(caught.value)
    assert "第 2 行：「张玮」与系统中企业微信账号 ZHANGWEI 的「张伟」只差一个字，是否写错？" in message
    assert "确已改名请在此行「状态」列填「改名」" in message
    assert "第 3 行：「赵雷」与系统中手机号 13900000006 的「赵磊」只差一个字" in message
    assert whole_database(db) == before

    header = ("组织", "姓名", "企业微信账号", "手机", "职务", "状态")
    do_import(db, plain_xlsx(tmp_path / "rename.xlsx", [[*rows[0], "改名"]], header=header), clock)
    with db.session() as s:
        assert (_person(s, "zhangwei").name, _person(s, "zhangwei").wecom_userid) == ("张玮", "ZHANGWEI")
        assert s.scalar(select(func.count()).select_from(Person)) == 7


def test_accounts_are_compared_without_case_against_the_database(db, clock, tmp_path, base):
    report = do_import(db, plain_xlsx(tmp_path / "r.xlsx", [[BRANCH_B, "张伟", "ZhangWei", 13900000003, ""]]), clock)
    assert (report.people_created, [(m.name, m.from_path, m.to_path) for m in report.moves]) == (
        0, [("张伟", BRANCH_A, BRANCH_B)])
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 7
        assert s.scalar(select(func.count()).select_from(ChannelIdentity)) == 7
        assert _memberships(_person(s, "ZhangWei")) == {BRANCH_B: MembershipKind.HOME}


def test_under_reads_paths_relative_to_an_organisation(db, clock, tmp_path, base):
    rows = [["综合处党支部", "孙丽", "sunli", 13900000011, ""],
            ["", "周敏", "zhoumin", 13900000010, "书记"],  # empty: 第一党总支 itself
            ["新设党支部", "钱多", "qianduo", 13900000012, ""]]
    report = do_import(db, plain_xlsx(tmp_path / "r.xlsx", rows), clock, under="第一党总支")
    assert report.under == GB1 and report.organisations_added == [f"{GB1}/新设党支部"]
    assert "组织路径均相对于「机关党委/第一党总支」。" in render_report(report)
    with db.session() as s:
        assert _memberships(_person(s, "sunli")) == {BRANCH_A: MembershipKind.HOME}
        assert _roles(_person(s, "zhoumin")) == {(GB1, Role.SECRETARY)}
        assert _memberships(_person(s, "qianduo")) == {f"{GB1}/新设党支部": MembershipKind.HOME}
        assert _memberships(_person(s, "zhangwei")) == {BRANCH_A: MembershipKind.HOME}  # not in file: untouched
    with pytest.raises(RosterError, match="系统中没有组织「第九党总支」"):
        do_import(db, plain_xlsx(tmp_path / "r.xlsx", rows), clock, under="第九党总支")


def test_bare_organisation_names_without_under(db, clock, tmp_path, base):
    with db.session() as s:
        from tests.factories import org

        org(s, "机关党委/第二党总支/综合处党支部")  # a second 综合处党支部
    before = whole_database(db)
    refused = [["综合处党支部", "孙丽", "sunli", None, ""], ["档案室党支部", "钱多", "qianduo", None, ""]]
    with pytest.raises(RosterError) as caught:
        do_import(db, plain_xlsx(tmp_path / "bad.xlsx", refused), clock)
    message = str(caught.value)
    assert ("第 2 行：组织「综合处党支部」在系统中有 2 个（机关党委/第一党总支/综合处党支部、"
            "机关党委/第二党总支/综合处党支部），请写出完整路径") in message
    assert "第 3 行：系统中没有名为「档案室党支部」的组织：请写出从最上级开始的完整路径" in message
    assert "或导入时用 --under 指定它的上级组织" in message
    assert whole_database(db) == before

    rows = [["财务处党支部", "孙丽", "sunli", None, ""], ["科技党委", "钱多", "qianduo", None, "书记"]]
    report = do_import(db, plain_xlsx(tmp_path / "ok.xlsx", rows), clock)
    assert report.matched == [("财务处党支部", BRANCH_B)] and report.organisations_added == ["科技党委"]
    text = render_report(report)
    assert "「财务处党支部」按名称对应到已有的「机关党委/第一党总支/财务处党支部」。" in text
    assert "新增组织（1）：\n· 科技党委" in text
    with db.session() as s:
        assert _memberships(_person(s, "sunli")) == {BRANCH_B: MembershipKind.HOME}
        top = s.scalar(select(Organisation).where(Organisation.path == "科技党委"))
        assert (top.kind, top.parent_id) == (OrgKind.COMMITTEE, None)


def test_people_without_an_account_are_listed_with_how_to_reach_them(db, clock, tmp_path):
    rows = [[BRANCH_A, "李娜", "lina", None, "书记"], [BRANCH_A, "吴强", "", 13700000000, ""],
            [BRANCH_C, "黄丽", "", None, ""]]
    text = render_report(do_import(db, plain_xlsx(tmp_path / "r.xlsx", rows), clock))
    assert ("以下 2 人没有企业微信账号，暂时收不到任何消息：\n"
            f"· 吴强（{BRANCH_A}）\n· 黄丽（{BRANCH_C}）\n") in text
    assert "补填其「企业微信账号」" in text and "「绑定码 姓名」" in text and "「绑定 验证码」" in text
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Person).where(Person.wecom_userid.is_(None))) == 2


def test_category_and_post_type_are_stored(db, clock, tmp_path, base):
    header = ("组织", "姓名", "企业微信账号", "党员类别", "岗位类型")
    rows = [[BRANCH_A, "张伟", "zhangwei", "预备党员", "外勤"], [BRANCH_A, "刘洋", "liuyang", "正式", "驻外"],
            [BRANCH_A, "李娜", "lina", "", "机关"]]
    report = do_import(db, plain_xlsx(tmp_path / "r.xlsx", rows, header=header), clock)
    assert {(p.name, p.detail) for p in report.people_changed} == {
        ("张伟", "党员类别、岗位类型"), ("刘洋", "岗位类型"), ("李娜", "岗位类型")}
    with db.session() as s:
        got = {p.wecom_userid: (p.category, p.post_type) for p in s.scalars(select(Person))}
    assert got["zhangwei"] == (MemberCategory.PROBATIONARY, PostType.FIELD)
    assert got["liuyang"] == (MemberCategory.FULL, PostType.POSTED)
    assert got["lina"] == (MemberCategory.FULL, PostType.OFFICE)
    assert got["wulei"] == (MemberCategory.FULL, None)
    # A file without the columns leaves them alone.
    do_import(db, plain_xlsx(tmp_path / "slim.xlsx", [[BRANCH_A, "张伟", "zhangwei"]],
                             header=("组织", "姓名", "企业微信账号")), clock)
    with db.session() as s:
        assert (_person(s, "zhangwei").category, _person(s, "zhangwei").post_type) == (
            MemberCategory.PROBATIONARY, PostType.FIELD)


def test_bad_values_say_what_to_write_instead(db, clock, tmp_path):
    header = ("组织", "姓名", "企业微信账号", "党员类别", "岗位类型", "状态", "新建")
    rows = [[BRANCH_A, "张伟", "zhangwei", "积极分子", "内勤", "退休", "可能"]]
    with pytest.raises(RosterError) as caught:
        do_import(db, plain_xlsx(tmp_path / "r.xlsx", rows, header=header), clock)
    line = str(caught.value).splitlines()[1]
    assert line.startswith("第 2 行：")
    for part in ("新建「可能」无法识别：确需新建组织请填「是」", "状态「退休」无法识别：在组织中的留空，已转出的填「已转出」",
                 "党员类别「积极分子」无法识别：请填「正式党员」或「预备党员」", "岗位类型「内勤」无法识别：请填「机关」「外勤」或「驻外」"):
        assert part in line
