"""One settings object, read from environment variables with documented defaults.

Nothing is read at import time: call :meth:`Settings.from_env` (the service's
``wsgi.py`` does) or build :class:`Settings` directly (tests do).

==========================  ===============================================  ====================================
variable                    meaning                                          default
==========================  ===============================================  ====================================
``COE_MODEL_STORE``         directory holding the artifacts of every run     ``<project>/model-store``
``DATABASE_URL``            the registry's database (SQLAlchemy URL)         SQLite file ``registry.db`` in the store
``COE_MODEL_NAME``          the model the seed resources serve               ``project-tagger``
``COE_TRAINING_ARGS``       JSON file of default training arguments          ``<project>/config/args.json``
``COE_TRAINING_DATA``       the only CSV the API may train on                the bundled dataset
``COE_ADMIN_KEYS``          comma-separated bearer keys for changes          none: changes are refused
``COE_READ_KEYS``           comma-separated keys that may only read          none
``COE_REFRESH_SECONDS``     how often each worker checks ``production``      ``2``
``COE_MAX_BODY_BYTES``      largest request body accepted                    ``1048576`` (1 MiB)
``COE_MAX_UPLOAD_BYTES``    largest body for ``POST /batch-predictions``     ``52428800`` (50 MiB)
``COE_BATCH_CHUNK_SIZE``    items per chunk (one transaction each)           ``1000``
``COE_BATCH_LEASE_SECONDS`` how long a worker holds a chunk before others    ``60``
``COE_BATCH_IN_SERVER``     server workers also work batch chunks            ``true``
``COE_VALIDATE_RESPONSES``  check every response against the spec            ``false`` (tests turn it on)
``COE_BODY_TIMEOUT``        seconds a request body may take to arrive, plus  ``30``
                            one per ``COE_BODY_MIN_RATE`` bytes it declares
``COE_BODY_MIN_RATE``       bytes per second a long body must keep up        ``1000000``
``COE_HEADER_TIMEOUT``      seconds a client gets to send a request's        ``10``
                            header section (and a new connection its first)
``COE_MAX_HEADER_BYTES``    largest header section (request line included)   ``32768``
``COE_LIMIT_CONCURRENCY``   open connections per worker; beyond, ``503``     ``256``
==========================  ===============================================  ====================================
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from coe_template.data import bundled_dataset_path

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


def _keys(environ: Mapping[str, str], name: str) -> frozenset[str]:
    keys = frozenset(k.strip() for k in environ.get(name, "").split(",") if k.strip())
    short = [k for k in keys if len(k) < 16]
    if short:
        raise ValueError(f"{name}: every key must be at least 16 characters long")
    return keys


@dataclass(frozen=True)
class Settings:
    model_store: Path = PROJECT_ROOT / "model-store"
    database_url: str | None = None
    model_name: str = "project-tagger"
    training_args: Path = PROJECT_ROOT / "config" / "args.json"
    training_data: Path | None = None
    admin_keys: frozenset[str] = frozenset()
    read_keys: frozenset[str] = frozenset()
    refresh_seconds: float = 2.0
    max_body_bytes: int = 1 << 20
    max_upload_bytes: int = 50 << 20
    batch_chunk_size: int = 1000
    batch_lease_seconds: float = 60.0
    batch_in_server: bool = True
    validate_responses: bool = False
    body_timeout: float = 30.0
    body_min_rate: float = 1_000_000.0
    header_timeout: float = 10.0
    max_header_bytes: int = 32 * 1024
    limit_concurrency: int = 256

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.model_store / 'registry.db'}"

    @property
    def training_data_path(self) -> Path:
        return self.training_data or bundled_dataset_path()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        defaults = cls()
        return cls(
            model_store=Path(environ.get("COE_MODEL_STORE") or defaults.model_store),
            database_url=environ.get("DATABASE_URL") or None,
            model_name=environ.get("COE_MODEL_NAME") or defaults.model_name,
            training_args=Path(environ.get("COE_TRAINING_ARGS") or defaults.training_args),
            training_data=Path(environ["COE_TRAINING_DATA"]) if environ.get("COE_TRAINING_DATA") else None,
            admin_keys=_keys(environ, "COE_ADMIN_KEYS"),
            read_keys=_keys(environ, "COE_READ_KEYS"),
            refresh_seconds=_number(environ, "COE_REFRESH_SECONDS", defaults.refresh_seconds, float),
            max_body_bytes=int(_number(environ, "COE_MAX_BODY_BYTES", defaults.max_body_bytes)),
            max_upload_bytes=int(_number(environ, "COE_MAX_UPLOAD_BYTES", defaults.max_upload_bytes)),
            batch_chunk_size=int(_number(environ, "COE_BATCH_CHUNK_SIZE", defaults.batch_chunk_size)),
            batch_lease_seconds=_number(environ, "COE_BATCH_LEASE_SECONDS", defaults.batch_lease_seconds, float),
            batch_in_server=_flag(environ, "COE_BATCH_IN_SERVER", defaults.batch_in_server),
            validate_responses=_flag(environ, "COE_VALIDATE_RESPONSES", defaults.validate_responses),
            body_timeout=_number(environ, "COE_BODY_TIMEOUT", defaults.body_timeout, float),
            body_min_rate=_number(environ, "COE_BODY_MIN_RATE", defaults.body_min_rate, float),
            header_timeout=_number(environ, "COE_HEADER_TIMEOUT", defaults.header_timeout, float),
            max_header_bytes=int(_number(environ, "COE_MAX_HEADER_BYTES", defaults.max_header_bytes)),
            limit_concurrency=int(_number(environ, "COE_LIMIT_CONCURRENCY", defaults.limit_concurrency)),
        )
