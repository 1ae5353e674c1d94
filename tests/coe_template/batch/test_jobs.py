"""Batch jobs, against every database the suite runs on (SQLite, and PostgreSQL when set).

Each test gets an empty database and a model store of its own holding the default
model as ready version 1, behind production; tests that need a second ready
version ask for ``version_2`` (writing a version's artifacts is the slow part of
a test). Jobs are split into chunks of three items, so ten items are four chunks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import String, event, func, select, update

from coe_template.artifacts.runs import MODEL_FILE, runs_dir
from coe_template.batch.items import BatchInputError
from coe_template.batch.jobs import MAX_ATTEMPTS, BatchJobs
from coe_template.batch.records import (
    Claim,
    JobInfo,
    JobNotFound,
    ResultInfo,
    ResultNotFound,
    job_token_sha256,
    new_job_token,
)
from coe_template.batch.runner import BatchRunner, Progress
from coe_template.batch.schema import BatchChunk, BatchChunkInput, BatchJob, BatchResult
from coe_template.batch.uploads import KeyReused
from coe_template.errors import STORED_ERROR_LENGTH, DatabaseUnavailable
from coe_template.model.predict import predict, tag
from coe_template.registry import (
    PRODUCTION,
    AliasNotFound,
    Conflict,
    ModelNotFound,
    Registry,
    VersionNotFound,
)
from coe_template.registry.schema import utcnow
from tests.conftest import MODEL
from tests.waiting import wait_until

CHUNK = 3
TEXTS = [
    "Detection of objects in camera video with yolo",
    "Sentiment of text with a transformer",
    "Serving and monitoring models in production with docker and kubernetes",
    "Forecasting sales and churn from tabular data",
    "Image segmentation of medical scans with a unet",
    "Question answering over documents with bert",
    "Feature store and experiment tracking for ML pipelines",
    "Playing atari games with reinforcement learning",
    "Named entity recognition for legal contracts",
    "Pose estimation from a webcam in real time",
]
#: Ten items: chunks [0-2], [3-5], [6-8], [9].
ITEMS = [(f"p-{n}", text) for n, text in enumerate(TEXTS)]
IDS = [item_id for item_id, _ in ITEMS]
UNKNOWN_JOB = "00000000-0000-0000-0000-000000000000"


# --- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture
def version_2(registry, trained_model) -> int:
    """A second ready version of the same model, not behind any alias."""
    return registry.register(MODEL, trained_model).version


@pytest.fixture
def jobs(registry) -> BatchJobs:
    return BatchJobs(registry, chunk_size=CHUNK, lease_seconds=60)


@pytest.fixture
def expiring(registry) -> BatchJobs:
    """The same jobs, seen by workers whose leases run out the moment they are taken."""
    return BatchJobs(registry, chunk_size=CHUNK, lease_seconds=0)


@pytest.fixture
def load(registry) -> Callable:
    """``registry.load``, each version loaded once and kept, as the server keeps its pinned versions."""
    return functools.cache(registry.load)


@pytest.fixture
def runner(jobs, load) -> BatchRunner:
    return BatchRunner(jobs, load=load)


def rows(registry: Registry, table: Any, job_id: str) -> int:
    """How many rows of ``table`` belong to the job: what is really stored, not what is reported."""
    with registry.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table).where(table.job_id == job_id))


def all_results(jobs: BatchJobs, job_id: str) -> list[ResultInfo]:
    page, cursor = jobs.results(job_id, limit=1000)
    assert cursor is None
    return page


def ids_of(results: list[ResultInfo]) -> list[str]:
    return [r.item_id for r in results]


def predictions_for(claim: Claim, load: Callable) -> tuple[list[str], list[list[float]], list[str]]:
    """What a worker holding ``claim`` would store for it: tags, probability rows, labels."""
    artifacts = load(claim.model_name, claim.model_version)
    tags, probabilities = tag([text for _, text in claim.items], artifacts)
    return tags, probabilities.tolist(), artifacts.labels


def claim_all(jobs: BatchJobs, owner: str) -> list[Claim]:
    claims = []
    while (claim := jobs.claim(owner)) is not None:
        claims.append(claim)
    return claims


def in_threads(count: int, work: Callable[[int], list[Any]]) -> list[Any]:
    """Run ``work(n)`` in ``count`` threads started together; all they return, their errors re-raised."""
    barrier = threading.Barrier(count)
    collected: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        try:
            barrier.wait()
            found = work(n)
            with lock:
                collected.extend(found)
        except BaseException as exc:  # reported below, not lost in the thread
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return collected


def tamper(registry: Registry, version: int) -> None:
    """Flip one byte in the middle of a version's model file."""
    path = runs_dir(registry.store) / registry.get_version(MODEL, version).run_id / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


# --- creating ----------------------------------------------------------------------------------------


def test_create_records_a_queued_job_on_the_production_version(jobs, registry):
    job, created = jobs.create(MODEL, ITEMS)
    assert created is True
    assert job.status == "queued"
    assert (job.model_name, job.model_version) == (MODEL, 1)
    assert (job.total_items, job.done_items) == (len(ITEMS), 0)
    assert job.progress == 0.0
    assert job.created_at.tzinfo is UTC  # also from SQLite, which stores no zone
    assert (job.started_at, job.finished_at, job.error) == (None, None, None)
    assert jobs.get(job.id) == job
    assert rows(registry, BatchChunk, job.id) == 4
    assert jobs.results(job.id, limit=100) == ([], None)
    with pytest.raises(ResultNotFound):
        jobs.result(job.id, "p-0")  # nothing is predicted at creation


def test_a_job_of_no_items_is_refused_and_nothing_is_recorded(jobs, registry):
    with pytest.raises(BatchInputError) as refused:
        jobs.create(MODEL, [])
    assert str(refused.value) == "no items: a batch needs at least one"
    assert jobs.list()[0] == []


def test_a_job_is_split_into_chunks_of_consecutive_items(jobs, registry):
    job, _ = jobs.create(MODEL, ITEMS)
    # Each chunk's first and last item, as an operator reads them.
    with registry.engine.connect() as connection:
        spans = connection.execute(
            select(BatchChunk.number, BatchChunk.first, BatchChunk.last)
            .where(BatchChunk.job_id == job.id)
            .order_by(BatchChunk.number)
        ).all()
    assert [tuple(span) for span in spans] == [(0, 0, 2), (1, 3, 5), (2, 6, 8), (3, 9, 9)]
    claims = claim_all(jobs, "worker")
    assert [(c.job_id, c.number, c.first) for c in claims] == [
        (job.id, 0, 0),
        (job.id, 1, 3),
        (job.id, 2, 6),
        (job.id, 3, 9),
    ]
    assert [c.items for c in claims] == [ITEMS[first : first + CHUNK] for first in (0, 3, 6, 9)]
    assert {(c.model_name, c.model_version, c.owner, c.attempts) for c in claims} == {(MODEL, 1, "worker", 1)}
    claimed = jobs.get(job.id)
    assert claimed.status == "running"
    assert claimed.started_at is not None
    for count, chunks in [(1, 1), (3, 1), (4, 2), (6, 2), (7, 3)]:
        jobs.create(MODEL, ITEMS[:count])
        claims = claim_all(jobs, "worker")
        assert len(claims) == chunks
        assert [item_id for c in claims for item_id, _ in c.items] == IDS[:count]


