"""Scheduler fixtures: several scheduler processes against one database, started together."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest


@pytest.fixture
def schedulers(settings, clock):
    """`run(job, count=2)`: `count` runtimes of their own (own engine and store, as separate
    processes would have) start `job(runtime)` at the same moment on threads; returns once all
    are done and fails with the first error any of them raised."""
    from bot.runtime import Runtime

    def run(job: Callable, count: int = 2) -> None:
        runtimes = [Runtime.build(settings, clock=clock) for _ in range(count)]
        start = threading.Barrier(count)
        errors: list[BaseException] = []

        def each(rt) -> None:
            try:
                start.wait()
                job(rt)
            except Exception as exc:  # reported below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=each, args=(rt,)) for rt in runtimes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for rt in runtimes:
            rt.db.dispose()
        if errors:
            raise errors[0]

    return run
