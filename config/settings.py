"""One settings object, read from environment variables with documented defaults.

Nothing is read at import time: call :meth:`Settings.from_env` (the service's
``wsgi.py`` does) or build :class:`Settings` directly (tests do).

==============================  ===============================================  ====================================
variable                        meaning                                          default
==============================  ===============================================  ====================================
``COE_MODEL_STORE``             directory holding the artifacts of every run     ``<project>/model-store``
``DATABASE_URL``                the registry's database (SQLAlchemy URL)         SQLite file ``registry.db`` in the store
``COE_ARTIFACT_STORE``          where versions' files are kept: ``directory``    ``directory``
                                (``runs`` in the store) or ``db`` (the
                                registry's database; the store is its cache)
``COE_MODEL_NAME``              the model the seed resources serve               ``project-tagger``
``COE_TRAINING_ARGS``           JSON file of default training arguments          ``<project>/config/args.json``
``COE_TRAINING_DATA``           the only CSV the API may train on                the bundled dataset
``COE_ADMIN_KEYS``              comma-separated bearer keys for changes          none: changes are refused
``COE_READ_KEYS``               comma-separated keys that may only read          none
``COE_REFRESH_SECONDS``         how often each worker checks ``production``      ``2``
                                (on PostgreSQL only the fallback: a promotion
                                is announced and every worker swaps at once)
``COE_MAX_BODY_BYTES``          largest request body accepted                    ``1048576`` (1 MiB)
``COE_MAX_UPLOAD_BYTES``        largest body for ``POST /batch-predictions``     ``52428800`` (50 MiB)
``COE_BATCH_CHUNK_SIZE``        items per chunk (one transaction each)           ``1000``
``COE_BATCH_LEASE_SECONDS``     a chunk's lease, renewed every third of it       ``15``
``COE_BATCH_IN_SERVER``         server workers also work batch chunks            ``true``
``COE_BATCH_RETENTION_DAYS``    days a finished batch job (and its results) is   ``7``
                                kept; then whoever works batch chunks removes
                                it; ``never`` keeps every job
``COE_PUBLIC_URL``              the service's public base URL (``https://host``  none: the request's ``Host``, if
                                ``[:port][/prefix]``): the envelope's ``url``    it is a valid host[:port]
``COE_BATCH_MAX_OPEN_ITEMS_``   items one client (its key, else its address)     ``5000000``: one 50 MiB upload
``PER_CLIENT``                  may have in open batch jobs, not yet done;       of tiny rows
                                beyond, ``429``
``COE_BATCH_MAX_OPEN_ITEMS``    items all open batch jobs may hold, not yet      ``20000000`` (~6.6 GB of
                                done; beyond, ``503`` busy                       registry at ~330 B an item)
``COE_VALIDATE_RESPONSES``      check every response against the spec            ``false`` (tests turn it on)
``COE_DB_TIMEOUT``              seconds to connect, run one statement or wait    ``5``
                                for SQLite's write lock; then 503
``COE_DB_POOL_SIZE``            database connections per process: also the most  ``5`` (Connexion has 10 threads)
                                request threads a hung database can hold
``COE_DB_POOL_WAIT``            seconds a request waits for a free connection    ``1``
``COE_MAX_TRAININGS``           versions training at once (queued or running);   ``2``
                                beyond it ``POST .../versions`` answers 503 busy
``COE_TRAINING_IN_SERVER``      server workers also train queued versions        ``true``
``COE_TRAINING_LEASE_SECONDS``  a training job's lease, renewed every third of   ``30``
                                it; a trainer silent this long is presumed dead
``COE_TRAINING_TIMEOUT``        seconds one try at a training may take; then     ``3600``
                                its runner stops it and fails the version
``COE_LOG_FORMAT``              ``text`` (for people) or ``json`` (JSON lines)   ``text``
``COE_LOG_LEVEL``               lowest level written (``DEBUG`` … ``ERROR``)     ``INFO``
``COE_ACCESS_LOG``              one access line per request                      ``true``
``COE_READY_TIMEOUT``           seconds ``/readyz`` waits for the database       ``2``
``COE_REQUIRE_KEYS_FOR_READS``  every operation needs a read or admin key        ``false``: reads and predictions open
                                (probes and the Swagger UI stay open)
``COE_CORS_ORIGINS``            comma-separated origins browsers may call from   none: CORS off
                                (``https://host[:port]``, or ``*``)
``COE_BODY_TIMEOUT``            seconds a request body may take to arrive, plus  ``30``
                                one per ``COE_BODY_MIN_RATE`` bytes it declares
``COE_BODY_MIN_RATE``           bytes per second a long body must keep up        ``1000000``
``COE_HEADER_TIMEOUT``          seconds a client gets to send a request's        ``10``
                                header section (and a new connection its first)
``COE_MAX_HEADER_BYTES``        largest header section (request line included)   ``32768``
``COE_LIMIT_CONCURRENCY``       requests per worker in progress in the app       ``256``
                                (body received); beyond, ``503`` busy; a
                                connection still sending or idle does not count
``COE_MAX_BUFFERED_BYTES``      bytes of request bodies a worker holds at once   twice the larger body limit
                                (reserved from Content-Length); beyond, ``503``  (100 MiB); at least the body limits
``COE_MAX_CONNECTIONS``         open connections per worker; beyond, ``503``     3/4 of the open-file limit
                                                                                 (``ulimit -n``)
``COE_WORKER_METRICS_PORT``     port of ``coe-template worker``'s Prometheus      ``0``: none
                                endpoint (``--metrics-port`` overrides it)
``COE_WORKER_METRICS_ADDR``     address that endpoint listens on                 ``0.0.0.0``
==============================  ===============================================  ====================================
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import resource
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from coe_template.artifacts import ARTIFACT_STORES, DIRECTORY
from coe_template.batch.jobs import CHUNK_SIZE, LEASE_SECONDS
from coe_template.data import bundled_dataset_path
from coe_template.registry.db import DatabaseLimits
from coe_template.registry.training import LEASE_SECONDS as TRAINING_LEASE_SECONDS
from coe_template.registry.training import TIMEOUT_SECONDS as TRAINING_TIMEOUT_SECONDS

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ValueError(f"{name} must be one of {sorted(_TRUE | _FALSE - {''})}, not {value!r}")


def _number(environ: Mapping[str, str], name: str, default: float, kind: type = int) -> float:
    value = environ.get(name)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise ValueError(f"{name} must be a {'whole ' if kind is int else ''}number, not {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive, finite number, not {value!r}")
    return number


def _choice(
    environ: Mapping[str, str],
    name: str,
    default: str,
    choices: tuple[str, ...],
    normalise: Callable[[str], str] = str.lower,
) -> str:
    value = environ.get(name)
    if value is None or not value.strip():
        return default
    if normalise(value.strip()) not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, not {value!r}")
    return normalise(value.strip())


def _keys(environ: Mapping[str, str], name: str) -> frozenset[str]:
    keys = frozenset(k.strip() for k in environ.get(name, "").split(",") if k.strip())
    short = [k for k in keys if len(k) < 16]
    if short:
        raise ValueError(f"{name}: every key must be at least 16 characters long")
    return keys


def _database_url(environ: Mapping[str, str], name: str) -> str | None:
    """A SQLAlchemy URL, or None (unset or empty) for the SQLite default; never echoed (it may hold a password)."""
    value = environ.get(name) or None
    if value is not None:
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError(
                f"{name} is not a database URL (e.g. postgresql+psycopg://user@host/db)"
            ) from None
    return value


#: A plain decimal number: ASCII digits and one optional point (no sign, exponent or underscore).
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", re.ASCII)


def _retention(environ: Mapping[str, str], name: str, default: float | None) -> float | None:
    """Days to keep something: a positive number (fractions allowed), or ``never`` (None)."""
    value = environ.get(name, "").strip()
    if not value:
        return default
    if value.lower() == "never":
        return None
    days = float(value) if _DECIMAL.fullmatch(value) else math.nan
    if not (math.isfinite(days) and days > 0):
        raise ValueError(f"{name} must be a positive number of days, or 'never', not {value!r}")
    return days


#: A DNS host name: dot-separated labels of letters, digits and inner hyphens (an optional final dot).
_HOSTNAME = re.compile(r"(?=.{1,253}\.?$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+", re.ASCII)
#: A path prefix: RFC 3986 segment characters only (no query, no fragment).
_PATH_PREFIX = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*", re.ASCII)


def valid_host(host: str) -> bool:
    """Whether ``host`` is a host name, an IPv4 literal or a bracketed IPv6 literal, with an optional
    port 1-65535: what a ``Host`` header or a public URL may name, and nothing else."""
    name, colon, port = host.rpartition(":") if not host.endswith("]") else ("", "", "")
    if not colon or name.endswith(":"):  # no port (an unbracketed IPv6 address is not a host either)
        name, port = host, ""
    elif not (port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536):
        return False
    if name.startswith("[") and name.endswith("]"):
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            return False
        return True
    return bool(_HOSTNAME.fullmatch(name))


def _public_url(environ: Mapping[str, str], name: str) -> str | None:
    """``http(s)://host[:port][/prefix]`` without a trailing slash, or None (unset or empty)."""
    value = environ.get(name, "").strip()
    if not value:
        return None
    scheme, sep, rest = value.partition("://")
    authority, slash, path = rest.partition("/")
    if scheme not in ("http", "https") or not sep or not valid_host(authority):
        valid = False
    else:
        valid = bool(_PATH_PREFIX.fullmatch(slash + path))
    if not valid:
        raise ValueError(
            f"{name} must be a base URL like https://api.example.com[:port][/prefix] "
            f"(http or https; no credentials, query or fragment), not {value!r}"
        )
    return value.rstrip("/")


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    """A TCP port, or 0 (also unset or empty) for none."""
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or int(value) > 65535:
        raise ValueError(f"{name} must be a port number (1-65535), or 0 for none, not {value!r}")
    return int(value)


