"""Batch jobs in the database: created whole, worked in chunks under leases, read back by key.

Every state change is one transaction whose UPDATE names the state it expects,
so two workers can never both finish the same chunk, and a worker that died
holding a chunk loses it when its lease expires. Leases are short and renewed
while a chunk is worked, and a worker that stops gives its chunk back at once. Results are unique on
(job, item): nothing is stored twice. A finished job is kept for a retention, then removed
with all it stored in short steps (:meth:`BatchJobs.purge_step`), by whoever works chunks.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import secrets
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, case, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coe_template.batch.items import BatchInputError, Item
from coe_template.batch.schema import BatchChunk, BatchChunkInput, BatchJob, BatchResult
from coe_template.errors import STORED_ERROR_LENGTH, Conflict, NotFound
from coe_template.registry import PRODUCTION, Registry
from coe_template.registry.db import bulk_insert, reader
from coe_template.registry.schema import utc, utcnow

ACTIVE = ("queued", "running")
#: A job that will change no more: kept for its retention, then purged.
FINISHED = ("succeeded", "failed", "cancelled")
#: A job past its retention being removed: gone for clients (404) while its rows are deleted in steps.
PURGING = "purging"
#: Items per chunk, each stored in one transaction.
CHUNK_SIZE = 1000
#: Seconds a worker holds a chunk; renewed every third of it while the chunk is worked.
LEASE_SECONDS = 15.0
#: Rows a purge step deletes at most, in one transaction (tens of milliseconds of work).
PURGE_ROWS = 5000


# --- the statements a worker runs for every chunk, built once ----------------------------------

_chunks, _inputs, _jobs = BatchChunk.__table__, BatchChunkInput.__table__, BatchJob.__table__
_chunk_key = (_chunks.c.job_id == bindparam("job")) & (_chunks.c.number == bindparam("chunk"))
_input_key = (_inputs.c.job_id == bindparam("job")) & (_inputs.c.number == bindparam("chunk"))
#: The oldest chunk nobody holds, or whose holder's lease ran out before ``now``.
_CLAIMABLE = (
    select(
        _chunks.c.job_id,
        _chunks.c.number,
        _chunks.c.first,
        _chunks.c.attempts,
        _jobs.c.model_name,
        _jobs.c.model_version,
    )
    .join(_jobs, _jobs.c.id == _chunks.c.job_id)
    .where(_jobs.c.status.in_(ACTIVE))
    .where(
        or_(
            _chunks.c.status == "pending",
            (_chunks.c.status == "running") & (_chunks.c.lease_expires_at < bindparam("now")),
        )
    )
    .order_by(_jobs.c.created_at, _chunks.c.job_id, _chunks.c.number)
    .limit(1)
)
_ANY_CLAIMABLE = _CLAIMABLE.with_only_columns(_chunks.c.number)
#: PostgreSQL: other workers skip the row this transaction locks instead of waiting for it.
_CLAIMABLE_LOCKED = _CLAIMABLE.with_for_update(of=_chunks, skip_locked=True)
_TAKE = (
    update(_chunks)
    .where(_chunk_key)
    .values(
        status="running",
        lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("expires"),
        attempts=bindparam("tries"),
    )
)
_INPUT = select(_inputs.c["items"]).where(_input_key)
#: Conditional: a cancel that committed since the claim's SELECT is not undone.
_START = (
    update(_jobs)
    .where(_jobs.c.id == bindparam("job"), _jobs.c.status == "queued")
    .values(status="running", started_at=bindparam("now"))
)
#: Conditional: only the lease's holder finishes its chunk.
_FINISH = (
    update(_chunks)
    .where(_chunk_key, _chunks.c.status == "running", _chunks.c.lease_owner == bindparam("owner"))
    .values(status="done", lease_expires_at=None)
)
#: What is left to do, per active job status: one small aggregate over the jobs table.
_BACKLOG = (
    select(
        _jobs.c.status,
        func.count(),
        func.sum(_jobs.c.total_items - _jobs.c.done_items),
        func.sum(_jobs.c.total_chunks - _jobs.c.done_chunks),
    )
    .where(_jobs.c.status.in_(ACTIVE))
    .group_by(_jobs.c.status)
)
_DROP_INPUT = delete(_inputs).where(_input_key)
_last_chunk = _jobs.c.done_chunks + 1 == _jobs.c.total_chunks
#: Conditional: nothing is counted on (or stored for) a job that is no longer running.
_COUNT = (
    update(_jobs)
    .where(_jobs.c.id == bindparam("job"), _jobs.c.status == "running")
    .values(
        done_items=_jobs.c.done_items + bindparam("items"),
        done_chunks=_jobs.c.done_chunks + 1,
        status=case((_last_chunk, "succeeded"), else_=_jobs.c.status),
        finished_at=case((_last_chunk, bindparam("now")), else_=_jobs.c.finished_at),
    )
)
#: Conditional: only the lease's holder extends it, and only while the chunk is still being worked.
_HELD = _chunk_key & (_chunks.c.status == "running") & (_chunks.c.lease_owner == bindparam("owner"))
_RENEW = update(_chunks).where(_HELD).values(lease_expires_at=bindparam("expires"))
#: Back to pending as if never claimed: a worker that gives a chunk back was not killed by it.
_RELEASE = (
    update(_chunks)
    .where(_HELD)
    .values(status="pending", lease_owner=None, lease_expires_at=None, attempts=_chunks.c.attempts - 1)
)


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

    @classmethod
    def of(cls, result: BatchResult) -> ResultInfo:
        return cls(
            item_id=result.item_id,
            predicted_tag=result.predicted_tag,
            probabilities=result.probabilities,
            model_version=result.model_version,
        )


class KeyReused(Conflict):
    """A job's idempotency key came back with a different request: which key, and whose job it is."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(f"key {key!r} was already used for a different request (job {job_id})")
        self.key = key
        self.job_id = job_id


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _chunk_inputs(items: Sequence[Item], size: int) -> list[str]:
    """Each chunk's items as ``[[id, text], ...]``: what its input row stores."""
    return [_compact(items[first : first + size]) for first in range(0, len(items), size)]


