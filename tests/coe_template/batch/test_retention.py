"""Batch jobs' retention: finished jobs past ``finished_at + retention`` removed in bounded steps,
on every database the suite runs on. Jobs are made to look old by setting ``finished_at`` in the
database, as the days would have."""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from coe_template.batch.jobs import BatchJobs
from coe_template.batch.records import JobNotFound
from coe_template.batch.retention import PurgeStep
from coe_template.batch.runner import BatchRunner
from coe_template.batch.schema import BatchChunk, BatchChunkInput, BatchJob, BatchResult
from coe_template.registry.schema import utcnow
from tests.coe_template.batch.test_jobs import CHUNK, ITEMS, rows
from tests.conftest import MODEL

WEEK = timedelta(days=7)


@pytest.fixture
def load(registry) -> Callable:
    return functools.cache(registry.load)


@pytest.fixture
def jobs(registry) -> BatchJobs:
    """Jobs of three items a chunk, kept a week once finished."""
    return BatchJobs(registry, chunk_size=CHUNK, lease_seconds=60, retention=WEEK)


def finished_ago(registry, job_id: str, age: timedelta) -> None:
    with registry.engine.begin() as connection:
        connection.execute(update(BatchJob).where(BatchJob.id == job_id).values(finished_at=utcnow() - age))


def stored(registry, job_id: str) -> tuple[int, ...]:
    """The job's rows in every table: (job, results, chunks, chunk inputs)."""
    with registry.engine.connect() as connection:
        jobs = connection.scalar(select(func.count()).where(BatchJob.id == job_id))
    return (jobs, *(rows(registry, table, job_id) for table in (BatchResult, BatchChunk, BatchChunkInput)))


def purge_all(jobs: BatchJobs, rows: int) -> list[tuple[str, int]]:
    steps = []
    while (step := jobs.purge_step(rows)) is not None:
        steps.append((step.table, step.rows))
        assert len(steps) < 100
    return steps


def test_a_finished_job_past_its_expiry_is_purged_with_everything_it_stored(jobs, registry, load):
    done, _ = jobs.create(MODEL, ITEMS)  # 10 items: 4 chunks
    BatchRunner(jobs, load).run_until_idle()
    cancelled, _ = jobs.create(MODEL, ITEMS[:7])  # 3 chunks, never worked: their inputs are still there
    assert jobs.cancel_or_delete(cancelled.id) is not None
    assert stored(registry, done.id) == (1, 10, 4, 0)
    assert stored(registry, cancelled.id) == (1, 0, 3, 3)
    finished_ago(registry, done.id, WEEK + timedelta(minutes=2))  # expired first: purged first
    finished_ago(registry, cancelled.id, WEEK + timedelta(minutes=1))

    # At most 4 rows a transaction: one job at a time, results, chunks, inputs, then the job itself.
    assert purge_all(jobs, rows=4) == [
        ("marked", 0),
        ("batch_results", 4),
        ("batch_results", 4),
        ("batch_results", 2),
        ("batch_chunks", 4),
        ("batch_jobs", 1),
        ("marked", 0),
        ("batch_chunks", 3),
        ("batch_chunk_inputs", 3),
        ("batch_jobs", 1),
    ]
    for job in (done, cancelled):
        assert stored(registry, job.id) == (0, 0, 0, 0)
        with pytest.raises(JobNotFound):
            jobs.get(job.id)
    assert jobs.list() == ([], None)


def test_open_jobs_and_jobs_within_retention_stay(jobs, registry, load):
    recent, _ = jobs.create(MODEL, ITEMS[:3])
    BatchRunner(jobs, load).run_until_idle()
    running, _ = jobs.create(MODEL, ITEMS)
    queued, _ = jobs.create(MODEL, ITEMS[:6])
    jobs.claim("worker")  # the oldest open job's first chunk: that job is running
    finished_ago(registry, recent.id, WEEK - timedelta(minutes=1))
    # An open job is never purged, whatever its finished_at says.
    finished_ago(registry, queued.id, 10 * WEEK)
    finished_ago(registry, running.id, 10 * WEEK)
    assert jobs.purge_step() is None
    finished = jobs.get(recent.id).finished_at
    assert {job.id: (job.status, job.expires_at) for job in jobs.list()[0]} == {
        recent.id: ("succeeded", finished + WEEK),
        running.id: ("running", None),
        queued.id: ("queued", None),
    }
    assert stored(registry, recent.id) == (1, 3, 1, 0)
    # Two minutes later the recent one has expired too; the open ones still stay.
    later = utcnow() + timedelta(minutes=2)
    assert jobs.purge_step(now=later) == PurgeStep(recent.id, "marked", 0, 3, finished)
    assert purge_all(jobs, rows=100) == [("batch_results", 3), ("batch_chunks", 1), ("batch_jobs", 1)]
    assert jobs.purge_step(now=later) is None
    assert [(job.id, job.status) for job in jobs.list()[0]] == [
        (queued.id, "queued"),
        (running.id, "running"),
    ]