#: An origin as browsers send it: scheme, host and optional port; nothing after.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|\*")


def _origins(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    origins = tuple(
        dict.fromkeys(o.strip().rstrip("/") for o in environ.get(name, "").split(",") if o.strip())
    )
    wrong = [o for o in origins if not _ORIGIN.fullmatch(o)]
    if wrong:
        raise ValueError(f"{name}: {wrong[0]!r} is not an origin like https://app.example.com[:port] (or *)")
    return origins


@dataclass(frozen=True)
class Settings:
    model_store: Path = PROJECT_ROOT / "model-store"
    database_url: str | None = None
    artifact_store: str = DIRECTORY
    model_name: str = "project-tagger"
    training_args: Path = PROJECT_ROOT / "config" / "args.json"
    training_data: Path | None = None
    admin_keys: frozenset[str] = frozenset()
    read_keys: frozenset[str] = frozenset()
    refresh_seconds: float = 2.0
    max_body_bytes: int = 1 << 20
    max_upload_bytes: int = 50 << 20
    batch_chunk_size: int = CHUNK_SIZE
    batch_lease_seconds: float = LEASE_SECONDS
    batch_in_server: bool = True
    #: None: finished jobs are kept for ever.
    batch_retention_days: float | None = 7.0
    public_url: str | None = None
    batch_max_open_items_per_client: int = 5_000_000
    batch_max_open_items: int = 20_000_000
    validate_responses: bool = False
    db_timeout: float = DatabaseLimits.timeout
    db_pool_size: int = DatabaseLimits.pool_size
    db_pool_wait: float = DatabaseLimits.pool_wait
    max_trainings: int = 2
    training_in_server: bool = True
    training_lease_seconds: float = TRAINING_LEASE_SECONDS
    training_timeout_seconds: float = TRAINING_TIMEOUT_SECONDS
    log_format: str = "text"
    log_level: str = "INFO"
    access_log: bool = True
    ready_timeout: float = 2.0
    require_keys_for_reads: bool = False
    cors_origins: tuple[str, ...] = ()
    body_timeout: float = 30.0
    body_min_rate: float = 1_000_000.0
    header_timeout: float = 10.0
    max_header_bytes: int = 32 * 1024
    limit_concurrency: int = 256
    max_buffered_bytes: int | None = None
    max_connections: int | None = None
    worker_metrics_port: int = 0
    worker_metrics_addr: str = "0.0.0.0"

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
        defaults = cls()
        return cls(
            model_store=Path(environ.get("COE_MODEL_STORE") or defaults.model_store),
            database_url=_database_url(environ, "DATABASE_URL"),
            artifact_store=_choice(environ, "COE_ARTIFACT_STORE", defaults.artifact_store, ARTIFACT_STORES),
            model_name=environ.get("COE_MODEL_NAME") or defaults.model_name,
            training_args=Path(environ.get("COE_TRAINING_ARGS") or defaults.training_args),
            training_data=Path(environ["COE_TRAINING_DATA"]) if environ.get("COE_TRAINING_DATA") else None,
            admin_keys=_keys(environ, "COE_ADMIN_KEYS"),
            read_keys=_keys(environ, "COE_READ_KEYS"),
            refresh_seconds=_number(environ, "COE_REFRESH_SECONDS", defaults.refresh_seconds, float),
            max_body_bytes=int(_number(environ, "COE_MAX_BODY_BYTES", defaults.max_body_bytes)),
            max_upload_bytes=int(_number(environ, "COE_MAX_UPLOAD_BYTES", defaults.max_upload_bytes)),
            batch_chunk_size=int(_number(environ, "COE_BATCH_CHUNK_SIZE", defaults.batch_chunk_size)),
            batch_lease_seconds=_number(
                environ, "COE_BATCH_LEASE_SECONDS", defaults.batch_lease_seconds, float
            ),
            batch_in_server=_flag(environ, "COE_BATCH_IN_SERVER", defaults.batch_in_server),
            batch_retention_days=_retention(
                environ, "COE_BATCH_RETENTION_DAYS", defaults.batch_retention_days
            ),
            public_url=_public_url(environ, "COE_PUBLIC_URL"),
            batch_max_open_items_per_client=int(
                _number(
                    environ, "COE_BATCH_MAX_OPEN_ITEMS_PER_CLIENT", defaults.batch_max_open_items_per_client
                )
            ),
            batch_max_open_items=int(
                _number(environ, "COE_BATCH_MAX_OPEN_ITEMS", defaults.batch_max_open_items)
            ),
            validate_responses=_flag(environ, "COE_VALIDATE_RESPONSES", defaults.validate_responses),
            db_timeout=_number(environ, "COE_DB_TIMEOUT", defaults.db_timeout, float),
            db_pool_size=int(_number(environ, "COE_DB_POOL_SIZE", defaults.db_pool_size)),
            db_pool_wait=_number(environ, "COE_DB_POOL_WAIT", defaults.db_pool_wait, float),
            max_trainings=int(_number(environ, "COE_MAX_TRAININGS", defaults.max_trainings)),
            training_in_server=_flag(environ, "COE_TRAINING_IN_SERVER", defaults.training_in_server),
            training_lease_seconds=_number(
                environ, "COE_TRAINING_LEASE_SECONDS", defaults.training_lease_seconds, float
            ),
            training_timeout_seconds=_number(
                environ, "COE_TRAINING_TIMEOUT", defaults.training_timeout_seconds, float
            ),
            log_format=_choice(environ, "COE_LOG_FORMAT", defaults.log_format, ("text", "json")),
            log_level=_choice(
                environ,
                "COE_LOG_LEVEL",
                defaults.log_level,
                ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
                str.upper,
            ),
            access_log=_flag(environ, "COE_ACCESS_LOG", defaults.access_log),
            ready_timeout=_number(environ, "COE_READY_TIMEOUT", defaults.ready_timeout, float),
            require_keys_for_reads=_flag(
                environ, "COE_REQUIRE_KEYS_FOR_READS", defaults.require_keys_for_reads
            ),
            cors_origins=_origins(environ, "COE_CORS_ORIGINS"),
            body_timeout=_number(environ, "COE_BODY_TIMEOUT", defaults.body_timeout, float),
            body_min_rate=_number(environ, "COE_BODY_MIN_RATE", defaults.body_min_rate, float),
            header_timeout=_number(environ, "COE_HEADER_TIMEOUT", defaults.header_timeout, float),
            max_header_bytes=int(_number(environ, "COE_MAX_HEADER_BYTES", defaults.max_header_bytes)),
            limit_concurrency=int(_number(environ, "COE_LIMIT_CONCURRENCY", defaults.limit_concurrency)),
            max_buffered_bytes=int(_number(environ, "COE_MAX_BUFFERED_BYTES", 0)) or None,
            max_connections=int(_number(environ, "COE_MAX_CONNECTIONS", 0)) or None,
            worker_metrics_port=_port(environ, "COE_WORKER_METRICS_PORT", defaults.worker_metrics_port),
            worker_metrics_addr=(
                environ.get("COE_WORKER_METRICS_ADDR", "").strip() or defaults.worker_metrics_addr
            ),
        )