def _request_digest(name: str, version: int | None, inputs: Sequence[str]) -> str:
    """sha256 of ``[name, version, [[id, text], ...]]`` as compact JSON, from the chunks' JSON."""
    digest = hashlib.sha256(f"{_compact([name, version])[:-1]},[".encode())
    for n, chunk in enumerate(inputs):
        digest.update(f"{',' if n else ''}{chunk[1:-1]}".encode())
    digest.update(b"]]")
    return digest.hexdigest()


def _probabilities_format(labels: Sequence[str]) -> str:
    """A %-format that writes one row of probabilities as a JSON object (repr is JSON's float form)."""
    return "{" + ",".join(f"{json.dumps(label)}:%r" for label in labels) + "}"


def new_job_token() -> tuple[str, str]:
    """A job's token, to show its creator once, and the sha256 to store in its place."""
    token = secrets.token_urlsafe(32)
    return token, job_token_sha256(token)


def job_token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class BatchJobs:
    def __init__(
        self,
        registry: Registry,
        chunk_size: int = CHUNK_SIZE,
        lease_seconds: float = LEASE_SECONDS,
        retention: timedelta | None = None,
    ) -> None:
        self.registry = registry
        #: How long a finished job is kept before :meth:`purge_step` removes it (None: for ever).
        self.retention = retention
        self.engine = registry.engine
        self.chunk_size = chunk_size
        self.lease = timedelta(seconds=lease_seconds)
        self.postgres = self.engine.dialect.name == "postgresql"
        #: Set when this process creates a job, so its idle runner starts at once instead of at its next poll.
        self.created = threading.Event()

    def _session(self, read_only: bool = False) -> Session:
        return Session(reader(self.engine) if read_only else self.engine, expire_on_commit=False)

    # --- creating --------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        items: Sequence[Item],
        version: int | None = None,
        idempotency_key: str | None = None,
        token_sha256: str | None = None,
    ) -> tuple[JobInfo, bool]:
        """Record a job with all its items; return it and whether it is new.

        A repeated ``idempotency_key`` with the same request returns the first job,
        whatever happened to the registry since (and keeps the first job's token:
        ``token_sha256`` is stored only on a new job).
        """
        if not items:
            raise BatchInputError("no items: a batch needs at least one")
        inputs = _chunk_inputs(items, self.chunk_size)
        digest = _request_digest(name, version, inputs)  # the request as sent: None means production
        if idempotency_key is not None:
            existing = self._by_idempotency_key(idempotency_key, digest)
            if existing is not None:
                return existing, False
        if version is None:
            version = self.registry.get_alias(name, PRODUCTION)
        found = self.registry.get_version(name, version)  # unknown model or version: LookupError
        if found.status != "ready":
            raise Conflict(
                f"version {version} of {name!r} is {found.status}: batch jobs need a ready version"
            )
        job = BatchJob(
            id=str(uuid.uuid4()),
            model_name=name,
            model_version=version,
            status="queued",
            idempotency_key=idempotency_key,
            request_sha256=digest,
            token_sha256=token_sha256,
            total_items=len(items),
            total_chunks=len(inputs),
        )
        try:
            with self._session() as session, session.begin():
                session.add(job)
                session.flush()
                bulk_insert(
                    session,
                    BatchChunk.__table__,
                    [
                        (
                            job.id,
                            number,
                            number * self.chunk_size,
                            min((number + 1) * self.chunk_size, len(items)) - 1,
                            "pending",
                            None,
                            None,
                            0,
                        )
                        for number in range(len(inputs))
                    ],
                )
                bulk_insert(
                    session,
                    BatchChunkInput.__table__,
                    [(job.id, number, chunk) for number, chunk in enumerate(inputs)],
                )
        except IntegrityError:
            # The same key arrived concurrently: the other request's job is the answer.
            if idempotency_key is not None:
                existing = self._by_idempotency_key(idempotency_key, digest)
                if existing is not None:
                    return existing, False
            raise
        self.created.set()
        return JobInfo.of(job), True

    def _by_idempotency_key(self, key: str, digest: str) -> JobInfo | None:
        with self._session(read_only=True) as session:
            job = session.scalar(select(BatchJob).where(BatchJob.idempotency_key == key))
            if job is None:
                return None
            if job.request_sha256 != digest:
                raise KeyReused(key, job.id)
            return JobInfo.of(job, self.retention)

    # --- reading ---------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobInfo:
        with self._session(read_only=True) as session:
            job = session.get(BatchJob, job_id)
            if job is None or job.status == PURGING:
                raise JobNotFound(job_id)
            return JobInfo.of(job, self.retention)

    def list(self, after: str | None = None, limit: int = 20) -> tuple[list[JobInfo], str | None]:
        """Jobs newest first; the cursor is the last job's id."""
        with self._session(read_only=True) as session:
            query = (
                select(BatchJob)
                .where(BatchJob.status != PURGING)
                .order_by(BatchJob.created_at.desc(), BatchJob.id.desc())
            )
            if after is not None:
                anchor = session.get(BatchJob, after)
                if anchor is None or anchor.status == PURGING:
                    raise JobNotFound(after)
                query = query.where(
                    or_(
                        BatchJob.created_at < anchor.created_at,
                        (BatchJob.created_at == anchor.created_at) & (BatchJob.id < anchor.id),
                    )
                )
            jobs = list(session.scalars(query.limit(limit + 1)))
            page = [JobInfo.of(j, self.retention) for j in jobs[:limit]]
            return page, (jobs[limit - 1].id if len(jobs) > limit else None)

    def results(
        self, job_id: str, limit: int, after: int = -1
    ) -> tuple[builtins.list[ResultInfo], int | None]:
        """Up to ``limit`` stored results in input order, after the given position; the cursor is a position."""
        with self._session(read_only=True) as session:
            self._visible(session, job_id)
            rows = list(
                session.scalars(
                    select(BatchResult)
                    .where(BatchResult.job_id == job_id, BatchResult.position > after)
                    .order_by(BatchResult.position)
                    .limit(limit + 1)
                )
            )
            if len(rows) <= limit:
                # A last page may be short because a purge began after the first look
                # (PostgreSQL reads each statement afresh): then the job is gone, not done.
                self._visible(session, job_id)
            page = [ResultInfo.of(r) for r in rows[:limit]]
            return page, (rows[limit - 1].position if len(rows) > limit else None)

    def result(self, job_id: str, item_id: str) -> ResultInfo:
        """One stored prediction, by primary key: no model involved."""
        with self._session(read_only=True) as session:
            row = session.get(BatchResult, (job_id, item_id))
            self._visible(session, job_id)  # a job being purged still has some of its results
            if row is None:
                raise ResultNotFound(job_id, item_id)
            return ResultInfo.of(row)

    @staticmethod
    def _visible(session: Session, job_id: str) -> None:
        """JobNotFound unless the job exists and is not being purged (read afresh, not from the session)."""
        status = session.scalar(select(BatchJob.status).where(BatchJob.id == job_id))
        if status is None or status == PURGING:
            raise JobNotFound(job_id)

    # --- the job's own token: who may cancel or delete it besides an admin --------------------------

    def holds_token(self, job_id: str, token: str | None) -> bool:
        """Whether ``token`` is the one minted for this job; JobNotFound if there is no such job.

        Only the digest is stored, and it is compared in constant time. A job created
        without a token (before migration 0006, or by the CLI) matches none.
        """
        with self._session(read_only=True) as session:
            self._visible(session, job_id)
            stored = session.scalar(select(BatchJob.token_sha256).where(BatchJob.id == job_id))
        if stored is None or token is None:
            return False
        return hmac.compare_digest(job_token_sha256(token), stored)

    # --- cancelling and deleting -----------------------------------------------------------------

    def cancel_or_delete(self, job_id: str) -> JobInfo | None:
        """Cancel an active job (returned), or delete a finished one with its results (None)."""
        with self._session() as session, session.begin():
            # An UPDATE's result is a CursorResult (Session.execute is typed for any statement).
            cancelled = cast(
                CursorResult[Any],
                session.execute(
                    update(BatchJob)
                    .where(BatchJob.id == job_id, BatchJob.status.in_(ACTIVE))
                    .values(status="cancelled", finished_at=utcnow())
                ),
            ).rowcount
            job = session.get(BatchJob, job_id)
            if job is None or job.status == PURGING:
                raise JobNotFound(job_id)
            if cancelled:
                return JobInfo.of(job, self.retention)
            # In the order a worker's completion locks them (chunk, results, input): a worker still
            # finishing a chunk of the just-cancelled job makes this wait, not deadlock (PostgreSQL).
            for table in (BatchChunk, BatchResult, BatchChunkInput):
                session.execute(delete(table).where(table.job_id == job_id))
            session.delete(job)
            return None

    # --- working ---------------------------------------------------------------------------------

    def claim(self, owner: str, look_first: bool = True) -> Claim | None:
        """Take the oldest chunk nobody holds (or whose holder's lease ran out), with its items.

        ``look_first``: check without a write lock that there is a chunk to take, as idle
        workers polling should; a worker that has just finished one expects another.
        """
        now = utcnow()
        if look_first:
            with reader(self.engine).begin() as connection:
                if connection.execute(_ANY_CLAIMABLE, {"now": now}).first() is None:
                    return None
        with self.engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE (see db.py)
            if self.postgres:
                # A claim lost in a server crash only puts the chunk back: no need to wait for the disk.
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            row = connection.execute(_CLAIMABLE_LOCKED if self.postgres else _CLAIMABLE, {"now": now}).first()
            if row is None:
                return None
            key = {"job": row.job_id, "chunk": row.number}
            connection.execute(
                _TAKE, {**key, "owner": owner, "expires": now + self.lease, "tries": row.attempts + 1}
            )
            items = connection.execute(_INPUT, key).scalar_one()
            connection.execute(_START, {"job": row.job_id, "now": now})
        return Claim(
            row.job_id,
            row.number,
            row.first,
            row.model_name,
            row.model_version,
            owner,
            row.attempts + 1,
            [(item_id, text) for item_id, text in json.loads(items)],
        )

    def complete(
        self,
        claim: Claim,
        tags: Sequence[str],
        probabilities: Sequence[Sequence[float]],
        labels: Sequence[str],
    ) -> bool:
        """Store a chunk's results (the tag and probability row of each item, in order) and
        count it, only if the claim still holds; False otherwise."""
        row_format = _probabilities_format(labels)
        results = [
            (claim.job_id, item_id, position, tag, row_format % tuple(row), claim.model_version)
            for position, (item_id, _), tag, row in zip(count(claim.first), claim.items, tags, probabilities)
        ]
        key = {"job": claim.job_id, "chunk": claim.number}
        with self.engine.begin() as connection:
            if not connection.execute(_FINISH, {**key, "owner": claim.owner}).rowcount:
                connection.rollback()  # the lease ran out and another worker took the chunk
                return False
            bulk_insert(connection, BatchResult.__table__, results)
            connection.execute(_DROP_INPUT, key)
            # Last: every worker's chunk updates this one row, so PostgreSQL holds its lock
            # only from here to the commit, not while the results are written.
            counted = {"job": claim.job_id, "items": len(results), "now": utcnow()}
            if not connection.execute(_COUNT, counted).rowcount:
                connection.rollback()  # the job was cancelled meanwhile: store nothing
                return False
        return True

    # --- holding a lease -------------------------------------------------------------------------

    def renew(self, claim: Claim) -> bool:
        """Extend the claim's lease by a full lease from now, if its owner still holds the chunk.

        False means the chunk is no longer this worker's (its lease ran out and another took
        it, or it was released or finished): whatever the worker computes for it is dropped.
        """
        key = {"job": claim.job_id, "chunk": claim.number, "owner": claim.owner}
        with self.engine.begin() as connection:
            return bool(connection.execute(_RENEW, {**key, "expires": utcnow() + self.lease}).rowcount)

    def release(self, claim: Claim) -> bool:
        """Give a held chunk back (a worker stopping): pending again at once, its attempt not counted.

        Conditional like every change: a chunk already finished, or taken over, is left as it is.
        """
        key = {"job": claim.job_id, "chunk": claim.number, "owner": claim.owner}
        with self.engine.begin() as connection:
            return bool(connection.execute(_RELEASE, key).rowcount)

    def fail(self, job_id: str, error: str) -> None:
        with self._session() as session, session.begin():
            session.execute(
                update(BatchJob)
                .where(BatchJob.id == job_id, BatchJob.status.in_(ACTIVE))
                .values(status="failed", finished_at=utcnow(), error=error[:STORED_ERROR_LENGTH])
            )

    # --- observing -------------------------------------------------------------------------------

    def backlog(self) -> dict[str, tuple[int, int, int]]:
        """Per active status (``queued``, ``running``): jobs, items and chunks not yet done."""
        found = {status: (0, 0, 0) for status in ACTIVE}
        with reader(self.engine).begin() as connection:
            for status, jobs, items, chunks in connection.execute(_BACKLOG):
                found[status] = (jobs, int(items), int(chunks))  # a group has rows: never NULL sums
        return found

    # --- retention: finished jobs removed in bounded steps ----------------------------------------

    def purge_step(self, rows: int = PURGE_ROWS, now: datetime | None = None) -> PurgeStep | None:
        """One short transaction of removing jobs past their retention; None when none is.

        A finished job whose ``finished_at + retention`` has passed is first marked ``purging``
        (one small UPDATE: from its commit on, clients get 404 and its idempotency key is free
        again). Each later step deletes at most ``rows`` of its results, then of its chunks, then
        of its chunks' inputs, and the last one its own row: no statement holds locks for long,
        and a job left ``purging`` by a process that stopped is finished by whoever steps next.
        """
        if self.retention is None:
            return None
        cutoff = (now or utcnow()) - self.retention
        with reader(self.engine).begin() as connection:  # look without the write lock first, as claims do
            if connection.execute(_PURGING).first() is None:
                if connection.execute(_EXPIRED, {"cutoff": cutoff}).first() is None:
                    return None
        with self.engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE (see db.py)
            job = connection.execute(_PURGING).first()
            if job is None:
                job = connection.execute(_EXPIRED, {"cutoff": cutoff}).first()
                if job is None or not connection.execute(_MARK, {"job": job.id, "cutoff": cutoff}).rowcount:
                    return None  # nothing expired, or another process's step took it meanwhile
                return PurgeStep(job.id, "marked", 0, job.total_items, utc(job.finished_at))
            for table, column in _PURGED_TABLES:
                first = connection.execute(
                    select(func.min(column)).where(table.c.job_id == job.id)
                ).scalar_one()
                if first is not None:
                    deleted = connection.execute(
                        delete(table).where(table.c.job_id == job.id, column < first + rows)
                    ).rowcount
                    return PurgeStep(job.id, table.name, deleted, job.total_items, utc(job.finished_at))
            gone = connection.execute(delete(_jobs).where(_jobs.c.id == job.id, _jobs.c.status == PURGING))
            return PurgeStep(job.id, _jobs.name, gone.rowcount, job.total_items, utc(job.finished_at))