@pytest.mark.usefixtures("version_2")
def test_create_on_a_given_version_or_on_production_as_it_is_then(jobs, registry, runner):
    on_2, created = jobs.create(MODEL, ITEMS, version=2)
    assert created
    assert (on_2.model_name, on_2.model_version) == (MODEL, 2)
    before, _ = jobs.create(MODEL, ITEMS[:2])
    registry.set_alias(MODEL, PRODUCTION, 2)
    after, _ = jobs.create(MODEL, ITEMS[:2])
    runner.run_until_idle()
    for job, version in ((on_2, 2), (before, 1), (after, 2)):
        assert jobs.get(job.id).model_version == version
        assert {r.model_version for r in all_results(jobs, job.id)} == {version}


def test_an_unknown_model_or_version_is_a_lookup_error_and_nothing_is_recorded(jobs, registry, trained_model):
    with pytest.raises(VersionNotFound, match="'project-tagger' has no version 9") as info:
        jobs.create(MODEL, ITEMS, version=9)
    assert isinstance(info.value, LookupError)
    with pytest.raises(ModelNotFound, match="'no-such-model'"):
        jobs.create("no-such-model", ITEMS, version=1)
    with pytest.raises(ModelNotFound):
        jobs.create("no-such-model", ITEMS)
    registry.ensure_model("second-model")
    registry.register("second-model", trained_model)
    with pytest.raises(AliasNotFound, match="'production'"):  # no production version: name one
        jobs.create("second-model", ITEMS)
    assert jobs.list() == ([], None)
    job, _ = jobs.create("second-model", ITEMS, version=1)
    assert (job.model_name, job.model_version) == ("second-model", 1)


@pytest.mark.usefixtures("version_2")
def test_a_version_that_is_not_ready_is_a_conflict_and_nothing_is_recorded(jobs, registry, trained_model):
    registry.archive_version(MODEL, 2)
    with pytest.raises(Conflict, match="version 2 of 'project-tagger' is archived"):
        jobs.create(MODEL, ITEMS, version=2)
    registry.create_version(MODEL, trained_model.args)
    with pytest.raises(Conflict, match="version 3 of 'project-tagger' is training"):
        jobs.create(MODEL, ITEMS, version=3)
    registry.fail_version(MODEL, 3, "out of memory")
    with pytest.raises(Conflict, match="version 3 of 'project-tagger' is failed"):
        jobs.create(MODEL, ITEMS, version=3)
    assert jobs.list() == ([], None)


# --- idempotency -------------------------------------------------------------------------------------


def test_the_same_key_and_request_return_the_first_job(jobs, runner):
    first, created = jobs.create(MODEL, ITEMS, idempotency_key="key-1")
    again, created_again = jobs.create(MODEL, ITEMS, idempotency_key="key-1")
    assert (created, created_again) == (True, False)
    assert again == first
    with pytest.raises(Conflict, match="key-1"):  # naming the version makes it another request
        jobs.create(MODEL, ITEMS, version=1, idempotency_key="key-1")
    runner.run_until_idle()
    later, created_later = jobs.create(MODEL, ITEMS, idempotency_key="key-1")
    assert (later.id, created_later) == (first.id, False)
    assert later.status == "succeeded"  # the job as it is now
    assert [j.id for j in jobs.list()[0]] == [first.id]


def test_a_retry_is_recognised_whatever_the_chunk_size(jobs, registry):
    first, _ = jobs.create(MODEL, ITEMS, idempotency_key="key-1")
    restarted = BatchJobs(registry, chunk_size=4)  # a server restarted with another COE_BATCH_CHUNK_SIZE
    again, created = restarted.create(MODEL, ITEMS, idempotency_key="key-1")
    assert (again.id, created) == (first.id, False)
    # The digest is of the request as a whole, as jobs created before chunks held their items recorded it.
    whole = json.dumps([MODEL, None, ITEMS], separators=(",", ":"))
    with registry.engine.connect() as connection:
        recorded = connection.scalar(select(BatchJob.request_sha256).where(BatchJob.id == first.id))
    assert recorded == hashlib.sha256(whole.encode()).hexdigest()


@pytest.mark.usefixtures("version_2")
def test_a_retry_after_production_moved_still_returns_the_first_job(jobs, registry):
    first, _ = jobs.create(MODEL, ITEMS, idempotency_key="key-1")
    registry.set_alias(MODEL, PRODUCTION, 2)
    again, created = jobs.create(MODEL, ITEMS, idempotency_key="key-1")
    assert (again.id, created) == (first.id, False)


@pytest.mark.usefixtures("version_2")
def test_a_retry_after_its_version_was_archived_still_returns_the_first_job(jobs, registry):
    first, _ = jobs.create(MODEL, ITEMS, version=2, idempotency_key="key-1")
    registry.archive_version(MODEL, 2)  # a new job could no longer be made on it
    again, created = jobs.create(MODEL, ITEMS, version=2, idempotency_key="key-1")
    assert (again.id, created) == (first.id, False)


@pytest.mark.parametrize("same_request", [True, False])
def test_a_request_racing_another_with_its_key_gets_the_others_job_or_a_conflict(
    jobs, registry, monkeypatch, same_request
):
    """The other request is recorded between this one's look for the key and its own insert."""
    get_version = registry.get_version
    others: list[JobInfo] = []

    def racing(name: str, version: int):
        monkeypatch.setattr(registry, "get_version", get_version)
        others.append(jobs.create(MODEL, ITEMS if same_request else ITEMS[:4], idempotency_key="key-1")[0])
        return get_version(name, version)

    monkeypatch.setattr(registry, "get_version", racing)
    if same_request:
        assert jobs.create(MODEL, ITEMS, idempotency_key="key-1") == (others[0], False)
    else:
        with pytest.raises(KeyReused) as info:
            jobs.create(MODEL, ITEMS, idempotency_key="key-1")
        assert str(info.value) == f"key 'key-1' was already used for a different request (job {others[0].id})"
    assert [job.id for job in jobs.list()[0]] == [others[0].id]


@pytest.mark.usefixtures("version_2")
def test_the_same_key_with_a_different_request_is_a_conflict(jobs):
    first, _ = jobs.create(MODEL, ITEMS, idempotency_key="key-1")
    different = {
        "one item fewer": (ITEMS[:-1], None),
        "another order": (ITEMS[::-1], None),
        "a text changed": ([("p-0", "another text"), *ITEMS[1:]], None),
        "an id changed": ([("q-0", ITEMS[0][1]), *ITEMS[1:]], None),
        "another version": (ITEMS, 2),
    }
    for what, (items, version) in different.items():
        with pytest.raises(KeyReused) as info:
            jobs.create(MODEL, items, version=version, idempotency_key="key-1")
        assert str(info.value) == f"key 'key-1' was already used for a different request (job {first.id})", (
            what
        )
        assert (info.value.key, info.value.job_id) == ("key-1", first.id), what
    assert [j.id for j in jobs.list()[0]] == [first.id]


