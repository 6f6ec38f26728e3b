"""The front: `python -m bot web`'s gunicorn (gthread) alone against the same gunicorn behind nginx
with the shipped settings (deploy/nginx/zhitong-proxy.conf), in one run.

1. Throughput: the read mix of bench/callback.py (帮助 / 待办) against each in turns over several
   rounds (alternating which goes first, so a slow spell of a shared machine falls on both), and
   the ratio front/direct per round.
2. Slow clients: 50 connections that send a callback's headers a byte at a time or stop half-way
   through the body, held open while normal callbacks are sent with WeChat's 5 s patience: how many
   are answered, and how fast.

    python bench/front.py [--rounds 3] [--duration 10] [--workers 2] [--threads 4] [--connections 16]
                          [--database-url URL] [--redis-url URL]

Needs PostgreSQL, Redis and nginx (`apt-get install nginx-light`). Ports 7600–7699.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.callback import (  # noqa: E402
    MIXES,
    Server,
    build_requests,
    build_requests_parallel,
    check_replies,
    machine,
    wecom_env,
    wecom_settings,
)
from bench.callback_data import prepare_database  # noqa: E402
from bench.loadgen import drive  # noqa: E402
from deploy.front import NginxFront, nginx_binary  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_front"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"
SLOW_CLIENTS = 50
PROBES = 10


def port_in_range(taken: set[int]) -> int:
    for port in range(7600, 7700):
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise SystemExit("no free port in 7600-7699")


def slow_clients(port: int, stop: threading.Event) -> list[threading.Thread]:
    head = (b"POST /wecom/callback?msg_signature=x&timestamp=1&nonce=1 HTTP/1.1\r\nHost: bot\r\n"
            b"Content-Type: text/xml\r\nContent-Length: 4000\r\n\r\n")

    def run(n: int) -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                if n % 2:
                    for byte in head:
                        if stop.wait(0.2):
                            return
                        sock.sendall(bytes([byte]))
                else:
                    sock.sendall(head + b"<xml><Encrypt>")
                stop.wait()
        except OSError:
            pass

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(SLOW_CLIENTS)]
    for t in threads:
        t.start()
    return threads


def probe(port: int, userids: list[str]) -> tuple[int, list[float]]:
    """PROBES normal callbacks, one at a time, each given 5 s: (answered, seconds of each answered)."""
    from bot.channels.simulator import WeComSimulator

    sim = WeComSimulator(wecom_settings())
    answered, took = 0, []
    for i in range(PROBES):
        req = sim.text(userids[i % len(userids)], "帮助", at=int(time.time()))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        t0 = time.perf_counter()
        try:
            conn.request("POST", req.url, req.body, {"Content-Type": "text/xml"})
            response = conn.getresponse()
            body = response.read()
            if response.status == 200 and "您好" in sim.read_reply(body).get("Content", ""):
                answered += 1
                took.append(time.perf_counter() - t0)
        except OSError:
            pass
        finally:
            conn.close()
    return answered, took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    args = parser.parse_args(argv)
    if nginx_binary() is None:
        raise SystemExit("nginx is not installed (apt-get install nginx-light)")
    generator = "wrk" if shutil.which("wrk") else "python"

    userids, directives = prepare_database(args.database_url)
    texts = tuple((text.format(*directives), weight) for text, weight in MIXES["read"])
    env = {**wecom_env(), "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
           "SECRET_KEY": "bench-front-secret-key", "MP_APP_ID": "", "MP_SECRET": "", "MP_TOKEN": "",
           "MP_AES_KEY": ""}
    info = machine()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {info['nproc']} cpu ({info['cpu']}), {info['ram']} RAM, "
          f"Python {info['python']}; load average before the run {os.getloadavg()[0]:.1f}")
    print(f"gunicorn gthread {args.workers} x {args.threads}; nginx 1 worker in front; load: {generator}, "
          f"{args.connections} connections; {args.rounds} rounds of {args.duration:g}s each; mix read")
    taken: set[int] = set()
    with tempfile.TemporaryDirectory(prefix="bench-front-") as tmp:
        work_dir = Path(tmp)
        server = Server("app", "bot:create_app()", args.workers, args.threads, env, port=port_in_range(taken))
        front = NginxFront(listen_port=port_in_range(taken), upstream_port=server.port, work_dir=work_dir / "nginx")
        server.start(work_dir)
        front.start()
        ports = {"direct": server.port, "front": front.listen_port}
        try:
            for port in ports.values():
                check_replies("app", port, build_requests(userids, 40, seed=1, texts=texts))
                drive(generator, port, build_requests_parallel(userids, 4000, texts), duration=args.warmup,
                      connections=args.connections, work_dir=work_dir)
            rates: dict[str, list[float]] = {n: [] for n in ports}
            p50: dict[str, list[float]] = {n: [] for n in ports}
            errors = dict.fromkeys(ports, 0)
            for i in range(args.rounds):
                order = list(ports) if i % 2 == 0 else list(ports)[::-1]
                for name in order:
                    size = int(max(2000, max(rates[name], default=2000)) * args.duration * 3) + 2000
                    result = drive(generator, ports[name], build_requests_parallel(userids, size, texts),
                                   duration=args.duration, connections=args.connections, work_dir=work_dir)
                    rates[name].append(result.rps)
                    p50[name].append(result.p50_ms)
                    errors[name] += result.errors
                ratio = rates["front"][-1] / rates["direct"][-1]
                print(f"  round {i + 1}: direct {rates['direct'][-1]:,.0f} req/s, front {rates['front'][-1]:,.0f} "
                      f"req/s; ratio front/direct {ratio:.2f}; load average {os.getloadavg()[0]:.1f}")
            ratios = sorted(f / d for f, d in zip(rates["front"], rates["direct"], strict=True))
            for name in ports:
                print(f"  {name:6}: median {statistics.median(rates[name]):,.0f} req/s, p50 "
                      f"{statistics.median(p50[name]):.1f} ms, {errors[name]} errors")
            print(f"ratio front/direct: median {statistics.median(ratios):.2f} "
                  f"(rounds {', '.join(f'{r:.2f}' for r in ratios)})")

            print(f"slow clients: {SLOW_CLIENTS} held open, then {PROBES} normal callbacks (5 s each)")
            for name in ("front", "direct"):  # direct last: its stuck threads need the slow clients gone
                stop = threading.Event()
                threads = slow_clients(ports[name], stop)
                time.sleep(1.0)
                answered, took = probe(ports[name], userids)
                stop.set()
                for t in threads:
                    t.join(timeout=5)
                median = f", median {statistics.median(took) * 1000:.0f} ms" if took else ""
                print(f"  {name:6}: {answered}/{PROBES} answered{median}")
        finally:
            front.stop()
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
