"""Writing an import's changes in the caller's transaction: bulk statements, one per kind of row."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session

from bot.roster.changes import Changes
from models.event import Event
from models.identity import Channel, ChannelIdentity
from models.leaving import withdraw_open_items
from models.org import Organisation
from models.person import Liaison, MemberCategory, Membership, OrgRole, Person


def _chunks(items: list, size: int = 1000):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _mask(mobile: str | None) -> str | None:
    return f"{mobile[:3]}****{mobile[-4:]}" if mobile else None


def _shown(value):
    return value.value if hasattr(value, "value") else value.isoformat() if hasattr(value, "isoformat") else value


def apply(session: Session, changes: Changes, org_ids: dict[str, int], *, now: datetime, today, counts: dict,
          source: dict) -> None:
    """Write `changes`; `org_ids` (path -> id of the existing organisations) gains the new ones."""
    # Inserts are Core inserts on the tables: the ORM bulk path leaves None out of a row's parameters and
    # splits the batch wherever the set of non-None columns changes (one statement per few rows).
    events: list[dict] = []

    def event(kind: str, subject_type: str, subject_id: int | None, data: dict) -> None:
        events.append({"at": now, "actor_id": None, "subject_type": subject_type, "subject_id": subject_id,
                       "kind": kind, "data": data})

    # Organisations, top-down so every parent has its id before its children are inserted.
    by_depth = defaultdict(list)
    for org in changes.new_orgs:
        by_depth[org.path.count("/")].append(org)
    for depth in sorted(by_depth):
        level = by_depth[depth]
        rows = [{"name": o.name, "path": o.path, "kind": o.kind,
                 "parent_id": org_ids[o.parent_path] if o.parent_path else None, "created_at": now} for o in level]
        returned = session.execute(insert(Organisation.__table__).returning(Organisation.id, Organisation.path), rows)
        org_ids.update((path, oid) for oid, path in returned)
        for o in level:
            event("organisation.created", "organisation", org_ids[o.path], {"path": o.path, "kind": o.kind.value})

    # People: new ones in one bulk insert, changed ones in one bulk update.
    new_people = changes.new_people
    is_new = {id(p) for p in new_people}
    if new_people:
        # RETURNING the columns rather than relying on row order: ordered RETURNING has no sentinel for a
        # serial key and falls back to one statement per row. New rows with equal columns are interchangeable.
        result = session.execute(
            insert(Person.__table__).returning(Person.id, Person.name, Person.wecom_userid, Person.mobile),
            [{"name": p.name, "wecom_userid": p.userid, "mobile": p.mobile,
              "category": p.category or MemberCategory.FULL, "post_type": p.post_type,
              "left_on": today if p.leaving else None, "created_at": now} for p in new_people],
        )
        ids: dict[tuple, list[int]] = defaultdict(list)
        for pid, name, userid, mobile in result:
            ids[(name, userid, mobile)].append(pid)
        for person in new_people:
            person.db_id = ids[(person.name, person.userid, person.mobile)].pop()
    if changes.updates:
        session.execute(update(Person), [{"id": u.old.id, **u.values} for u in changes.updates])
    for u in changes.updates:
        before = {"name": u.old.name, "wecom_userid": u.old.userid, "mobile": u.old.mobile,
                  "category": u.old.category, "post_type": u.old.post_type, "left_on": u.old.left_on}
        shown = {c: [_mask(before[c]), _mask(u.values[c])] if c == "mobile"
                 else [_shown(before[c]), _shown(u.values[c])] for c in u.changed if c != "left_on"}
        if shown:
            event("person.updated", "person", u.old.id, {"changes": shown})
    for person in changes.leaving:
        if id(person) not in is_new:
            event("person.left", "person", person.db_id, {"left_on": today.isoformat(), "by": "roster"})
    for person in changes.returning:
        event("person.returned", "person", person.db_id, {"by": "roster"})

    new_identities = [{"channel": Channel.WECOM, "external_id": p.userid, "person_id": p.db_id, "created_at": now}
                      for p in changes.new_identities]
    for person in changes.new_identities:
        if id(person) not in is_new:
            event("channel_identity.linked", "person", person.db_id,
                  {"channel": Channel.WECOM.value, "external_id": person.userid})
    moved = [{"id": iid, "person_id": p.db_id, "external_id": p.userid} for iid, p, _was in changes.moved_identities]
    for _iid, person, was in changes.moved_identities:
        event("channel_identity.linked", "person", person.db_id,
              {"channel": Channel.WECOM.value, "external_id": person.userid, "previous_person_id": was})
    if new_identities:
        session.execute(insert(ChannelIdentity.__table__), new_identities)
    if moved:
        session.execute(update(ChannelIdentity), moved)

    for person, path, kind in changes.add_members:
        if id(person) not in is_new:
            event("membership.added", "person", person.db_id, {"path": path, "kind": kind.value})
    for _mid, person, path, was, kind in changes.change_members:
        event("membership.changed", "person", person.db_id, {"path": path, "from": was.value, "to": kind.value})
    for _mid, person, path, kind in changes.drop_members:
        event("membership.removed", "person", person.db_id, {"path": path, "kind": kind.value})
    for person, path, role in changes.add_roles:
        if id(person) not in is_new:
            event("role.granted", "person", person.db_id, {"path": path, "role": role.value})
    for _rid, person, path, role in changes.drop_roles:
        event("role.revoked", "person", person.db_id, {"path": path, "role": role.value})
    for person, path in changes.add_liaisons:
        if id(person) not in is_new:
            event("liaison.assigned", "person", person.db_id, {"path": path})
    for _lid, person, path in changes.drop_liaisons:
        event("liaison.removed", "person", person.db_id, {"path": path})
    for person in new_people:
        event("person.created", "person", person.db_id, {
            "name": person.name,
            "wecom_userid": person.userid,
            "mobile": _mask(person.mobile),
            "memberships": [{"path": p, "kind": k.value} for p, (k, _r) in person.memberships.items()],
            "roles": [{"path": p, "role": r.value} for p, r in sorted(person.roles, key=lambda x: (x[0], x[1]))],
            "liaisons": sorted(person.liaises),
            **({"left_on": today.isoformat()} if person.leaving else {}),
        })

    drops = ((Membership, [c[0] for c in changes.drop_members]), (OrgRole, [c[0] for c in changes.drop_roles]),
             (Liaison, [c[0] for c in changes.drop_liaisons]))
    for model, ids_ in drops:
        for chunk in _chunks(ids_):
            session.execute(delete(model).where(model.id.in_(chunk)))
    if changes.change_members:
        session.execute(update(Membership), [{"id": mid, "kind": kind} for mid, _p, _path, _was, kind
                                             in changes.change_members])
    adds = (
        (Membership, [{"person_id": p.db_id, "organisation_id": org_ids[path], "kind": kind}
                      for p, path, kind in changes.add_members]),
        (OrgRole, [{"person_id": p.db_id, "organisation_id": org_ids[path], "role": role}
                   for p, path, role in changes.add_roles]),
        (Liaison, [{"person_id": p.db_id, "organisation_id": org_ids[path]} for p, path in changes.add_liaisons]),
    )
    for model, rows in adds:
        if rows:
            session.execute(insert(model.__table__), rows)
    withdraw_open_items(session, [p.db_id for p in changes.leaving if id(p) not in is_new], now=now)

    if changes.changed:
        event("roster.imported", "roster", None, {**source, **counts})
        session.execute(insert(Event.__table__), events)