def test_without_a_key_or_with_different_keys_each_request_is_a_new_job(jobs):
    answers = [
        jobs.create(MODEL, ITEMS),
        jobs.create(MODEL, ITEMS),
        jobs.create(MODEL, ITEMS, idempotency_key="key-1"),
        jobs.create(MODEL, ITEMS, idempotency_key="key-2"),
    ]
    assert all(created for _, created in answers)
    assert len({job.id for job, _ in answers}) == 4
    assert len(jobs.list()[0]) == 4


def test_concurrent_requests_with_one_key_make_one_job(jobs, registry):
    answers = in_threads(4, lambda n: [jobs.create(MODEL, ITEMS, idempotency_key="key-1")])
    assert len({job.id for job, _ in answers}) == 1
    assert sorted(created for _, created in answers) == [False, False, False, True]
    [job], _ = jobs.list()
    assert rows(registry, BatchChunk, job.id) == 4


# --- running -----------------------------------------------------------------------------------------


def test_running_stores_exactly_one_result_per_item(jobs, runner, registry):
    older, _ = jobs.create(MODEL, ITEMS)
    newer, _ = jobs.create(MODEL, ITEMS[:4])
    runner.run_once()
    part = jobs.get(older.id)
    assert (part.status, part.done_items, part.progress) == ("running", 3, 0.3)
    assert ids_of(all_results(jobs, older.id)) == IDS[:3]

    worked: list[Claim] = []
    runner.run_until_idle(worked.append)
    assert [(c.job_id, c.number) for c in worked] == [  # oldest job first, chunks in order
        (older.id, 1),
        (older.id, 2),
        (older.id, 3),
        (newer.id, 0),
        (newer.id, 1),
    ]
    for job, count in ((older, len(ITEMS)), (newer, 4)):
        done = jobs.get(job.id)
        assert done.status == "succeeded"
        assert (done.total_items, done.done_items) == (count, count)
        assert done.progress == 1.0
        assert done.started_at <= done.finished_at
        assert done.error is None
        assert rows(registry, BatchResult, job.id) == count
    assert runner.run_once() is None  # nothing left to do


def test_a_chunks_input_is_kept_until_the_chunk_is_done(jobs, runner, registry, load):
    job, _ = jobs.create(MODEL, ITEMS)
    assert rows(registry, BatchChunkInput, job.id) == 4
    held = jobs.claim("worker")
    assert rows(registry, BatchChunkInput, job.id) == 4  # a claim that dies must leave it for the next
    assert jobs.complete(held, *predictions_for(held, load))
    assert rows(registry, BatchChunkInput, job.id) == 3
    runner.run_until_idle()
    assert rows(registry, BatchChunkInput, job.id) == 0
    assert rows(registry, BatchChunk, job.id) == 4 and rows(registry, BatchResult, job.id) == len(ITEMS)


