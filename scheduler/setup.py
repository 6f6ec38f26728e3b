"""APScheduler runs one periodic tick; the work itself lives in database rows, not in jobs."""

from __future__ import annotations

import logging
import signal
import threading

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.runtime import Runtime
from scheduler.jobs import tick

log = logging.getLogger(__name__)


def build_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        tick,
        IntervalTrigger(seconds=runtime.settings.scheduler_tick_seconds),
        args=[runtime],
        id="tick",
        max_instances=1,  # a slow tick is never overlapped by the next
        coalesce=True,  # after a pause, run once rather than catching up tick by tick
        next_run_time=runtime.now(),
    )
    return scheduler


def run_scheduler_forever(runtime: Runtime) -> None:
    """The `scheduler` role: tick until SIGTERM/SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    scheduler = build_scheduler(runtime)
    scheduler.start()
    log.info("scheduler started, tick every %ss", runtime.settings.scheduler_tick_seconds)
    stop.wait()
    scheduler.shutdown(wait=True)
    log.info("scheduler stopped")
