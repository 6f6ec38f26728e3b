"""The callback benchmark's database: the people it sends as, seeded once, and the directives the
ack mix acknowledges, reset before every round; counts of what the app recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

USERID_PREFIX = "bench"
PEOPLE = 300
BRANCHES = ("机关党委/第一党总支/综合处党支部", "机关党委/第一党总支/财务处党支部", "机关党委/第二党总支/信息处党支部")
ACK_PREFIX = "ack"  # the ack mix's own people, so the read mix's 待办 stays three items long
ACK_PEOPLE = 300
ACK_DIRECTIVES = 40  # 12,000 tasks: more than a round acknowledges on this kind of machine


# -- database ---------------------------------------------------------------------------------------


def prepare_database(url: str) -> tuple[list[str], list[int]]:
    """Create and migrate the bench database, seed people once, clear earlier runs' receipts and
    acknowledgements; returns the people's WeCom userids and the seeded directives' numbers."""
    import psycopg
    from sqlalchemy import delete, func, select, update
    from sqlalchemy.engine import make_url

    from config.settings import normalise_database_url
    from migrations import upgrade
    from models.base import Database

    url = normalise_database_url(url)
    parsed = make_url(url)
    if not parsed.get_backend_name().startswith("postgresql"):
        raise SystemExit(f"--database-url must be PostgreSQL, got {parsed.get_backend_name()}")
    admin = {"host": parsed.host or "127.0.0.1", "port": parsed.port or 5432, "user": parsed.username,
             "password": parsed.password, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**{k: v for k, v in admin.items() if v is not None}) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{parsed.database}"')
    upgrade(url)

    from models.directive import Delivery, Directive
    from models.inbound import InboundReceipt
    from models.person import Person

    db = Database(url)
    try:
        with db.session() as session:
            # Each run starts from the same state: receipts from earlier runs only grow the index.
            session.execute(delete(InboundReceipt))
            session.execute(update(Delivery).values(acknowledged_at=None, late=False))
            have = session.scalar(select(func.count(Person.id)).where(Person.wecom_userid.like(f"{USERID_PREFIX}%")))
            if have < PEOPLE:
                _seed(session)
            if not session.scalar(select(func.count(Person.id)).where(Person.wecom_userid.like(f"{ACK_PREFIX}%"))):
                _seed_ack(session)
            userids = list(session.scalars(
                select(Person.wecom_userid).where(Person.wecom_userid.like(f"{USERID_PREFIX}%")).order_by(Person.id)))
            directives = list(session.scalars(select(Directive.id).order_by(Directive.id).limit(3)))
    finally:
        db.dispose()
    with psycopg.connect(**{**{k: v for k, v in admin.items() if v is not None}, "dbname": parsed.database}) as conn:
        conn.execute("VACUUM ANALYZE")
    return userids, directives


def _seed(session) -> None:
    """300 people in three branches with WeCom identities, a secretary each, three open directives."""
    from sqlalchemy import select

    from models.directive import Delivery, DeliveryRole, Directive
    from models.identity import Channel, ChannelIdentity
    from models.org import Organisation, kind_from_name
    from models.person import Membership, OrgRole, Person, Role

    def org(path: str):
        parent = None
        names = path.split("/")
        for i in range(len(names)):
            p = "/".join(names[: i + 1])
            found = session.scalar(select(Organisation).where(Organisation.path == p))
            if found is None:
                found = Organisation(name=names[i], path=p, parent=parent,
                                     kind=kind_from_name(names[i], parent.kind if parent else None))
                session.add(found)
                session.flush()
            parent = found
        return parent

    branches = [org(path) for path in BRANCHES]
    surnames = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
    given = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "军", "涛", "明", "超", "霞")
    people = []
    for i in range(PEOPLE):
        p = Person(name=surnames[i % len(surnames)] + given[i % len(given)] + ("" if i < 20 else str(i)),
                   wecom_userid=f"{USERID_PREFIX}{i:04d}")
        people.append(p)
    session.add_all(people)
    session.flush()
    for i, p in enumerate(people):
        branch = branches[i % len(branches)]
        session.add(Membership(person_id=p.id, organisation_id=branch.id))
        session.add(ChannelIdentity(channel=Channel.WECOM, external_id=p.wecom_userid, person_id=p.id))
        if i < len(branches):  # one secretary per branch, so 帮助 shows role lines and the longer menu
            session.add(OrgRole(person_id=p.id, organisation_id=branch.id, role=Role.SECRETARY))
    session.flush()
    # A few open directives so 待办 has something to list for most people.
    now = datetime.now(UTC)
    for n, title in enumerate(("学习贯彻全会精神", "报送本季度党费收缴情况", "组织主题党日活动")):
        d = Directive(organisation_id=branches[0].parent.parent.id, issuer_id=people[0].id, title=title,
                      deadline=now + timedelta(days=7 + n), recipient_count=0)
        session.add(d)
        session.flush()
        recipients = [(i, p) for i, p in enumerate(people) if i % (n + 2) != 0]
        session.add_all(Delivery(directive_id=d.id, person_id=p.id, role=DeliveryRole.TASK,
                                 organisation_id=branches[i % len(branches)].id) for i, p in recipients)
        d.recipient_count = len(recipients)


def _seed_ack(session) -> None:
    """The ack mix's people (members of the first branch) and directives, each to all of them."""
    from sqlalchemy import insert, select

    from models.directive import Delivery, DeliveryRole, Directive
    from models.identity import Channel, ChannelIdentity
    from models.org import Organisation
    from models.person import Membership, Person

    branch = session.scalar(select(Organisation).where(Organisation.path == BRANCHES[0]))
    people = [Person(name=f"确认{i:03d}", wecom_userid=f"{ACK_PREFIX}{i:04d}") for i in range(ACK_PEOPLE)]
    session.add_all(people)
    session.flush()
    session.add_all(Membership(person_id=p.id, organisation_id=branch.id) for p in people)
    session.add_all(ChannelIdentity(channel=Channel.WECOM, external_id=p.wecom_userid, person_id=p.id) for p in people)
    now = datetime.now(UTC)
    for n in range(ACK_DIRECTIVES):
        d = Directive(organisation_id=branch.id, issuer_id=people[0].id, title=f"确认测试通知{n + 1}",
                      deadline=now + timedelta(days=30), recipient_count=len(people))
        session.add(d)
        session.flush()
        session.execute(insert(Delivery), [
            {"directive_id": d.id, "person_id": p.id, "role": DeliveryRole.TASK, "organisation_id": branch.id}
            for p in people])


