"""The service's settings: every environment variable it reads, each declared once, here.

A declaration is one field: ``env(name, default, parser, meaning[, default in words])``. From it come
:meth:`Settings.from_env`, the validation errors (the parser's, naming the variable; see
:mod:`config.variables`) and the configuration reference (``docs/configuration.md``, rendered by
``docs/macros.py`` when the site is built). :class:`ServerSettings` declares what
``config/gunicorn.py`` reads the same way.

Nothing is read at import time: call :meth:`Settings.from_env` (the service's ``wsgi.py`` does) or
build :class:`Settings` directly (tests do). Defaults the domain owns (leases, chunk size, database
limits) are imported from it: config depends on the domain, never the other way round.

Why not pydantic-settings: its errors are its own (``Input should be greater than 0`` and a location
list), while these are pinned by tests and read by operators; keeping them would take a validator per
variable anyway, so a few parsers over dataclass field metadata do it, with nothing to install.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from coe_template.artifacts.stores import ARTIFACT_STORES, DIRECTORY
from coe_template.batch.jobs import CHUNK_SIZE, LEASE_SECONDS
from coe_template.ledger.modes import LogMode
from coe_template.ledger.writer import QUEUE_SIZE
from coe_template.model.data import bundled_dataset_path
from coe_template.registry.db import DatabaseLimits
from coe_template.registry.training import LEASE_SECONDS as TRAINING_LEASE_SECONDS
from coe_template.registry.training import TIMEOUT_SECONDS as TRAINING_TIMEOUT_SECONDS
from config.variables import (
    DATABASE,
    FLAG,
    KEYS,
    NUMBER,
    ORIGINS,
    PATH,
    PORT,
    PREDICTION_LOG,
    PUBLIC_URL,
    RETENTION,
    SECONDS,
    STRIPPED,
    TEXT,
    WHOLE,
    choice,
    env,
    read,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """The app's settings (server, worker and CLI alike)."""

    model_store: Path = env(
        "COE_MODEL_STORE", PROJECT_ROOT / "model-store", PATH,
        "directory holding the artifacts of every run", "`./model-store`",
    )  # fmt: skip
    database_url: str | None = env(
        "DATABASE_URL", None, DATABASE,
        "the registry's database (SQLAlchemy URL, e.g. `postgresql+psycopg://…`)",
        "SQLite `registry.db` in the store",
    )  # fmt: skip
    artifact_store: str = env(
        "COE_ARTIFACT_STORE", DIRECTORY, choice(ARTIFACT_STORES),
        "where versions' files are kept: `directory` (`runs/` in the model store) or `db` (the "
        "registry's database; the model store is then only a cache)",
    )  # fmt: skip
    model_name: str = env("COE_MODEL_NAME", "project-tagger", TEXT, "the model the seed resources serve")
    training_args: Path = env(
        "COE_TRAINING_ARGS", PROJECT_ROOT / "config" / "args.json", PATH,
        "JSON file of default training arguments", "`config/args.json`",
    )  # fmt: skip
    training_data: Path | None = env(
        "COE_TRAINING_DATA", None, PATH, "the only CSV the API may train on", "the bundled dataset"
    )
    admin_keys: frozenset[str] = env(
        "COE_ADMIN_KEYS", frozenset(), KEYS,
        "bearer keys that may change the registry and cancel or delete any batch job",
        "none: changes are refused",
    )  # fmt: skip
    read_keys: frozenset[str] = env(
        "COE_READ_KEYS", frozenset(), KEYS, "keys that may only read (403 on a change)"
    )
    refresh_seconds: float = env(
        "COE_REFRESH_SECONDS", 2.0, NUMBER,
        "how often each worker checks where `production` points; on PostgreSQL only the fallback: a "
        "promotion is announced (`LISTEN/NOTIFY`) and every worker swaps within a fraction of a second",
    )  # fmt: skip
    max_body_bytes: int = env(
        "COE_MAX_BODY_BYTES", 1 << 20, WHOLE, "largest request body accepted", "`1048576` (1 MiB)"
    )
    max_upload_bytes: int = env(
        "COE_MAX_UPLOAD_BYTES", 50 << 20, WHOLE,
        "largest CSV body (`text/csv` or a multipart upload) of `POST /batch-predictions`: read and stored "
        "a chunk at a time", "`52428800` (50 MiB)",
    )  # fmt: skip
    max_json_batch_bytes: int = env(
        "COE_MAX_JSON_BATCH_BYTES", 8 << 20, WHOLE,
        "largest JSON body of `POST /batch-predictions` (at most `COE_MAX_UPLOAD_BYTES`): the validator parses "
        "it whole, in the event loop, into ~15 times its size for the tiniest items; a bigger batch goes as CSV, "
        "which streams",
        "`8388608` (8 MiB)",
    )  # fmt: skip
    batch_chunk_size: int = env(
        "COE_BATCH_CHUNK_SIZE", CHUNK_SIZE, WHOLE, "items per chunk, each stored in one transaction"
    )
    batch_lease_seconds: float = env(
        "COE_BATCH_LEASE_SECONDS", LEASE_SECONDS, NUMBER,
        "a chunk's lease, renewed every third of it while the chunk is worked",
    )  # fmt: skip
    batch_in_server: bool = env(
        "COE_BATCH_IN_SERVER", True, FLAG,
        "server workers also work batch chunks (`false` in production, beside `coe-template worker`)",
    )  # fmt: skip
    #: None: finished jobs are kept for ever.
    batch_retention_days: float | None = env(
        "COE_BATCH_RETENTION_DAYS", 7.0, RETENTION,
        "days a finished batch job and its results are kept after `finished_at` (its `expires_at`); "
        "then whoever works batch chunks removes it in bounded steps; `never` keeps every job",
    )  # fmt: skip
    prediction_log: LogMode = env(
        "COE_PREDICTION_LOG", LogMode(), PREDICTION_LOG,
        "what the prediction ledger keeps of each prediction: `off` nothing; `hash` its id, time, model, "
        "version, alias, tag, probabilities, latency, request and correlation ids and the text's sha256; "
        "`full` the text too; `sample:<fraction>` a random share of predictions, each kept as in `hash` "
        "(see the prediction ledger's page)",
        "`hash`",
    )  # fmt: skip
    prediction_log_queue: int = env(
        "COE_PREDICTION_LOG_QUEUE", QUEUE_SIZE, WHOLE,
        "predictions a server process holds for the ledger before writing them in a batch; when full, "
        "further ones are not recorded (counted in `coe_predictions_log_dropped_total`)",
    )  # fmt: skip
    #: None: predictions are kept for ever.
    prediction_retention_days: float | None = env(
        "COE_PREDICTION_RETENTION_DAYS", 30.0, RETENTION,
        "days the ledger keeps a prediction; then whoever works batch chunks removes it in bounded "
        "steps; `never` keeps every one",
    )  # fmt: skip
    public_url: str | None = env(
        "COE_PUBLIC_URL", None, PUBLIC_URL,
        "the service's public base URL, the base of the envelope's `url`; unset, a valid `Host` "
        "header is used, else the `url` is relative",
    )  # fmt: skip
    batch_max_open_items_per_client: int = env(
        "COE_BATCH_MAX_OPEN_ITEMS_PER_CLIENT", 6_000_000, WHOLE,
        "items one client (its bearer key if one of ours, else its address) may have in queued or "
        "running batch jobs, not yet done; beyond, 429",
        "`6000000`: one 50 MiB upload of the tiniest rows (~9 bytes each)",
    )  # fmt: skip
    batch_max_open_items: int = env(
        "COE_BATCH_MAX_OPEN_ITEMS", 24_000_000, WHOLE,
        "items all queued or running batch jobs may hold, not yet done; beyond, 503 busy",
        "`24000000`: four such clients, ~8 GB of registry at the ~330 bytes an item took in issue "
        "18's run; lower it for a smaller disk",
    )  # fmt: skip
    validate_responses: bool = env(
        "COE_VALIDATE_RESPONSES", False, FLAG,
        "check every response against the spec", "`false` (tests turn it on)",
    )  # fmt: skip
    db_timeout: float = env(
        "COE_DB_TIMEOUT", DatabaseLimits.timeout, NUMBER,
        "seconds to connect, run one statement or wait for SQLite's write lock; then 503",
    )  # fmt: skip
    db_pool_size: int = env(
        "COE_DB_POOL_SIZE", DatabaseLimits.pool_size, WHOLE,
        "database connections per process: also the most request threads a hung database can hold",
        f"`{DatabaseLimits.pool_size}` (Connexion has 10 threads)",
    )  # fmt: skip
    db_pool_wait: float = env(
        "COE_DB_POOL_WAIT", DatabaseLimits.pool_wait, NUMBER,
        "seconds a request waits for a free connection; then 503",
    )  # fmt: skip
    max_trainings: int = env(
        "COE_MAX_TRAININGS", 2, WHOLE,
        "versions training at once (queued or running), across all models; beyond it "
        "`POST …/versions` answers 503 `/problems/busy`",
    )  # fmt: skip
    training_in_server: bool = env(
        "COE_TRAINING_IN_SERVER", True, FLAG,
        "server workers also train queued versions, each in a child process (`false` beside "
        "`coe-template worker`)",
    )  # fmt: skip
    training_lease_seconds: float = env(
        "COE_TRAINING_LEASE_SECONDS", TRAINING_LEASE_SECONDS, NUMBER,
        "a training job's lease, renewed every third of it; a trainer that stops renewing is presumed "
        "dead and its job retried once",
    )  # fmt: skip
    training_timeout_seconds: float = env(
        "COE_TRAINING_TIMEOUT", TRAINING_TIMEOUT_SECONDS, NUMBER,
        "seconds one try at a training may take; its runner then stops the training process and fails "
        "the version (`training took longer than N s …`)",
    )  # fmt: skip
    log_format: str = env(
        "COE_LOG_FORMAT",
        "text",
        choice(("text", "json")),
        "`text` (for people) or `json` (one object a line)",
    )
    log_level: str = env(
        "COE_LOG_LEVEL", "INFO", choice(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), str.upper),
        "lowest level written",
    )  # fmt: skip
    access_log: bool = env("COE_ACCESS_LOG", True, FLAG, "one access line per request")
    ready_timeout: float = env("COE_READY_TIMEOUT", 2.0, NUMBER, "seconds `/readyz` waits for the database")
    require_keys_for_reads: bool = env(
        "COE_REQUIRE_KEYS_FOR_READS", False, FLAG,
        "every operation needs a read or admin key (the probes and the Swagger UI stay open)",
        "`false`: reads and predictions open",
    )  # fmt: skip
    cors_origins: tuple[str, ...] = env(
        "COE_CORS_ORIGINS", (), ORIGINS, "origins browsers may call from", "none: CORS off"
    )
    body_timeout: float = env(
        "COE_BODY_TIMEOUT", 30.0, NUMBER,
        "seconds a request body may take to arrive, plus one per `COE_BODY_MIN_RATE` bytes it "
        "declares; then 408",
    )  # fmt: skip
    body_min_rate: float = env(
        "COE_BODY_MIN_RATE", 1_000_000.0, NUMBER, "bytes per second a long body must keep up"
    )
    header_timeout: float = env(
        "COE_HEADER_TIMEOUT", 10.0, NUMBER,
        "seconds a client gets to send a request's header section (and a new connection its first); "
        "then 408, or the idle connection is closed",
    )  # fmt: skip
    max_header_bytes: int = env(
        "COE_MAX_HEADER_BYTES", 32 * 1024, WHOLE, "largest header section, request line included; then 431"
    )
    limit_concurrency: int = env(
        "COE_LIMIT_CONCURRENCY", 256, WHOLE,
        "requests per worker whose body is in and that run in the app (slow or idle connections do "
        "not count); beyond it 503 `/problems/busy`",
    )  # fmt: skip
    max_buffered_bytes: int | None = env(
        "COE_MAX_BUFFERED_BYTES", None, WHOLE,
        "request body bytes a worker holds at once (reserved from Content-Length); beyond it 503 "
        "`/problems/busy`; at least the body limits",
        "twice the larger body limit (100 MiB)",
    )  # fmt: skip
    max_connections: int | None = env(
        "COE_MAX_CONNECTIONS", None, WHOLE,
        "open connections per worker; beyond it 503 `/problems/busy`", "3/4 of `ulimit -n`",
    )  # fmt: skip
    worker_metrics_port: int = env(
        "COE_WORKER_METRICS_PORT", 0, PORT,
        "port of `coe-template worker`'s Prometheus endpoint (`--metrics-port` overrides it)",
        "`0`: none",
    )  # fmt: skip
    worker_metrics_addr: str = env(
        "COE_WORKER_METRICS_ADDR", "0.0.0.0", STRIPPED, "address that endpoint listens on"
    )

    def __post_init__(self) -> None:
        if self.require_keys_for_reads and not (self.admin_keys or self.read_keys):
            raise ValueError(
                "COE_REQUIRE_KEYS_FOR_READS=true needs keys: set COE_READ_KEYS or COE_ADMIN_KEYS"
            )
        if self.body_budget_bytes < max(self.max_upload_bytes, self.max_body_bytes):
            raise ValueError(
                "COE_MAX_BUFFERED_BYTES must be at least COE_MAX_UPLOAD_BYTES and COE_MAX_BODY_BYTES: "
                "a body within the limits could never be accepted"
            )

    @property
    def body_budget_bytes(self) -> int:
        """Bytes of bodies one worker may buffer: by default two full uploads at once (plus small bodies)."""
        return self.max_buffered_bytes or 2 * max(self.max_upload_bytes, self.max_body_bytes)

    @property
    def connection_limit(self) -> int:
        """Open connections per worker: by default 3/4 of the descriptors the process may open,
        so a flood is answered before accept() fails for want of one (the rest: files, database)."""
        if self.max_connections:
            return self.max_connections
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return max(64, soft * 3 // 4) if soft != resource.RLIM_INFINITY else 65536

    @property
    def batch_retention(self) -> timedelta | None:
        """How long a finished batch job is kept (None: for ever)."""
        return None if self.batch_retention_days is None else timedelta(days=self.batch_retention_days)

    @property
    def prediction_retention(self) -> timedelta | None:
        """How long the ledger keeps a prediction (None: for ever)."""
        return (
            None if self.prediction_retention_days is None else timedelta(days=self.prediction_retention_days)
        )

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.model_store / 'registry.db'}"

    @property
    def database_limits(self) -> DatabaseLimits:
        return DatabaseLimits(
            timeout=self.db_timeout, pool_size=self.db_pool_size, pool_wait=self.db_pool_wait
        )

    @property
    def training_data_path(self) -> Path:
        return self.training_data or bundled_dataset_path()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Each declared variable that is set, parsed (a bad value raises ValueError naming it); the rest default."""
        return read(cls, environ)


@dataclass(frozen=True)
class ServerSettings:
    """What ``config/gunicorn.py`` reads: the server process's settings, before and around the app."""

    bind: str = env("COE_BIND", "0.0.0.0:8000", TEXT, "address to listen on")
    workers: int = env("WEB_CONCURRENCY", os.cpu_count() or 1, WHOLE, "worker processes", "one per core")
    graceful: int = env(
        "COE_GRACEFUL", 30, SECONDS,
        "seconds in-flight requests get on `SIGTERM`; gunicorn's `graceful_timeout` is this + 5 s for "
        "the app's own shutdown",
    )  # fmt: skip
    #: Read by ``config/gunicorn.py`` itself, before the app (and prometheus_client) is imported.
    metrics_dir: str | None = env(
        "PROMETHEUS_MULTIPROC_DIR", None, TEXT,
        "where the workers' metrics files live; emptied at start; one per instance",
        "a temporary directory of its own, removed on exit",
    )  # fmt: skip
    control_socket: str | None = env(
        "COE_CONTROL_SOCKET", None, TEXT,
        "path of gunicorn's control socket (for `gunicornc`); one per instance", "none: no socket",
    )  # fmt: skip

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ServerSettings:
        return read(cls, environ)