def test_results_come_back_in_input_order_and_page_through_every_item_once(jobs, runner):
    order = [7, 2, 9, 0, 5, 1, 8, 3, 6, 4]
    shuffled = [ITEMS[n] for n in order]
    job, _ = jobs.create(MODEL, shuffled)
    runner.run_until_idle()
    results = all_results(jobs, job.id)
    assert ids_of(results) == [f"p-{n}" for n in order]
    for result in results:
        assert result.model_version == 1
        assert result.predicted_tag in result.probabilities
        assert sum(result.probabilities.values()) == pytest.approx(1.0)
        assert jobs.result(job.id, result.item_id) == result
    for limit in (1, 2, 3, 4, 9, 10, 11, 100):
        seen, cursor, pages = [], -1, 0
        while cursor is not None:
            page, cursor = jobs.results(job.id, after=cursor, limit=limit)
            assert 0 < len(page) <= limit
            seen += page
            pages += 1
        assert seen == results, limit
        assert pages == -(-len(ITEMS) // limit), limit


def test_results_come_back_in_input_order_whatever_order_their_chunks_were_stored_in(jobs, registry, load):
    if registry.engine.dialect.name == "sqlite":  # SQLite reads an index in its order unless told otherwise
        registry.engine.dispose()
        event.listen(
            registry.engine,
            "connect",
            lambda dbapi, _: dbapi.execute("PRAGMA reverse_unordered_selects = ON"),
        )
    job, _ = jobs.create(MODEL, ITEMS)
    for claim in reversed(claim_all(jobs, "worker")):  # the last chunk's results are written first
        assert jobs.complete(claim, *predictions_for(claim, load))
    assert ids_of(all_results(jobs, job.id)) == IDS
    page, cursor = jobs.results(job.id, limit=4)
    assert (ids_of(page), cursor) == (IDS[:4], 3)


@pytest.mark.usefixtures("version_2")
def test_a_stored_result_is_what_real_time_prediction_gives(jobs, runner, registry):
    shuffled = ITEMS[::-1]
    on_1, _ = jobs.create(MODEL, shuffled)
    on_2, _ = jobs.create(MODEL, shuffled, version=2)
    runner.run_until_idle()
    for job, version in ((on_1, 1), (on_2, 2)):
        realtime = predict([text for _, text in shuffled], registry.load(MODEL, version))
        for (item_id, _), expected in zip(shuffled, realtime, strict=True):
            assert jobs.result(job.id, item_id) == ResultInfo(
                item_id=item_id,
                predicted_tag=expected["predicted_tag"],
                probabilities=expected["probabilities"],
                model_version=version,
            )


def test_unknown_jobs_and_items_are_not_found(jobs, runner):
    first, _ = jobs.create(MODEL, ITEMS[:2])
    second, _ = jobs.create(MODEL, [("other", "Text of another job")])
    runner.run_until_idle()
    calls = {
        "get": lambda: jobs.get(UNKNOWN_JOB),
        "results": lambda: jobs.results(UNKNOWN_JOB, limit=100),
        "result": lambda: jobs.result(UNKNOWN_JOB, "p-0"),
        "cancel_or_delete": lambda: jobs.cancel_or_delete(UNKNOWN_JOB),
        "list": lambda: jobs.list(after=UNKNOWN_JOB),
    }
    for what, call in calls.items():
        with pytest.raises(JobNotFound, match=UNKNOWN_JOB) as info:
            call()
        assert isinstance(info.value, LookupError), what
    with pytest.raises(ResultNotFound) as missing:
        jobs.result(first.id, "p-99")
    assert first.id in str(missing.value) and "'p-99'" in str(missing.value)
    assert isinstance(missing.value, LookupError)
    with pytest.raises(ResultNotFound):
        jobs.result(first.id, "other")  # an item of another job
    assert jobs.result(second.id, "other").item_id == "other"


# --- claims and leases -------------------------------------------------------------------------------


def test_concurrent_workers_never_claim_the_same_chunk(jobs):
    created = [jobs.create(MODEL, ITEMS)[0].id for _ in range(3)]
    claims = in_threads(4, lambda n: claim_all(jobs, f"worker-{n}"))
    claimed = sorted((c.job_id, c.number) for c in claims)
    assert claimed == sorted((job_id, number) for job_id in created for number in range(4))  # each once
    assert all(c.attempts == 1 for c in claims)
    assert jobs.claim("latecomer") is None  # every lease is still held
    assert all(jobs.get(job_id).status == "running" for job_id in created)


def test_concurrent_runners_store_every_result_once(jobs, load, registry):
    created = [jobs.create(MODEL, ITEMS)[0].id for _ in range(2)]
    runners = [BatchRunner(jobs, load=load) for _ in range(3)]

    def work(n: int) -> list[Claim]:
        worked: list[Claim] = []
        runners[n].run_until_idle(worked.append)
        return worked

    worked = in_threads(3, work)
    assert sorted((c.job_id, c.number) for c in worked) == sorted((j, n) for j in created for n in range(4))
    for job_id in created:
        assert jobs.get(job_id).status == "succeeded"
        assert ids_of(all_results(jobs, job_id)) == IDS
        assert rows(registry, BatchResult, job_id) == len(ITEMS)


def test_a_started_runner_takes_a_job_created_in_its_process_without_waiting_for_its_poll(
    jobs, load, monkeypatch
):
    found_nothing = threading.Event()
    claim = jobs.claim

    def watched(*args, **kwargs):  # the real claim, seen
        claimed = claim(*args, **kwargs)
        if claimed is None:
            found_nothing.set()
        return claimed

    monkeypatch.setattr(jobs, "claim", watched)
    runner = BatchRunner(jobs, load=load, poll_seconds=600)
    runner.start()
    try:
        assert found_nothing.wait(30)  # idle now, until its next poll in ten minutes
        job, _ = jobs.create(MODEL, ITEMS)
        deadline = time.monotonic() + 30
        while jobs.get(job.id).status != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert jobs.get(job.id).status == "succeeded"
    finally:
        runner.stop()
    assert not runner._thread.is_alive()  # stop() wakes it too


def test_a_claim_that_does_not_look_first_takes_the_same_chunk(jobs):
    job, _ = jobs.create(MODEL, ITEMS)
    first = jobs.claim("worker", look_first=False)
    assert (first.job_id, first.number, first.items) == (job.id, 0, ITEMS[:CHUNK])
    assert jobs.claim("worker", look_first=False).number == 1
    jobs.cancel_or_delete(job.id)
    assert jobs.claim("worker", look_first=False) is None


def test_an_expired_lease_is_taken_over_and_only_the_new_holder_stores(jobs, expiring, registry, load):
    job, _ = jobs.create(MODEL, ITEMS[:3])
    first = expiring.claim("worker-a")
    second = expiring.claim("worker-b")  # worker-a's lease ran out: worker-b takes the chunk over
    assert (second.job_id, second.number) == (first.job_id, first.number)
    assert (first.attempts, second.attempts) == (1, 2)
    predictions = predictions_for(first, load)

    assert expiring.complete(first, *predictions) is False  # worker-a lost the chunk: nothing stored
    assert jobs.results(job.id, limit=100) == ([], None)
    assert (jobs.get(job.id).status, jobs.get(job.id).done_items) == ("running", 0)

    assert expiring.complete(second, *predictions) is True
    assert expiring.complete(first, *predictions) is False  # still nothing from the late worker
    assert expiring.complete(second, *predictions) is False  # and a chunk is stored only once
    done = jobs.get(job.id)
    assert (done.status, done.done_items) == ("succeeded", 3)
    assert ids_of(all_results(jobs, job.id)) == IDS[:3]
    assert rows(registry, BatchResult, job.id) == 3


def test_a_chunk_taken_over_mid_job_leaves_no_duplicates(jobs, expiring, runner, registry, load):
    job, _ = jobs.create(MODEL, ITEMS)
    stalled = expiring.claim("worker-that-stalled")  # chunk 0, its lease already run out
    runner.run_until_idle()  # a live worker takes chunk 0 over and finishes the job
    assert expiring.complete(stalled, *predictions_for(stalled, load)) is False
    done = jobs.get(job.id)
    assert (done.status, done.done_items) == ("succeeded", len(ITEMS))
    assert ids_of(all_results(jobs, job.id)) == IDS
    assert rows(registry, BatchResult, job.id) == len(ITEMS)


def test_a_chunk_abandoned_max_attempts_times_fails_its_job_only(jobs, expiring, runner, registry):
    doomed, _ = jobs.create(MODEL, ITEMS)
    healthy, _ = jobs.create(MODEL, ITEMS)
    for n in range(MAX_ATTEMPTS):
        claim = expiring.claim(f"crashed-{n}")  # taken, never completed: the worker died
        assert (claim.job_id, claim.number, claim.attempts) == (doomed.id, 0, n + 1)
    runner.run_until_idle()
    failed = jobs.get(doomed.id)
    assert failed.status == "failed"
    assert failed.error == f"chunk 0 was abandoned {MAX_ATTEMPTS} times"
    assert failed.finished_at is not None
    assert failed.done_items == 0
    assert rows(registry, BatchResult, doomed.id) == 0
    assert jobs.get(healthy.id).status == "succeeded"
    assert ids_of(all_results(jobs, healthy.id)) == IDS
    assert jobs.claim("anyone") is None  # a failed job's chunks are no longer handed out


def test_a_chunk_abandoned_fewer_times_is_retried_to_success(jobs, expiring, runner):
    job, _ = jobs.create(MODEL, ITEMS)
    for n in range(MAX_ATTEMPTS - 1):
        expiring.claim(f"crashed-{n}")
    runner.run_until_idle()
    done = jobs.get(job.id)
    assert (done.status, done.done_items, done.error) == ("succeeded", len(ITEMS), None)
    assert ids_of(all_results(jobs, job.id)) == IDS


@pytest.mark.usefixtures("version_2")
def test_a_runner_tells_its_observer_how_each_chunk_ended(jobs, expiring, registry, load):
    abandoned, _ = jobs.create(MODEL, ITEMS[:3])
    for n in range(MAX_ATTEMPTS):
        expiring.claim(f"crashed-{n}")
    unloadable, _ = jobs.create(MODEL, ITEMS[:3], version=2)
    registry.archive_version(MODEL, 2)
    fine, _ = jobs.create(MODEL, ITEMS[:6])
    seen: list[tuple[str, int, str]] = []

    def observe(claim: Claim, outcome: str) -> None:
        seen.append((claim.job_id, claim.number, outcome))

    BatchRunner(jobs, load, observe=observe).run_until_idle()
    cancelled, _ = jobs.create(MODEL, ITEMS[:3])

    def cancelling(name: str, version: int):  # the job is cancelled while its chunk is in hand
        jobs.cancel_or_delete(cancelled.id)
        return load(name, version)

    BatchRunner(jobs, cancelling, observe=observe).run_until_idle()
    assert seen == [
        (abandoned.id, 0, "failed"),
        (unloadable.id, 0, "failed"),
        (fine.id, 0, "done"),
        (fine.id, 1, "done"),
        (cancelled.id, 0, "dropped"),
    ]


# --- a model that cannot be loaded -------------------------------------------------------------------


@pytest.mark.usefixtures("version_2")
def test_a_job_whose_model_was_tampered_with_fails_naming_the_file(jobs, runner, registry):
    broken, _ = jobs.create(MODEL, ITEMS)
    fine, _ = jobs.create(MODEL, ITEMS, version=2)
    tamper(registry, 1)
    runner.run_until_idle()
    failed = jobs.get(broken.id)
    assert failed.status == "failed"
    assert failed.error.startswith("cannot load version 1: ")
    assert MODEL_FILE in failed.error
    assert failed.finished_at is not None
    assert jobs.results(broken.id, limit=100) == ([], None)
    assert rows(registry, BatchResult, broken.id) == 0
    assert jobs.get(fine.id).status == "succeeded"  # other versions still run
    assert ids_of(all_results(jobs, fine.id)) == IDS


@pytest.mark.usefixtures("version_2")
def test_a_job_whose_model_file_is_gone_or_whose_version_was_archived_fails_saying_so(jobs, runner, registry):
    missing, _ = jobs.create(MODEL, ITEMS)
    archived, _ = jobs.create(MODEL, ITEMS, version=2)
    (runs_dir(registry.store) / registry.get_version(MODEL, 1).run_id / MODEL_FILE).unlink()
    registry.archive_version(MODEL, 2)  # after the job was accepted, before it ran
    runner.run_until_idle()
    failed = jobs.get(missing.id)
    assert failed.status == "failed"
    assert failed.error.startswith("cannot load version 1: ")
    assert MODEL_FILE in failed.error and "missing" in failed.error
    failed = jobs.get(archived.id)
    assert failed.status == "failed"
    assert failed.error == (
        "cannot load version 2: version 2 of 'project-tagger' is archived: it has no model to load"
    )
    assert rows(registry, BatchResult, missing.id) == rows(registry, BatchResult, archived.id) == 0


# --- the job's token and the backlog -------------------------------------------------------------------


def test_a_job_is_held_by_the_token_minted_for_it_and_by_no_other(jobs):
    token, digest = new_job_token()
    other_token, other_digest = new_job_token()
    assert len(token) == 43 and token != other_token  # 32 random bytes, URL-safe base64
    assert digest == hashlib.sha256(token.encode()).hexdigest() == job_token_sha256(token)
    mine, _ = jobs.create(MODEL, ITEMS, token_sha256=digest)
    theirs, _ = jobs.create(MODEL, ITEMS, token_sha256=other_digest)
    untokened, _ = jobs.create(MODEL, ITEMS)  # as the CLI creates them
    assert [jobs.holds_token(mine.id, t) for t in (token, other_token, token[:-1], None)] == [
        True,
        False,
        False,
        False,
    ]
    assert jobs.holds_token(theirs.id, other_token) is True
    assert [jobs.holds_token(untokened.id, t) for t in (token, "", None)] == [False, False, False]
    with pytest.raises(JobNotFound) as raised:
        jobs.holds_token(UNKNOWN_JOB, token)
    assert str(raised.value) == str(JobNotFound(UNKNOWN_JOB))


def test_the_backlog_counts_active_jobs_and_what_they_have_left(jobs, load):
    assert jobs.backlog() == {"queued": (0, 0, 0), "running": (0, 0, 0)}
    first, _ = jobs.create(MODEL, ITEMS)  # 10 items, 4 chunks
    jobs.create(MODEL, ITEMS[:4])  # 4 items, 2 chunks
    assert jobs.backlog() == {"queued": (2, 14, 6), "running": (0, 0, 0)}
    held = jobs.claim("worker")
    assert held is not None and held.job_id == first.id
    assert jobs.complete(held, *predictions_for(held, load))  # 3 items, a chunk, of the first job
    assert jobs.backlog() == {"queued": (1, 4, 2), "running": (1, 7, 3)}
    jobs.cancel_or_delete(first.id)
    assert jobs.backlog() == {"queued": (1, 4, 2), "running": (0, 0, 0)}


# --- cancelling and deleting -------------------------------------------------------------------------


def test_cancelling_a_queued_job_means_it_is_never_worked(jobs, runner, registry):
    cancelled, _ = jobs.create(MODEL, ITEMS)
    kept, _ = jobs.create(MODEL, ITEMS)
    answer = jobs.cancel_or_delete(cancelled.id)
    assert answer.id == cancelled.id
    assert answer.status == "cancelled"
    assert answer.finished_at is not None
    assert jobs.get(cancelled.id) == answer
    worked: list[Claim] = []
    runner.run_until_idle(worked.append)
    assert {c.job_id for c in worked} == {kept.id}  # the others still run
    assert jobs.get(cancelled.id) == answer
    assert rows(registry, BatchResult, cancelled.id) == 0
    assert jobs.get(kept.id).status == "succeeded"


def test_cancelling_a_running_job_keeps_what_is_done_and_stops_the_rest(jobs, runner, registry, load):
    job, _ = jobs.create(MODEL, ITEMS)
    runner.run_once()  # chunk 0 done
    held = jobs.claim("worker-b")  # chunk 1 in progress elsewhere
    assert jobs.cancel_or_delete(job.id).status == "cancelled"
    assert jobs.complete(held, *predictions_for(held, load)) is False
    assert runner.run_once() is None  # chunks 2 and 3 are not taken
    cancelled = jobs.get(job.id)
    assert (cancelled.status, cancelled.done_items, cancelled.progress) == ("cancelled", 3, 0.3)
    assert ids_of(all_results(jobs, job.id)) == IDS[:3]
    assert rows(registry, BatchResult, job.id) == 3


def test_deleting_a_finished_job_removes_it_with_its_results(jobs, runner, registry):
    deleted, _ = jobs.create(MODEL, ITEMS, idempotency_key="key-1")
    kept, _ = jobs.create(MODEL, ITEMS)
    runner.run_until_idle()
    assert jobs.cancel_or_delete(deleted.id) is None
    for call in (
        jobs.get,
        lambda job_id: jobs.results(job_id, limit=100),
        lambda job_id: jobs.result(job_id, "p-0"),
        jobs.cancel_or_delete,
    ):
        with pytest.raises(JobNotFound):
            call(deleted.id)
    for table in (BatchResult, BatchChunk):
        assert rows(registry, table, deleted.id) == 0
    assert [j.id for j in jobs.list()[0]] == [kept.id]
    assert ids_of(all_results(jobs, kept.id)) == IDS
    again, created = jobs.create(MODEL, ITEMS, idempotency_key="key-1")  # the key is free again
    assert created and again.id != deleted.id and again.status == "queued"


def test_failed_and_cancelled_jobs_can_be_deleted(jobs, runner, registry):
    failed, _ = jobs.create(MODEL, ITEMS)
    cancelled, _ = jobs.create(MODEL, ITEMS)
    runner.run_once()
    jobs.fail(failed.id, "gave up")
    jobs.cancel_or_delete(cancelled.id)
    assert jobs.get(failed.id).status == "failed"
    assert jobs.get(failed.id).error == "gave up"
    assert jobs.get(cancelled.id).status == "cancelled"
    assert rows(registry, BatchChunkInput, cancelled.id) == 4  # never worked: its input is kept
    for job in (failed, cancelled):
        assert jobs.cancel_or_delete(job.id) is None
        with pytest.raises(JobNotFound):
            jobs.get(job.id)
        for table in (BatchResult, BatchChunk, BatchChunkInput):
            assert rows(registry, table, job.id) == 0
    assert jobs.list() == ([], None)


# --- listing -----------------------------------------------------------------------------------------


def test_jobs_are_listed_newest_first_and_page_through_each_once(jobs, runner):
    assert jobs.list() == ([], None)
    created = [jobs.create(MODEL, ITEMS[: n + 1])[0].id for n in range(7)]
    runner.run_once()
    page, cursor = jobs.list()
    assert [j.id for j in page] == created[::-1]
    assert cursor is None
    assert [j.total_items for j in page] == [7, 6, 5, 4, 3, 2, 1]
    assert [j.status for j in page] == ["queued"] * 6 + ["succeeded"]  # listed as they are now
    for limit in (1, 2, 3, 6, 7, 8):
        seen, cursor, pages = [], None, 0
        while True:
            page, cursor = jobs.list(after=cursor, limit=limit)
            assert 0 < len(page) <= limit
            seen += [j.id for j in page]
            pages += 1
            if cursor is None:
                break
        assert seen == created[::-1], limit
        assert pages == -(-len(created) // limit), limit


def test_jobs_created_in_the_same_instant_are_listed_by_id_and_paged_through_once(jobs, registry):
    """Clocks are coarse (and SQLite keeps what it is given): ties on created_at are broken by id."""
    created = [jobs.create(MODEL, ITEMS[:1])[0].id for _ in range(5)]
    with registry.engine.begin() as connection:
        connection.execute(update(BatchJob).values(created_at=datetime(2026, 1, 2, tzinfo=UTC)))
    expected = sorted(created, reverse=True)
    assert [j.id for j in jobs.list()[0]] == expected
    for limit in (1, 2, 4):
        seen, cursor = [], None
        while True:
            page, cursor = jobs.list(after=cursor, limit=limit)
            seen += [j.id for j in page]
            if cursor is None:
                break
        assert seen == expected, limit


def test_a_page_holds_twenty_jobs_unless_asked_otherwise(jobs):
    created = [jobs.create(MODEL, ITEMS[:1])[0].id for _ in range(21)]
    page, cursor = jobs.list()
    assert [j.id for j in page] == created[:0:-1] and cursor == created[1]
    assert [j.id for j in jobs.list(after=cursor)[0]] == created[:1]


def test_fail_ends_an_active_job_keeping_the_first_part_of_a_long_message(jobs):
    queued, _ = jobs.create(MODEL, ITEMS)
    jobs.fail(queued.id, "x" * STORED_ERROR_LENGTH + "y")
    failed = jobs.get(queued.id)
    assert (failed.status, failed.error) == ("failed", "x" * STORED_ERROR_LENGTH)
    assert failed.finished_at is not None


def test_fail_leaves_a_finished_job_as_it_ended(jobs):
    cancelled, _ = jobs.create(MODEL, ITEMS)
    jobs.cancel_or_delete(cancelled.id)
    before = jobs.get(cancelled.id)
    jobs.fail(cancelled.id, "a chunk was abandoned too often")  # a runner late to notice
    assert jobs.get(cancelled.id) == before


# --- giving chunks back, renewing leases, stopping runners ------------------------------------------


def chunks_of(registry: Registry, job_id: str) -> list[tuple[int, str, str | None, int]]:
    """Each chunk's number, status, lease owner and attempts, as stored."""
    with registry.engine.connect() as connection:
        return [
            (number, status, owner, attempts)
            for number, status, owner, attempts in connection.execute(
                select(BatchChunk.number, BatchChunk.status, BatchChunk.lease_owner, BatchChunk.attempts)
                .where(BatchChunk.job_id == job_id)
                .order_by(BatchChunk.number)
            )
        ]


def lease_of(registry: Registry, job_id: str, number: int) -> datetime | None:
    """When a chunk's lease runs out, in UTC (SQLite hands datetimes back without their zone)."""
    with registry.engine.connect() as connection:
        moment = connection.scalar(
            select(BatchChunk.lease_expires_at).where(
                BatchChunk.job_id == job_id, BatchChunk.number == number
            )
        )
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Holds a slow runner mid-chunk until set (and is set at the end, so no thread is left waiting)."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def slow_load(load, gate) -> Callable:
    """``load`` that waits for the gate first: a runner using it holds its chunk until the gate opens."""

    def loading(name: str, version: int):
        gate.wait(60)
        return load(name, version)

    return loading


def test_a_released_chunk_is_pending_at_once_uncounted_and_another_runner_completes_it(
    jobs, runner, registry, load
):
    job, _ = jobs.create(MODEL, ITEMS)
    for _ in range(MAX_ATTEMPTS + 2):  # given back more often than a dying chunk may be: still not failed
        claim = jobs.claim("stopping-worker")
        assert (claim.number, claim.attempts) == (0, 1)
        assert jobs.release(claim) is True
        assert chunks_of(registry, job.id)[0] == (0, "pending", None, 0)
        assert lease_of(registry, job.id, 0) is None
    assert jobs.release(claim) is False  # nothing left to give back
    assert jobs.complete(claim, *predictions_for(claim, load)) is False  # nor to store for it

    runner.run_until_idle()
    done = jobs.get(job.id)
    assert (done.status, done.done_items) == ("succeeded", len(ITEMS))
    assert ids_of(all_results(jobs, job.id)) == IDS
    assert rows(registry, BatchResult, job.id) == len(ITEMS)
    assert [attempts for *_, attempts in chunks_of(registry, job.id)] == [1, 1, 1, 1]


def test_only_the_holder_can_release_a_chunk(jobs, expiring, registry, load):
    job, _ = jobs.create(MODEL, ITEMS[:3])
    first = expiring.claim("worker-a")
    second = jobs.claim("worker-b")  # worker-a's lease ran out: worker-b holds the chunk now
    assert expiring.release(first) is False
    assert chunks_of(registry, job.id) == [(0, "running", "worker-b", 2)]
    assert jobs.complete(second, *predictions_for(second, load)) is True
    assert jobs.release(second) is False  # a finished chunk stays finished
    assert chunks_of(registry, job.id) == [(0, "done", "worker-b", 2)]
    assert jobs.get(job.id).status == "succeeded"


def test_a_renewal_extends_the_lease_and_a_renewed_lease_is_not_taken_over(jobs, expiring, registry):
    job, _ = jobs.create(MODEL, ITEMS)
    claim = expiring.claim("worker-a")  # its lease runs out at once...
    taken = lease_of(registry, job.id, 0)
    assert jobs.renew(claim) is True  # ...until it is renewed for a full (60 s) lease
    renewed = lease_of(registry, job.id, 0)
    assert (renewed - taken).total_seconds() > 50
    assert expiring.claim("worker-b").number == 1  # chunk 0 is held: the next one is handed out
    assert chunks_of(registry, job.id)[0] == (0, "running", "worker-a", 1)


def test_a_renewal_by_a_worker_that_lost_the_chunk_does_nothing(jobs, expiring, registry, load):
    job, _ = jobs.create(MODEL, ITEMS[:3])
    first = expiring.claim("worker-a")
    second = jobs.claim("worker-b")
    held_until = lease_of(registry, job.id, 0)
    assert jobs.renew(first) is False
    assert lease_of(registry, job.id, 0) == held_until
    assert chunks_of(registry, job.id) == [(0, "running", "worker-b", 2)]
    assert jobs.complete(second, *predictions_for(second, load)) is True
    assert jobs.renew(second) is False  # nor is a finished chunk's lease renewed
    assert lease_of(registry, job.id, 0) is None


def test_a_runner_renews_its_lease_while_it_works_a_slow_chunk_so_nobody_takes_it(
    registry, load, slow_load, gate
):
    short = BatchJobs(registry, chunk_size=CHUNK, lease_seconds=3)  # renewed every second
    job, _ = short.create(MODEL, ITEMS[:3])
    runner = BatchRunner(short, load=slow_load)
    runner.start()
    try:
        wait_until(
            lambda: chunks_of(registry, job.id)[0][1] == "running",
            30,
            'chunks_of(registry, job.id)[0][1] == "running"',
        )
        first_lease = lease_of(registry, job.id, 0)
        # Past the lease it was claimed with: only renewals (a third of the lease apart) have kept it.
        wait_until(
            lambda: utcnow() > first_lease + timedelta(seconds=0.5),
            30,
            "utcnow() > first_lease + timedelta(seconds=0.5)",
        )
        assert short.claim("thief") is None
        assert chunks_of(registry, job.id) == [(0, "running", runner.owner, 1)]
        wait_until(
            lambda: lease_of(registry, job.id, 0) > first_lease + timedelta(seconds=1.5),
            30,
            "lease_of(registry, job.id, 0) > first_lease + timedelta(seconds=1.5)",
        )
        gate.set()
        wait_until(
            lambda: short.get(job.id).status == "succeeded", 30, 'short.get(job.id).status == "succeeded"'
        )
    finally:
        gate.set()
        runner.stop()
    assert ids_of(all_results(short, job.id)) == IDS[:3]


def test_a_runner_stopped_mid_chunk_gives_it_back_and_leaves_no_chunk_running(
    jobs, registry, load, slow_load, gate, runner, caplog
):
    caplog.set_level(logging.INFO, logger="coe_template.batch.runner")
    job, _ = jobs.create(MODEL, ITEMS)
    stopping = BatchRunner(jobs, load=slow_load)
    stopping.start()
    wait_until(
        lambda: chunks_of(registry, job.id)[0][1] == "running",
        30,
        'chunks_of(registry, job.id)[0][1] == "running"',
    )
    stopping.stop(grace=0.2)  # the chunk cannot be finished in time: it is given back
    assert chunks_of(registry, job.id) == [(n, "pending", None, 0) for n in range(4)]
    assert f"stopping: chunk 0 of batch job {job.id} given back unfinished, pending again" in caplog.messages
    gate.set()  # the stopped runner's thread finishes its prediction, too late: nothing is stored
    stopping._thread.join(30)
    assert not stopping._thread.is_alive()
    assert rows(registry, BatchResult, job.id) == 0
    assert chunks_of(registry, job.id) == [(n, "pending", None, 0) for n in range(4)]

    runner.run_until_idle()
    done = jobs.get(job.id)
    assert (done.status, done.done_items) == ("succeeded", len(ITEMS))
    assert ids_of(all_results(jobs, job.id)) == IDS
    assert rows(registry, BatchResult, job.id) == len(ITEMS)


def test_a_runner_stopped_mid_chunk_finishes_it_within_its_grace_and_takes_no_other(
    jobs, registry, slow_load, gate, caplog
):
    caplog.set_level(logging.INFO, logger="coe_template.batch.runner")
    job, _ = jobs.create(MODEL, ITEMS)
    stopping = BatchRunner(jobs, load=slow_load)
    stopping.start()
    wait_until(
        lambda: chunks_of(registry, job.id)[0][1] == "running",
        30,
        'chunks_of(registry, job.id)[0][1] == "running"',
    )
    threading.Timer(0.3, gate.set).start()  # the chunk can be finished well within the grace
    stopping.stop(grace=30)
    assert not stopping._thread.is_alive()
    assert f"stopping: chunk 0 of batch job {job.id} finished first" in caplog.messages
    assert [(number, status) for number, status, *_ in chunks_of(registry, job.id)] == [
        (0, "done"),
        (1, "pending"),
        (2, "pending"),
        (3, "pending"),
    ]
    assert ids_of(all_results(jobs, job.id)) == IDS[:CHUNK]


def test_a_runner_whose_chunk_was_taken_over_drops_its_result(registry, load, slow_load, gate, caplog):
    short = BatchJobs(registry, chunk_size=CHUNK, lease_seconds=3)  # renewed every second
    job, _ = short.create(MODEL, ITEMS[:3])
    outcomes: list[tuple[int, str]] = []
    frozen = BatchRunner(
        short, load=slow_load, observe=lambda claim, outcome: outcomes.append((claim.number, outcome))
    )
    frozen.start()
    try:
        wait_until(
            lambda: chunks_of(registry, job.id)[0][1] == "running",
            30,
            'chunks_of(registry, job.id)[0][1] == "running"',
        )
        with registry.engine.begin() as connection:  # as if the runner had been frozen past its lease
            connection.execute(
                update(BatchChunk)
                .where(BatchChunk.job_id == job.id)
                .values(lease_expires_at=utcnow() - timedelta(seconds=1))
            )
        thief = short.claim("thief")
        assert (thief.number, thief.attempts) == (0, 2)
        wait_until(
            lambda: "lost the lease on chunk 0" in caplog.text,
            30,
            '"lost the lease on chunk 0" in caplog.text',
        )  # its next renewal finds out
        gate.set()
        frozen.stop()
        assert rows(registry, BatchResult, job.id) == 0  # nothing stored by the runner that lost it
        assert short.complete(thief, *predictions_for(thief, load)) is True
    finally:
        gate.set()
        frozen.stop()
    assert ids_of(all_results(short, job.id)) == IDS[:3]
    assert short.get(job.id).status == "succeeded"
    assert outcomes == [(0, "dropped")]


def test_an_idle_runner_polls_for_jobs_created_elsewhere(registry, jobs, load, caplog):
    """A job another process created sets no event here: the runner finds it on a poll, and idles quietly."""
    caplog.set_level(logging.INFO, logger="coe_template")
    elsewhere = BatchJobs(registry, chunk_size=CHUNK, lease_seconds=60)
    runner = BatchRunner(jobs, load, poll_seconds=0.05)
    runner.start()
    try:
        for _ in range(2):
            job, _ = elsewhere.create(MODEL, ITEMS)
            # The last chunk is logged as the runner runs out of work, just before it waits.
            wait_until(
                lambda: f"batch job {job.id}: chunk 3 stored" in caplog.text,  # noqa: B023
                30,
                f"batch job {job.id}: chunk 3 stored",
            )
    finally:
        runner.stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_lease_owner_fits_its_column_whatever_the_host_name(monkeypatch):
    # PostgreSQL refuses a value longer than lease_owner's VARCHAR(64): every claim failed on such a host.
    from coe_template.batch.schema import BatchChunk
    from coe_template.jobs import leases
    from coe_template.registry.schema import TrainingJob

    monkeypatch.setattr(leases.socket, "gethostname", lambda: "a-very-long-host-name." * 12)
    owner = leases.owner_id()
    for table in (BatchChunk.__table__, TrainingJob.__table__):
        column = table.c.lease_owner.type
        assert isinstance(column, String) and len(owner) <= column.length
    assert owner.startswith("a-very-long-host-name.") and f":{leases.os.getpid()}:" in owner


def test_a_runner_logs_how_far_the_job_has_got(jobs, runner, caplog):
    caplog.set_level(logging.INFO, logger="coe_template.batch.runner")
    job, _ = jobs.create(MODEL, ITEMS)
    runner.run_until_idle()
    runner.progress.flush()  # what a runner out of work does
    lines = [r.getMessage() for r in caplog.records if r.name == "coe_template.batch.runner"]
    assert [line.partition("; ")[0] for line in lines] == [
        f"batch job {job.id}: chunk 0 stored ({CHUNK} of {len(ITEMS)} items done, job running)",
        f"batch job {job.id}: chunk 3 stored ({len(ITEMS)} of {len(ITEMS)} items done, job succeeded)",
    ]


def test_progress_is_logged_for_a_jobs_first_chunk_then_every_few_seconds_with_the_rate_since(jobs, caplog):
    caplog.set_level(logging.INFO, logger="coe_template.batch.runner")
    job, _ = jobs.create(MODEL, ITEMS)
    gone, _ = jobs.create(MODEL, ITEMS)
    now = [0.0]
    progress = Progress(jobs, clock=lambda: now[0])  # a line every 5 s at most

    def stored(job_id: str, number: int, items: int, started: float, at: float) -> None:
        now[0] = at
        progress.chunk_done(
            Claim(job_id, number, 0, MODEL, 1, "worker", 1, [("id", "text")] * items), started
        )

    stored(job.id, 0, 30, started=99.5, at=100.0)  # the job's first chunk: logged at once
    stored(job.id, 1, 20, started=101.5, at=102.0)  # 0.5 s since the work counted began
    stored(job.id, 2, 60, started=102.0, at=106.5)  # 5 s since: logged, 80 items in 5 s
    stored(job.id, 3, 10, started=107.0, at=108.0)
    now[0] = 109.0
    progress.flush()  # out of work: 10 items in 2 s
    progress.flush()  # nothing new: no line
    stored(gone.id, 0, 3, started=110.0, at=111.0)
    jobs.cancel_or_delete(gone.id)
    jobs.cancel_or_delete(gone.id)  # cancelled, then deleted
    stored(gone.id, 1, 3, started=111.0, at=112.0)
    now[0] = 114.0
    progress.flush()  # 3 items in 3 s, of a job no longer there
    lines = [r.getMessage() for r in caplog.records if r.name == "coe_template.batch.runner"]
    where = f"(0 of {len(ITEMS)} items done, job queued)"
    assert lines == [
        f"batch job {job.id}: chunk 0 stored {where}; 60 items/s",
        f"batch job {job.id}: chunk 2 stored {where}; 16 items/s",
        f"batch job {job.id}: chunk 3 stored {where}; 5 items/s",
        f"batch job {gone.id}: chunk 0 stored {where}; 3 items/s",
        f"batch job {gone.id}: chunk 1 stored (progress unknown); 1 items/s",
    ]


def test_a_runner_logs_an_outage_once_and_a_failure_with_its_traceback_and_carries_on(jobs, load, caplog):
    caplog.set_level(logging.INFO, logger="coe_template")
    job, _ = jobs.create(MODEL, ITEMS[:9])
    faults: list[Exception] = [
        DatabaseUnavailable("the database is down"),
        DatabaseUnavailable("the database is down"),
        RuntimeError("a bug"),
    ]

    # Raises from the runner's loop, after each chunk is stored.
    def observe(claim: Claim, outcome: str) -> None:
        if faults:
            raise faults.pop(0)

    runner = BatchRunner(jobs, load, poll_seconds=0.01, observe=observe)
    runner.start()
    try:
        wait_until(
            lambda: "batch: the database answers again" in caplog.text,
            30,
            '"batch: the database answers again" in caplog.text',
        )
    finally:
        runner.stop()
    assert runner._thread is not None and runner._thread.daemon  # a runner never keeps its process alive
    logged = [
        (r.levelname, r.getMessage(), r.exc_info is not None)
        for r in caplog.records
        if r.name == "coe_template.jobs.leases"
    ]
    assert logged == [
        ("ERROR", "batch: pausing while the database is unavailable: the database is down", False),
        ("ERROR", "batch chunk failed", True),
        ("INFO", "batch: the database answers again", False),
    ]
    assert jobs.get(job.id).status == "succeeded"


def test_a_runner_told_to_stop_hands_back_a_chunk_it_claims_meanwhile(jobs, registry, load):
    job, _ = jobs.create(MODEL, ITEMS)
    runner = BatchRunner(jobs, load)
    runner.stop()  # never started: it only stops taking work
    assert runner.run_once() is None  # as a claim that lands while stop() begins
    assert chunks_of(registry, job.id) == [(n, "pending", None, 0) for n in range(4)]


def test_reads_answer_while_another_process_holds_the_write_lock(jobs, runner, registry):
    """SQLite in WAL mode: reads begin without taking the write lock, so they never wait for a writer."""
    if registry.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's readers never wait for writers, whatever the transaction")
    token, digest = new_job_token()
    job, _ = jobs.create(MODEL, ITEMS, idempotency_key="key-1", token_sha256=digest)
    runner.run_until_idle()
    writer = sqlite3.connect(registry.engine.url.database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the busy timeout
    try:
        assert jobs.get(job.id).status == "succeeded"
        assert [j.id for j in jobs.list()[0]] == [job.id]
        assert ids_of(jobs.results(job.id, limit=100)[0]) == IDS
        assert jobs.result(job.id, "p-0").item_id == "p-0"
        assert jobs.holds_token(job.id, token)
        assert jobs.create(MODEL, ITEMS, idempotency_key="key-1") == (jobs.get(job.id), False)
        assert jobs.claim("idle worker") is None
        assert jobs.backlog() == {"queued": (0, 0, 0), "running": (0, 0, 0)}
    finally:
        writer.rollback()
        writer.close()
