"""``GET /metrics``: Prometheus text, every metric of the service and the database's counts.

The metrics and their hooks are defined in :mod:`coe_template.observability` (the worker
process counts into them too). Under gunicorn each worker writes its counts to files in
``PROMETHEUS_MULTIPROC_DIR`` and a scrape, answered by any worker, sums them all (a dead
worker's counters are kept, its live gauges removed by ``child_exit``). Without it (tests,
the CLI) the process's own registry is exported.

Counts that only the database knows (backlog, versions by status) are read here at scrape
time, bounded by a timeout so a stopped database cannot stall a scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import TypeVar

from connexion.lifecycle import ConnexionResponse
from flask import current_app
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, CollectorRegistry, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from coe_template.batch.jobs import BatchJobs
from coe_template.registry import Registry
from coe_template.registry.training import TrainingJobs
from handlers.bounded import database_calls

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Where the app keeps its :class:`DatabaseCounts`.
EXTENSION = "coe_template.metrics"
#: Seconds a scrape waits for the database's counts before leaving them out.
SCRAPE_DB_TIMEOUT = 2.0
#: Whether prometheus_client chose its multiprocess values when it was imported (the environment
#: could have changed since: what the metrics write decides what a scrape must read).
_MULTIPROCESS = values.ValueClass is not values.MutexValue


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
    # A response object: Connexion would refuse a content type with parameters the spec's key lacks.
    # Werkzeug appends the charset to a text/* type itself.
    return ConnexionResponse(
        status_code=200,
        body=exposition(current_app.extensions[EXTENSION]),
        content_type=CONTENT_TYPE_PLAIN_0_0_4.removesuffix("; charset=utf-8"),
    )
