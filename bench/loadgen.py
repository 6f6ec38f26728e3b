"""HTTP load for the benchmarks: wrk with a Lua script feeding pre-built requests when it is
installed, else Python processes with keep-alive connections; CPU accounting of the server and of
PostgreSQL + Redis during a phase; the figures of a phase (`Result`)."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

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
