"""nginx with the shipped proxy settings (deploy/nginx/zhitong-proxy.conf) in front of a local web
port, run as an ordinary process: for the tests and the benchmarks, which must exercise exactly the
configuration the README recommends. A production nginx uses deploy/nginx/zhitong.conf instead."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PROXY_CONF = Path(__file__).resolve().parent / "nginx" / "zhitong-proxy.conf"


def nginx_binary() -> str | None:
    """The nginx executable (Debian's `nginx-light` is enough), or None when it is not installed."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


@dataclass
class NginxFront:
    listen_port: int
    upstream_port: int
    work_dir: Path
    worker_processes: int = 1
    proc: subprocess.Popen | None = field(default=None, init=False)

    def config(self) -> str:
        d = self.work_dir
        # Running as root (CI), the workers would switch to `nobody`, who cannot enter a private
        # temporary directory.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return f"""{user}worker_processes {self.worker_processes};
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream zhitong_web {{
        server 127.0.0.1:{self.upstream_port};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{self.listen_port};
        include {PROXY_CONF};
    }}
}}
"""

    def start(self, timeout: float = 10.0) -> None:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        conf = self.work_dir / "nginx.conf"
        conf.write_text(self.config())
        with open(self.work_dir / "stderr.log", "wb") as log:
            self.proc = subprocess.Popen([binary, "-p", str(self.work_dir), "-c", str(conf)],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.work_dir / 'stderr.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.listen_port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx did not listen on port {self.listen_port}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # fast shutdown of the master and its workers
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
