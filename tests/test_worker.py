"""Stopping batch work cleanly, with real processes and real signals.

A server with COE_BATCH_IN_SERVER=false only queues a job; ``coe-template worker`` works
part of it and is sent SIGTERM: it exits promptly, holding nothing. A second worker
finishes the job with every item stored exactly once. A server that works batch itself
leaves nothing held when it stops either. Leases are ten minutes: nothing here may wait
for one to run out. A worker given a metrics port counts the chunks and items it did there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import distinct, func, select

from coe_template.batch.schema import BatchChunk, BatchResult
from tests.conftest import seeded_registry
from tests.servers import PROJECT_ROOT, free_port, gunicorn
from tests.waiting import wait_until

ITEMS = 10_000
#: Tiny chunks (2,000 of them): a worker spends seconds on the job, mostly taking and storing chunks, so the
#: SIGTERM sent after the first lands with most of it still to do even when a loaded machine delays the test
#: (at 100 items a chunk the whole job took 0.6 s, and a CI run once saw it finish first).
SMALL_CHUNK = 5


@contextmanager
def worker(env: dict[str, str], log_path: Path, *options: str) -> Iterator[subprocess.Popen]:
    """``coe-template worker`` from this checkout, logging to a file; killed if a test leaves it running."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "coe_template.cli", "worker", "--poll", "0.1", *options],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def job_state(base: str, job_id: str) -> dict:
    return httpx.get(f"{base}/batch-predictions/{job_id}", timeout=10).json()["data"]["job"]


