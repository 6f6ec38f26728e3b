"""What an import did (or, with `--dry-run`, would do): counts and the people and places behind them."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.roster.changes import Changes, Move
from bot.roster.plan import Plan
from bot.roster.read import IgnoredColumn


@dataclass(frozen=True)
class AbsentPerson:
    name: str
    wecom_userid: str | None


@dataclass(frozen=True)
class PersonLine:
    name: str
    wecom_userid: str | None
    detail: str = ""  # a path, a column list: what the line is about


@dataclass
class ImportReport:
    rows: int = 0
    people_in_file: int = 0
    organisations_created: int = 0
    people_created: int = 0
    people_updated: int = 0
    people_unchanged: int = 0
    memberships_added: int = 0
    memberships_changed: int = 0
    memberships_removed: int = 0
    roles_added: int = 0
    roles_removed: int = 0
    liaisons_added: int = 0
    liaisons_removed: int = 0
    not_in_file: list[AbsentPerson] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False
    under: str | None = None
    column_hints: list[tuple[str, str]] = field(default_factory=list)  # (header, the column it looks like)
    footer_rows: list[int] = field(default_factory=list)
    organisations_added: list[str] = field(default_factory=list)
    matched: list[tuple[str, str]] = field(default_factory=list)  # (bare name, existing path)
    people_added: list[PersonLine] = field(default_factory=list)
    people_changed: list[PersonLine] = field(default_factory=list)  # detail: the columns that change
    moves: list[Move] = field(default_factory=list)
    memberships: list[PersonLine] = field(default_factory=list)  # detail: "+path" / "-path" / "~path"
    roles: list[PersonLine] = field(default_factory=list)
    liaisons: list[PersonLine] = field(default_factory=list)
    left: list[PersonLine] = field(default_factory=list)
    returned: list[PersonLine] = field(default_factory=list)
    unreachable: list[PersonLine] = field(default_factory=list)  # detail: the person's organisation

    @property
    def changed(self) -> bool:
        return bool(
            self.organisations_created or self.people_created or self.people_updated
            or self.memberships_added or self.memberships_changed or self.memberships_removed
            or self.roles_added or self.roles_removed or self.liaisons_added or self.liaisons_removed
        )

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "people_in_file": self.people_in_file,
            "organisations_created": self.organisations_created,
            "people_created": self.people_created,
            "people_updated": self.people_updated,
            "people_unchanged": self.people_unchanged,
            "memberships_added": self.memberships_added,
            "memberships_changed": self.memberships_changed,
            "memberships_removed": self.memberships_removed,
            "roles_added": self.roles_added,
            "roles_removed": self.roles_removed,
            "liaisons_added": self.liaisons_added,
            "liaisons_removed": self.liaisons_removed,
            "not_in_file": len(self.not_in_file),
        }


COLUMN_NAMES = {"name": "姓名", "wecom_userid": "企业微信账号", "mobile": "手机", "category": "党员类别",
                "post_type": "岗位类型", "left_on": "状态"}


def build_report(plan: Plan, changes: Changes, *, rows: int, ignored: list[IgnoredColumn], footer_rows: list[int],
                 dry_run: bool) -> ImportReport:
    def line(person, detail: str = "") -> PersonLine:
        return PersonLine(person.name, person.userid, detail)

    people = len(plan.people)
    updated = len(changes.touched)
    report = ImportReport(
        rows=rows,
        people_in_file=people,
        organisations_created=len(changes.new_orgs),
        people_created=len(changes.new_people),
        people_updated=updated,
        people_unchanged=people - len(changes.new_people) - updated,
        memberships_added=len(changes.add_members),
        memberships_changed=len(changes.change_members),
        memberships_removed=len(changes.drop_members),
        roles_added=len(changes.add_roles),
        roles_removed=len(changes.drop_roles),
        liaisons_added=len(changes.add_liaisons),
        liaisons_removed=len(changes.drop_liaisons),
        not_in_file=[AbsentPerson(p.name, p.userid) for p in changes.not_in_file],
        ignored_columns=[c.header for c in ignored],
        dry_run=dry_run,
        under=plan.under,
        column_hints=[(c.header, c.probably) for c in ignored if c.probably],
        footer_rows=footer_rows,
        organisations_added=[o.path for o in changes.new_orgs],
        matched=plan.matched,
        people_added=[line(p, p.org_paths[0] if p.org_paths else "") for p in changes.new_people],
        people_changed=[line(u.person, "、".join(COLUMN_NAMES[c] for c in u.changed)) for u in changes.updates],
        moves=changes.moves,
        left=[line(p) for p in changes.leaving],
        returned=[line(p) for p in changes.returning],
        unreachable=[line(p, p.org_paths[0] if p.org_paths else "") for p in changes.unreachable],
    )
    moved = {(m.name, m.userid, path) for m in changes.moves for path in (m.from_path, m.to_path)}
    for person, path, kind in changes.add_members:
        if (person.name, person.userid, path) not in moved and person.db_id is not None:
            report.memberships.append(line(person, f"+{path}" + ("（临时）" if kind.value == "temporary" else "")))
    for _mid, person, path, _was, kind in changes.change_members:
        report.memberships.append(line(person, f"~{path}" + ("（临时）" if kind.value == "temporary" else "")))
    for _mid, person, path, _kind in changes.drop_members:
        if (person.name, person.userid, path) not in moved:
            report.memberships.append(line(person, f"-{path}"))
    for person, path, role in changes.add_roles:
        if person.db_id is not None:
            report.roles.append(line(person, f"+{path} {role.label}"))
    for _rid, person, path, role in changes.drop_roles:
        report.roles.append(line(person, f"-{path} {role.label}"))
    for person, path in changes.add_liaisons:
        if person.db_id is not None:
            report.liaisons.append(line(person, f"+{path}"))
    for _lid, person, path in changes.drop_liaisons:
        report.liaisons.append(line(person, f"-{path}"))
    return report
