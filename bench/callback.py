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
import math
import multiprocessing
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# The parts of this benchmark, beside it in bench/ (imported the same way when gunicorn loads
# `bench.callback:bare_app()`).
from callback_data import (  # noqa: E402
    ack_tasks,
    count_acknowledged,
    count_receipts,
    prepare_database,
)
from loadgen import CpuMonitor, Result, drive  # noqa: E402
from proctools import free_port  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_callback"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/3"

# A fixed bench corp; the AES key is 43 Base64 characters of a 32-byte key, as WeCom issues them.
CORP_ID = "wwzhitongbench01"
AGENT_ID = 1000002
TOKEN = "zhitongbenchtoken"
AES_KEY = base64.b64encode(b"zhitong-bench-callback-aes-key!!").decode().rstrip("=")

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
