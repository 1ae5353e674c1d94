"""``GET /metrics``: Prometheus text, every metric of the service and the database's counts.

The metrics and their hooks are defined in :mod:`coe_template.observability` (the worker
process counts into them too). Under gunicorn each worker writes its counts to files in
``PROMETHEUS_MULTIPROC_DIR`` and a scrape, answered by any worker, sums them all (a dead
worker's counters are kept, its live gauges removed by ``child_exit``). Without it (tests,
the CLI) the process's own registry is exported.

Counts that only the database knows (backlog, versions by status) are read here at scrape
time, bounded by a timeout so a stopped database cannot stall a scrape; the live quality of every
labelled version (one GROUP BY over the labels) is read at most once a minute.
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
from coe_template.ledger.quality import Counts, LiveQuality, figures
from coe_template.registry import Registry
from coe_template.registry.training import TrainingJobs
from handlers.bounded import database_calls

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Where the app keeps its :class:`DatabaseCounts`.
EXTENSION = "coe_template.metrics"
#: Seconds a scrape waits for the database's counts before leaving them out.
SCRAPE_DB_TIMEOUT = 2.0
#: Seconds the labelled versions' quality is kept between scrapes: each read scans every label.
QUALITY_CACHE_SECONDS = 60.0
#: Whether prometheus_client chose its multiprocess values when it was imported (the environment
#: could have changed since: what the metrics write decides what a scrape must read).
_MULTIPROCESS = values.ValueClass is not values.MutexValue


class DatabaseCounts(Collector):
    """What only the database knows, read at scrape time: the batch backlog, versions by status, and
    training jobs queued or running (a queue nobody works shows as pending jobs that never go down);
    and the disk the registry uses (its database, this host's model store), each read apart, so one
    that does not answer leaves out only its own samples."""

    def __init__(
        self,
        registry: Registry,
        batch: BatchJobs,
        training: TrainingJobs,
        timeout: float = SCRAPE_DB_TIMEOUT,
        quality: LiveQuality | None = None,
        quality_seconds: float = QUALITY_CACHE_SECONDS,
    ) -> None:
        self.registry = registry
        self.batch = batch
        self.training = training
        self.timeout = timeout
        #: Each labelled version's live quality: read at most every ``quality_seconds`` (a scan of the labels).
        self.quality = quality
        self.quality_seconds = quality_seconds
        self._quality: tuple[float, dict[tuple[str, int], Counts]] | None = None

    def _read(self) -> tuple[dict[str, tuple[int, int, int]], dict[tuple[str, str], int], dict[str, int]]:
        return self.batch.backlog(), self.registry.version_counts(), self.training.counts()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # All begun at once: a hung database holds the scrape for one timeout, not one per call.
        deadline = time.monotonic() + self.timeout
        database = database_calls.start(f"database-bytes-{id(self)}", self.registry.database_bytes)
        store = database_calls.start(f"store-bytes-{id(self)}", self.registry.store_bytes)
        counts = database_calls.start(f"metrics-{id(self)}", self._read)
        labelled = self._labelled()
        yield from self._counts(counts, deadline)
        yield from self._disk(database, store, deadline)
        if labelled is not None:
            yield from self._labelled_quality(labelled, deadline)

    def _labelled(self) -> Future[dict[tuple[str, int], Counts]] | None:
        """The labelled versions' confusion counts: kept ones while fresh, else read afresh."""
        if self.quality is None:
            return None
        kept = self._quality
        if kept is not None and time.monotonic() - kept[0] < self.quality_seconds:
            done: Future[dict[tuple[str, int], Counts]] = Future()
            done.set_result(kept[1])
            return done
        return database_calls.start(f"labelled-{id(self)}", self.quality.by_version)

    def _labelled_quality(
        self, pending: Future[dict[tuple[str, int], Counts]], deadline: float
    ) -> Iterator[GaugeMetricFamily]:
        """Labelled predictions, accuracy and weighted F1 per version; left out if not read in time."""
        found = _within(pending, deadline, "labelled quality")
        if found is None:
            return
        if self._quality is None or self._quality[1] is not found:
            self._quality = (time.monotonic(), found)
        labels = ["model", "version"]
        count = GaugeMetricFamily(
            "coe_model_labelled_predictions", "Predictions on record with a label, per version", labels=labels
        )
        accuracy = GaugeMetricFamily(
            "coe_model_labelled_accuracy", "Accuracy on the labelled predictions, per version", labels=labels
        )
        f1 = GaugeMetricFamily(
            "coe_model_labelled_f1_weighted",
            "Weighted F1 on the labelled predictions, per version",
            labels=labels,
        )
        for (model, version), counts in sorted(found.items()):
            figured = figures(counts)
            if figured is None:
                continue
            key = [model, str(version)]
            count.add_metric(key, figured.labelled)
            accuracy.add_metric(key, figured.accuracy)
            f1.add_metric(key, figured.f1_weighted)
        yield from (count, accuracy, f1)

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
