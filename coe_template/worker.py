"""A process of its own for leased work, so batch jobs need not share the serving workers' CPU.

Each kind of work (batch chunks, training jobs) runs in its own thread and knows how to stop: take nothing new, finish what
is in hand within a grace period, give back what is not finished. SIGTERM and
SIGINT stop them all.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from coe_template.batch.jobs import BatchJobs
from coe_template.batch.runner import BatchRunner, Observer, PurgeObserver
from coe_template.registry import Registry
from coe_template.registry.training import TrainingJobs
from coe_template.trainer import TrainingObserver, TrainingRunner
from config.settings import Settings

log = logging.getLogger(__name__)


class Work(Protocol):
    """One kind of leased job a worker takes, in a thread of its own."""

    def start(self) -> None: ...

    def stop(self, grace: float) -> None:
        """Take nothing new; finish what is in hand within ``grace`` seconds, else give it back."""


def unobserved(claim: object, outcome: str) -> None:
    """The observer of a worker that exports no metrics."""


@dataclass(frozen=True)
class Observers:
    """Who hears how each claim ended, per kind of work (the worker's metrics, when it serves them)."""

    batch: Observer = unobserved
    training: TrainingObserver = unobserved
    purged: PurgeObserver = lambda step: None


UNOBSERVED = Observers()


def batch_work(
    settings: Settings, registry: Registry, poll_seconds: float, observers: Observers = UNOBSERVED
) -> Work:
    """Batch chunks, and purging the finished jobs past their retention."""
    jobs = BatchJobs(
        registry, settings.batch_chunk_size, settings.batch_lease_seconds, settings.batch_retention
    )
    # Each version a job asks for is loaded (and its digest checked) once, then kept.
    return BatchRunner(
        jobs,
        functools.lru_cache(maxsize=4)(registry.load),
        poll_seconds=poll_seconds,
        observe=observers.batch,
        purged=observers.purged,
    )


def training_work(
    settings: Settings, registry: Registry, poll_seconds: float, observers: Observers = UNOBSERVED
) -> Work:
    """Training jobs, each trained in a child process (see :mod:`coe_template.trainer` for why)."""
    jobs = TrainingJobs(registry, settings.training_lease_seconds)
    return TrainingRunner(
        jobs,
        settings.training_data_path,
        poll_seconds=poll_seconds,
        observe=observers.training,
        timeout_seconds=settings.training_timeout_seconds,
    )


#: Every kind of work a worker can take, by name.
KINDS: dict[str, Callable[[Settings, Registry, float, Observers], Work]] = {
    "batch": batch_work,
    "training": training_work,
}


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
    stoppers = [threading.Thread(target=work.stop, args=(grace,), name="stopping") for work in works]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join()
    log.info("worker stopped")
