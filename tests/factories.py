"""Small builders for test data (the roster importer is tested on its own)."""

from __future__ import annotations

from datetime import UTC, datetime

from models.identity import Channel, ChannelIdentity
from models.org import Organisation, kind_from_name
from models.person import Liaison, Membership, MembershipKind, OrgRole, Person, Role

# When the test organisations came into the bot: well before the injected clock's 2026年11月21日,
# so the required-meeting watch counts their past months.
IN_THE_BOT_SINCE = datetime(2025, 1, 1, tzinfo=UTC)


def org(session, path: str) -> Organisation:
    """Get or create the organisation at `path`, creating its ancestors."""
    parent = None
    names = path.split("/")
    for i in range(len(names)):
        p = "/".join(names[: i + 1])
        found = session.query(Organisation).filter_by(path=p).one_or_none()
        if found is None:
            found = Organisation(name=names[i], path=p, kind=kind_from_name(names[i], parent.kind if parent else None),
                                 parent=parent, created_at=IN_THE_BOT_SINCE)
            session.add(found)
            session.flush()
        parent = found
    return parent


def person(session, name: str, userid: str | None, org_path: str, *roles: Role, temporary: bool = False,
           liaises: tuple[str, ...] = ()) -> Person:
    p = Person(name=name, wecom_userid=userid)
    session.add(p)
    session.flush()
    o = org(session, org_path)
    if o.kind.is_branch or o.kind.value == "group":
        session.add(Membership(person_id=p.id, organisation_id=o.id,
                               kind=MembershipKind.TEMPORARY if temporary else MembershipKind.HOME))
    for role in roles:
        session.add(OrgRole(person_id=p.id, organisation_id=o.id, role=role))
    for target in liaises:
        session.add(Liaison(person_id=p.id, organisation_id=org(session, target).id))
    if userid:
        session.add(ChannelIdentity(channel=Channel.WECOM, external_id=userid, person_id=p.id))
    session.flush()
    session.refresh(p)
    return p


BRANCH_A = "机关党委/第一党总支/综合处党支部"
BRANCH_B = "机关党委/第一党总支/财务处党支部"


def small_tree(session) -> dict[str, Person]:
    """A committee with one general branch and two branches, a secretary each, a liaison."""
    return {
        "top": person(session, "王书记", "wangsj", "机关党委", Role.SECRETARY),
        "sec_a": person(session, "李娜", "lina", BRANCH_A, Role.SECRETARY),
        "zhangwei": person(session, "张伟", "zhangwei", BRANCH_A),
        "liuyang": person(session, "刘洋", "liuyang", BRANCH_A),
        "sec_b": person(session, "陈静", "chenjing", BRANCH_B, Role.SECRETARY),
        "zhaolei": person(session, "赵磊", "zhaolei", BRANCH_B),
        "liaison": person(session, "孙联络", "sunll", "机关党委", Role.LIAISON, liaises=(BRANCH_A, BRANCH_B)),
    }
