"""Callback throughput: encrypted WeCom callbacks per second through gunicorn, against a bare endpoint.

Two endpoints in one run, each its own gunicorn with the same settings, loaded in turns over several
rounds (alternating which goes first) so that a slow spell of a shared machine falls on both:

* app  — `bot:create_app()` on PostgreSQL + Redis: verify, decrypt, identify the sender, route
  (`--mix read`: `帮助` / `待办`, both read-only, answered from the cached sender in a read-only
  session, 待办 with its one query; `--mix ack`: every request a recipient's first `收到 N`, the
  full path with its claim, acknowledgement, event, receipt and commit), encrypted passive reply;
* bare — `bench.callback:bare_app()`: verify the signature, decrypt with wechatpy (through the WeCom
  adapter's crypto), encrypt the plaintext back. The ceiling for this machine, gunicorn and crypto.

Every request is distinct (own MsgId, user, nonce, fresh timestamp); a sample of replies from each
endpoint is decrypted and checked, and afterwards the receipts in the database are counted (read
commands write none), or for the ack mix the acknowledgements recorded.
Load comes from wrk when it is installed (pre-built requests fed by a Lua script), otherwise from
Python processes with keep-alive `http.client` connections.

    python bench/callback.py [--mix read|ack|help] [--rounds 3] [--duration 10] [--workers N] [--threads T]
                             [--connections C]
                             [--database-url URL] [--redis-url URL] [--generator auto|wrk|python]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import multiprocessing
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_callback"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/3"

# A fixed bench corp; the AES key is 43 Base64 characters of a 32-byte key, as WeCom issues them.
CORP_ID = "wwzhitongbench01"
AGENT_ID = 1000002
TOKEN = "zhitongbenchtoken"
AES_KEY = base64.b64encode(b"zhitong-bench-callback-aes-key!!").decode().rstrip("=")

USERID_PREFIX = "bench"
PEOPLE = 300
BRANCHES = ("机关党委/第一党总支/综合处党支部", "机关党委/第一党总支/财务处党支部", "机关党委/第二党总支/信息处党支部")
# What people send (--mix). read: mostly 帮助 and 待办, a few variants that normalise to the same
# commands, all read-only. ack: the burst after broadcasts: every request is a recipient's first
# `收到 N` for one of their tasks (ACK_PEOPLE people, ACK_DIRECTIVES directives each, reset before
# every round), so each one takes the full path and records an acknowledgement, its event and the
# receipt. help: 帮助 only, the read path without a database query (what the bot costs beyond
# decrypting, with nothing to look up).
MIXES = {
    "read": (("帮助", 45), ("待办", 45), ("菜单", 5), ("待办 ", 5)),
    "ack": (("收到 N", 100),),
    "help": (("帮助", 100),),
}
ACK_PREFIX = "ack"  # the ack mix's own people, so the read mix's 待办 stays three items long
ACK_PEOPLE = 300
ACK_DIRECTIVES = 40  # 12,000 tasks: more than a round acknowledges on this kind of machine


def wecom_env() -> dict[str, str]:
    return {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_AGENT_ID": str(AGENT_ID),
        "WECOM_SECRET": "bench-secret",
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        # Nothing in a callback calls out, but never let a bench reach the real API.
        "WECOM_API_BASE": "http://127.0.0.1:9/cgi-bin/",
    }


def wecom_settings():
    from config.settings import WeComSettings

    env = wecom_env()
    return WeComSettings(corp_id=CORP_ID, agent_id=AGENT_ID, secret=env["WECOM_SECRET"], token=TOKEN,
                         aes_key=AES_KEY, api_base=env["WECOM_API_BASE"])


# -- the bare endpoint (loaded by gunicorn as `bench.callback:bare_app()`) ------------------------


def bare_app():
    """A Flask app that only verifies, decrypts and echoes the message back encrypted."""
    from flask import Flask, Response, request

    from bot.channels.wecom import WeComChannel
    from config.settings import WeComSettings

    # The same wechatpy crypto object the app's WeCom adapter uses, without the rest of the app.
    crypto = WeComChannel(WeComSettings(
        corp_id=os.environ["WECOM_CORP_ID"], agent_id=int(os.environ.get("WECOM_AGENT_ID", "1")), secret="unused",
        token=os.environ["WECOM_TOKEN"], aes_key=os.environ["WECOM_AES_KEY"])).crypto
    app = Flask("bench_bare")

    @app.post("/wecom/callback")
    def callback():
        args = request.args
        try:
            plaintext = crypto.decrypt_message(request.get_data(cache=False), args["msg_signature"],
                                               args["timestamp"], args["nonce"])
        except Exception:  # missing parameter, bad signature, undecryptable: refused
            return Response("", status=403)
        reply = crypto.encrypt_message(plaintext, args["nonce"], str(int(time.time())))
        return Response(reply, mimetype="application/xml")

    @app.get("/healthz")
    def healthz():
        return Response("ok", mimetype="text/plain")

    return app


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


# -- requests ---------------------------------------------------------------------------------------


def build_requests(userids: list[str], count: int, *, seed: int, texts: tuple = MIXES["read"],
                   pairs: list[tuple[str, str]] | None = None) -> list[tuple[str, bytes, str]]:
    """`count` distinct signed encrypted callbacks: (url, body, content sent). Random people and
    texts from the mix; or, given `pairs` of (userid, text), those in order (cycling past the end)."""
    from bot.channels.simulator import WeComSimulator

    sim = WeComSimulator(wecom_settings())
    rng = random.Random(seed)
    weights = [w for _, w in texts]
    texts = [t for t, _ in texts]
    now = int(time.time())
    out = []
    for i in range(count):
        userid, content = pairs[i % len(pairs)] if pairs else (rng.choice(userids), rng.choices(texts, weights)[0])
        req = sim.text(userid, content, at=now)  # MsgId from the simulator's counter: unique
        out.append((req.url, req.body, content))
    return out


def _build_chunk(args) -> list[tuple[str, bytes, str]]:
    userids, count, seed, msg_id_base, texts, pairs = args
    import itertools

    import bot.channels.simulator as simulator

    simulator._msg_ids = itertools.count(msg_id_base)  # processes must not share MsgIds
    return build_requests(userids, count, seed=seed, texts=texts, pairs=pairs)


def build_requests_parallel(userids: list[str], count: int, texts: tuple,
                            pairs: list[tuple[str, str]] | None = None) -> list[tuple[str, bytes, str]]:
    """`build_requests` in up to four processes."""
    procs = max(1, min(os.cpu_count() or 1, 4))
    if count < 4000 or procs == 1:
        return build_requests(userids, count, seed=random.randrange(1 << 30), texts=texts, pairs=pairs)
    base = time.time_ns() // 1000
    per = math.ceil(count / procs)
    # With pairs, chunk i builds its own stretch of the sequence, so the requests come out in order.
    sequence = [pairs[i % len(pairs)] for i in range(per * procs)] if pairs else None
    chunks = [(userids, per, random.randrange(1 << 30), base + i * 10**9, texts,
               sequence[i * per:(i + 1) * per] if sequence else None) for i in range(procs)]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.map(_build_chunk, chunks)
    return [r for part in parts for r in part][:count]


# -- servers ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    app_spec: str
    workers: int
    threads: int
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    def start(self, log_dir: Path) -> None:
        self.log_path = log_dir / f"gunicorn-{self.name}.log"
        cmd = [sys.executable, "-m", "gunicorn", "-w", str(self.workers), "-k", "gthread",
               "--threads", str(self.threads), "-b", f"127.0.0.1:{self.port}", "--chdir", str(ROOT),
               "--keep-alive", "30", "--backlog", "2048", "--log-level", "warning", self.app_spec]
        pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, **self.env, "PYTHONPATH": pythonpath}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        path = "/readyz" if self.name == "app" else "/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn ({self.name}) exited; see {self.log_path}:\n{self.log_path.read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                if resp.status == 200:
                    return
                last = f"{resp.status} {body[:200]!r}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"gunicorn ({self.name}) not ready after {timeout:.0f}s: {last}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # the master stops its own workers
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- load -------------------------------------------------------------------------------------------


class CpuMonitor:
    """Where the machine's CPU went while the load ran: the server, PostgreSQL + Redis, the load
    generator, and processes outside this benchmark.

    Other work on the box (a test run, another benchmark) takes cores from the server and makes
    the figures low; this says so instead of leaving it to guesswork. CPU per request is also
    the steadier figure on a busy machine: throughput there moves with the neighbours."""

    def __init__(self, server_pid: int, database: str) -> None:
        self.hz = os.sysconf("SC_CLK_TCK")
        self.server_pid = server_pid
        self.database = database

    @staticmethod
    def _busy_total() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values[:8]) - values[3] - values[4], sum(values[:8])  # busy, all (idle, iowait out)

    def _snapshot(self) -> dict[int, tuple[str, int]]:
        """pid → (category, CPU ticks) for the processes that belong to this benchmark."""
        procs: dict[int, tuple[int, str, int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1: stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            procs[int(entry)] = (int(fields[1]), name, int(fields[11]) + int(fields[12]))
        me = os.getpid()

        def under(pid: int, root: int) -> bool:
            for _ in range(64):
                if pid == root:
                    return True
                if pid <= 1:
                    return False
                pid = procs.get(pid, (0, "", 0))[0]
            return False

        out = {}
        for pid, (_, name, cpu) in procs.items():
            if under(pid, self.server_pid):
                out[pid] = ("server", cpu)
            elif under(pid, me):
                out[pid] = ("generator", cpu)
            elif name.startswith("redis-server"):
                out[pid] = ("datastores", cpu)
            elif name.startswith("postgres"):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmdline = f.read().decode(errors="replace")
                except OSError:
                    continue
                backend = "(" in cmdline or "[local]" in cmdline  # a client connection, not a background process
                if not backend or f" {self.database} " in cmdline:
                    out[pid] = ("datastores", cpu)
        return out

    def start(self) -> None:
        self._total0 = self._busy_total()
        self._snap0 = self._snapshot()
        self._times0 = os.times()

    def stop(self) -> dict[str, float]:
        """CPU seconds per category since start(), and `total` seconds the machine had."""
        busy1, all1 = self._busy_total()
        snap1 = self._snapshot()
        times1 = os.times()
        used = {"server": 0.0, "datastores": 0.0, "generator": 0.0}
        for pid, (category, cpu) in snap1.items():
            used[category] += (cpu - self._snap0.get(pid, (category, 0))[1]) / self.hz
        # wrk and the Python generators have exited by now: their CPU is in our reaped children.
        used["generator"] += (times1.children_user + times1.children_system
                              - self._times0.children_user - self._times0.children_system)
        busy = (busy1 - self._total0[0]) / self.hz
        used["others"] = max(0.0, busy - sum(used.values()))
        used["total"] = (all1 - self._total0[1]) / self.hz
        return used


@dataclass
class Result:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    wrapped: bool = False  # the pool ran out and requests were resent (dedupe answered them)
    cpu: dict = field(default_factory=dict)  # CPU seconds by category, from CpuMonitor
    acknowledged: int = 0  # ack mix: acknowledgements recorded (each request is a first one)

    @property
    def other_load(self) -> float:
        """Share of the machine used by processes outside the benchmark."""
        return self.cpu["others"] / self.cpu["total"] if self.cpu.get("total") else 0.0

    def cpu_ms(self, category: str) -> float:
        """CPU milliseconds per request spent in `category`."""
        return self.cpu.get(category, 0.0) * 1000 / self.requests if self.requests else 0.0
    error_detail: dict = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


WRK_LUA = r"""
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  reqs = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == id then
      local tab = line:find("\t", 1, true)
      reqs[#reqs + 1] = wrk.format("POST", line:sub(1, tab - 1), {["Content-Type"] = "text/xml"}, line:sub(tab + 1))
    end
    i = i + 1
  end
  idx = 0
  wrapped = 0
  bad_status = 0
  empty = 0
end

function request()
  idx = idx + 1
  if idx > #reqs then
    idx = 1
    wrapped = wrapped + 1
  end
  return reqs[idx]
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
  elseif body == nil or #body == 0 then
    empty = empty + 1
  end
end

function done(summary, latency, requests)
  local bad, emp, wr = 0, 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("bad_status")
    emp = emp + t:get("empty")
    wr = wr + t:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"bad_status":%d,"empty":%d,' ..
    '"wrapped":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad, emp, wr,
    e.connect, e.read, e.write, e.timeout, e.status))
