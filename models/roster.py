"""What the roster importer reads from the database before planning: one query per table.

The importer itself (reading the file, validation, the plan, the summary) is `bot/roster/`; this
module holds only the queries that give it the database as it is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.identity import Channel, ChannelIdentity
from models.org import Organisation, OrgKind
from models.person import Liaison, MemberCategory, Membership, MembershipKind, OrgRole, Person, PostType, Role


@dataclass
class DbPerson:
    id: int
    name: str
    userid: str | None
    mobile: str | None
    category: MemberCategory = MemberCategory.FULL
    post_type: PostType | None = None
    left_on: date | None = None


@dataclass
class RosterSnapshot:
    orgs: dict[str, tuple[int, OrgKind]]  # path -> (id, kind)
    people: dict[int, DbPerson]
    by_userid: dict[str, int]  # casefolded WeCom userid -> person id
    identities: dict[str, tuple[int, str, int]]  # casefolded WeCom userid -> (identity id, external id, person id)
    mp_bound: set[int]  # people who bound the Official Account
    memberships: dict[int, dict[int, tuple[int, MembershipKind]]]  # person -> org -> (id, kind)
    roles: dict[int, dict[tuple[int, Role], int]]  # person -> (org, role) -> id
    liaisons: dict[int, dict[int, int]]  # person -> org -> id

    @classmethod
    def load(cls, session: Session) -> RosterSnapshot:
        orgs = {path: (oid, kind) for oid, path, kind in session.execute(
            select(Organisation.id, Organisation.path, Organisation.kind))}
        people = {row[0]: DbPerson(*row) for row in session.execute(
            select(Person.id, Person.name, Person.wecom_userid, Person.mobile, Person.category, Person.post_type,
                   Person.left_on))}
        by_userid = {p.userid.casefold(): p.id for p in people.values() if p.userid}
        identities: dict[str, tuple[int, str, int]] = {}
        mp_bound: set[int] = set()
        for iid, channel, ext, pid in session.execute(
                select(ChannelIdentity.id, ChannelIdentity.channel, ChannelIdentity.external_id,
                       ChannelIdentity.person_id)):
            if channel is Channel.WECOM:
                identities[ext.casefold()] = (iid, ext, pid)
            else:
                mp_bound.add(pid)
        memberships: dict[int, dict[int, tuple[int, MembershipKind]]] = defaultdict(dict)
        for mid, pid, oid, kind in session.execute(
                select(Membership.id, Membership.person_id, Membership.organisation_id, Membership.kind)):
            memberships[pid][oid] = (mid, kind)
        roles: dict[int, dict[tuple[int, Role], int]] = defaultdict(dict)
        for rid, pid, oid, role in session.execute(
                select(OrgRole.id, OrgRole.person_id, OrgRole.organisation_id, OrgRole.role)):
            roles[pid][(oid, role)] = rid
        liaisons: dict[int, dict[int, int]] = defaultdict(dict)
        for lid, pid, oid in session.execute(select(Liaison.id, Liaison.person_id, Liaison.organisation_id)):
            liaisons[pid][oid] = lid
        return cls(orgs, people, by_userid, identities, mp_bound, memberships, roles, liaisons)
