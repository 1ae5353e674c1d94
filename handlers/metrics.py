"""``GET /metrics``: Prometheus text, every metric of the service defined here.

Under gunicorn, ``config/gunicorn.py`` points ``PROMETHEUS_MULTIPROC_DIR`` at a
directory before anything imports ``prometheus_client``: each worker then writes
its counts to files there and a scrape, answered by any worker, sums them all
(a dead worker's counters are kept, its live gauges removed by ``child_exit``).
Without it (tests, the CLI) the process's own registry is exported.

``coe-template worker`` (batch and training in a process of its own) counts its chunks, items,
training tries and database errors with the same metrics and hooks, in its own registry, served
on its own port (``COE_WORKER_METRICS_PORT``): this module imports no web framework at module
level for that reason.

The domain stays free of all this: it offers hooks (``ModelServer.listeners``,
``BatchRunner(observe=...)``, SQLAlchemy's ``handle_error`` event) and counts that
only the database knows (backlog, versions by status) are read at scrape time,
bounded by a timeout so a stopped database cannot stall a scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext

from coe_template.batch.jobs import BatchJobs, PurgeStep
from coe_template.batch.runner import Claim
from coe_template.predict import Prediction
from coe_template.registry import Registry
from coe_template.registry.training import TrainingClaim, TrainingJobs
from coe_template.serving import Served
from handlers.bounded import database_calls

if TYPE_CHECKING:
    from connexion.lifecycle import ConnexionResponse

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Latency buckets (seconds): one short text takes ~1 ms, a 64-text request tens of ms.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Where the app keeps its :class:`DatabaseCounts`.
EXTENSION = "coe_template.metrics"
#: Seconds a scrape waits for the database's counts before leaving them out.
SCRAPE_DB_TIMEOUT = 2.0

REQUESTS = Counter(
    "coe_http_requests",
    "HTTP requests answered, by operation (the spec's operationId) and status",
    ["operation", "status"],
)
LATENCY = Histogram(
    "coe_http_request_duration_seconds",
    "Time to answer a request, by operation",
    ["operation"],
    buckets=BUCKETS,
)
PREDICTIONS = Counter(
    "coe_predictions",
    "Texts tagged in real time, by model, version and predicted tag",
    ["model", "version", "tag"],
)
SERVED = Gauge(
    "coe_model_version_served",
    "The production version each worker process serves",
    ["model"],
    multiprocess_mode="liveall",
)
BATCH_CHUNKS = Counter(
    "coe_batch_chunks",
    "Batch chunks this service's runners finished with, by outcome "
    "(done: stored; dropped: lease or job gone; failed: its job failed)",
    ["outcome"],
)
BATCH_ITEMS = Counter("coe_batch_items", "Batch items predicted and stored")
BATCH_PURGED = Counter(
    "coe_batch_jobs_purged",
    "Finished batch jobs this process's runners removed, with their results, past COE_BATCH_RETENTION_DAYS",
)
TRAINING_ATTEMPTS = Counter(
    "coe_training_attempts",
    "Tries at training jobs this process's runners ended, by "
    "outcome (done: version ready; failed: version failed; dropped: lease lost; given "
    "back: stopping)",
    ["outcome"],
)
TRAINING_REFUSALS = Counter(
    "coe_training_refusals",
    "Training requests refused, by reason (busy: COE_MAX_TRAININGS versions already queued or training)",
    ["reason"],
)
DATABASE_ERRORS = Counter(
    "coe_database_errors", "Errors the database driver raised, by SQLAlchemy error class", ["error"]
)

#: Whether prometheus_client chose its multiprocess values when it was imported (the environment
#: could have changed since: what the metrics write decides what a scrape must read).
_MULTIPROCESS = values.ValueClass is not values.MutexValue

# Label children, cached: ``labels()`` takes a lock and builds a key on every call.
_requests: dict[tuple[str, int], Counter] = {}
_latency: dict[str, Histogram] = {}
_predictions: dict[tuple[str, int, str], Counter] = {}


def observe_request(operation: str, status: int, seconds: float) -> None:
    """Count one answered request (called by :class:`handlers.observe.Observe` only)."""
    counter = _requests.get((operation, status))
    if counter is None:
        counter = _requests[(operation, status)] = REQUESTS.labels(operation, str(status))
    counter.inc()
    histogram = _latency.get(operation)
    if histogram is None:
        histogram = _latency[operation] = LATENCY.labels(operation)
    histogram.observe(seconds)


def predicted(served: Served, predictions: Iterable[Prediction]) -> None:
    for prediction in predictions:
        key = (served.name, served.version, prediction["predicted_tag"])
        counter = _predictions.get(key)
        if counter is None:
            counter = _predictions[key] = PREDICTIONS.labels(served.name, str(served.version), key[2])
        counter.inc()


def serving(served: Served) -> None:
    """A :attr:`ModelServer.listeners` hook: this worker now serves ``served``."""
    SERVED.labels(served.name).set(served.version)


def batch_chunk(claim: Claim, outcome: str) -> None:
    """A :class:`BatchRunner` observer."""
    BATCH_CHUNKS.labels(outcome).inc()
    if outcome == "done":
        BATCH_ITEMS.inc(len(claim.items))


def batch_purge(step: PurgeStep) -> None:
    """A :class:`BatchRunner` purge observer: counts the jobs gone."""
    if step.done:
        BATCH_PURGED.inc()


def training_job(claim: TrainingClaim, outcome: str) -> None:
    """A :class:`TrainingRunner` observer."""
    TRAINING_ATTEMPTS.labels(outcome).inc()


def training_refused(reason: str) -> None:
    """A training request refused (``busy``): logged at INFO, so counted here."""
    TRAINING_REFUSALS.labels(reason).inc()


def count_database_errors(engine: Engine) -> None:
    """Count every error the engine's driver raises, in requests and background threads alike.

    First among the engine's listeners: the registry's own turns the error into a domain
    error by raising, and SQLAlchemy calls no listener after one that raises.
    """

    @event.listens_for(engine, "handle_error", insert=True)
    def _count(context: ExceptionContext) -> None:
        DATABASE_ERRORS.labels(type(context.sqlalchemy_exception).__name__).inc()


class DatabaseCounts(Collector):
    """What only the database knows, read at scrape time: the batch backlog, versions by status, and
    training jobs queued or running (a queue nobody works shows as pending jobs that never go down);
    and the disk the registry uses (its database, this host's model store), each read apart, so one
    that does not answer leaves out only its own samples."""

    def __init__(
        self, registry: Registry, batch: BatchJobs, training: TrainingJobs, timeout: float = SCRAPE_DB_TIMEOUT
    ) -> None:
        self.registry = registry
        self.batch = batch
        self.training = training
        self.timeout = timeout

    def _read(self) -> tuple[dict[str, tuple[int, int, int]], dict[tuple[str, str], int], dict[str, int]]:
        return self.batch.backlog(), self.registry.version_counts(), self.training.counts()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # All begun at once: a hung database holds the scrape for one timeout, not one per call.
        deadline = time.monotonic() + self.timeout
        database = database_calls.start(f"database-bytes-{id(self)}", self.registry.database_bytes)
        store = database_calls.start(f"store-bytes-{id(self)}", self.registry.store_bytes)
        counts = database_calls.start(f"metrics-{id(self)}", self._read)
        yield from self._counts(counts, deadline)
        yield from self._disk(database, store, deadline)

    def _disk(
        self, database: Future[int | None], store: Future[dict[str, int]], deadline: float
    ) -> Iterator[GaugeMetricFamily]:
        """The registry's disk; a size not read in time (or at all) is left out: no sample."""
        size = GaugeMetricFamily(
            "coe_registry_database_bytes",
            "Bytes of the registry's database: SQLite's file and its -wal; PostgreSQL: our tables in our schema",
        )
        if (found := _within(database, deadline, "database size")) is not None:
            size.add_metric([], found)
        yield size
        directories = GaugeMetricFamily(
            "coe_model_store_bytes",
            "Bytes of this host's model store, by directory: runs (versions' files), cache (COE_ARTIFACT_STORE=db)",
            labels=["dir"],
        )
        for name, n in (_within(store, deadline, "model store size") or {}).items():
            directories.add_metric([name], n)
        yield directories

    def _counts(self, pending: Future[tuple], deadline: float) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("coe_database_up", "1 if the database answered this scrape's queries in time")
        try:
            backlog, versions, training = pending.result(timeout=max(deadline - time.monotonic(), 0))
        except Exception as exc:  # noqa: BLE001 - a scrape reports the database down, it does not fail
            log.warning("metrics: database counts left out: %s", exc or type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily("coe_batch_jobs", "Batch jobs not finished, by status", labels=["status"])
        items = GaugeMetricFamily("coe_batch_queue_items", "Items of unfinished batch jobs not yet predicted")
        chunks = GaugeMetricFamily("coe_batch_queue_chunks", "Chunks of unfinished batch jobs not yet done")
        for status, (n_jobs, _, _) in sorted(backlog.items()):
            jobs.add_metric([status], n_jobs)
        items.add_metric([], sum(n for _, n, _ in backlog.values()))
        chunks.add_metric([], sum(n for _, _, n in backlog.values()))
        yield from (jobs, items, chunks)
        runs = GaugeMetricFamily(
            "coe_model_versions",
            "Versions (training runs) per model and status: training, ready, failed, archived",
            labels=["model", "status"],
        )
        for (model, status), n in sorted(versions.items()):
            runs.add_metric([model, status], n)
        yield runs
        trainings = GaugeMetricFamily(
            "coe_training_jobs",
            "Training jobs not finished, by status: pending (queued, no runner has taken it) or running",
            labels=["status"],
        )
        for status in ("pending", "running"):
            trainings.add_metric([status], training.get(status, 0))
        yield trainings


def _within(pending: Future[T], deadline: float, what: str) -> T | None:
    """The call's result if it came by ``deadline``; None (logged) if it failed or is still running."""
    try:
        return pending.result(timeout=max(deadline - time.monotonic(), 0))
    except Exception as exc:  # noqa: BLE001 - a scrape leaves the value out, it does not fail
        log.warning("metrics: %s left out: %s", what, exc or type(exc).__name__)
        return None


def exposition(database: Collector) -> bytes:
    """Every worker's metrics (or this process's), then the database's counts."""
    if _MULTIPROCESS:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(database)


def get() -> ConnexionResponse:
    # Imported here: the worker (``coe-template worker --metrics-port``) counts with this module's
    # metrics and hooks and should not load the web stack for it.
    from connexion.lifecycle import ConnexionResponse
    from flask import current_app

    # A response object: Connexion would refuse a content type with parameters the spec's key lacks.
    # Werkzeug appends the charset to a text/* type itself.
    return ConnexionResponse(
        status_code=200,
        body=exposition(current_app.extensions[EXTENSION]),
        content_type=CONTENT_TYPE_PLAIN_0_0_4.removesuffix("; charset=utf-8"),
    )
