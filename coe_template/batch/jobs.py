"""Batch jobs in the database: created whole, worked in chunks under leases, read back by key.

Every state change is one transaction whose UPDATE names the state it expects,
so two workers can never both finish the same chunk, and a worker that died
holding a chunk loses it when its lease expires. Results are unique on
(job, item): nothing is stored twice.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coe_template.batch.items import BatchInputError, Item
from coe_template.batch.schema import BatchChunk, BatchItem, BatchJob, BatchResult
from coe_template.registry import PRODUCTION, Conflict, Registry
from coe_template.registry.db import bulk_insert, reader
from coe_template.registry.schema import iso, utcnow

ACTIVE = ("queued", "running")


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"batch job {job_id!r} not found")


class ResultNotFound(LookupError):
    def __init__(self, job_id: str, item_id: str) -> None:
        super().__init__(f"batch job {job_id!r} has no stored result for item {item_id!r}")


@dataclass(frozen=True)
class Claim:
    """A chunk a worker holds until ``expires``."""

    job_id: str
    number: int
    first: int
    last: int
    model_name: str
    model_version: int
    owner: str
    attempts: int


def job_dict(job: BatchJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status,
        "model": {"name": job.model_name, "version": job.model_version},
        "items": {"total": job.total_items, "done": job.done_items},
        "progress": round(job.done_items / job.total_items, 4) if job.total_items else 1.0,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "error": job.error,
    }


def result_dict(result: BatchResult) -> dict[str, Any]:
    return {
        "id": result.item_id,
        "predicted_tag": result.predicted_tag,
        "probabilities": result.probabilities,
        "model_version": result.model_version,
    }


def _request_digest(name: str, version: int | None, items: Sequence[Item]) -> str:
    payload = json.dumps([name, version, [[i.id, i.text] for i in items]], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class BatchJobs:
    def __init__(self, registry: Registry, chunk_size: int = 1000, lease_seconds: float = 60.0) -> None:
        self.registry = registry
        self.engine = registry.engine
        self.chunk_size = chunk_size
        self.lease = timedelta(seconds=lease_seconds)
        self.postgres = self.engine.dialect.name == "postgresql"

    def _session(self, read_only: bool = False) -> Session:
        return Session(reader(self.engine) if read_only else self.engine, expire_on_commit=False)

    # --- creating --------------------------------------------------------------------------------

    def create(self, name: str, items: Sequence[Item], version: int | None = None,
               idempotency_key: str | None = None) -> tuple[dict[str, Any], bool]:
        """Record a job with all its items; return it and whether it is new.

        A repeated ``idempotency_key`` with the same request returns the first job,
        whatever happened to the registry since.
        """
        if not items:
            raise BatchInputError("no items: a batch needs at least one")
        digest = _request_digest(name, version, items)  # the request as sent: None means production
        if idempotency_key is not None:
            existing = self._by_idempotency_key(idempotency_key, digest)
            if existing is not None:
                return existing, False
        if version is None:
            version = self.registry.get_alias(name, PRODUCTION)
        found = self.registry.get_version(name, version)  # unknown model or version: LookupError
        if found["status"] != "ready":
            raise Conflict(f"version {version} of {name!r} is {found['status']}: batch jobs need a ready version")
        job = BatchJob(
            id=str(uuid.uuid4()), model_name=name, model_version=version, status="queued",
            idempotency_key=idempotency_key, request_sha256=digest, total_items=len(items),
            done_items=0, total_chunks=-(-len(items) // self.chunk_size), done_chunks=0,
        )
        try:
            with self._session() as session, session.begin():
                session.add(job)
                session.flush()
                bulk_insert(session, BatchItem.__table__,
                            [(job.id, position, i.id, i.text) for position, i in enumerate(items)])
                session.execute(insert(BatchChunk), [
                    {"job_id": job.id, "number": n, "first": first,
                     "last": min(first + self.chunk_size, len(items)) - 1, "status": "pending", "attempts": 0}
                    for n, first in enumerate(range(0, len(items), self.chunk_size))
                ])
        except IntegrityError:
            # The same key arrived concurrently: the other request's job is the answer.
            if idempotency_key is not None:
                existing = self._by_idempotency_key(idempotency_key, digest)
                if existing is not None:
                    return existing, False
            raise
        return job_dict(job), True

    def _by_idempotency_key(self, key: str, digest: str) -> dict[str, Any] | None:
        with self._session(read_only=True) as session:
            job = session.scalar(select(BatchJob).where(BatchJob.idempotency_key == key))
            if job is None:
                return None
            if job.request_sha256 != digest:
                raise Conflict(f"Idempotency-Key {key!r} was already used for a different request (job {job.id})")
            return job_dict(job)

    # --- reading ---------------------------------------------------------------------------------

    def get(self, job_id: str) -> dict[str, Any]:
        with self._session(read_only=True) as session:
            job = session.get(BatchJob, job_id)
            if job is None:
                raise JobNotFound(job_id)
            return job_dict(job)

    def list(self, after: str | None = None, limit: int = 20) -> tuple[list[dict[str, Any]], str | None]:
        """Jobs newest first; the cursor is the last job's id."""
        with self._session(read_only=True) as session:
            query = select(BatchJob).order_by(BatchJob.created_at.desc(), BatchJob.id.desc())
            if after is not None:
                anchor = session.get(BatchJob, after)
                if anchor is None:
                    raise JobNotFound(after)
                query = query.where(or_(BatchJob.created_at < anchor.created_at,
                                        (BatchJob.created_at == anchor.created_at) & (BatchJob.id < anchor.id)))
            jobs = list(session.scalars(query.limit(limit + 1)))
            page = [job_dict(j) for j in jobs[:limit]]
            return page, (jobs[limit - 1].id if len(jobs) > limit else None)

    def results(self, job_id: str, after: int = -1, limit: int = 100) -> tuple[list[dict[str, Any]], int | None]:
        """Stored results in input order, after the given position; the cursor is a position."""
        with self._session(read_only=True) as session:
            if session.get(BatchJob, job_id) is None:
                raise JobNotFound(job_id)
            rows = list(session.scalars(
                select(BatchResult).where(BatchResult.job_id == job_id, BatchResult.position > after)
                .order_by(BatchResult.position).limit(limit + 1)
            ))
            page = [result_dict(r) for r in rows[:limit]]
            return page, (rows[limit - 1].position if len(rows) > limit else None)

    def result(self, job_id: str, item_id: str) -> dict[str, Any]:
        """One stored prediction, by primary key: no model involved."""
        with self._session(read_only=True) as session:
            row = session.get(BatchResult, (job_id, item_id))
            if row is None:
                if session.get(BatchJob, job_id) is None:
                    raise JobNotFound(job_id)
                raise ResultNotFound(job_id, item_id)
            return result_dict(row)

    # --- cancelling and deleting -----------------------------------------------------------------

    def cancel_or_delete(self, job_id: str) -> dict[str, Any] | None:
        """Cancel an active job (returned), or delete a finished one with its results (None)."""
        with self._session() as session, session.begin():
            cancelled = session.execute(
                update(BatchJob).where(BatchJob.id == job_id, BatchJob.status.in_(ACTIVE))
                .values(status="cancelled", finished_at=utcnow())
            ).rowcount
            job = session.get(BatchJob, job_id)
            if job is None:
                raise JobNotFound(job_id)
            if cancelled:
                return job_dict(job)
            for table in (BatchResult, BatchChunk, BatchItem):
                session.execute(delete(table).where(table.job_id == job_id))
            session.delete(job)
            return None

    # --- working ---------------------------------------------------------------------------------

    def claim(self, owner: str) -> Claim | None:
        """Take the oldest chunk nobody holds (or whose holder's lease ran out)."""
        now = utcnow()
        claimable = (
            select(BatchChunk, BatchJob)
            .join(BatchJob, BatchJob.id == BatchChunk.job_id)
            .where(BatchJob.status.in_(ACTIVE))
            .where(or_(BatchChunk.status == "pending",
                       (BatchChunk.status == "running") & (BatchChunk.lease_expires_at < now)))
            .order_by(BatchJob.created_at, BatchChunk.job_id, BatchChunk.number)
            .limit(1)
        )
        if self.postgres:
            # Other workers skip the row this transaction locks instead of waiting for it.
            claimable = claimable.with_for_update(of=BatchChunk, skip_locked=True)
        with self._session() as session, session.begin():  # SQLite: BEGIN IMMEDIATE (see db.py)
            row = session.execute(claimable).first()
            if row is None:
                return None
            chunk, job = row
            chunk.status, chunk.lease_owner = "running", owner
            chunk.lease_expires_at = now + self.lease
            chunk.attempts += 1
            # Conditional: a cancel that committed since the SELECT is not undone.
            session.execute(update(BatchJob).where(BatchJob.id == job.id, BatchJob.status == "queued")
                            .values(status="running", started_at=now))
            return Claim(job.id, chunk.number, chunk.first, chunk.last, job.model_name, job.model_version,
                         owner, chunk.attempts)

    def texts(self, claim: Claim) -> list[tuple[str, str]]:
        with self._session(read_only=True) as session:
            rows = session.execute(
                select(BatchItem.item_id, BatchItem.text)
                .where(BatchItem.job_id == claim.job_id, BatchItem.position.between(claim.first, claim.last))
                .order_by(BatchItem.position)
            )
            return [(item_id, text) for item_id, text in rows]

    def complete(self, claim: Claim, predictions: Sequence[dict[str, Any]]) -> bool:
        """Store a chunk's results and count it, only if the claim still holds; False otherwise."""
        with self._session() as session, session.begin():
            held = session.execute(
                update(BatchChunk)
                .where(BatchChunk.job_id == claim.job_id, BatchChunk.number == claim.number,
                       BatchChunk.status == "running", BatchChunk.lease_owner == claim.owner)
                .values(status="done", lease_expires_at=None)
            ).rowcount
            counted = session.execute(
                update(BatchJob)
                .where(BatchJob.id == claim.job_id, BatchJob.status == "running")
                .values(done_items=BatchJob.done_items + len(predictions), done_chunks=BatchJob.done_chunks + 1)
            ).rowcount
            if not (held and counted):
                session.rollback()  # lost the lease, or the job was cancelled: store nothing
                return False
            bulk_insert(session, BatchResult.__table__, [
                (claim.job_id, p["id"], claim.first + offset, p["predicted_tag"],
                 json.dumps(p["probabilities"]), claim.model_version)
                for offset, p in enumerate(predictions)
            ])
            session.execute(
                update(BatchJob)
                .where(BatchJob.id == claim.job_id, BatchJob.done_chunks == BatchJob.total_chunks)
                .values(status="succeeded", finished_at=utcnow())
            )
            return True

    def fail(self, job_id: str, error: str) -> None:
        with self._session() as session, session.begin():
            session.execute(
                update(BatchJob).where(BatchJob.id == job_id, BatchJob.status.in_(ACTIVE))
                .values(status="failed", finished_at=utcnow(), error=error[:2000])
            )
