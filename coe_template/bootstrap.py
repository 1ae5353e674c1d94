"""The composition root: every service built from :class:`Settings`, in one place.

The HTTP app (:func:`handlers.app.create_app`), the command line (:mod:`coe_template.cli`)
and the worker process (``coe-template worker``, :mod:`coe_template.worker`) all build their
registry, jobs and runners here, and stop their runners with :func:`stop_all`. Who hears
what the runners did (the metrics) is passed in as :class:`Observers`: this module imports
no metrics library, so the worker can choose where its counts go before one is imported.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Engine

from coe_template.artifacts.runs import Artifacts
from coe_template.batch.jobs import BatchJobs, Quotas
from coe_template.batch.runner import GRACE_SECONDS, BatchRunner, Observer, PurgeObserver
from coe_template.errors import ArtifactUnavailable
from coe_template.ledger.labels import Labels
from coe_template.ledger.quality import LiveQuality
from coe_template.ledger.store import Expiry, ExpiryObserver, Ledger
from coe_template.ledger.writer import LedgerObserver, LedgerWriter
from coe_template.ledger.writer import unobserved as unrecorded
from coe_template.model.args import TrainingArgs, load_args
from coe_template.registry import PRODUCTION, AliasNotFound, ModelNotFound, Registry, RegistryError
from coe_template.registry.training import TrainingJobs
from coe_template.serving import ModelServer
from coe_template.trainer import TrainingObserver, TrainingRunner
from config.logging import configure
from config.settings import Settings


class Work(Protocol):
    """One kind of leased job a process takes, in a thread of its own."""

    def start(self) -> None: ...

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Take nothing new; finish what is in hand within ``grace`` seconds, else give it back."""


def unobserved(claim: object, outcome: str) -> None:
    """The observer of a process that exports no metrics."""


@dataclass(frozen=True)
class Observers:
    """Who hears how each claim ended, per kind of work (the process's metrics, when it serves them)."""

    batch: Observer = unobserved
    training: TrainingObserver = unobserved
    purged: PurgeObserver = lambda step: None
    #: Rows the prediction ledger wrote or dropped, and removed past its retention.
    ledger: LedgerObserver = unrecorded
    expired: ExpiryObserver = lambda rows: None
    #: Given the registry's engine once it is open (to count the driver's errors).
    database: Callable[[Engine], None] = lambda engine: None


UNOBSERVED = Observers()


def configure_logging(settings: Settings) -> logging.Handler:
    """The process's one log handler, in the settings' format and level, their keys masked."""
    return configure(settings.log_format, settings.log_level, settings.admin_keys | settings.read_keys)


def open_registry(settings: Settings) -> Registry:
    return Registry.open(
        settings.db_url, settings.model_store, settings.database_limits, artifacts=settings.artifact_store
    )


def batch_jobs(settings: Settings, registry: Registry, *, quotas: bool = False) -> BatchJobs:
    """Batch jobs; with ``quotas``, creating one is bounded per client and in all (the API's clients)."""
    bounds = (
        Quotas(settings.batch_max_open_items_per_client, settings.batch_max_open_items)
        if quotas
        else Quotas()
    )
    return BatchJobs(
        registry,
        settings.batch_chunk_size,
        settings.batch_lease_seconds,
        settings.batch_retention,
        bounds,
        settings.prediction_log,
    )


def training_jobs(settings: Settings, registry: Registry) -> TrainingJobs:
    return TrainingJobs(registry, settings.training_lease_seconds)


def ledger(settings: Settings, registry: Registry) -> Ledger:
    return Ledger(registry.engine, settings.prediction_retention)


def batch_runner(
    jobs: BatchJobs,
    load: Callable[[str, int], Artifacts],
    observers: Observers = UNOBSERVED,
    poll_seconds: float | None = None,
    predictions: Ledger | None = None,
) -> BatchRunner:
    """Batch chunks, purging the finished jobs past their retention, and the ledger's expired predictions."""
    polling = {} if poll_seconds is None else {"poll_seconds": poll_seconds}
    chores = () if predictions is None else (Expiry(predictions, observe=observers.expired).step,)
    return BatchRunner(jobs, load, observe=observers.batch, purged=observers.purged, chores=chores, **polling)


def training_runner(
    settings: Settings,
    jobs: TrainingJobs,
    observers: Observers = UNOBSERVED,
    poll_seconds: float | None = None,
) -> TrainingRunner:
    """Training jobs, each trained in a child process (see :mod:`coe_template.trainer` for why)."""
    polling = {} if poll_seconds is None else {"poll_seconds": poll_seconds}
    return TrainingRunner(
        jobs,
        settings.training_data_path,
        observe=observers.training,
        timeout_seconds=settings.training_timeout_seconds,
        **polling,
    )