def ack_tasks(url: str) -> list[tuple[str, str]]:
    """Every (userid, `收到 N`) of the ack mix, with all of them unacknowledged again: each is a
    first acknowledgement when sent."""
    from sqlalchemy import delete, select, update

    from config.settings import normalise_database_url
    from models.base import Database
    from models.directive import Delivery, DeliveryStatus, Directive
    from models.inbound import InboundReceipt
    from models.person import Person

    db = Database(normalise_database_url(url))
    try:
        with db.session() as session:
            mine = select(Person.id).where(Person.wecom_userid.like(f"{ACK_PREFIX}%"))
            session.execute(update(Delivery).where(Delivery.person_id.in_(mine))
                            .values(acknowledged_at=None, late=False, status=DeliveryStatus.SENT))
            session.execute(delete(InboundReceipt))
            rows = session.execute(
                select(Person.wecom_userid, Directive.id).join(Delivery, Delivery.person_id == Person.id)
                .join(Directive, Directive.id == Delivery.directive_id)
                .where(Person.wecom_userid.like(f"{ACK_PREFIX}%")).order_by(Delivery.id)).all()
        return [(userid, f"收到 {number}") for userid, number in rows]
    finally:
        db.dispose()


def count_acknowledged(url: str) -> int:
    from sqlalchemy import func, select

    from config.settings import normalise_database_url
    from models.base import Database
    from models.directive import Delivery
    from models.person import Person

    db = Database(normalise_database_url(url))
    try:
        with db.session() as session:
            return session.scalar(select(func.count(Delivery.id)).join(Person, Person.id == Delivery.person_id)
                                  .where(Person.wecom_userid.like(f"{ACK_PREFIX}%"),
                                         Delivery.acknowledged_at.is_not(None)))
    finally:
        db.dispose()


def count_receipts(url: str) -> tuple[int, int]:
    """(receipts, receipts whose reply is empty) in the bench database."""
    from sqlalchemy import func, select

    from config.settings import normalise_database_url
    from models.base import Database
    from models.inbound import InboundReceipt

    db = Database(normalise_database_url(url))
    try:
        with db.session() as session:
            total = session.scalar(select(func.count(InboundReceipt.id)))
            empty = session.scalar(select(func.count(InboundReceipt.id)).where(
                (InboundReceipt.reply_text.is_(None)) | (InboundReceipt.reply_text == "")))
        return total, empty
    finally:
        db.dispose()