def test_sigterm_gives_the_chunk_back_and_a_second_worker_finishes_the_job(
    tmp_path, database_url, trained_model
):
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": database_url,
        "COE_BATCH_IN_SERVER": "false",
        "COE_BATCH_CHUNK_SIZE": str(SMALL_CHUNK),
        "COE_BATCH_LEASE_SECONDS": "600",
    }
    csv = "id,text\n" + "".join(f"item-{n},object detection with a CNN number {n}\n" for n in range(ITEMS))

    def chunks() -> dict[str, int]:
        with registry.engine.connect() as connection:
            return dict(
                connection.execute(
                    select(BatchChunk.status, func.count())
                    .where(BatchChunk.job_id == job_id)
                    .group_by(BatchChunk.status)
                ).all()
            )

    with gunicorn(env, tmp_path / "server.log", workers=1) as (base, _):
        response = httpx.post(
            f"{base}/batch-predictions", files={"file": ("items.csv", csv.encode(), "text/csv")}, timeout=60
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["data"]["job"]["id"]

        assert job_state(base, job_id)["status"] == "queued"
        assert chunks() == {"pending": ITEMS // SMALL_CHUNK}

        with worker(env, tmp_path / "worker-1.log") as first:
            # Watched in the worker's own log, not in the database or over HTTP: a read waiting behind the
            # worker's writes let it finish every chunk first (seen in CI).
            first_log = tmp_path / "worker-1.log"
            wait_until(lambda: " stored (" in first_log.read_text(), 60, "no work was done")
            first.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            assert first.wait(timeout=20) == 0, (tmp_path / "worker-1.log").read_text()
        assert time.monotonic() - stopped_at < 10  # a grace of 5 s at most, then the chunk is given back
        log = (tmp_path / "worker-1.log").read_text()
        assert "SIGTERM received: stopping" in log and "worker stopped" in log, log

        left = chunks()
        assert "running" not in left, left
        assert 0 < left.get("done", 0) and 0 < left.get("pending", 0), "SIGTERM should land mid-job"
        with registry.engine.connect() as connection:
            attempts = set(
                connection.scalars(
                    select(BatchChunk.attempts).where(
                        BatchChunk.job_id == job_id, BatchChunk.status == "pending"
                    )
                )
            )
        assert attempts == {0}  # a chunk given back is not counted as abandoned
        assert job_state(base, job_id)["status"] == "running"

        with worker(env, tmp_path / "worker-2.log") as second:
            wait_until(lambda: job_state(base, job_id)["status"] != "running", 180, "the job never finished")
            second.send_signal(signal.SIGTERM)  # idle now: it stops at once
            assert second.wait(timeout=20) == 0
        job = job_state(base, job_id)
        assert job["status"] == "succeeded", job
        assert job["items"] == {"total": ITEMS, "done": ITEMS}
        assert "items/s" in (tmp_path / "worker-2.log").read_text()
        # Up all along, the server took no chunk: had it a runner, it would have worked beside the workers.
        assert samples(f"{base}/metrics", "coe_batch_chunks_total") == {}

    with registry.engine.connect() as connection:
        stored = connection.execute(
            select(
                func.count(),
                func.count(distinct(BatchResult.item_id)),
                func.count(distinct(BatchResult.position)),
            ).where(BatchResult.job_id == job_id)
        ).one()
    registry.engine.dispose()
    assert tuple(stored) == (ITEMS, ITEMS, ITEMS)


def test_sigterm_to_a_server_that_works_batch_leaves_no_chunk_running(tmp_path, database_url, trained_model):
    """The embedded default: the server's own runners finish or give back their chunks as it stops."""
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": database_url,
        "COE_BATCH_CHUNK_SIZE": "250",
        "COE_BATCH_LEASE_SECONDS": "600",
    }
    # Large enough to outlast the server's stop: its runners work on while in-flight requests finish.
    items = 100_000
    csv = "id,text\n" + "".join(f"item-{n},object detection with a CNN number {n}\n" for n in range(items))

    with gunicorn(env, tmp_path / "server.log") as (base, process):
        response = httpx.post(
            f"{base}/batch-predictions", files={"file": ("items.csv", csv.encode(), "text/csv")}, timeout=60
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["data"]["job"]["id"]
        wait_until(lambda: job_state(base, job_id)["items"]["done"] >= 1_000, 60, "no work was done")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, (tmp_path / "server.log").read_text()

    with registry.engine.connect() as connection:
        left = dict(
            connection.execute(
                select(BatchChunk.status, func.count())
                .where(BatchChunk.job_id == job_id)
                .group_by(BatchChunk.status)
            ).all()
        )
        stored = connection.scalar(select(func.count()).where(BatchResult.job_id == job_id))
    registry.engine.dispose()
    assert "running" not in left, left
    assert 0 < left.get("pending", 0), "SIGTERM should land mid-job"
    assert stored == 250 * left["done"]


def test_an_idle_worker_stops_at_once_on_sigint(tmp_path, database_url, trained_model):
    store = tmp_path / "store"
    seeded_registry(database_url, store, trained_model).engine.dispose()
    log = tmp_path / "worker.log"
    with worker({"COE_MODEL_STORE": str(store), "DATABASE_URL": database_url}, log) as process:
        wait_until(lambda: "worker: batch, training from" in log.read_text(), 60, "the worker did not start")
        process.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop, not a KeyboardInterrupt traceback
        assert process.wait(timeout=15) == 0, log.read_text()
    assert "SIGINT received: stopping" in log.read_text()
    assert "Traceback" not in log.read_text()


def samples(url: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of metric ``name`` a Prometheus endpoint shows, by its labels."""
    text = httpx.get(url, timeout=5).text
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_a_worker_serves_the_batch_chunks_and_items_it_did_on_its_metrics_port(
    tmp_path, database_url, trained_model
):
    """With batch out of the server (the production layout), the counts are where the work is done."""
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": database_url,
        "COE_BATCH_IN_SERVER": "false",
        "COE_BATCH_CHUNK_SIZE": "250",
    }
    items = 1000
    csv = "id,text\n" + "".join(f"item-{n},object detection with a CNN number {n}\n" for n in range(items))
    port = free_port()
    metrics_url = f"http://127.0.0.1:{port}/metrics"

    with gunicorn(env, tmp_path / "server.log", workers=1) as (base, _):
        # The server's multiprocess directory (tests/servers.py), as a shared environment would pass it on.
        server_metrics_dir = tmp_path / f"metrics-{base.rsplit(':', 1)[1]}"
        worker_env = {
            **env,
            "COE_WORKER_METRICS_ADDR": "127.0.0.1",
            "PROMETHEUS_MULTIPROC_DIR": str(server_metrics_dir),
        }
        log = tmp_path / "worker.log"
        with worker(worker_env, log, "--metrics-port", str(port)) as process:
            wait_until(
                lambda: "worker: batch, training from" in log.read_text(), 60, "the worker did not start"
            )
            assert f"metrics on 127.0.0.1:{port}" in log.read_text()
            assert "PROMETHEUS_MULTIPROC_DIR ignored" in log.read_text()
            assert samples(metrics_url, "coe_batch_items_total") == {(): 0.0}

            response = httpx.post(
                f"{base}/batch-predictions",
                files={"file": ("items.csv", csv.encode(), "text/csv")},
                timeout=60,
            )
            assert response.status_code == 202, response.text
            job_id = response.json()["data"]["job"]["id"]
            wait_until(
                lambda: job_state(base, job_id)["status"] not in ("queued", "running"),
                60,
                "the job never finished",
            )
            assert job_state(base, job_id)["status"] == "succeeded"
            with registry.engine.connect() as connection:
                chunks = connection.scalar(select(func.count()).where(BatchChunk.job_id == job_id))
            assert chunks == items // 250

            # The runner counts a chunk just after storing it: the job may show done a moment earlier.
            wait_until(
                lambda: samples(metrics_url, "coe_batch_items_total") == {(): items},
                10,
                f"items not counted: {samples(metrics_url, 'coe_batch_items_total')}",
            )
            assert samples(metrics_url, "coe_batch_chunks_total") == {(("outcome", "done"),): chunks}
            assert samples(metrics_url, "coe_database_errors_total") == {}  # none raised
            assert samples(metrics_url, "process_resident_memory_bytes")  # the process's own, too

            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0, log.read_text()
        # Not in gunicorn's directory: its scrape would report the worker's counts a second time.
        assert not list(server_metrics_dir.glob(f"*_{process.pid}.db"))
        assert samples(f"{base}/metrics", "coe_batch_items_total").get((), 0.0) == 0.0
    registry.engine.dispose()


def test_a_worker_whose_metrics_port_is_taken_says_so_and_exits(tmp_path, database_url, trained_model):
    store = tmp_path / "store"
    seeded_registry(database_url, store, trained_model).engine.dispose()
    log = tmp_path / "worker.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            "COE_MODEL_STORE": str(store),
            "DATABASE_URL": database_url,
            "COE_WORKER_METRICS_ADDR": "127.0.0.1",
            "COE_WORKER_METRICS_PORT": str(port),
        }
        with worker(env, log) as process:
            assert process.wait(timeout=60) == 1, log.read_text()
    assert f"Error: cannot serve metrics on 127.0.0.1:{port}: Address already in use" in log.read_text()
    assert "Traceback" not in log.read_text()


def test_a_batch_worker_removes_expired_jobs_and_a_training_worker_does_not(
    tmp_path, database_url, trained_model
):
    """Only processes that work batch chunks purge: the retention's one home is the batch runner's loop."""
    from datetime import timedelta

    from coe_template.batch.jobs import BatchJobs
    from coe_template.batch.runner import BatchRunner
    from coe_template.batch.schema import BatchJob
    from coe_template.registry.schema import utcnow

    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    jobs = BatchJobs(registry, chunk_size=2)
    job, _ = jobs.create("project-tagger", [(f"i-{n}", f"object detection number {n}") for n in range(5)])
    BatchRunner(jobs, registry.load).run_until_idle()
    with registry.engine.begin() as connection:
        connection.execute(BatchJob.__table__.update().values(finished_at=utcnow() - timedelta(days=2)))

    def kept() -> bool:
        with registry.engine.connect() as connection:
            return connection.scalar(select(func.count()).where(BatchJob.id == job.id)) == 1

    env = {"COE_MODEL_STORE": str(store), "DATABASE_URL": database_url, "COE_BATCH_RETENTION_DAYS": "1"}
    log = tmp_path / "training.log"
    with worker(env, log, "--work", "training") as process:
        wait_until(lambda: "worker: training from" in log.read_text(), 60, "the worker did not start")
        time.sleep(1)  # a batch runner looks at once as it starts: time enough to have purged
        assert kept()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, log.read_text()

    port = free_port()
    log = tmp_path / "batch.log"
    env = {**env, "COE_WORKER_METRICS_ADDR": "127.0.0.1"}
    with worker(env, log, "--work", "batch", "--metrics-port", str(port)) as process:
        wait_until(lambda: not kept(), 60, "the batch worker did not remove the expired job")
        url = f"http://127.0.0.1:{port}/metrics"
        wait_until(lambda: samples(url, "coe_batch_jobs_purged_total") == {(): 1.0}, 30, "not counted")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, log.read_text()
    registry.engine.dispose()
    text = log.read_text()
    assert f"batch retention: job {job.id} removed (5 batch_results, 3 batch_chunks rows deleted)" in text
    assert "Traceback" not in text
