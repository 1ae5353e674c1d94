"""Batch jobs in the database: read back by key, cancelled, and worked in chunks under leases.

Every state change is one transaction whose UPDATE names the state it expects,
so two workers can never both finish the same chunk, and a worker that died
holding a chunk loses it when its lease expires. Leases are short and renewed
while a chunk is worked, and a worker that stops gives its chunk back at once. Results are unique on
(job, item): nothing is stored twice. Jobs are created by :mod:`coe_template.batch.uploads`
and removed after their retention by :mod:`coe_template.batch.retention`; :class:`BatchJobs`
is the one object the rest of the code uses for all three.
"""

from __future__ import annotations

import builtins
import hmac
import json
import logging
import threading
from collections.abc import Sequence
from datetime import timedelta
from itertools import count
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from coe_template.batch.records import (
    ACTIVE,
    CHUNK_SIZE,
    FINISHED,
    HIDDEN,
    LEASE_SECONDS,
    MAX_ATTEMPTS,
    PURGING,
    UPLOADING,
    Claim,
    JobInfo,
    JobNotFound,
    ResultInfo,
    ResultNotFound,
    _chunks,
    _inputs,
    _jobs,
    job_token_sha256,
    new_job_token,
)
from coe_template.batch.retention import PURGE_ROWS, Purges, PurgeStep
from coe_template.batch.schema import BatchChunk, BatchChunkInput, BatchJob, BatchResult
from coe_template.batch.uploads import NO_QUOTAS, STALE_UPLOAD_SECONDS, KeyReused, Quotas, Uploads
from coe_template.errors import STORED_ERROR_LENGTH
from coe_template.jobs.queue import LeaseQueue
from coe_template.ledger.items import record_items, recorded_ids
from coe_template.ledger.modes import NOTHING, LogMode
from coe_template.registry import Registry
from coe_template.registry.db import bulk_insert, reader
from coe_template.registry.schema import utcnow

#: Names other code imports from here, wherever they now live.
__all__ = [
    "ACTIVE",
    "CHUNK_SIZE",
    "FINISHED",
    "LEASE_SECONDS",
    "MAX_ATTEMPTS",
    "PURGE_ROWS",
    "PURGING",
    "STALE_UPLOAD_SECONDS",
    "UPLOADING",
    "BatchJobs",
    "Claim",
    "JobInfo",
    "JobNotFound",
    "KeyReused",
    "PurgeStep",
    "Quotas",
    "ResultInfo",
    "ResultNotFound",
    "new_job_token",
]

log = logging.getLogger(__name__)

# --- the statements a worker runs for every chunk, built once ----------------------------------

