"""The fan-out benchmark's organisation: Chinese names, the tree's shape, bulk Core inserts of
organisations, people, memberships and identities (the roster importer has its own benchmark), and
PostgreSQL's own INSERT … SELECT of as many rows, as a baseline."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

# -- names ------------------------------------------------------------------------------------------

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜"
    "崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方")
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红玲芬燕鹏辉建国志文婷雪梅海波宇浩然子涵欣怡晨阳思远"
    "佳琪嘉俊博凯悦彤瑞晓东晶莉琳颖慧丹鑫亮宁帆飞龙斌松梓航睿泽昊天雨萱诗宏庆立新春秋冬立群永安德正荣福祥"
)
SUB_COMMITTEES = (
    "办公厅", "政策研究室", "综合司", "发展规划司", "财务司", "人事司", "法规司", "国际合作司", "科技司", "监督司",
    "信息中心", "机关服务中心", "干部培训中心", "研究院", "出版社", "报社", "档案馆", "网络安全中心", "后勤保障中心",
    "离退休干部局",
)
SECTIONS = (
    "综合处", "秘书处", "财务处", "人事处", "规划处", "信息处", "法规处", "审计处", "督查处", "档案处", "后勤处",
    "保卫处", "宣传处", "组织处", "调研处", "政策处", "改革处", "科技处", "教育处", "外事处", "机要处", "资产处",
    "基建处", "监察处", "研究室",
)
CN_NUMBERS = "一二三四五六七八九十"


def cn_ordinal(n: int) -> str:
    """1 → 一, 12 → 十二, 25 → 二十五 (n < 100)."""
    if n <= 10:
        return CN_NUMBERS[n - 1]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else CN_NUMBERS[tens - 1]) + "十" + (CN_NUMBERS[ones - 1] if ones else "")


def person_name(rng: random.Random) -> str:
    surname = rng.choice(COMPOUND_SURNAMES) if rng.random() < 0.01 else rng.choice(SURNAMES)
    return surname + "".join(rng.choice(GIVEN) for _ in range(1 if rng.random() < 0.3 else 2))


# -- database ---------------------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    """Drop and create the bench database (never any other), then run the migrations."""
    import psycopg
    from sqlalchemy.engine import make_url

    from migrations import upgrade

    parsed = make_url(url)
    if not parsed.get_backend_name().startswith("postgresql"):
        raise SystemExit(f"--database-url must be PostgreSQL, got {parsed.get_backend_name()}")
    if parsed.database in (None, "", "postgres", "test", "template0", "template1"):
        raise SystemExit(f"refusing to drop database {parsed.database!r}: give the bench its own database")
    admin = {"host": parsed.host or "127.0.0.1", "port": parsed.port or 5432, "user": parsed.username,
             "password": parsed.password, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**{k: v for k, v in admin.items() if v is not None}) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')
    upgrade(url)


@dataclass
class Tree:
    top_secretary: str = ""  # WeCom userid of the 机关党委 书记
    member_userids: list[str] = field(default_factory=list)  # task recipients (branch members)
    copy_userids: list[str] = field(default_factory=list)  # secretaries of 二级党委 / 党总支
    organisations: int = 0
    branches: int = 0
    sub_secretary: str = ""  # one 二级党委 书记, for a scoped 进度
    sub_committees: int = 0
    general_branches: int = 0


def tree_shape(members: int, branches: int) -> tuple[int, int, int]:
    """(二级党委, 党总支, members per branch): ~50 branches per 党总支, ~5 党总支 per 二级党委."""
    generals = max(1, round(branches / 50))
    subs = max(1, round(generals / 5))
    if members % branches:
        raise SystemExit("--members must be a multiple of --branches")
    return subs, generals, members // branches


class BulkSeed:
    """An organisation tree with people, built as plain rows and written with bulk Core inserts in
    one transaction (ids assigned here, sequences moved past them); shared by the benchmarks."""

    def __init__(self, rng: random.Random, userid_prefix: str, *, mobiles: bool) -> None:
        self.rng = rng
        self.now = datetime.now(UTC)
        self.userid_prefix = userid_prefix
        self.mobiles = mobiles
        self.orgs: list[dict] = []
        self.people: list[dict] = []
        self.identities: list[dict] = []
        self.memberships: list[dict] = []
        self.roles: list[dict] = []

    def add_org(self, name: str, path: str, kind, parent_id: int | None) -> int:
        oid = len(self.orgs) + 1
        self.orgs.append({"id": oid, "name": name, "path": path, "kind": kind, "parent_id": parent_id,
                          "created_at": self.now})
        return oid

    def add_person(self, org_id: int, *, secretary: bool = False, member: bool = True) -> str:
        """A person with a WeCom identity, a home membership of `org_id` and/or its 书记 role."""
        from models.identity import Channel
        from models.person import MembershipKind, Role

        pid = len(self.people) + 1
        userid = f"{self.userid_prefix}{pid:06d}"
        name = person_name(self.rng)
        mobile = f"1{self.rng.choice('3456789')}{self.rng.randrange(10**9):09d}" if self.mobiles else None
        self.people.append({"id": pid, "name": name, "wecom_userid": userid, "mobile": mobile, "created_at": self.now})
        self.identities.append({"id": pid, "channel": Channel.WECOM, "external_id": userid, "person_id": pid,
                                "created_at": self.now, "last_inbound_at": None})
        if member:
            self.memberships.append({"id": len(self.memberships) + 1, "person_id": pid, "organisation_id": org_id,
                                     "kind": MembershipKind.HOME})
        if secretary:
            self.roles.append({"id": len(self.roles) + 1, "person_id": pid, "organisation_id": org_id,
                               "role": Role.SECRETARY})
        return userid

    def write(self, url: str, chunk: int = 20000) -> None:
        from sqlalchemy import create_engine, insert, text

        from models.identity import ChannelIdentity
        from models.org import Organisation
        from models.person import Membership, OrgRole, Person

        engine = create_engine(url)
        with engine.begin() as conn:
            for table, rows in ((Organisation, self.orgs), (Person, self.people), (ChannelIdentity, self.identities),
                                (Membership, self.memberships), (OrgRole, self.roles)):
                for i in range(0, len(rows), chunk):
                    conn.execute(insert(table), rows[i:i + chunk])
                name = table.__tablename__
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        engine.dispose()


def seed(url: str, members: int, branches: int, out) -> None:
    """Build the organisation with bulk Core inserts; runs in a child process (its memory is not
    the request process's). Sends the Tree and the seconds it took through `out`."""
    from models.org import OrgKind

    t0 = time.perf_counter()
    built = BulkSeed(random.Random(20261121), "zt", mobiles=True)
    add_org, add_person, orgs = built.add_org, built.add_person, built.orgs
    subs, generals, per_branch = tree_shape(members, branches)
    higher: list[int] = []  # organisations that get a 书记 of their own (no branch membership)

    top_id = add_org("机关党委", "机关党委", OrgKind.COMMITTEE, None)
    higher.append(top_id)
    sub_ids = []
    for i in range(subs):
        base = SUB_COMMITTEES[i % len(SUB_COMMITTEES)]
        name = f"{base}党委" if i < len(SUB_COMMITTEES) else f"{base}第{cn_ordinal(i // len(SUB_COMMITTEES) + 1)}党委"
        sub_ids.append(add_org(name, f"机关党委/{name}", OrgKind.SUB_COMMITTEE, top_id))
    higher.extend(sub_ids)
    general_ids = []
    for g in range(generals):
        parent = sub_ids[g % subs]
        nth = g // subs + 1
        name = f"第{cn_ordinal(nth)}党总支"
        general_ids.append(add_org(name, f"{orgs[parent - 1]['path']}/{name}", OrgKind.GENERAL_BRANCH, parent))
    higher.extend(general_ids)
    branch_ids = []
    for b in range(branches):
        parent = general_ids[b % generals]
        nth = b // generals
        section = SECTIONS[nth % len(SECTIONS)]
        name = f"{section}第{cn_ordinal(nth // len(SECTIONS) + 1)}党支部"
        branch_ids.append(add_org(name, f"{orgs[parent - 1]['path']}/{name}", OrgKind.BRANCH, parent))

    tree = Tree(organisations=len(orgs), branches=len(branch_ids), sub_committees=subs, general_branches=generals)

    for oid in higher:
        userid = add_person(oid, secretary=True, member=False)
        if oid == top_id:
            tree.top_secretary = userid
        else:
            tree.copy_userids.append(userid)
        if oid == sub_ids[0]:
            tree.sub_secretary = userid
    for oid in branch_ids:
        for k in range(per_branch):
            tree.member_userids.append(add_person(oid, secretary=k == 0, member=True))

    built.write(url)
    out.send((tree, time.perf_counter() - t0))
    out.close()


def insert_select_baseline(url: str, rows: int) -> float:
    """Seconds for PostgreSQL alone to write `rows` delivery-wide plus `rows` outbox-wide rows by
    INSERT … SELECT into copies of those tables (same columns and indexes), in one transaction."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    payload = json.dumps({"type": "card", "title": "#1 " + "标题" * 10, "description": "正文" * 60,
                          "task_id": "directive-1", "buttons": [{"key": "ack:1", "text": "收到"}]},
                         ensure_ascii=False)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE baseline_delivery (LIKE delivery INCLUDING INDEXES)"))
            conn.execute(text("CREATE TABLE baseline_outbox (LIKE outbox_message INCLUDING DEFAULTS INCLUDING INDEXES)"))
        with engine.begin() as conn:
            t0 = time.perf_counter()
            conn.execute(text(
                "INSERT INTO baseline_delivery (id, directive_id, person_id, organisation_id, role, channel, status, late) "
                "SELECT g, 1, g, 1 + g % 5000, 'task', 'wecom', 'pending', false FROM generate_series(1, :n) g"),
                {"n": rows})
            conn.execute(text(
                "INSERT INTO baseline_outbox (id, channel, recipient, person_id, payload, content_key, status, attempts, "
                "next_attempt_at, created_at, subject_type, subject_id) "
                "SELECT g, 'wecom', 'zt' || lpad(g::text, 6, '0'), g, CAST(:p AS json), repeat('a', 64), 'pending', 0, "
                "now(), now(), 'delivery', g FROM generate_series(1, :n) g"), {"n": rows, "p": payload})
        seconds = time.perf_counter() - t0
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS baseline_delivery, baseline_outbox"))
        engine.dispose()
    return seconds