end
"""


def run_wrk(port: int, reqs: list[tuple[str, bytes, str]], *, duration: float, connections: int,
            threads: int, work_dir: Path) -> Result:
    data = work_dir / "requests.tsv"
    with open(data, "wb") as f:
        for url, body, _ in reqs:
            f.write(url.encode() + b"\t" + body + b"\n")
    script = work_dir / "callback.lua"
    script.write_text(WRK_LUA)
    threads = max(1, min(threads, connections))
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "10s",
           "-s", str(script), f"http://127.0.0.1:{port}", "--", str(data), str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    w = json.loads(line[len("WRKJSON "):])
    socket_errors = w["connect"] + w["read"] + w["write"] + w["timeout"]
    return Result(
        requests=w["requests"],
        errors=socket_errors + w["bad_status"] + w["empty"],
        seconds=w["duration_us"] / 1e6,
        p50_ms=w["p50_us"] / 1000,
        p99_ms=w["p99_us"] / 1000,
        wrapped=w["wrapped"] > 0,
        error_detail={k: w[k] for k in ("connect", "read", "write", "timeout", "bad_status", "empty") if w[k]},
    )


def _py_conn_loop(port, reqs, deadline, latencies, counts) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "text/xml"}
    i = 0
    while time.monotonic() < deadline:
        if i == len(reqs):
            i = 0
            counts["wrapped"] += 1
        url, body, _ = reqs[i]
        i += 1
        t0 = time.perf_counter()
        try:
            conn.request("POST", url, body, headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            counts["socket"] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        latencies.append(time.perf_counter() - t0)
        if resp.status != 200:
            counts["bad_status"] += 1
        elif not data:
            counts["empty"] += 1
    conn.close()


def _py_process(port, reqs, connections, start_at, duration, queue) -> None:
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = time.monotonic() + duration
    latencies: list[float] = []
    counts = {"socket": 0, "bad_status": 0, "empty": 0, "wrapped": 0}
    threads = [threading.Thread(target=_py_conn_loop, args=(port, reqs[i::connections], deadline, latencies, counts))
               for i in range(connections)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((latencies, counts, time.perf_counter() - t0))


def run_python(port: int, reqs: list[tuple[str, bytes, str]], *, duration: float, connections: int,
               processes: int) -> Result:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    processes = max(1, min(processes, connections))
    start_at = time.time() + 0.5
    procs = []
    for p in range(processes):
        conns = connections // processes + (1 if p < connections % processes else 0)
        procs.append(ctx.Process(target=_py_process, args=(port, reqs[p::processes], conns, start_at, duration, queue)))
    for proc in procs:
        proc.start()
    parts = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    latencies = sorted(lat for part in parts for lat in part[0])
    counts = {k: sum(part[1][k] for part in parts) for k in parts[0][1]}
    seconds = max(part[2] for part in parts)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0

    return Result(
        requests=len(latencies),
        errors=counts["socket"] + counts["bad_status"] + counts["empty"],
        seconds=seconds,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        wrapped=counts["wrapped"] > 0,
        error_detail={k: v for k, v in counts.items() if v and k != "wrapped"},
    )


def drive(generator: str, port: int, reqs, *, duration: float, connections: int, work_dir: Path) -> Result:
    if generator == "wrk":
        return run_wrk(port, reqs, duration=duration, connections=connections, threads=2, work_dir=work_dir)
    return run_python(port, reqs, duration=duration, connections=connections, processes=os.cpu_count() or 2)


# -- checks -----------------------------------------------------------------------------------------


def check_replies(name: str, port: int, reqs: list[tuple[str, bytes, str]]) -> None:
    """Send each request once and decrypt its reply; stop the run on anything unexpected."""
    from bot.channels.simulator import WeComSimulator

    sim = WeComSimulator(wecom_settings())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for url, body, content in reqs:
        conn.request("POST", url, body, {"Content-Type": "text/xml"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200 or not data:
            raise SystemExit(f"{name}: {content!r} answered {resp.status} with {len(data)} bytes")
        reply = sim.read_reply(data)
        if name == "bare":
            ok = reply.get("Content") == content and reply.get("MsgType") == "text"
        else:
            text = reply.get("Content", "")
            if content.startswith("收到"):  # a first acknowledgement (or, in the final check, a repeat)
                expected = f"确认收到 #{content.split()[1]}" in text
            else:
                expected = ("您可以发送" in text) if content in ("帮助", "菜单") else ("待办" in text)
            ok = reply.get("MsgType") == "text" and reply.get("FromUserName") == CORP_ID and expected
        if not ok:
            raise SystemExit(f"{name}: unexpected reply to {content!r}: {reply}")
    conn.close()


# -- the run ----------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor() or "?")
    mem_kb = next((int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                   if ln.startswith("MemTotal:")), 0)
    return {"nproc": str(os.cpu_count()), "ram": f"{mem_kb / 1024 / 1024:.1f} GiB", "cpu": model,
            "python": platform.python_version()}


def start_and_warm(server: Server, generator: str, userids: list[str], args, work_dir: Path) -> float:
    """Start the server, check its replies and warm it up; returns the warm-up rate (req/s)."""
    server.start(work_dir)
    pairs = _fresh_tasks(args)
    check_replies(server.name, server.port, build_requests(userids, 40, seed=1, texts=args.texts, pairs=pairs))
    # Warm-up: every worker and thread imports, connects and fills its caches; also sizes the pool.
    warm = drive(generator, server.port, build_requests_parallel(userids, 4000, args.texts, pairs),
                 duration=args.warmup, connections=args.connections, work_dir=work_dir)
    return warm.rps


def _fresh_tasks(args) -> list[tuple[str, str]] | None:
    """For the ack mix: every task unacknowledged again, in a shuffled order; else None."""
    if args.mix != "ack":
        return None
    pairs = ack_tasks(args.database_url)
    random.Random(len(pairs)).shuffle(pairs)
    return pairs


def measure(server: Server, generator: str, userids: list[str], args, work_dir: Path, rate: float) -> Result:
    """One timed load against a running server, with the CPU it took."""
    from sqlalchemy.engine import make_url

    from config.settings import normalise_database_url

    # The app must never see a request twice (a resent read is answered again, a resent write is
    # deduplicated: either way not what is being measured), so its pool is generous; the bare
    # endpoint keeps no state and may cycle through a smaller one.
    # A cold warm-up understates the rate: never plan for less than 2,000 req/s.
    size = max(5000, int(max(rate, 2000) * args.duration * (3.0 if server.name == "app" else 1.5)) + 2000)
    # Built right before the load so every timestamp is well inside WeCom's 300 s window.
    pairs = _fresh_tasks(args)
    reqs = build_requests_parallel(userids, size, args.texts, pairs)
    monitor = CpuMonitor(server.proc.pid, make_url(normalise_database_url(args.database_url)).database)
    monitor.start()
    result = drive(generator, server.port, reqs, duration=args.duration, connections=args.connections,
                   work_dir=work_dir)
    result.cpu = monitor.stop()
    if pairs and server.name == "app":
        result.acknowledged = count_acknowledged(args.database_url)
    return result


def combine(rounds: list[Result]) -> Result:
    """All rounds of one endpoint as one result: totals, CPU summed, the median round's latencies."""
    by_p50 = sorted(rounds, key=lambda r: r.p50_ms)
    middle = by_p50[len(by_p50) // 2]
    cpu: dict[str, float] = {}
    for r in rounds:
        for key, value in r.cpu.items():
            cpu[key] = cpu.get(key, 0.0) + value
    return Result(requests=sum(r.requests for r in rounds), errors=sum(r.errors for r in rounds),
                  seconds=sum(r.seconds for r in rounds), p50_ms=middle.p50_ms,
                  p99_ms=sorted(r.p99_ms for r in rounds)[len(rounds) // 2],
                  wrapped=any(r.wrapped for r in rounds), cpu=cpu, acknowledged=sum(r.acknowledged for r in rounds),
                  error_detail={k: sum(r.error_detail.get(k, 0) for r in rounds)
                                for k in {k for r in rounds for k in r.error_detail}})


def main(argv: list[str] | None = None) -> int:
    cpus = os.cpu_count() or 2
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of load per endpoint per round (default 10)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds; each loads both endpoints, alternating which goes first (default 3)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per endpoint (default 3)")
    parser.add_argument("--workers", type=int, default=cpus, help=f"gunicorn workers (default nproc = {cpus})")
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker (default 4)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--mix", choices=tuple(MIXES), default="read",
                        help="what people send: read (帮助/待办, default), ack (收到 N, the full path) or help (帮助 only)")
    parser.add_argument("--only", choices=("both", "app", "bare"), default="both", help="run one endpoint (profiling)")
    parser.add_argument("--app-spec", default="bot:create_app()",
                        help="gunicorn app for the app endpoint, e.g. a variant under test (default bot:create_app())")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)

    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    elif generator == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed; use --generator python")

    started = time.monotonic()
    userids, directives = prepare_database(args.database_url)
    args.texts = tuple((text.format(*directives), weight) for text, weight in MIXES[args.mix])
    check_pairs = _fresh_tasks(args)
    env = {**wecom_env(), "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
           "SECRET_KEY": "bench-callback-secret-key", "MP_APP_ID": "", "MP_SECRET": "", "MP_TOKEN": "",
           "MP_AES_KEY": ""}
    info = machine()
    print(f"machine: {info['nproc']} cpu ({info['cpu']}), {info['ram']} RAM, Python {info['python']}")
    print(f"gunicorn gthread: {args.workers} workers x {args.threads} threads; load: {generator}, "
          f"{args.connections} connections; {args.rounds} rounds of {args.duration:g}s per endpoint, "
          f"after {args.warmup:g}s warm-up; {len(userids)} people; mix {args.mix}: "
          + ", ".join(f"{t} {w}%" for t, w in args.texts))

    names = [n for n in ("app", "bare") if args.only in ("both", n)]
    specs = {"app": args.app_spec, "bare": "bench.callback:bare_app()"}
    rounds: dict[str, list[Result]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="bench-callback-") as tmp:
        work_dir = Path(tmp)
        # Both servers stay up for the whole run and take turns under load, so a slow spell of a
        # shared machine falls on both endpoints instead of on whichever ran then.
        servers = {n: Server(n, specs[n], args.workers, args.threads, env) for n in names}
        try:
            rates = {n: start_and_warm(servers[n], generator, userids, args, work_dir) for n in names}
            for i in range(args.rounds):
                order = names if i % 2 == 0 else names[::-1]
                line = []
                for n in order:
                    r = measure(servers[n], generator, userids, args, work_dir, rates[n])
                    rounds[n].append(r)
                    rates[n] = max(rates[n], r.rps)
                    line.append(f"{n} {r.rps:,.0f} req/s ({r.cpu_ms('server'):.2f} ms CPU)")
                ratio_i = (rounds["app"][-1].rps / rounds["bare"][-1].rps
                           if len(names) == 2 and rounds["bare"][-1].rps else None)
                print(f"  round {i + 1}: " + ", ".join(line)
                      + (f"; ratio {ratio_i:.2f}" if ratio_i is not None else ""))
            for n in names:
                check_replies(n, servers[n].port, build_requests(userids, 20, seed=2, texts=args.texts,
                                                                 pairs=check_pairs))
        finally:
            for server in servers.values():
                server.stop()
        app_log = servers["app"].log_path.read_text(errors="replace") if "app" in servers else ""

    results = {n: combine(rounds[n]) for n in names}
    for name, r in results.items():
        print(f"  {name:4}: {r.requests} requests, {r.errors} errors, {r.rps:,.0f} req/s, "
              f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms" + (f"  {r.error_detail}" if r.errors else ""))
        if name == "app" and args.mix != "ack":  # the ack mix clears receipts before each round
            receipts, empty = count_receipts(args.database_url)
            print(f"        receipts in database: {receipts} ({empty} without a reply)")
        if name == "app" and args.mix == "ack":
            print(f"        acknowledgements recorded: {r.acknowledged} of {r.requests} requests "
                  "(each request a recipient's first 收到 for that task)")
        if name == "app":
            warnings = [line for line in app_log.splitlines() if " WARNING " in line or "Traceback" in line]
            kinds = sorted({line.split(" WARNING ", 1)[-1][:100] for line in warnings})[:3]
            print(f"        app log: {len(warnings)} warnings" + "".join(f"\n          {k}" for k in kinds))
        if r.other_load > 0.05:
            print(f"  NOTE: other processes used {r.other_load:.0%} of the machine during the {name} load; "
                  "the figures understate this machine")
        if r.wrapped and name == "app":
            print("  WARNING: app ran out of distinct requests; the figures include resends")

    print()
    head = ("requests", "errors", "req/s", "p50 ms", "p99 ms", "server cpu", "pg+redis cpu", "other load")
    print(f"{'':6}" + "".join(f"{h:>{max(9, len(h) + 2)}}" for h in head))
    for name, r in results.items():
        cells = (f"{r.requests}", f"{r.errors}", f"{r.rps:,.0f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}",
                 f"{r.cpu_ms('server'):.2f} ms", f"{r.cpu_ms('datastores'):.2f} ms", f"{r.other_load:.0%}")
        print(f"{name:6}" + "".join(f"{c:>{max(9, len(h) + 2)}}" for c, h in zip(cells, head, strict=True)))
    print("(req/s over all rounds; p50/p99: the median round's; cpu columns: CPU time per request; "
          "other load: share of the machine used by processes outside the run)")
    ratio = None
    ratios = []
    if len(names) == 2:
        ratios = sorted(a.rps / b.rps for a, b in zip(rounds["app"], rounds["bare"], strict=True) if b.rps)
        ratio = ratios[len(ratios) // 2] if ratios else None
        print(f"ratio app/bare: median of rounds {ratio:.2f} (rounds {', '.join(f'{x:.2f}' for x in ratios)})")
    print(f"total time: {time.monotonic() - started:.0f}s")

    if args.markdown:
        print()
        print("| endpoint | requests | errors | req/s | p50 (ms) | p99 (ms) | server CPU/req | PG+Redis CPU/req "
              "| other load |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in results.items():
            label = f"app (`{args.app_spec}`)" if name == "app" else "bare (decrypt + echo)"
            print(f"| {label} | {r.requests:,} | {r.errors} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
                  f"| {r.cpu_ms('server'):.2f} ms | {r.cpu_ms('datastores'):.2f} ms | {r.other_load:.0%} |")
        if ratio is not None:
            print(f"| **ratio app/bare** (median of rounds: {', '.join(f'{x:.2f}' for x in ratios)}) "
                  f"| | | **{ratio:.2f}** | | | | | |")
    failed = any(r.errors for r in results.values()) or ("app" in results and results["app"].wrapped)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