def test_the_expiry_is_finished_at_plus_retention_and_none_while_open_or_kept_for_ever(jobs, registry, load):
    job, _ = jobs.create(MODEL, ITEMS[:3])
    assert jobs.get(job.id).expires_at is None
    BatchRunner(jobs, load).run_until_idle()
    finished = jobs.get(job.id)
    assert finished.expires_at == finished.finished_at + WEEK
    forever = BatchJobs(registry, chunk_size=CHUNK, retention=None)
    assert forever.get(job.id).expires_at is None
    finished_ago(registry, job.id, 100 * WEEK)
    assert forever.purge_step() is None
    assert stored(registry, job.id) == (1, 3, 1, 0)


def test_a_job_being_purged_is_gone_for_every_reader_and_its_key_is_free(jobs, registry, load):
    job, _ = jobs.create(MODEL, ITEMS, idempotency_key="nightly")
    BatchRunner(jobs, load).run_until_idle()
    finished_ago(registry, job.id, 2 * WEEK)
    finished = jobs.get(job.id).finished_at
    assert jobs.purge_step(rows=4) == PurgeStep(job.id, "marked", 0, 10, finished)
    assert jobs.purge_step(rows=4) == PurgeStep(job.id, "batch_results", 4, 10, finished)
    assert stored(registry, job.id) == (1, 6, 4, 0)  # half purged, as a process stopped midway leaves it
    for read in (
        lambda: jobs.get(job.id),
        lambda: jobs.results(job.id, limit=100),
        lambda: jobs.result(job.id, ITEMS[9][0]),
        lambda: jobs.holds_token(job.id, "token"),
        lambda: jobs.cancel_or_delete(job.id),
        lambda: jobs.list(after=job.id),
    ):
        with pytest.raises(JobNotFound):
            read()
    assert jobs.list() == ([], None)
    again, created = jobs.create(MODEL, ITEMS, idempotency_key="nightly")
    assert created and again.id != job.id
    # Whoever steps next finishes the half-purged job before looking for another.
    assert purge_all(jobs, rows=100) == [("batch_results", 6), ("batch_chunks", 4), ("batch_jobs", 1)]
    assert stored(registry, job.id) == (0, 0, 0, 0)
    assert jobs.get(again.id).status == "queued"


def test_a_started_runner_purges_between_chunks_logs_it_and_tells_its_observer(jobs, registry, load, caplog):
    old, _ = jobs.create(MODEL, ITEMS)
    BatchRunner(jobs, load).run_until_idle()
    finished_ago(registry, old.id, WEEK + timedelta(hours=1))
    steps: list[PurgeStep] = []
    runner = BatchRunner(jobs, load, poll_seconds=0.01, purged=steps.append)
    runner.retention.rows = 4
    runner.retention.log_every = math.inf  # no progress line: the test pins the log whole
    new, _ = jobs.create(MODEL, ITEMS[:3])
    caplog.set_level(logging.INFO, logger="coe_template.batch.runner")
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not (steps and steps[-1].done and jobs.get(new.id).status == "succeeded"):
            assert time.monotonic() < deadline, steps
            time.sleep(0.01)
    finally:
        runner.stop()
    assert [(s.table, s.rows) for s in steps] == [
        ("marked", 0),
        ("batch_results", 4),
        ("batch_results", 4),
        ("batch_results", 2),
        ("batch_chunks", 4),
        ("batch_jobs", 1),
    ]
    assert stored(registry, old.id) == (0, 0, 0, 0)
    finished = steps[0].finished_at
    assert [
        r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "retention" in r.getMessage()
    ] == [
        f"batch retention: job {old.id} (10 items, finished {finished.isoformat()}) is past its retention "
        "of 7 days, 0:00:00: removing it; clients now get 404",
        f"batch retention: job {old.id} removed (10 batch_results, 4 batch_chunks rows deleted)",
    ]
