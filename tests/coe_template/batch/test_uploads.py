"""Batch uploads written a chunk at a time: invisible until whole, nothing left when refused, within quotas.

Against every database the suite runs on (SQLite, and PostgreSQL when set). Chunks of
three items, so the ten items are four chunks.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from coe_template.batch.items import BatchInputError
from coe_template.batch.jobs import BatchJobs
from coe_template.batch.runner import BatchRunner
from coe_template.batch.schema import BatchChunk, BatchChunkInput, BatchJob
from coe_template.batch.uploads import STALE_UPLOAD_SECONDS, KeyReused, Quotas
from coe_template.errors import Busy, QuotaExceeded, Unavailable
from coe_template.registry import Registry
from coe_template.registry.schema import utcnow
from tests.conftest import MODEL

CHUNK = 3
ITEMS = [(f"p-{n}", f"object detection number {n}") for n in range(10)]


@pytest.fixture
def jobs(registry) -> BatchJobs:
    return BatchJobs(registry, chunk_size=CHUNK, lease_seconds=60)


def chunks_of(items: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    return [items[n : n + CHUNK] for n in range(0, len(items), CHUNK)]


def stored(registry: Registry) -> tuple[int, int, int]:
    """Rows of jobs, chunks and chunk inputs: what is really in the database."""
    with registry.engine.connect() as connection:
        jobs, chunks, inputs = (
            connection.scalar(select(func.count()).select_from(table)) or 0
            for table in (BatchJob, BatchChunk, BatchChunkInput)
        )
        return jobs, chunks, inputs


def statuses(registry: Registry) -> list[str]:
    with registry.engine.connect() as connection:
        return list(connection.scalars(select(BatchJob.status)))


# --- written a chunk at a time, seen by nobody until whole -----------------------------------------


def test_an_upload_is_invisible_and_unclaimable_until_its_last_chunk_is_in(jobs, registry):
    seen = []

    def chunks() -> Iterator[list[tuple[str, str]]]:
        yield ITEMS[0:3]
        yield ITEMS[3:6]  # the first chunk is written by now (the next ones are asked for first)
        seen.append((jobs.list(), jobs.claim("worker"), jobs.backlog(), statuses(registry)))
        yield ITEMS[6:9]

    job, created = jobs.upload(MODEL, chunks())
    assert seen == [(([], None), None, {"queued": (0, 0, 0), "running": (0, 0, 0)}, ["uploading"])]
    assert created and job.status == "queued" and job.total_items == 9
    assert jobs.get(job.id) == job
    assert stored(registry) == (1, 3, 3)


def test_a_streamed_job_runs_like_any_other(jobs, registry, trained_model):
    job, _ = jobs.upload(MODEL, iter(chunks_of(ITEMS)))
    BatchRunner(jobs, load=registry.load).run_until_idle()
    finished = jobs.get(job.id)
    assert (finished.status, finished.done_items, finished.total_items) == ("succeeded", 10, 10)
    assert [r.item_id for r in jobs.results(job.id, limit=100)[0]] == [i for i, _ in ITEMS]


def test_a_batch_refused_once_all_is_written_leaves_nothing_behind(jobs, registry):
    read_again = []

    def check(ids_again) -> None:
        read_again.extend(ids_again())
        raise BatchInputError("refused at the end")

    with pytest.raises(BatchInputError, match="^refused at the end$"):
        jobs.upload(MODEL, iter(chunks_of(ITEMS)), check=check)
    assert read_again == [[i for i, _ in chunk] for chunk in chunks_of(ITEMS)]  # what was stored, in order
    assert stored(registry) == (0, 0, 0)


def test_an_upload_cut_short_leaves_nothing_behind(jobs, registry):
    """An error reading the body, a refusal of a malformed row at line 4,000,000: the same."""

    def chunks() -> Iterator[list[tuple[str, str]]]:
        yield ITEMS[0:3]
        yield ITEMS[3:6]
        raise BatchInputError("the CSV file is malformed in the row starting on line 4000000: ...")

    with pytest.raises(BatchInputError, match="line 4000000"):
        jobs.upload(MODEL, chunks())
    assert stored(registry) == (0, 0, 0)


def test_an_upload_of_nothing_is_refused_and_leaves_nothing(jobs, registry):
    with pytest.raises(BatchInputError, match="^no items: a batch needs at least one$"):
        jobs.upload(MODEL, iter([]))
    assert stored(registry) == (0, 0, 0)


def test_an_upload_on_an_unknown_version_leaves_nothing(jobs, registry):
    with pytest.raises(LookupError):
        jobs.upload(MODEL, iter(chunks_of(ITEMS)), version=9)
    assert stored(registry) == (0, 0, 0)


def leftover(registry: Registry, age: float) -> str:
    """What a process killed while uploading leaves: a job ``uploading``, last written ``age`` s ago."""
    job_id = f"00000000-0000-0000-0000-{int(age):012d}"
    with registry.engine.begin() as connection:
        connection.execute(
            BatchJob.__table__.insert().values(
                id=job_id,
                model_name=MODEL,
                model_version=1,
                status="uploading",
                request_sha256="",
                total_items=3,
                total_chunks=1,
                done_items=0,
                done_chunks=0,
                created_at=utcnow() - timedelta(seconds=age),
            )
        )
        connection.execute(
            BatchChunk.__table__.insert().values(
                job_id=job_id, number=0, first=0, last=2, status="pending", attempts=0
            )
        )
        connection.execute(BatchChunkInput.__table__.insert().values(job_id=job_id, number=0, items="[]"))
    return job_id


def test_what_a_killed_upload_left_is_deleted_by_the_next_once_stale(jobs, registry):
    leftover(registry, STALE_UPLOAD_SECONDS + 60)
    live = leftover(registry, 5)  # maybe another process's upload, still being written: kept
    assert jobs.claim("worker") is None  # never claimable meanwhile
    job, _ = jobs.create(MODEL, ITEMS)
    with registry.engine.connect() as connection:
        left = sorted(connection.execute(select(BatchJob.id, BatchJob.status)).all())
        chunks = sorted(connection.scalars(select(BatchChunkInput.job_id).distinct()))
    assert left == sorted([(live, "uploading"), (job.id, "queued")])
    assert chunks == sorted([live, job.id])


# --- idempotency keys: the digest of the request as streamed ----------------------------------------


def test_a_streamed_retry_with_its_key_returns_the_first_job_and_leaves_no_copy(jobs, registry):
    first, created = jobs.upload(MODEL, iter(chunks_of(ITEMS)), idempotency_key="k")
    again, created_again = jobs.upload(MODEL, iter(chunks_of(ITEMS)), idempotency_key="k")
    whole, _ = jobs.create(MODEL, ITEMS, idempotency_key="k")  # the same request, sent whole
    assert (created, created_again) == (True, False)
    assert again == whole == first
    assert stored(registry) == (1, 4, 4)


def test_a_key_reused_for_another_upload_is_refused_and_leaves_no_copy(jobs, registry):
    first, _ = jobs.upload(MODEL, iter(chunks_of(ITEMS)), idempotency_key="k")
    with pytest.raises(KeyReused) as info:
        jobs.upload(MODEL, iter(chunks_of(ITEMS[:9])), idempotency_key="k")
    assert info.value.job_id == first.id
    assert stored(registry) == (1, 4, 4)


# --- quotas -----------------------------------------------------------------------------------------


def test_a_client_over_its_quota_is_refused_naming_the_limit_and_others_are_not(registry):
    jobs = BatchJobs(registry, chunk_size=CHUNK, quotas=Quotas(per_client=12))
    jobs.create(MODEL, ITEMS, client="addr:10.0.0.1")
    with pytest.raises(QuotaExceeded) as info:
        jobs.create(MODEL, ITEMS[:3], client="addr:10.0.0.1")
    assert str(info.value) == (
        "this client's open batch jobs hold 10 items not yet done; at least 3 more would exceed the limit of 12 "
        "per client; retry once some are done, or send fewer"
    )
    assert info.value.retry_after == 60
    assert stored(registry) == (1, 4, 4)
    jobs.create(MODEL, ITEMS[:3], client="addr:10.0.0.2")
    jobs.create(MODEL, ITEMS[:2], client="addr:10.0.0.1")  # 12: exactly the bound


def test_items_done_no_longer_count_toward_the_quota(registry):
    jobs = BatchJobs(registry, chunk_size=CHUNK, quotas=Quotas(per_client=10, overall=10))
    jobs.create(MODEL, ITEMS, client="key:a")
    with pytest.raises(QuotaExceeded):
        jobs.create(MODEL, ITEMS[:1], client="key:a")
    BatchRunner(jobs, load=registry.load).run_until_idle()
    job, created = jobs.create(MODEL, ITEMS, client="key:a")
    assert created and job.status == "queued"


def test_the_server_wide_bound_is_a_busy_refusal(registry):
    jobs = BatchJobs(registry, chunk_size=CHUNK, quotas=Quotas(per_client=100, overall=15))
    jobs.create(MODEL, ITEMS, client="addr:10.0.0.1")
    with pytest.raises(Busy) as info:
        jobs.create(MODEL, ITEMS, client="addr:10.0.0.2")
    assert str(info.value) == (
        "the open batch jobs hold 10 items not yet done; at least 6 more would exceed the server's limit of 15; "
        "retry later"
    )
    assert info.value.retry_after == 60
    assert stored(registry) == (1, 4, 4)


def test_a_large_upload_over_the_quota_is_refused_before_it_is_all_read(registry):
    jobs = BatchJobs(registry, chunk_size=CHUNK, quotas=Quotas(per_client=5))
    read = []

    def chunks() -> Iterator[list[tuple[str, str]]]:
        for chunk in chunks_of(ITEMS):
            read.append(len(chunk))
            yield chunk

    with pytest.raises(QuotaExceeded, match="; at least 6 more would exceed the limit of 5 per client"):
        jobs.upload(MODEL, chunks(), client="addr:10.0.0.1")
    assert read == [3, 3]
    assert stored(registry) == (0, 0, 0)


def test_two_uploads_at_once_cannot_both_pass_a_bound_only_one_fits(registry):
    """Both are written, neither queued, when both check the quota: only one may be queued.

    Each upload, about to queue its job, waits (up to 3 s) for the other to get that far: if
    both could count the open items before either is queued, both would pass.
    """
    jobs = BatchJobs(registry, chunk_size=CHUNK, quotas=Quotas(per_client=15))
    both_written = threading.Barrier(2, timeout=30)
    both_counted = threading.Barrier(2, timeout=3)
    outcomes: list[str] = []

    def queueing(_connection, _cursor, statement, parameters, _context, _many) -> None:
        values = parameters.values() if isinstance(parameters, dict) else parameters  # PostgreSQL, SQLite
        if statement.startswith("UPDATE batch_jobs") and "queued" in values:
            with contextlib.suppress(threading.BrokenBarrierError):
                both_counted.wait()  # broken when the other waits for the lock this one holds: as it should

    def chunks() -> Iterator[list[tuple[str, str]]]:
        yield from chunks_of(ITEMS)
        both_written.wait()

    def upload() -> None:
        try:
            jobs.upload(MODEL, chunks(), client="addr:10.0.0.1")
            outcomes.append("queued")
        except QuotaExceeded as exc:
            outcomes.append(str(exc))

    event.listen(registry.engine, "before_cursor_execute", queueing)
    try:
        threads = [threading.Thread(target=upload) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        event.remove(registry.engine, "before_cursor_execute", queueing)
    assert sorted(outcomes) == [
        "queued",
        "this client's open batch jobs hold 10 items not yet done; 10 more would exceed the limit of 15 "
        "per client; retry once some are done, or send fewer",
    ]
    assert statuses(registry) == ["queued"]
    assert stored(registry) == (1, 4, 4)


def test_an_upload_taken_for_abandoned_is_told_so_and_leaves_nothing(jobs, registry):
    """Not written to for STALE_UPLOAD_SECONDS (a hung database, a stopped process), then deleted by
    another upload: it must not be queued half-written, nor come back."""

    def chunks() -> Iterator[list[tuple[str, str]]]:
        yield ITEMS[0:3]
        with registry.engine.begin() as connection:  # as if it had hung this long
            connection.execute(
                BatchJob.__table__.update().values(
                    created_at=utcnow() - timedelta(seconds=STALE_UPLOAD_SECONDS + 1)
                )
            )
        BatchJobs(registry, chunk_size=CHUNK).create(MODEL, ITEMS[:1])  # another upload cleans up
        yield ITEMS[3:6]

    with pytest.raises(Unavailable) as info:
        jobs.upload(MODEL, chunks())
    assert str(info.value) == (
        "this upload was not written to for 600 s and was dropped as abandoned; send it again"
    )
    assert stored(registry) == (1, 1, 1)  # the other upload's job only
