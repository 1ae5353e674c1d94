"""A process of its own for leased work, so batch jobs need not share the serving workers' CPU.

Each kind of work (batch chunks, training jobs; built by :mod:`coe_template.bootstrap`) runs in its
own thread and knows how to stop: take nothing new, finish what is in hand within a grace period,
give back what is not finished. SIGTERM and SIGINT stop them all.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence

from coe_template.bootstrap import Work, stop_all

log = logging.getLogger(__name__)


class Stopping:
    """Set by SIGTERM or SIGINT (in place of Python's KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.signal: signal.Signals | None = None

    def __call__(self, signum: int, _frame: object) -> None:
        self.signal = signal.Signals(signum)
        self.requested.set()

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self)


def run(works: Sequence[Work], stopping: Stopping, grace: float) -> None:
    """Start every kind of work, wait for a stop signal, then stop them all at once, each within ``grace``."""
    for work in works:
        work.start()
    while not stopping.requested.wait(1.0):  # a timed wait lets the signal handler run promptly
        pass
    log.info("%s received: stopping", stopping.signal.name if stopping.signal else "stop")
    stop_all(works, grace)
    log.info("worker stopped")
