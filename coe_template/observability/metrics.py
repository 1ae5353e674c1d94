"""What the service counts: every metric of the service is defined here (Prometheus, ``prometheus_client``), with the
hooks that count into them: the HTTP layer's (requests, predictions, the model served), the
runners' observers (batch chunks, training tries; the worker process counts with the same,
in its own registry, on its own port) and the database driver's errors (a SQLAlchemy event).
``GET /metrics`` (:mod:`handlers.metrics`) exports them with the counts only the database knows.

Under gunicorn, ``config/gunicorn.py`` points ``PROMETHEUS_MULTIPROC_DIR`` at a directory
before anything imports ``prometheus_client``: import this module only once that is decided
(``coe-template worker`` removes the variable first). It imports no web framework.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext

from coe_template.batch.jobs import PurgeStep
from coe_template.batch.runner import Claim
from coe_template.model.predict import Prediction
from coe_template.registry.training import TrainingClaim
from coe_template.serving import Served

#: Latency buckets (seconds): one short text takes ~1 ms, a 64-text request tens of ms.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

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
PREDICTIONS_LOGGED = Counter(
    "coe_predictions_logged", "Predictions this process wrote to the prediction ledger (COE_PREDICTION_LOG)"
)
PREDICTIONS_LOG_DROPPED = Counter(
    "coe_predictions_log_dropped",
    "Predictions answered but not recorded in the ledger, by reason (queue_full: COE_PREDICTION_LOG_QUEUE "
    "rows already waiting; database: the batch could not be written)",
    ["reason"],
)
PREDICTIONS_EXPIRED = Counter(
    "coe_predictions_expired",
    "Predictions this process's runners removed from the ledger past COE_PREDICTION_RETENTION_DAYS",
)
DATABASE_ERRORS = Counter(
    "coe_database_errors", "Errors the database driver raised, by SQLAlchemy error class", ["error"]
)

# Label children, cached: ``labels()`` takes a lock and builds a key on every call.
_requests: dict[tuple[str, int], Counter] = {}
_latency: dict[str, Histogram] = {}
_predictions: dict[tuple[str, int, str], Counter] = {}


def observe_request(operation: str, status: int, seconds: float) -> None:
    """Count one answered request (called by :class:`handlers.middleware.observe.Observe` only)."""
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


def ledger(outcome: str, rows: int) -> None:
    """A :class:`~coe_template.ledger.writer.LedgerWriter` observer: rows ``logged``, or dropped for a reason."""
    if outcome == "logged":
        PREDICTIONS_LOGGED.inc(rows)
    else:
        PREDICTIONS_LOG_DROPPED.labels(outcome).inc(rows)


def expired(rows: int) -> None:
    """An :class:`~coe_template.ledger.store.Expiry` observer."""
    PREDICTIONS_EXPIRED.inc(rows)


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