_results = BatchResult.__table__
#: What a job leaves behind, deleted in this order, each in position (or chunk) order.
_PURGED_TABLES = ((_results, _results.c.position), (_chunks, _chunks.c.number), (_inputs, _inputs.c.number))
_JOB_COLUMNS = (_jobs.c.id, _jobs.c.total_items, _jobs.c.finished_at)
#: A job a purge began on and has not finished (a process stopped midway): finished first.
_PURGING = select(*_JOB_COLUMNS).where(_jobs.c.status == PURGING).order_by(_jobs.c.finished_at).limit(1)
#: The finished job that expired first.
_EXPIRED = (
    select(*_JOB_COLUMNS)
    .where(_jobs.c.status.in_(FINISHED), _jobs.c.finished_at < bindparam("cutoff"))
    .order_by(_jobs.c.finished_at)
    .limit(1)
)
#: Conditional: a job another process marked meanwhile is not marked twice.
_MARK = (
    update(_jobs)
    .where(
        _jobs.c.id == bindparam("job"),
        _jobs.c.status.in_(FINISHED),
        _jobs.c.finished_at < bindparam("cutoff"),
    )
    .values(status=PURGING, idempotency_key=None)
)


@dataclass(frozen=True)
class PurgeStep:
    """What one purge step did: marked a job ``purging``, or deleted ``rows`` rows of ``table``
    (``batch_jobs``: the job's own row, the last step; 0 rows if another process's step removed it)."""

    job_id: str
    table: str
    rows: int
    total_items: int
    finished_at: datetime | None

    @property
    def done(self) -> bool:
        """Whether this step removed the job's own row: the job is gone, counted once."""
        return self.table == _jobs.name and self.rows == 1
