"""Retention: a finished job is kept for a while, then removed with all it stored, in short steps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, update

from coe_template.batch.records import FINISHED, PURGING, BatchStore, _chunks, _inputs, _jobs
from coe_template.batch.schema import BatchResult
from coe_template.registry.db import reader
from coe_template.registry.schema import utc, utcnow

#: Rows a purge step deletes at most, in one transaction (tens of milliseconds of work).
PURGE_ROWS = 5000


class Purges(BatchStore):
    """The removing side of :class:`~coe_template.batch.jobs.BatchJobs`, stepped by whoever works chunks."""

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
