"""What an import would change: the plan compared with the database, computed without writing.

The database follows the file for the people in it: their name, mobile, 党员类别, 岗位类型,
memberships, roles and liaison assignments become what the file says, within what the file covers
(the organisations its rows name and everything under them). So one branch's own roster leaves a
member's seat on a 党委 or a 临时党支部 membership elsewhere alone, while a file that names the top
organisation covers everything; a home membership the file gives replaces one held anywhere. An
optional column that is absent from the file (手机, 职务, 联系组织, 党员类别, 岗位类型) leaves that data
alone. A person marked 已转出 loses every membership, role and liaison assignment; a person who had
left and is named again without it comes back. People in the database but not in the file are
reported (those with a seat in what the file covers, or with none), never deleted.

Organisations and people are referred to by path and by the plan's person here: `apply` gives
them ids when it writes, and `--dry-run` stops before that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from bot.roster.plan import FilePerson, NewOrg, Plan
from models.org import path_within
from models.person import MemberCategory, MembershipKind, Role
from models.roster import DbPerson, RosterSnapshot


@dataclass
class PersonUpdate:
    person: FilePerson
    old: DbPerson
    values: dict  # column -> new value, for every column of the row
    changed: list[str]  # the columns that change


@dataclass
class Move:
    name: str
    userid: str | None
    from_path: str
    to_path: str


@dataclass
class Changes:
    new_orgs: list[NewOrg]
    new_people: list[FilePerson] = field(default_factory=list)
    updates: list[PersonUpdate] = field(default_factory=list)
    new_identities: list[FilePerson] = field(default_factory=list)
    moved_identities: list[tuple[int, FilePerson, int]] = field(default_factory=list)  # (identity, person, was)
    add_members: list[tuple[FilePerson, str, MembershipKind]] = field(default_factory=list)
    change_members: list[tuple[int, FilePerson, str, MembershipKind, MembershipKind]] = field(default_factory=list)
    drop_members: list[tuple[int, FilePerson, str, MembershipKind]] = field(default_factory=list)
    add_roles: list[tuple[FilePerson, str, Role]] = field(default_factory=list)
    drop_roles: list[tuple[int, FilePerson, str, Role]] = field(default_factory=list)
    add_liaisons: list[tuple[FilePerson, str]] = field(default_factory=list)
    drop_liaisons: list[tuple[int, FilePerson, str]] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    leaving: list[FilePerson] = field(default_factory=list)  # newly marked as transferred out
    returning: list[FilePerson] = field(default_factory=list)  # had left, named again
    touched: set[int] = field(default_factory=set)  # ids (by `id()`) of existing people who change
    not_in_file: list[DbPerson] = field(default_factory=list)
    unreachable: list[FilePerson] = field(default_factory=list)  # no WeCom account, no bound Official Account

    @property
    def changed(self) -> bool:
        return bool(self.new_orgs or self.new_people or self.touched)


def compute(plan: Plan, snap: RosterSnapshot, *, today: date) -> Changes:
    """Everything the import would write, as lists of changes."""
    changes = Changes(new_orgs=plan.new_orgs)
    path_of = {oid: path for path, (oid, _kind) in snap.orgs.items()}
    covered = sorted({path for person in plan.people for path in person.org_paths})
    scope: dict[int, bool] = {}

    def in_scope(oid: int) -> bool:
        if oid not in scope:
            scope[oid] = any(path_within(path_of[oid], top) for top in covered)
        return scope[oid]

    for person in plan.people:
        old = snap.people.get(person.db_id) if person.db_id is not None else None
        if old is None:
            changes.new_people.append(person)
        else:
            values = {
                "name": person.name,
                "wecom_userid": person.userid or old.userid,
                "mobile": person.mobile if plan.manage_mobile else old.mobile,
                "category": (person.category or MemberCategory.FULL) if plan.manage_category else old.category,
                "post_type": person.post_type if plan.manage_post_type else old.post_type,
                "left_on": (old.left_on or today) if person.leaving else None,
            }
            current = {"name": old.name, "wecom_userid": old.userid, "mobile": old.mobile, "category": old.category,
                       "post_type": old.post_type, "left_on": old.left_on}
            changed = [column for column, value in values.items() if current[column] != value]
            if changed:
                changes.updates.append(PersonUpdate(person, old, values, changed))
                changes.touched.add(id(person))
            if person.leaving and old.left_on is None:
                changes.leaving.append(person)
            if not person.leaving and old.left_on is not None:
                changes.returning.append(person)
        if old is None and person.leaving:
            changes.leaving.append(person)
        _identity(changes, person, snap)
        _places(changes, person, snap, plan, path_of, in_scope)
        if not person.userid and not person.leaving and (old is None or old.id not in snap.mp_bound):
            changes.unreachable.append(person)

    in_file = {p.db_id for p in plan.people if p.db_id is not None}
    changes.not_in_file = sorted((p for p in snap.people.values() if p.id not in in_file and p.left_on is None
                                  and _placed_within(p.id, snap, in_scope)),
                                 key=lambda p: (p.name, p.userid or ""))
    return changes


def _placed_within(person_id: int, snap: RosterSnapshot, in_scope) -> bool:
    """Whether someone absent from the file belongs to what it covers: a seat (membership, role, liaison
    assignment) there, or none anywhere. One branch's roster does not list the rest of the committee."""
    seats = [*snap.memberships.get(person_id, {}), *(oid for oid, _role in snap.roles.get(person_id, {})),
             *snap.liaisons.get(person_id, {})]
    return not seats or any(in_scope(oid) for oid in seats)


