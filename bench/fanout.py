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
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# The parts of this benchmark, beside it in bench/.
from fanout_report import DOCS, SECTION, notes, render_section, write_section  # noqa: E402
from fanout_seed import insert_select_baseline, recreate_database, seed  # noqa: E402
from proctools import free_port, http_json, mib, reset_peak_rss, status_kb, stop, wait_http, wait_log  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_fanout"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"

CORP_ID = "wwzhitongfanout1"
AGENT_ID = 1000002
SECRET = "bench-fanout-secret"
TOKEN = "zhitongfanouttoken"
AES_KEY = base64.b64encode(b"zhitong-bench-fanout-aes-key-32b").decode().rstrip("=")


# -- processes --------------------------------------------------------------------------------------



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


if __name__ == "__main__":
    sys.exit(main())
