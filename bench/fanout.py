"""Directive fan-out: one 发布 from the top secretary to 100,000 members in 5,000 branches.

What one run does, on its own PostgreSQL database (dropped and recreated, then migrated):

1. seed  — a 机关党委 → ~20 二级党委 → ~100 党总支 → 5,000 党支部 tree, 20 members per branch (one of
           them its 书记), a 书记 for every higher organisation, Chinese names, a WeCom userid and a
           ChannelIdentity each; bulk Core inserts in a child process (the roster importer has its
           own benchmark and is not what is measured here);
2. base  — same-run baselines: one trivial `帮助` callback, and PostgreSQL writing the fan-out's rows
           by itself (INSERT … SELECT of 100k delivery-wide and 100k outbox-wide rows);
3. (a)   — `发布 标题\\n正文\\n截止 明天17:00` from the top secretary through the real endpoint (Flask
           test client, real signature and AES, Redis dedupe), until its passive reply;
4. (b)   — 1–2 `python -m bot worker` processes drain the outbox to `python -m fakewx` (its own
           process); time from the 发布 request until the fake has accepted every push; checks that
           every member and every copied secretary got exactly one message;
5. (c)   — peak RSS (VmHWM from /proc) of the request process during (a), each worker, the fake;
6. (d)   — 100,000 acknowledgements: a sample of `收到 N` through the endpoint, the rest through
           `models.directive.acknowledge` directly (one transaction per 500, two processes);
7. (e)   — `进度 N` on that directive through the endpoint.

    python bench/fanout.py [--members 100000] [--branches 5000] [--workers 2] [--endpoint-acks 2000]
                           [--database-url URL] [--redis-url URL] [--no-docs]
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_fanout"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
DOCS = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Directive fan-out"
RUN_DATE = "2026-11-21"

CORP_ID = "wwzhitongfanout1"
AGENT_ID = 1000002
SECRET = "bench-fanout-secret"
TOKEN = "zhitongfanouttoken"
AES_KEY = base64.b64encode(b"zhitong-bench-fanout-aes-key-32b").decode().rstrip("=")

GOALS = {"publish": 2.0, "delivered": 10.0, "progress": 1.0}

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
            conn.execute(text("CREATE TABLE baseline_outbox (LIKE outbox_message INCLUDING INDEXES)"))
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


# -- processes --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kb(pid: int | str, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    """VmHWM := current RSS (Linux ≥ 4.0), so a later VmHWM is the peak of what came after."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def mib(kb: int) -> float:
    return kb / 1024


def http_json(url: str, data: dict | None = None, timeout: float = 30) -> dict:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"},
                                 method="GET" if data is None else "POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            http_json(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up within {timeout} s")