def _identity(changes: Changes, person: FilePerson, snap: RosterSnapshot) -> None:
    """WeCom identities: the bot recognises a sender through them."""
    if not person.userid:
        return
    found = snap.identities.get(person.userid.casefold())
    if found is None:
        changes.new_identities.append(person)
        if person.db_id is not None:
            changes.touched.add(id(person))
    elif found[2] != person.db_id or found[1] != person.userid:
        changes.moved_identities.append((found[0], person, found[2]))
        changes.touched.add(id(person))


def _places(changes: Changes, person: FilePerson, snap: RosterSnapshot, plan: Plan, path_of, in_scope) -> None:
    """Memberships, roles and liaison assignments of one person, within what the file covers."""
    pid = person.db_id
    is_new = pid is None
    have_members = {} if is_new else snap.memberships.get(pid, {})
    have_roles = {} if is_new else snap.roles.get(pid, {})
    have_liaisons = {} if is_new else snap.liaisons.get(pid, {})
    want_members = {path: kind for path, (kind, _row) in person.memberships.items()}
    want_roles = set(person.roles)
    want_liaisons = set(person.liaises)
    if not person.leaving:
        new_home = MembershipKind.HOME in want_members.values()
        for oid, (_mid, kind) in have_members.items():
            if not in_scope(oid) and not (new_home and kind is MembershipKind.HOME):
                want_members.setdefault(path_of[oid], kind)
        want_roles |= {(path_of[oid], role) for oid, role in have_roles
                       if not plan.manage_roles or not in_scope(oid)}
        want_liaisons |= {path_of[oid] for oid in have_liaisons if not plan.manage_liaisons or not in_scope(oid)}

    have_by_path = {path_of[oid]: (mid, kind) for oid, (mid, kind) in have_members.items()}
    added_home = [path for path, kind in want_members.items()
                  if kind is MembershipKind.HOME and path not in have_by_path]
    dropped_home = [path for path, (_mid, kind) in have_by_path.items()
                    if kind is MembershipKind.HOME and path not in want_members]
    if added_home and dropped_home:
        changes.moves.append(Move(person.name, person.userid, dropped_home[0], added_home[0]))
    touched = False
    for path, kind in want_members.items():
        if path not in have_by_path:
            changes.add_members.append((person, path, kind))
            touched = True
        elif have_by_path[path][1] is not kind:
            changes.change_members.append((have_by_path[path][0], person, path, have_by_path[path][1], kind))
            touched = True
    for path, (mid, kind) in have_by_path.items():
        if path not in want_members:
            changes.drop_members.append((mid, person, path, kind))
            touched = True

    have_role_paths = {(path_of[oid], role): rid for (oid, role), rid in have_roles.items()}
    for path, role in sorted(want_roles - set(have_role_paths), key=lambda r: (r[0], r[1].value)):
        changes.add_roles.append((person, path, role))
        touched = True
    for (path, role), rid in have_role_paths.items():
        if (path, role) not in want_roles:
            changes.drop_roles.append((rid, person, path, role))
            touched = True

    have_liaison_paths = {path_of[oid]: lid for oid, lid in have_liaisons.items()}
    for path in sorted(want_liaisons - set(have_liaison_paths)):
        changes.add_liaisons.append((person, path))
        touched = True
    for path, lid in have_liaison_paths.items():
        if path not in want_liaisons:
            changes.drop_liaisons.append((lid, person, path))
            touched = True
    if touched and not is_new:
        changes.touched.add(id(person))
