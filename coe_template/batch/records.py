"""What batch jobs are made of, for every part of the package: statuses, the records a client reads, a claim.

A job's life is split by concern: :mod:`coe_template.batch.uploads` creates jobs (streamed
uploads, quotas, admission), :mod:`coe_template.batch.jobs` reads, cancels and works them
(claiming chunks through :mod:`coe_template.jobs`), :mod:`coe_template.batch.retention`
removes them once past their retention. :class:`BatchStore` is what they share.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from coe_template.batch.items import Item
from coe_template.batch.schema import BatchChunk, BatchChunkInput, BatchJob, BatchResult
from coe_template.errors import NotFound
from coe_template.registry.db import reader
from coe_template.registry.schema import utc

if TYPE_CHECKING:
    from coe_template.registry import Registry

ACTIVE = ("queued", "running")
#: A job that will change no more: kept for its retention, then purged.
FINISHED = ("succeeded", "failed", "cancelled")
#: A job past its retention being removed: gone for clients (404) while its rows are deleted in steps.
PURGING = "purging"
#: A job being written a chunk at a time: claimed by no runner, shown to no reader, until queued.
UPLOADING = "uploading"
#: An upload not written to for this long was cut short (its process was killed): its job is deleted.
#: Jobs no client sees (a 404): not yet whole, or being removed.
HIDDEN = (UPLOADING, PURGING)
#: A chunk whose worker died this many times fails its job instead of killing more workers.
MAX_ATTEMPTS = 3
#: Items per chunk, each stored in one transaction.
CHUNK_SIZE = 1000
#: Seconds a worker holds a chunk; renewed every third of it while the chunk is worked.
LEASE_SECONDS = 15.0
#: Rows a purge step deletes at most, in one transaction (tens of milliseconds of work).
PURGE_ROWS = 5000

_chunks, _inputs, _jobs = BatchChunk.__table__, BatchChunkInput.__table__, BatchJob.__table__


class JobNotFound(NotFound):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"batch job {job_id!r} not found")


class ResultNotFound(NotFound):
    def __init__(self, job_id: str, item_id: str) -> None:
        super().__init__(f"batch job {job_id!r} has no stored result for item {item_id!r}")


@dataclass(frozen=True)
class Claim:
    """A chunk a worker holds until its lease expires, with the items to predict."""

    job_id: str
    number: int
    first: int
    model_name: str
    model_version: int
    owner: str
    attempts: int
    items: list[Item]
    #: Abandoned too often: not held, and its job failed in the claim's transaction (nothing to work).
    gave_up: bool = False

    @property
    def key(self) -> dict[str, Any]:
        """The chunk's key in the lease queue."""
        return {"job_id": self.job_id, "number": self.number}


@dataclass(frozen=True)
class JobInfo:
    """A batch job: the version it predicts with, how far it has got, and when."""

    id: str
    status: str
    model_name: str
    model_version: int
    total_items: int
    done_items: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    #: When the job is purged with its results: None while it is open, or when jobs are kept for ever.
    expires_at: datetime | None = None

    @property
    def progress(self) -> float:
        """The share of items done, exactly (a job of no items is done)."""
        return self.done_items / self.total_items if self.total_items else 1.0

    @classmethod
    def of(cls, job: BatchJob, retention: timedelta | None = None) -> JobInfo:
        finished_at = utc(job.finished_at)
        expires = finished_at + retention if finished_at and retention and job.status in FINISHED else None
        return cls(
            id=job.id,
            status=job.status,
            model_name=job.model_name,
            model_version=job.model_version,
            total_items=job.total_items,
            done_items=job.done_items,
            created_at=utc(job.created_at),
            started_at=utc(job.started_at),
            finished_at=finished_at,
            error=job.error,
            expires_at=expires,
        )


@dataclass(frozen=True)
class ResultInfo:
    """One item's stored prediction, by the version that made it."""

    item_id: str
    predicted_tag: str
    probabilities: dict[str, float]
    model_version: int
    #: The item's prediction in the ledger (None when the ledger did not keep it: off, or not sampled).
    prediction_id: str | None = None

    @classmethod
    def of(cls, result: BatchResult, prediction_id: str | None = None) -> ResultInfo:
        return cls(
            item_id=result.item_id,
            predicted_tag=result.predicted_tag,
            probabilities=result.probabilities,
            model_version=result.model_version,
            prediction_id=prediction_id,
        )


def compact(value: Any) -> str:
    """JSON without spaces: what a chunk's input row holds, and what a request's digest is taken of."""
    return json.dumps(value, separators=(",", ":"))


def new_job_token() -> tuple[str, str]:
    """A job's token, to show its creator once, and the sha256 to store in its place."""
    token = secrets.token_urlsafe(32)
    return token, job_token_sha256(token)


def job_token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class BatchStore:
    """What the parts of :class:`~coe_template.batch.jobs.BatchJobs` share: the registry, its engine, the settings."""

    registry: Registry
    engine: Engine
    postgres: bool
    #: How long a finished job is kept before it is purged (None: for ever).
    retention: timedelta | None
    #: Set when this process creates a job, so its idle runner starts at once instead of at its next poll.
    created: threading.Event

    def _session(self, read_only: bool = False) -> Session:
        return Session(reader(self.engine) if read_only else self.engine, expire_on_commit=False)
