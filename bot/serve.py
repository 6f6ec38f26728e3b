"""Running the roles: `serve` (all in one process), `web` (gunicorn), `worker`."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from flask import Flask

from bot.runtime import Runtime

log = logging.getLogger(__name__)


def serve(app: Flask, *, host: str = "127.0.0.1", port: int = 5000) -> None:
    """Web + scheduler + delivery worker in one process: the embedded default."""
    from werkzeug.serving import make_server

    from bot.worker import run_worker
    from migrations import upgrade
    from scheduler.setup import build_scheduler

    runtime: Runtime = app.extensions["zhitong"]
    upgrade(runtime.settings.database_url)
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(runtime, stop), name="delivery-worker", daemon=True)
    worker.start()
    scheduler = build_scheduler(runtime)
    scheduler.start()
    server = make_server(host, port, app, threaded=True)
    log.info("直通车 serving on http://%s:%s (web + scheduler + worker)", host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        stop.set()
        scheduler.shutdown(wait=False)
        worker.join(timeout=10)


def run_worker_forever(runtime: Runtime) -> None:
    """The `worker` role: drain the outbox until SIGTERM/SIGINT, finishing the batch in hand."""
    from bot.worker import run_worker

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("delivery worker started")
    run_worker(runtime, stop)
    log.info("delivery worker stopped")


def run_gunicorn(*, host: str, port: int, workers: int, create_app: Callable[[], Flask], threads: int = 4) -> None:
    """The `web` role under gunicorn; each worker process builds its own app from the environment
    with `create_app` (after the fork: no database connection is shared between processes)."""
    from gunicorn.app.base import BaseApplication

    class _App(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 30)
            self.cfg.set("graceful_timeout", 20)
            self.cfg.set("limit_request_line", 8190)

        def load(self):
            return create_app()

    _App().run()
