"""Validation and planning: the file's rows against each other and the database, into a plan.

Who is who (the identity rule)
    1. A row with 企业微信账号 is the person with that account (compared without case, as WeCom
       does, across rows and against the database). All rows with the account must carry the same
       姓名 (and no two different 手机).
    2. A row without an account but with 手机 is the person with that (姓名, 手机): the account
       person of the file with the same 姓名 and 手机 if there is exactly one, else a person
       keyed by (姓名, 手机).
    3. A row with neither is keyed by (姓名, 组织): two such rows are the same person only when they
       name the same organisation. To link a 临时党支部 row to the person's home row, give the
       account or the mobile.
    The database is matched the same way: by account; else (姓名, 手机) or (姓名 + an organisation
    of the row) among people without an account. A person first imported without an account and
    later listed with one keeps their row (matched by 姓名 + 手机, or 姓名 + organisation).

What a row gives
    A row in a 党支部/联合党支部/党小组 gives a home membership, in a 临时党支部 a temporary one;
    one person has at most one home membership. A row in a higher organisation (党委, 二级党委,
    党总支) gives no membership, so it must carry a role there. 联系组织 needs the 联络员 role in
    the same row; each entry is a full path or, when unambiguous, the end of one. A row whose 状态
    is 已转出 gives nothing: the person is marked as transferred out.

Probable typos are refused rather than built: a new organisation whose name is one or two
characters from a sibling's (`第1党总支` beside `第一党总支`) unless its rows say 是 in 新建, and a
person whose name is one character from that of the person with the same account or mobile
unless the row's 状态 says 改名.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from bot.roster.read import CATEGORY, LIAISES, MOBILE, POST_TYPE, ROLES, RosterError, Row, RowStatus, split_path
from bot.roster.typos import one_character_apart, probable_typo
from models.org import OrgKind, kind_from_name
from models.person import MemberCategory, MembershipKind, PostType, Role
from models.roster import RosterSnapshot

KIND_HINT = "党委、党总支、党支部、党小组、临时党支部或联合党支部"

# Depth rank of each kind: a child must rank below its parent.
_RANK = {
    OrgKind.COMMITTEE: 0,
    OrgKind.SUB_COMMITTEE: 1,
    OrgKind.GENERAL_BRANCH: 2,
    OrgKind.BRANCH: 3,
    OrgKind.JOINT_BRANCH: 3,
    OrgKind.TEMPORARY_BRANCH: 3,
    OrgKind.GROUP: 4,
}
MEMBERSHIP_KINDS = {OrgKind.BRANCH, OrgKind.JOINT_BRANCH, OrgKind.TEMPORARY_BRANCH, OrgKind.GROUP}
TOP_KINDS = {OrgKind.COMMITTEE}


@dataclass
class NewOrg:
    path: str
    name: str
    kind: OrgKind
    parent_path: str | None
    rows: list[int] = field(default_factory=list)
    confirmed: bool = False  # a row said 是 in 新建


@dataclass
class FilePerson:
    name: str
    userid: str | None
    mobile: str | None
    first_row: int
    org_paths: list[str] = field(default_factory=list)  # every organisation of the person's rows
    memberships: dict[str, tuple[MembershipKind, int]] = field(default_factory=dict)  # path -> (kind, row)
    roles: set[tuple[str, Role]] = field(default_factory=set)
    liaises: set[str] = field(default_factory=set)
    category: MemberCategory | None = None
    post_type: PostType | None = None
    leaving: bool = False
    renamed: bool = False
    rows: list[Row] = field(default_factory=list)
    db_id: int | None = None


@dataclass
class Plan:
    new_orgs: list[NewOrg]
    people: list[FilePerson]
    manage_mobile: bool
    manage_roles: bool
    manage_liaisons: bool
    manage_category: bool
    manage_post_type: bool
    matched: list[tuple[str, str]]  # a bare organisation name in the file -> the existing path it means
    under: str | None = None


class Planner:
    def __init__(self, rows: list[Row], present: set[str], snapshot: RosterSnapshot, *,
                 under: str | None = None, is_xlsx: bool = False) -> None:
        self.rows = rows
        self.present = present
        self.snapshot = snapshot
        self.under = under
        self.is_xlsx = is_xlsx
        self.kinds: dict[str, OrgKind] = {path: kind for path, (_id, kind) in snapshot.orgs.items()}
        self.by_name: dict[str, list[str]] = defaultdict(list)  # existing organisations by their own name
        self.children: dict[str | None, list[str]] = defaultdict(list)  # parent path -> existing child names
        for path in snapshot.orgs:
            parent, _, name = path.rpartition("/")
            self.by_name[name].append(path)
            self.children[parent or None].append(name)
        self.new_orgs: dict[str, NewOrg] = {}
        self.matched: dict[str, str] = {}
        self.people: list[FilePerson] = []
        self.bare_rows: list[Row] = []  # rows in a higher organisation without a role

    def problem(self, row: Row, reason: str) -> None:
        row.problems.append(reason)

    def plan(self) -> Plan:
        roots = {split_path(r.org_path)[0] for r in self.rows if "/" in r.org_path.strip("/") and split_path(r.org_path)}
        for row in self.rows:
            row.org_path = self._row_path(row, roots) or ""
        self._check_typos()
        self._group_people()
        for row in self.rows:
            self._liaisons(row)
        self._match_database()
        self._check_names_against_database()
        bad = sorted((row for row in self.rows if row.problems), key=lambda r: r.number)
        if bad:
            lines = [f"名册有 {len(bad)} 行有误，本次未导入任何数据："]
            lines += [f"第 {row.number} 行：" + "；".join(row.problems) for row in bad]
            raise RosterError("\n".join(lines), [(row.number, reason) for row in bad for reason in row.problems])
        return Plan(
            new_orgs=list(self.new_orgs.values()),  # parents are always registered before children
            people=self.people,
            manage_mobile=MOBILE in self.present,
            manage_roles=ROLES in self.present,
            manage_liaisons=LIAISES in self.present,
            manage_category=CATEGORY in self.present,
            manage_post_type=POST_TYPE in self.present,
            matched=sorted(self.matched.items()),
            under=self.under,
        )

    # --- organisations -------------------------------------------------------------------------------

    def _row_path(self, row: Row, roots: set[str]) -> str | None:
        text = row.org_path
        if self.under:
            if not text:
                return self.under
            names = split_path(text)
            if "/".join(names) == self.under or "/".join(names).startswith(self.under + "/"):
                return self._organisation(row, text)  # a full path that already starts with ORG
            return self._organisation(row, f"{self.under}/{text}")
        if not text:
            merged = "（如使用了合并单元格，请取消合并并逐行填写）" if self.is_xlsx else ""
            self.problem(row, "缺少组织" + merged + "；只有在命令中用 --under 指定了组织时，组织才可留空")
            return None
        names = split_path(text)
        if len(names) == 1 and names[0] and names[0] not in self.kinds and names[0] not in roots:
            return self._bare(row, names[0])
        return self._organisation(row, text)

    def _bare(self, row: Row, name: str) -> str | None:
        """A name without a path that neither the database's top level nor the file's own paths know."""
        if name in self.matched:
            return self.matched[name]
        candidates = sorted(self.by_name.get(name, []))
        if len(candidates) == 1:
            self.matched[name] = candidates[0]
            return candidates[0]
        if candidates:
            shown = "、".join(candidates[:5]) + ("等" if len(candidates) > 5 else "")
            self.problem(row, f"组织「{name}」在系统中有 {len(candidates)} 个（{shown}），请写出完整路径")
            return None
        kind = kind_from_name(name, None)
        if kind in TOP_KINDS or name in self.new_orgs:
            return self._organisation(row, name)
        if kind is None:
            return self._organisation(row, name)  # reports the unknown kind
        self.problem(row, f"系统中没有名为「{name}」的组织：请写出从最上级开始的完整路径"
                          f"（如「机关党委/第一党总支/{name}」），或导入时用 --under 指定它的上级组织")
        return None

    def _organisation(self, row: Row, text: str) -> str | None:
        """Normalise a path and register the organisations it creates; None (with a problem) when bad."""
        names = split_path(text)
        if not names or "" in names:
            self.problem(row, f"组织路径「{text}」中有空的层级：请用一个「/」分隔各级组织")
            return None
        parent_path: str | None = None
        parent_kind: OrgKind | None = None
        for name in names:
            path = f"{parent_path}/{name}" if parent_path else name
            kind = self.kinds.get(path)
            if kind is None:
                kind = kind_from_name(name, parent_kind)
                if kind is None:
                    self.problem(row, f"无法判断「{name}」是哪类组织：名称应以{KIND_HINT}结尾")
                    return None
                if parent_kind is not None and (
                    _RANK[kind] <= _RANK[parent_kind] or (kind is OrgKind.GROUP and not parent_kind.is_branch)
                ):
                    self.problem(row, f"「{name}」（{kind.label}）不能设在「{parent_path}」（{parent_kind.label}）之下")
                    return None
                if len(name) > 100 or len(path) > 500:
                    self.problem(row, f"组织名称或路径过长：「{path}」")
                    return None
                self.kinds[path] = kind
                self.new_orgs[path] = NewOrg(path, name, kind, parent_path)
            if path in self.new_orgs:
                org = self.new_orgs[path]
                if not org.rows or org.rows[-1] != row.number:
                    org.rows.append(row.number)
                org.confirmed = org.confirmed or row.new
            parent_path, parent_kind = path, kind
        return parent_path

    def _check_typos(self) -> None:
        """A new organisation one or two characters from a sibling is refused unless 新建 says 是."""
        row_at = {row.number: row for row in self.rows}
        new_by_parent: dict[str | None, list[NewOrg]] = defaultdict(list)
        for org in self.new_orgs.values():
            new_by_parent[org.parent_path].append(org)
        for parent, orgs in new_by_parent.items():
            existing = self.children.get(parent, [])
            for org in orgs:
                if org.confirmed:
                    continue
                near = next((name for name in existing if probable_typo(org.name, name)), None)
                if near is None:  # among new siblings, the one with fewer rows is the suspect
                    near = next((o.name for o in orgs if o is not org and probable_typo(org.name, o.name, share=4)
                                 and (len(o.rows), -o.rows[0]) > (len(org.rows), -org.rows[0])), None)
                    where = "本名册中的"
                else:
                    where = "已有的"
                if near is None:
                    continue
                for number in org.rows:
                    self.problem(row_at[number], f"「{org.name}」与{where}「{near}」只差一两个字，是否写错？"
                                                 f"如果是同一组织请改为「{near}」；确需新建请在此行「新建」列填「是」")

    # --- people ----------------------------------------------------------------------------------------

    def _group_people(self) -> None:
        by_userid: dict[str, tuple[FilePerson, Row]] = {}
        by_name_mobile: dict[tuple[str, str], FilePerson] = {}
        by_name_org: dict[tuple[str, str], FilePerson] = {}
        account_by_name_mobile: dict[tuple[str, str], list[FilePerson]] = defaultdict(list)
        usable = [row for row in self.rows if row.name]

        for row in (r for r in usable if r.userid):
            key = row.userid.casefold()
            if key not in by_userid:
                person = FilePerson(row.name, row.userid, row.mobile, row.number)
                by_userid[key] = (person, row)
                self.people.append(person)
                self._add_row(person, row)
                continue
            person, first = by_userid[key]
            mobile_row = next((r for r in person.rows if r.mobile), first)
            if row.name != person.name:
                typo = "，只差一个字，是否写错？" if one_character_apart(row.name, person.name) else ""
                self.problem(row, f"企业微信账号「{row.userid}」在第 {first.number} 行是「{person.name}」，"
                                  f"此行是「{row.name}」：同一账号不能对应两个姓名{typo}")
                continue
            if row.mobile and person.mobile and row.mobile != person.mobile:
                self.problem(row, f"企业微信账号「{row.userid}」在第 {mobile_row.number} 行的手机是 {person.mobile}，"
                                  f"此行是 {row.mobile}：同一人只能有一个手机号")
                continue
            person.mobile = person.mobile or row.mobile
            self._add_row(person, row)
        for person, _row in by_userid.values():
            if person.mobile:
                account_by_name_mobile[(person.name, person.mobile)].append(person)

        for row in (r for r in usable if not r.userid and r.mobile):
            key = (row.name, row.mobile)
            candidates = account_by_name_mobile.get(key, [])
            person = candidates[0] if len(candidates) == 1 else by_name_mobile.get(key)
            if person is None:
                person = by_name_mobile[key] = FilePerson(row.name, None, row.mobile, row.number)
                self.people.append(person)
            self._add_row(person, row)

        for row in (r for r in usable if not r.userid and not r.mobile):
            key = (row.name, row.org_path)
            person = by_name_org.get(key)
            if person is None:
                person = by_name_org[key] = FilePerson(row.name, None, None, row.number)
                self.people.append(person)
            self._add_row(person, row)

        for person in self.people:
            self._person_columns(person)

        for row in self.bare_rows:
            if not row.person.leaving and not any(path == row.org_path for path, _role in row.person.roles):
                self.problem(row, f"「{row.org_path}」是{self.kinds[row.org_path].label}，不是党支部或党小组："
                                  "此行须填写在该组织的职务（党员请填写到所在党支部）")

        mobiles: dict[str, FilePerson] = {}
        row_at = {row.number: row for row in self.rows}
        for person in self.people:
            if not person.mobile:
                continue
            other = mobiles.setdefault(person.mobile, person)
            if other is not person:
                later = max(person, other, key=lambda p: p.first_row)
                earlier = other if later is person else person
                typo = "，姓名只差一个字，是否写错？" if one_character_apart(later.name, earlier.name) else ""
                self.problem(row_at[later.first_row],
                             f"手机号 {person.mobile} 与第 {earlier.first_row} 行的「{earlier.name}」重复{typo}")

    def _add_row(self, person: FilePerson, row: Row) -> None:
        row.person = person
        person.rows.append(row)
        if not row.org_path:
            return  # the row already has a problem
        person.org_paths.append(row.org_path)
        kind = self.kinds[row.org_path]
        if kind in MEMBERSHIP_KINDS:
            mkind = MembershipKind.TEMPORARY if kind is OrgKind.TEMPORARY_BRANCH else MembershipKind.HOME
            if mkind is MembershipKind.HOME and row.status is not RowStatus.LEFT:
                home = next(((p, n) for p, (k, n) in person.memberships.items()
                             if k is MembershipKind.HOME and p != row.org_path), None)
                if home is not None:
                    self.problem(row, f"「{person.name}」已在第 {home[1]} 行属于「{home[0]}」，"
                                      "一个人只能有一个所在党支部（临时党支部请写在另一行）")
                    return
            person.memberships.setdefault(row.org_path, (mkind, row.number))
        elif not row.roles and ROLES in self.present:
            self.bare_rows.append(row)  # fine if another row gives the person a role there
            return
        person.roles.update((row.org_path, role) for role in row.roles)

    def _person_columns(self, person: FilePerson) -> None:
        """党员类别, 岗位类型 and 状态 hold for the person: their rows must agree."""
        for attr, label in (("category", "党员类别"), ("post_type", "岗位类型")):
            given = [(row, getattr(row, attr)) for row in person.rows if getattr(row, attr) is not None]
            if given:
                first_row, value = given[0]
                clash = next((row for row, other in given if other is not value), None)
                if clash is not None:
                    self.problem(clash, f"「{person.name}」的{label}在第 {first_row.number} 行是「{value.label}」，"
                                        f"此行是「{getattr(clash, attr).label}」：请统一")
                setattr(person, attr, value)
        statuses = {row.status for row in person.rows}
        person.renamed = RowStatus.RENAMED in statuses
        if RowStatus.LEFT in statuses:
            staying = next((row for row in person.rows if row.status is not RowStatus.LEFT), None)
            if staying is not None:
                first = next(row for row in person.rows if row.status is RowStatus.LEFT)
                self.problem(staying, f"「{person.name}」在第 {first.number} 行已填「已转出」，此行却没有："
                                      "转出的人请在其每一行的「状态」列都填「已转出」")
            person.leaving = True
            person.memberships.clear()
            person.roles.clear()

    def _liaisons(self, row: Row) -> None:
        if not row.liaises or (row.person is not None and row.person.leaving):
            return
        if Role.LIAISON not in row.roles:
            self.problem(row, "填写了联系组织，但职务中没有「联络员」：请在职务中加上「联络员」，或清空联系组织")
            return
        for text in row.liaises:
            path = self._resolve(row, text)
            if path and row.person is not None:
                row.person.liaises.add(path)

    def _resolve(self, row: Row, text: str) -> str | None:
        names = split_path(text)
        if not names or "" in names:
            self.problem(row, f"联系组织「{text}」路径有误：请用「/」分隔各级组织，多个组织之间用「；」")
            return None
        path = "/".join(names)
        if path in self.kinds:
            return path
        matches = [p for p in self.kinds if p.endswith("/" + path)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            shown = "、".join(sorted(matches)[:3]) + ("等" if len(matches) > 3 else "")
            self.problem(row, f"联系组织「{text}」有 {len(matches)} 个同名组织（{shown}），请写完整路径")
        else:
            self.problem(row, f"联系组织「{text}」既不在系统中，也不在本名册中")
        return None

    def _match_database(self) -> None:
        snap = self.snapshot
        claimed: set[int] = set()
        no_account = [p for p in snap.people.values() if not p.userid]
        by_name_mobile: dict[tuple[str, str], list[int]] = defaultdict(list)
        by_name: dict[str, list[int]] = defaultdict(list)
        for p in no_account:
            by_name[p.name].append(p.id)
            if p.mobile:
                by_name_mobile[(p.name, p.mobile)].append(p.id)

        def org_ids_of(pid: int) -> set[int]:
            return set(snap.memberships.get(pid, {})) | {oid for oid, _role in snap.roles.get(pid, {})}

        def by_name_and_org(person: FilePerson) -> list[int]:
            wanted = {snap.orgs[p][0] for p in person.org_paths if p in snap.orgs}
            return [pid for pid in by_name.get(person.name, []) if org_ids_of(pid) & wanted]

        def take(person: FilePerson, candidates: list[int]) -> None:
            free = [pid for pid in candidates if pid not in claimed]
            if len(free) == 1:
                person.db_id = free[0]
                claimed.add(free[0])

        for person in self.people:  # 1. by account
            if person.userid:
                key = person.userid.casefold()
                pid = snap.by_userid.get(key)
                if pid is None and key in snap.identities:
                    owner = snap.identities[key][2]
                    pid = owner if not snap.people[owner].userid else None
                if pid is not None and pid not in claimed:
                    person.db_id = pid
                    claimed.add(pid)
        for person in self.people:  # 2. by name and mobile, 3. by name and organisation
            if not person.userid:
                take(person, by_name_mobile.get((person.name, person.mobile), []) if person.mobile
                     else by_name_and_org(person))
        for person in self.people:  # 4. an account added to someone imported without one
            if person.userid and person.db_id is None:
                take(person, by_name_mobile.get((person.name, person.mobile), []) if person.mobile
                     else by_name_and_org(person))

    def _check_names_against_database(self) -> None:
        """The same account or mobile in the database under a name one character away: a probable typo."""
        snap = self.snapshot
        by_mobile: dict[str, list[int]] = defaultdict(list)
        for p in snap.people.values():
            if p.mobile:
                by_mobile[p.mobile].append(p.id)
        for person in self.people:
            if person.renamed or not person.rows:
                continue
            row = person.rows[0]
            if person.db_id is not None:
                old = snap.people[person.db_id]
                if one_character_apart(old.name, person.name):
                    key = f"企业微信账号 {person.userid}" if person.userid else f"手机号 {person.mobile}"
                    self.problem(row, f"「{person.name}」与系统中{key} 的「{old.name}」只差一个字，是否写错？"
                                      f"如果是同一人请写「{old.name}」；确已改名请在此行「状态」列填「改名」")
                continue
            if person.mobile:
                near = next((snap.people[pid] for pid in by_mobile.get(person.mobile, [])
                             if one_character_apart(snap.people[pid].name, person.name)), None)
                if near is not None:
                    self.problem(row, f"「{person.name}」与系统中手机号 {person.mobile} 的「{near.name}」只差一个字，"
                                      f"是否写错？如果是同一人请写「{near.name}」")
