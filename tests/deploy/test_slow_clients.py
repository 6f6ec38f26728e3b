"""The recommended front (deploy/nginx/, README "Production deployment"): 50 slow connections —
sending a byte at a time, or stopping half-way through the body — do not stop `python -m bot web`
(gunicorn, 2 workers × 4 threads) behind nginx from answering a normal callback."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.channels.simulator import WeComSimulator
from deploy.front import NginxFront, nginx_binary
from tests.conftest import REDIS_URL, WECOM
from tests.factories import small_tree

ROOT = Path(__file__).resolve().parents[2]
SLOW_CLIENTS = 50
pytestmark = pytest.mark.skipif(nginx_binary() is None,
                                reason="needs nginx (apt-get install nginx-light; .ci/run installs it)")


def free_port() -> int:
    """A free port of the range this project's servers use (7600–7699)."""
    for port in range(7600 + os.getpid() % 50, 7700):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 7600-7699")


def wait_ready(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"web exited: {log.read_text()[-2000:]}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.2)
    raise RuntimeError("web did not become ready")


@pytest.fixture
def web(settings, db, tmp_path):
    """`python -m bot web` as production runs it, on the test database."""
    with db.session() as s:
        small_tree(s)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "MP_", "REDIS_URL"))}
    env.update(DATABASE_URL=settings.database_url, SECRET_KEY="test-secret-key",
               BOT_INSTANCE_DIR=str(tmp_path / "instance"), WECOM_CORP_ID=WECOM.corp_id,
               WECOM_AGENT_ID=str(WECOM.agent_id), WECOM_SECRET=WECOM.secret, WECOM_TOKEN=WECOM.token,
               WECOM_AES_KEY=WECOM.aes_key, WECOM_API_BASE=WECOM.api_base,
               PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    if REDIS_URL:
        env["REDIS_URL"] = REDIS_URL
    log = tmp_path / "web.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "web", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", "2"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, proc, log)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def front(web, tmp_path):
    nginx = NginxFront(listen_port=free_port(), upstream_port=web, work_dir=tmp_path / "nginx")
    nginx.start()
    yield nginx.listen_port
    nginx.stop()


def slow_clients(port: int, count: int, stop: threading.Event) -> list[threading.Thread]:
    """Half send a callback's headers a byte at a time; half send whole headers and part of the
    body, then nothing. None of them finishes while `stop` is unset."""
    head = (b"POST /wecom/callback?msg_signature=x&timestamp=1&nonce=1 HTTP/1.1\r\nHost: bot\r\n"
            b"Content-Type: text/xml\r\nContent-Length: 4000\r\n\r\n")

    def trickle(sock: socket.socket) -> None:
        for byte in head:
            if stop.wait(0.2):
                return
            sock.sendall(bytes([byte]))

    def stall(sock: socket.socket) -> None:
        sock.sendall(head + b"<xml><Encrypt>")
        stop.wait()

    threads = []
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        act = trickle if n % 2 else stall

        def run(sock=sock, act=act) -> None:
            try:
                act(sock)
            except OSError:
                pass
            finally:
                sock.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def callback(port: int, sim: WeComSimulator, userid: str, text: str) -> str:
    """A normal signed callback; WeChat gives up on an answer after 5 s, so must this."""
    req = sim.text(userid, text)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", req.url, req.body, {"Content-Type": "text/xml"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200, (response.status, body[:200])
    return sim.read_reply(body)["Content"]


def test_fifty_slow_connections_do_not_stop_callbacks_behind_the_front(front, clock):
    sim = WeComSimulator(WECOM, now=lambda: int(time.time()))
    assert callback(front, sim, "zhangwei", "帮助").startswith("张伟您好")
    stop = threading.Event()
    threads = slow_clients(front, SLOW_CLIENTS, stop)
    try:
        time.sleep(1.0)  # every slow client connected and under way
        for userid, name in [("zhangwei", "张伟"), ("liuyang", "刘洋"), ("lina", "李娜")] * 4:
            assert callback(front, sim, userid, "帮助").startswith(f"{name}您好")
        assert sum(t.is_alive() for t in threads) >= SLOW_CLIENTS // 2  # the stalled ones still hang on
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