def batch_work(
    settings: Settings, registry: Registry, poll_seconds: float, observers: Observers = UNOBSERVED
) -> Work:
    """A worker's batch runner: each version a job asks for is loaded (its digest checked) once, then kept."""
    return batch_runner(
        batch_jobs(settings, registry),
        functools.lru_cache(maxsize=4)(registry.load),
        observers,
        poll_seconds,
        ledger(settings, registry),
    )


def training_work(
    settings: Settings, registry: Registry, poll_seconds: float, observers: Observers = UNOBSERVED
) -> Work:
    return training_runner(settings, training_jobs(settings, registry), observers, poll_seconds)


#: Every kind of work a worker process can take, by name.
KINDS: dict[str, Callable[[Settings, Registry, float, Observers], Work]] = {
    "batch": batch_work,
    "training": training_work,
}


def stop_all(works: Iterable[Work], grace: float = GRACE_SECONDS) -> None:
    """Stop every runner at once: each finishes what it holds within ``grace``, or gives it back."""
    stoppers = [threading.Thread(target=work.stop, args=(grace,), name="stopping") for work in works]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join()


@dataclass(frozen=True)
class Services:
    """What a serving process holds: the registry, the model it serves, the jobs and their runners."""

    settings: Settings
    registry: Registry
    server: ModelServer
    batch: BatchJobs
    training: TrainingJobs
    #: ``COE_TRAINING_ARGS``, read once at start: what a training request leaves out.
    training_args: TrainingArgs
    #: Labels on the ledger's predictions, and the live quality they give.
    labels: Labels
    quality: LiveQuality
    #: The recorded predictions, read back.
    ledger: Ledger
    batch_runner: BatchRunner = field(compare=False)
    trainer: TrainingRunner = field(compare=False)
    #: Records this process's predictions (COE_PREDICTION_LOG) from a thread of its own.
    recorder: LedgerWriter = field(compare=False)

    def start(self) -> None:
        """Start the model's refresh, the ledger's writer and the runners the settings put in this process."""
        self.server.start()
        self.recorder.start()
        if self.settings.batch_in_server:
            self.batch_runner.start()
        if self.settings.training_in_server:
            self.trainer.start()

    def stop(self) -> None:
        stop_all((self.batch_runner, self.trainer))
        self.server.stop()
        self.recorder.stop()  # last: what was answered until now is written


def serving_services(settings: Settings, observers: Observers = UNOBSERVED) -> Services:
    """The services of a serving process; the ``production`` version is loaded here (before a fork)."""
    registry = open_registry(settings)
    observers.database(registry.engine)
    server = ModelServer(registry, settings.model_name, settings.refresh_seconds)
    try:
        server.refresh()
    except (ModelNotFound, AliasNotFound):
        raise RegistryError(
            f"model {settings.model_name!r} has no {PRODUCTION} version in "
            f"{registry.engine.url.render_as_string(hide_password=True)}: "
            "train one first (`coe-template train`, or `make serve`)"
        ) from None
    except ArtifactUnavailable as exc:
        # Start anyway: every worker keeps polling, so restoring the files (or promoting
        # another version) recovers without a restart. Predictions answer 503 meanwhile.
        server.report_failure(exc)
    # Close what loading used, before gunicorn forks: a pooled connection left open here would be
    # inherited by every worker, which may not close it (it is the parent's) and so held it for good,
    # one connection more than its pool. Each process connects on first use.
    registry.engine.dispose()
    batch = batch_jobs(settings, registry, quotas=True)
    training = training_jobs(settings, registry)
    predictions = ledger(settings, registry)
    return Services(
        settings,
        registry,
        server,
        batch,
        training,
        load_args(settings.training_args),
        Labels(registry.engine),
        LiveQuality(registry.engine),
        predictions,
        # Whoever works batch chunks also purges expired jobs: with COE_BATCH_IN_SERVER=false, only workers.
        batch_runner=batch_runner(
            batch, lambda name, version: server.pinned(name, version).artifacts, observers, None, predictions
        ),
        # Each serving process trains too, in a child process so its serving threads keep the GIL.
        trainer=training_runner(settings, training, observers),
        recorder=LedgerWriter(
            registry.engine, settings.prediction_log, settings.prediction_log_queue, observers.ledger
        ),
    )