def wait_log(proc: subprocess.Popen, log: Path, needle: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if needle in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise SystemExit(f"{proc.args} did not log {needle!r} within {timeout} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def app_env(database_url: str, redis_url: str, api_base: str, instance_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "MP_"))}
    env.update({
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "WECOM_CORP_ID": CORP_ID,
        "WECOM_AGENT_ID": str(AGENT_ID), "WECOM_SECRET": SECRET, "WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY,
        "WECOM_API_BASE": api_base, "SECRET_KEY": "bench-fanout", "BOT_INSTANCE_DIR": str(instance_dir),
        "PUBLIC_BASE_URL": "http://127.0.0.1:7899",
        "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
    })
    return env


# -- the app in this process ------------------------------------------------------------------------


class Endpoint:
    """The real app behind the Flask test client, spoken to as WeCom's server would."""

    def __init__(self, database_url: str, redis_url: str, api_base: str, instance_dir: Path) -> None:
        from bot.app import create_app
        from bot.channels.simulator import WeComSimulator
        from config.settings import Settings, WeComSettings

        wecom = WeComSettings(corp_id=CORP_ID, agent_id=AGENT_ID, secret=SECRET, token=TOKEN, aes_key=AES_KEY,
                              api_base=api_base)
        settings = Settings(database_url=database_url, redis_url=redis_url, wecom=wecom,
                            secret_key="bench-fanout", instance_dir=instance_dir)
        self.app = create_app(settings)
        self.runtime = self.app.extensions["zhitong"]
        if hasattr(self.runtime.store, "prefix"):
            self.runtime.store.prefix = f"bench_fanout:{uuid.uuid4().hex[:8]}:"
        self.client = self.app.test_client()
        self.sim = WeComSimulator(wecom)

    def say(self, userid: str, text: str) -> tuple[str, float]:
        """Send one text; return the decrypted passive reply and the seconds to get it."""
        req = self.sim.text(userid, text)
        t0 = time.perf_counter()
        resp = self.client.post(req.path, query_string=req.query, data=req.body, content_type="text/xml")
        elapsed = time.perf_counter() - t0
        if resp.status_code != 200:
            raise SystemExit(f"{text!r} from {userid}: HTTP {resp.status_code}")
        reply = self.sim.read_reply(resp.data)
        return (reply or {}).get("Content", ""), elapsed


def ack_in_bulk(url: str, directive_id: int, userids: list[str], at_iso: str, out) -> None:
    """Acknowledge for each userid through `models.directive.acknowledge`, 500 per transaction."""
    from sqlalchemy import select

    from models.base import Database
    from models.directive import AckResult, acknowledge
    from models.person import Person

    db = Database(url)
    at = datetime.fromisoformat(at_iso)
    done = 0
    t0 = time.perf_counter()
    for i in range(0, len(userids), 500):
        with db.session() as session:
            people = session.scalars(select(Person.id).where(Person.wecom_userid.in_(userids[i:i + 500]))).all()
            for person_id in people:
                ack = acknowledge(session, directive_id, person_id, at=at, via="text")
                done += ack.result is AckResult.ACKNOWLEDGED
    db.dispose()
    out.send((done, time.perf_counter() - t0))
    out.close()


def publish_breakdown(url: str, issuer_userid: str) -> dict[str, float]:
    """Where 发布's time goes: `models.directive.issue` run again on the same tree with its steps
    timed (module functions wrapped, delivery INSERTs timed at the session), then rolled back."""
    from collections import defaultdict

    from sqlalchemy import select

    import models.directive as md
    from models.base import Database
    from models.person import Person

    spent: dict[str, float] = defaultdict(float)

    def timed(label, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[label] += time.perf_counter() - t
        return wrapper

    steps = {"_insert_task_deliveries": "task deliveries INSERT … SELECT",
             "_insert_copies": "copies to intermediate secretaries",
             "_enqueue_deliveries": "outbox INSERT … SELECT"}
    originals = {name: getattr(md, name) for name in steps if hasattr(md, name)}
    db = Database(url)
    try:
        for name, fn in originals.items():
            setattr(md, name, timed(steps[name], fn))
        with db.sessionmaker() as session:
            issuer = session.scalar(select(Person).where(Person.wecom_userid == issuer_userid))
            org = min(issuer.led_organisations(), key=lambda o: (o.depth, o.path))
            t0 = time.perf_counter()
            md.issue(session, org=org, issuer=issuer, title="分解计时", body="正文", deadline=None,
                     now=datetime.now(UTC), render=lambda d, role, channel: {"type": "text", "text": "正文" * 50})
            session.flush()
            total = time.perf_counter() - t0
            session.rollback()
    finally:
        for name, fn in originals.items():
            setattr(md, name, fn)
        db.dispose()
    spent["rest (directive, counts, event, flush)"] = total - sum(spent.values())
    return {"issue() total": total, **spent}


# -- the run ----------------------------------------------------------------------------------------


def machine(database_url: str, redis_url: str) -> dict[str, str]:
    from sqlalchemy import create_engine, text

    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor() or "?")
    mem_kb = next((int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal:")), 0)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        pg = conn.execute(text("SHOW server_version")).scalar()
    engine.dispose()
    import redis

    rv = redis.Redis.from_url(redis_url).info("server").get("redis_version", "?")
    return {"nproc": str(os.cpu_count()), "ram": f"{mem_kb / 1024 / 1024:.1f} GiB", "cpu": model,
            "python": platform.python_version(), "postgresql": str(pg).split()[0], "redis": str(rv)}


def fork_call(target, *args):
    """Run `target(*args, conn)` in a forked child; return what it sends."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(*args, child))
    proc.start()
    child.close()
    result = parent.recv()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"{target.__name__} failed with exit code {proc.exitcode}")
    return result


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(args) -> dict:
    from config.settings import normalise_database_url

    url = normalise_database_url(args.database_url)
    figures: dict = {"members": args.members, "branches": args.branches, "workers": args.workers}
    work = Path(tempfile.mkdtemp(prefix="bench_fanout_"))
    log(f"database {url}, redis {args.redis_url}, logs in {work}")
    figures["machine"] = machine(url.rsplit("/", 1)[0] + "/postgres", args.redis_url)
    figures["load_start"] = os.getloadavg()

    t0 = time.perf_counter()
    recreate_database(url)
    figures["migrate_s"] = time.perf_counter() - t0
    tree, figures["seed_s"] = fork_call(seed, url, args.members, args.branches)
    figures["organisations"] = tree.organisations
    figures["sub_committees"], figures["general_branches"] = tree.sub_committees, tree.general_branches
    log(f"seeded {tree.organisations} organisations, {len(tree.member_userids)} members, "
        f"{len(tree.copy_userids) + 1} higher secretaries in {figures['seed_s']:.1f} s")
    figures["baseline_insert_select_s"] = insert_select_baseline(url, args.members)
    log(f"baseline: INSERT … SELECT of {args.members} delivery + outbox rows: {figures['baseline_insert_select_s']:.3f} s")

    fake_proc = None
    workers: list[subprocess.Popen] = []
    try:
        # The fake WeCom API in its own process; only the seeded userids exist there.
        port = free_port()
        fake_log = work / "fake.log"
        fake_proc = subprocess.Popen([sys.executable, "-m", "fakewx", "--port", str(port)], cwd=ROOT,
                                     stdout=open(fake_log, "wb"), stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        fake_root = f"http://127.0.0.1:{port}"
        wait_http(f"{fake_root}/_fake/stats", fake_proc, fake_log)
        expected = set(tree.member_userids) | set(tree.copy_userids)
        http_json(f"{fake_root}/_fake/config", {"known_users": sorted(expected | {tree.top_secretary})})
        api_base = f"{fake_root}/cgi-bin/"

        endpoint = Endpoint(url, args.redis_url, api_base, work / "instance")
        # Baseline request: a trivial 帮助 through the same path (after a warm-up).
        for _ in range(5):
            endpoint.say(tree.member_userids[0], "帮助")
        helps = [endpoint.say(tree.member_userids[i % 50], "帮助")[1] for i in range(30)]
        figures["help_s"] = statistics.median(helps)
        log(f"baseline: 帮助 callback median {figures['help_s'] * 1000:.1f} ms")

        env = app_env(url, args.redis_url, api_base, work / "instance")
        if args.workers and not (ROOT / "bot" / "worker.py").exists():
            log("bot/worker.py is not there yet: no workers, (b) is skipped")
            args.workers = 0
        for i in range(args.workers):
            wlog = work / f"worker{i}.log"
            proc = subprocess.Popen([sys.executable, "-m", "bot", "worker"], cwd=ROOT, env=env,
                                    stdout=open(wlog, "wb"), stderr=subprocess.STDOUT)
            workers.append(proc)
            wait_log(proc, wlog, "worker started")
        time.sleep(0.5)  # let the workers reach their first (empty) poll

        # (a) 发布 → reply; (b) → every push accepted by the fake.
        reset_peak_rss()
        rss_before = status_kb("self", "VmRSS")
        publish_text = "发布 学习贯彻全会精神\n请各支部于本周内组织专题学习，并在系统中确认收到。\n截止 明天17:00"
        t_start = time.perf_counter()
        reply, figures["publish_s"] = endpoint.say(tree.top_secretary, publish_text)
        figures["web_rss_before_mib"] = mib(rss_before)
        figures["web_peak_mib"] = mib(status_kb("self", "VmHWM"))
        log(f"(a) 发布 replied in {figures['publish_s']:.3f} s: {reply}")
        m = re.match(r"已发布 #(\d+)，推送 (\d+) 人", reply)
        if not m or int(m[2]) != len(tree.member_userids):
            raise SystemExit(f"unexpected 发布 reply: {reply!r}")
        directive_id = int(m[1])

        want = len(expected)
        stats: dict = {}
        deadline = time.perf_counter() + (args.delivery_timeout if workers else 0)
        while time.perf_counter() < deadline:
            stats = http_json(f"{fake_root}/_fake/stats")
            if stats["delivered"] >= want:
                break
            time.sleep(0.05)
        figures["delivered_s"] = time.perf_counter() - t_start
        figures["delivered_after_reply_s"] = figures["delivered_s"] - figures["publish_s"]
        time.sleep(1.0)  # anything sent twice would show up now
        stats = http_json(f"{fake_root}/_fake/stats")
        figures["fake"] = {k: stats.get(k) for k in ("calls", "calls_by_path", "recipients", "delivered",
                                                     "max_per_recipient", "delivered_twice",
                                                     "suppressed_duplicates", "tokens_issued")}
        figures["expected_recipients"] = want
        figures["delivery_ok"] = (stats["recipients"] == want and stats["delivered"] == want
                                  and stats["max_per_recipient"] == 1 and not stats["suppressed_duplicates"])
        log(f"(b) fake accepted {stats['delivered']}/{want} pushes to {stats['recipients']} recipients "
            f"in {stats['calls']} calls, {figures['delivered_s']:.2f} s after 发布 "
            f"({'OK' if figures['delivery_ok'] else 'MISMATCH'})")
        figures["outbox"] = outbox_summary(endpoint.runtime.db, directive_id)
        log(f"    outbox/deliveries: {figures['outbox']}")

        figures["worker_peak_mib"] = [mib(status_kb(p.pid, "VmHWM")) for p in workers if p.poll() is None]
        figures["fake_peak_mib"] = mib(status_kb(fake_proc.pid, "VmHWM"))
        log(f"(c) peak RSS: request process {figures['web_peak_mib']:.0f} MiB (from {figures['web_rss_before_mib']:.0f}), "
            f"workers {', '.join(f'{x:.0f}' for x in figures['worker_peak_mib'])} MiB, fake {figures['fake_peak_mib']:.0f} MiB")
    finally:
        for proc in workers:
            stop(proc)
        stop(fake_proc)

    # 进度 before anyone has acknowledged: every name is still to be listed (the heaviest case).
    text, figures["progress_unacked_s"] = endpoint.say(tree.top_secretary, f"进度 {directive_id}")
    figures["progress_unacked_bytes"] = len(text.encode())
    log(f"(e) 进度 {directive_id} with nobody acknowledged: {figures['progress_unacked_s']:.3f} s, "
        f"{figures['progress_unacked_bytes']} bytes ({text.split(chr(10), 1)[0]})")
    figures["page_unacked"] = progress_page_timing(endpoint, directive_id, tree.top_secretary, args.progress_runs)
    log(f"(f) progress page, nobody acknowledged: {_page_summary(figures['page_unacked'])}")

    # (d) acknowledgements: a sample through the endpoint, the rest through the model function.
    members = tree.member_userids
    sample = members[: args.endpoint_acks]
    t0 = time.perf_counter()
    ack_times = []
    for userid in sample:
        text, elapsed = endpoint.say(userid, f"收到 {directive_id}")
        if not text.startswith(f"已确认收到 #{directive_id}"):
            raise SystemExit(f"unexpected 收到 reply for {userid}: {text!r}")
        ack_times.append(elapsed)
    figures["endpoint_acks"] = len(sample)
    figures["endpoint_acks_s"] = time.perf_counter() - t0
    figures["endpoint_ack_median_ms"] = statistics.median(ack_times) * 1000 if ack_times else 0
    figures["endpoint_ack_p95_ms"] = sorted(ack_times)[int(0.95 * len(ack_times))] * 1000 if ack_times else 0
    log(f"(d) {len(sample)} 收到 through the endpoint in {figures['endpoint_acks_s']:.1f} s "
        f"(median {figures['endpoint_ack_median_ms']:.1f} ms, p95 {figures['endpoint_ack_p95_ms']:.1f} ms)")
    rest = members[args.endpoint_acks:]
    at_iso = datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    pipes, procs = [], []
    for k in range(args.ack_processes):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=ack_in_bulk, args=(url, directive_id, rest[k::args.ack_processes], at_iso, child))
        proc.start()
        child.close()
        pipes.append(parent)
        procs.append(proc)
    results = [p.recv() for p in pipes]
    for proc in procs:
        proc.join()
    figures["model_acks"] = sum(done for done, _ in results)
    figures["model_acks_s"] = time.perf_counter() - t0
    log(f"(d) {figures['model_acks']} through models.directive.acknowledge ({args.ack_processes} processes) "
        f"in {figures['model_acks_s']:.1f} s")
    if figures["model_acks"] != len(rest):
        raise SystemExit(f"expected {len(rest)} acknowledgements, recorded {figures['model_acks']}")

    # (e) 进度 N from the top secretary (whole tree) and from one 二级党委 书记 (one scope).
    reset_peak_rss()
    runs = []
    text = ""
    for _ in range(args.progress_runs):
        text, elapsed = endpoint.say(tree.top_secretary, f"进度 {directive_id}")
        runs.append(elapsed)
    figures["progress_first_s"] = runs[0]
    figures["progress_s"] = statistics.median(runs)
    figures["progress_reply_lines"] = text.count("\n") + 1
    figures["progress_reply_bytes"] = len(text.encode())
    figures["progress_first_line"] = text.split("\n", 1)[0]
    figures["web_progress_peak_mib"] = mib(status_kb("self", "VmHWM"))
    if figures["progress_first_line"] != f"已确认 {len(members)}/{len(members)}":
        raise SystemExit(f"unexpected 进度 reply: {figures['progress_first_line']!r}")
    sub_text, figures["progress_sub_s"] = endpoint.say(tree.sub_secretary, f"进度 {directive_id}")
    figures["progress_sub_first_line"] = sub_text.split("\n", 1)[0]
    log(f"(e) 进度 {directive_id}: first {runs[0]:.3f} s, median of {len(runs)} {figures['progress_s']:.3f} s, "
        f"{figures['progress_reply_lines']} lines / {figures['progress_reply_bytes']} bytes; "
        f"one 二级党委's scope {figures['progress_sub_s']:.3f} s ({figures['progress_sub_first_line']})")
    figures["page"] = progress_page_timing(endpoint, directive_id, tree.top_secretary, args.progress_runs)
    log(f"(f) progress page, all acknowledged: {_page_summary(figures['page'])}")
    endpoint.runtime.db.dispose()
    figures["publish_breakdown"] = publish_breakdown(url, tree.top_secretary)
    log("publish breakdown: " + ", ".join(f"{k} {v:.2f} s" for k, v in figures["publish_breakdown"].items()))
    figures["load_end"] = os.getloadavg()
    return figures


def progress_page_timing(endpoint: Endpoint, directive_id: int, userid: str, runs: int) -> dict:
    """(f) The progress page (/m/d/N) for the top secretary, rendered by the real app: the top
    level (the page one opens from the 进度 reply), one 二级党委 with its 党总支, and one branch with
    its names. Seconds (first and median of `runs`) and page size each."""
    from sqlalchemy import select

    from models.org import BRANCH_KINDS, Organisation, OrgKind
    from models.person import Person

    with endpoint.runtime.db.read_session() as s:
        person_id = s.scalar(select(Person.id).where(Person.wecom_userid == userid))
        sub = s.scalar(select(Organisation.id).where(Organisation.kind.in_([OrgKind.SUB_COMMITTEE, OrgKind.COMMITTEE]),
                                                     Organisation.parent_id.is_not(None)).limit(1))
        branch = s.scalar(select(Organisation.id).where(Organisation.kind.in_(list(BRANCH_KINDS)))
                          .order_by(Organisation.path.desc()).limit(1))
    client = endpoint.app.test_client()
    with client.session_transaction("/m/") as sess:
        sess["person_id"], sess["channel"], sess["external_id"] = person_id, "wecom", userid
    urls = {"top level": f"/m/d/{directive_id}", "one 二级党委": f"/m/d/{directive_id}?org={sub}",
            "one branch with names": f"/m/d/{directive_id}?org={branch}"}
    out: dict = {}
    for name, path in urls.items():
        times, size = [], 0
        for _ in range(runs):
            t0 = time.perf_counter()
            resp = client.get(path)
            times.append(time.perf_counter() - t0)
            if resp.status_code != 200:
                raise SystemExit(f"progress page {path}: HTTP {resp.status_code}")
            size = len(resp.data)
        out[name] = {"first_s": times[0], "median_s": statistics.median(times), "bytes": size}
    return out


def _page_summary(page: dict) -> str:
    return "; ".join(f"{k} first {v['first_s']:.3f} s, median {v['median_s']:.3f} s, {v['bytes'] // 1024} KiB"
                     for k, v in page.items())


def outbox_summary(db, directive_id: int) -> dict:
    from sqlalchemy import func, select

    from models.directive import Delivery
    from models.outbox import OutboxMessage

    with db.session() as s:
        outbox = dict(s.execute(select(OutboxMessage.status, func.count()).where(OutboxMessage.subject_type == "delivery")
                                .group_by(OutboxMessage.status)).all())
        deliveries = dict(s.execute(select(Delivery.status, func.count()).where(Delivery.directive_id == directive_id)
                                    .group_by(Delivery.status)).all())
    return {"outbox": {str(k): v for k, v in outbox.items()}, "deliveries": {str(k): v for k, v in deliveries.items()}}


# -- the report -------------------------------------------------------------------------------------


def render_section(f: dict, command: str) -> str:
    m = f["machine"]
    n = f["members"]
    help_ms = f["help_s"] * 1000
    base = f["baseline_insert_select_s"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    fake = f["fake"]
    rows = [
        ("(a) 发布 → passive reply", "< 2 s", f"{f['publish_s']:.2f} s", verdict(f["publish_s"] < GOALS["publish"]),
         f"{f['publish_s'] / base:.1f}× INSERT…SELECT; {f['publish_s'] * 1000 / help_ms:.0f}× 帮助"),
        ("(b) 发布 → every push accepted by the fake", "< 10 s",
         f"{f['delivered_s']:.2f} s ({f['delivered_after_reply_s']:.2f} s after the reply)",
         verdict(f["delivered_s"] < GOALS["delivered"] and f["delivery_ok"]),
         f"{f['delivered_s'] / base:.1f}× INSERT…SELECT"),
        ("(c) peak RSS, request process (during 发布)", "—", f"{f['web_peak_mib']:.0f} MiB "
         f"(+{f['web_peak_mib'] - f['web_rss_before_mib']:.0f} over {f['web_rss_before_mib']:.0f})", "—", ""),
        ("(c) peak RSS, request process (during 进度)", "—", f"{f['web_progress_peak_mib']:.0f} MiB", "—", ""),
        ("(c) peak RSS, each worker", "—", ", ".join(f"{x:.0f} MiB" for x in f["worker_peak_mib"]), "—", ""),
        ("(c) peak RSS, fake WeCom server", "—", f"{f['fake_peak_mib']:.0f} MiB", "—", ""),
        (f"(d) {f['endpoint_acks']:,} × `收到 N` through the endpoint", "—",
         f"{f['endpoint_acks_s']:.1f} s (median {f['endpoint_ack_median_ms']:.1f} ms, p95 {f['endpoint_ack_p95_ms']:.1f} ms)",
         "—", f"{f['endpoint_ack_median_ms'] / help_ms:.1f}× 帮助"),
        (f"(d) {f['model_acks']:,} × `acknowledge()` (model function, 500 per transaction)", "—",
         f"{f['model_acks_s']:.1f} s ({f['model_acks_s'] * 1e6 / max(1, f['model_acks']):.0f} µs each)", "—", ""),
        ("(e) `进度 N`, whole tree, all acknowledged", "< 1 s",
         f"{f['progress_s']:.2f} s (first {f['progress_first_s']:.2f} s)", verdict(f["progress_s"] < GOALS["progress"]),
         f"{f['progress_s'] * 1000 / help_ms:.0f}× 帮助"),
        ("(e) `进度 N` by one 二级党委 书记 (its scope)", "—", f"{f['progress_sub_s']:.2f} s", "—",
         f"{f['progress_sub_s'] * 1000 / help_ms:.0f}× 帮助"),
    ]
    table = ["| step | goal | measured | met? | vs baseline |", "|---|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    return "\n".join([
        SECTION,
        "",
        f"Date {RUN_DATE}. Machine: {m['nproc']} cores ({m['cpu']}), {m['ram']} RAM; Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, Redis {m['redis']}; everything on one host.",
        "",
        "```",
        command,
        "```",
        "",
        f"Organisation: 1 机关党委 → {f['sub_committees']} 二级党委 → {f['general_branches']} 党总支 → "
        f"{f['branches']:,} 党支部, {n:,} members ({n // f['branches']} per branch, one of them its 书记), plus a 书记 "
        f"for each higher organisation ({f['expected_recipients'] - n} 抄送 copies; the issuer gets none), each "
        f"with a WeCom userid. Seeded with bulk Core inserts in {f['seed_s']:.1f} s (the roster importer has "
        f"its own benchmark). {f['workers']} `python -m bot worker` processes; `python -m fakewx` in its own process.",
        "",
        "Same-run baselines: one `帮助` callback through the same endpoint "
        f"{help_ms:.1f} ms (median of 30); PostgreSQL alone writing {n:,} delivery-wide + {n:,} outbox-wide "
        f"rows with INSERT … SELECT into copies of the tables (same indexes): {base:.2f} s.",
        "",
        *table,
        "",
        f"Delivery check: the fake accepted {fake['delivered']:,} pushes for {fake['recipients']:,} distinct "
        f"recipients (expected {f['expected_recipients']:,} = {n:,} task + {f['expected_recipients'] - n} 抄送), "
        f"max per recipient {fake['max_per_recipient']}, duplicates suppressed {fake['suppressed_duplicates']}, "
        f"in {fake['calls']} API calls ({json.dumps(fake['calls_by_path'], ensure_ascii=False)}), "
        f"tokens issued {json.dumps(fake['tokens_issued'])}. Outbox after the run: "
        f"{json.dumps(f['outbox'], ensure_ascii=False)}.",
        "",
        f"`进度` reply: first line `{f['progress_first_line']}`, {f['progress_reply_lines']:,} lines, "
        f"{f['progress_reply_bytes']:,} bytes; with nobody acknowledged yet (every name listed) "
        f"{f['progress_unacked_s']:.2f} s and {f['progress_unacked_bytes']:,} bytes.",
        "",
        "Where 发布's time goes — `models.directive.issue` run once more on the same tree with its steps "
        "timed, then rolled back:",
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {k} | {v:.2f} |" for k, v in f["publish_breakdown"].items()],
        "",
        "Notes:",
        "",
        *[f"- {note}" for note in f.get("notes", [])],
        "",
    ])


def write_section(section: str) -> None:
    """Replace our own section of docs/BENCHMARKS.md (or append it); other sections are left as they are."""
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    start = text.find(SECTION + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = re.search(r"^## ", text[start + len(SECTION):], flags=re.M)
        end = start + len(SECTION) + nxt.start() if nxt else len(text)
        text = text[:start] + section + ("\n" if nxt else "") + text[end:]
    DOCS.write_text(text.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--branches", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2, help="`python -m bot worker` processes (1–2)")
    parser.add_argument("--endpoint-acks", type=int, default=2_000, help="收到 sent through the endpoint")
    parser.add_argument("--ack-processes", type=int, default=2, help="processes for the model-level acks")
    parser.add_argument("--progress-runs", type=int, default=3)
    parser.add_argument("--delivery-timeout", type=float, default=120.0)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--no-docs", action="store_true", help=f"do not write the section of {DOCS.name}")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    figures = run(args)
    figures["total_s"] = time.perf_counter() - t0
    figures.setdefault("notes", []).extend(notes(figures))
    log(f"total {figures['total_s']:.0f} s")
    command = "python bench/fanout.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2, default=str))
    if not args.no_docs:
        write_section(render_section(figures, command))
        log(f"wrote section {SECTION!r} of {DOCS}")
    return 0


def notes(f: dict) -> list[str]:
    bd = f["publish_breakdown"]
    return [
        f"Load average {f['load_start'][0]:.1f} at the start and {f['load_end'][0]:.1f} at the end of the run "
        "(other processes share the 2 cores), so read the ratios as well as the seconds.",
        f"(a) `issue()` writes all {f['expected_recipients']:,} deliveries and outbox rows inside the request, "
        "in the same transaction as the directive, built inside the database by INSERT … SELECT (home branch "
        "before temporary, channel chosen from channel_identity); no recipient row passes through Python. "
        f"PostgreSQL alone needs {f['baseline_insert_select_s']:.2f} s for rows of the same width (the baseline); "
        f"`issue()` took {bd['issue() total']:.2f} s in the breakdown run.",
        f"(b) = (a) + the drain ({f['delivered_after_reply_s']:.1f} s for {f['workers']} workers, "
        f"{f['expected_recipients'] / max(f['delivered_after_reply_s'], 1e-9):,.0f} rows/s). Workers claim with one "
        "`UPDATE … WHERE id = ANY(ARRAY(SELECT … FOR UPDATE SKIP LOCKED)) RETURNING`, send batches of 1,000 "
        "userids, and mark deliveries with one `delivery.sent` event per directive per batch round.",
        "(e) counts and first/last acknowledgement per organisation come from one GROUP BY; names are fetched "
        "only for people not yet acknowledged. The whole-tree reply is condensed to fit one chat message "
        "(levels above branches, then the branches still behind), and `进度 编号 组织名` narrows it.",
        f"Acknowledgements: {f['endpoint_acks']:,} through the real endpoint (`收到 N`, one at a time, test "
        f"client), the other {f['model_acks']:,} by calling `models.directive.acknowledge` directly in "
        "two forked processes, 500 per transaction — same rows and events, "
        "without the HTTP, crypto, dedupe and receipt layer.",
        "(a) is timed around the Flask test client call: signature check, AES decrypt, Redis dedupe, receipt row, "
        "the handler's one transaction, encrypted reply. (b) is from the same start until the fake's "
        "counters reach the expected total (polled every 50 ms), with the workers already idling.",
        "Peak RSS is VmHWM from /proc; the request process's peak is reset (clear_refs) just before 发布 "
        "and before 进度, so the seeding (done in a forked child) does not count.",
        f"One full run took {f['total_s']:.0f} s.",
    ]


if __name__ == "__main__":
    sys.exit(main())