_input_key = (_inputs.c.job_id == bindparam("job")) & (_inputs.c.number == bindparam("chunk"))
#: Chunks as leased work (the protocol: :mod:`coe_template.jobs.queue`): the oldest chunk of the
#: oldest active job first; a chunk whose worker died :data:`MAX_ATTEMPTS` times fails its job.
CHUNKS = LeaseQueue(
    _chunks,
    ("job_id", "number"),
    max_attempts=MAX_ATTEMPTS,
    columns=(_chunks.c.first, _jobs.c.model_name, _jobs.c.model_version),
    joins=lambda query: query.join(_jobs, _jobs.c.id == _chunks.c.job_id),
    where=_jobs.c.status.in_(ACTIVE),
    order_by=(_jobs.c.created_at, _chunks.c.job_id, _chunks.c.number),
)
_INPUT = select(_inputs.c["items"]).where(_input_key)
#: Conditional: a cancel that committed since the claim's SELECT is not undone.
_START = (
    update(_jobs)
    .where(_jobs.c.id == bindparam("job"), _jobs.c.status == "queued")
    .values(status="running", started_at=bindparam("now"))
)
#: Conditional: a job that ended meanwhile (cancelled, failed) keeps its end.
_FAIL = (
    update(_jobs)
    .where(_jobs.c.id == bindparam("job"), _jobs.c.status.in_(ACTIVE))
    .values(status="failed", finished_at=bindparam("now"), error=bindparam("error"))
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


def _probabilities_format(labels: Sequence[str]) -> str:
    """A %-format that writes one row of probabilities as a JSON object (repr is JSON's float form)."""
    return "{" + ",".join(f"{json.dumps(label)}:%r" for label in labels) + "}"


class BatchJobs(Uploads, Purges):
    """Batch jobs: created (:class:`Uploads`), read, cancelled and worked here, purged (:class:`Purges`)."""

    def __init__(
        self,
        registry: Registry,
        chunk_size: int = CHUNK_SIZE,
        lease_seconds: float = LEASE_SECONDS,
        retention: timedelta | None = None,
        quotas: Quotas = NO_QUOTAS,
        ledger: LogMode = NOTHING,
    ) -> None:
        self.registry = registry
        #: What the prediction ledger keeps of each item, written with the chunk's results.
        self.ledger = ledger
        #: How long a finished job is kept before :meth:`purge_step` removes it (None: for ever).
        self.retention = retention
        self.engine = registry.engine
        self.chunk_size = chunk_size
        self.lease = timedelta(seconds=lease_seconds)
        self.postgres = self.engine.dialect.name == "postgresql"
        self.quotas = quotas
        #: Set when this process creates a job, so its idle runner starts at once instead of at its next poll.
        self.created = threading.Event()

    # --- reading ---------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobInfo:
        with self._session(read_only=True) as session:
            job = session.get(BatchJob, job_id)
            if job is None or job.status in HIDDEN:
                raise JobNotFound(job_id)
            return JobInfo.of(job, self.retention)

    def list(self, after: str | None = None, limit: int = 20) -> tuple[list[JobInfo], str | None]:
        """Jobs newest first; the cursor is the last job's id."""
        with self._session(read_only=True) as session:
            query = (
                select(BatchJob)
                .where(BatchJob.status.not_in(HIDDEN))
                .order_by(BatchJob.created_at.desc(), BatchJob.id.desc())
            )
            if after is not None:
                anchor = session.get(BatchJob, after)
                if anchor is None or anchor.status in HIDDEN:
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
            kept = rows[:limit]
            ids = recorded_ids(session, job_id, [r.item_id for r in kept])
            page = [ResultInfo.of(r, ids.get(r.item_id)) for r in kept]
            return page, (rows[limit - 1].position if len(rows) > limit else None)

    def result(self, job_id: str, item_id: str) -> ResultInfo:
        """One stored prediction, by primary key: no model involved."""
        with self._session(read_only=True) as session:
            row = session.get(BatchResult, (job_id, item_id))
            self._visible(session, job_id)  # a job being purged still has some of its results
            if row is None:
                raise ResultNotFound(job_id, item_id)
            return ResultInfo.of(row, recorded_ids(session, job_id, [item_id]).get(item_id))

    @staticmethod
    def _visible(session: Session, job_id: str) -> None:
        """JobNotFound unless the job exists and is whole, not being purged (read afresh, not from the session)."""
        status = session.scalar(select(BatchJob.status).where(BatchJob.id == job_id))
        if status is None or status in HIDDEN:
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
            if job is None or job.status in HIDDEN:
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

        A chunk abandoned :data:`MAX_ATTEMPTS` times is not taken: its job fails in the same
        transaction, and the claim comes back with ``gave_up`` set (for the runner to tell).
        ``look_first``: check without a write lock that there is a chunk to take, as idle
        workers polling should; a worker that has just finished one expects another.
        """
        now = utcnow()
        if look_first:
            with reader(self.engine).begin() as connection:
                if not CHUNKS.any_claimable(connection, now):
                    return None
        with self.engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE (see db.py)
            if self.postgres:
                # A claim lost in a server crash only puts the chunk back: no need to wait for the disk.
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            taken = CHUNKS.claim(connection, owner, now, now + self.lease)
            if taken is None:
                return None
            row = taken.row
            key = {"job": row.job_id, "chunk": row.number}
            items = connection.execute(_INPUT, key).scalar_one()
            if taken.gave_up:
                error = f"chunk {row.number} was abandoned {MAX_ATTEMPTS} times"
                connection.execute(_FAIL, {"job": row.job_id, "now": now, "error": error})
            else:
                connection.execute(_START, {"job": row.job_id, "now": now})
        return Claim(
            row.job_id,
            row.number,
            row.first,
            row.model_name,
            row.model_version,
            owner,
            taken.attempts,
            [(item_id, text) for item_id, text in json.loads(items)],
            gave_up=taken.gave_up,
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
            if not CHUNKS.finish(connection, claim.key, claim.owner, utcnow()):
                connection.rollback()  # the lease ran out and another worker took the chunk
                return False
            bulk_insert(connection, BatchResult.__table__, results)
            job = (claim.job_id, claim.model_name, claim.model_version)
            record_items(connection, self.ledger, job, claim.items, tags, probabilities, labels)
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
        with self.engine.begin() as connection:
            return CHUNKS.renew(connection, claim.key, claim.owner, utcnow() + self.lease)

    def release(self, claim: Claim) -> bool:
        """Give a held chunk back (a worker stopping): pending again at once, its attempt not counted.

        Conditional like every change: a chunk already finished, or taken over, is left as it is.
        """
        with self.engine.begin() as connection:
            return CHUNKS.release(connection, claim.key, claim.owner)

    def fail(self, job_id: str, error: str) -> None:
        """Fail an active job (its model cannot be loaded, …); a job that ended meanwhile keeps its end."""
        with self.engine.begin() as connection:
            connection.execute(_FAIL, {"job": job_id, "now": utcnow(), "error": error[:STORED_ERROR_LENGTH]})

    # --- observing -------------------------------------------------------------------------------

    def backlog(self) -> dict[str, tuple[int, int, int]]:
        """Per active status (``queued``, ``running``): jobs, items and chunks not yet done."""
        found = {status: (0, 0, 0) for status in ACTIVE}
        with reader(self.engine).begin() as connection:
            for status, jobs, items, chunks in connection.execute(_BACKLOG):
                found[status] = (jobs, int(items), int(chunks))  # a group has rows: never NULL sums
        return found
