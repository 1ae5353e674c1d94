"""Stopping batch work cleanly, with real processes and real signals.

A server with COE_BATCH_IN_SERVER=false only queues a job; ``coe-template worker`` works
part of it and is sent SIGTERM: it exits promptly, holding nothing. A second worker
finishes the job with every item stored exactly once. A server that works batch itself
leaves nothing held when it stops either. Leases are ten minutes: nothing here may wait
for one to run out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import distinct, func, select

from coe_template.batch.schema import BatchChunk, BatchResult
from tests.conftest import seeded_registry
from tests.servers import PROJECT_ROOT, gunicorn

ITEMS = 20_000


@contextmanager
def worker(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """``coe-template worker`` from this checkout, logging to a file; killed if a test leaves it running."""
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "coe_template.cli", "worker", "--poll", "0.1"],
                                   cwd=PROJECT_ROOT, env={**os.environ, **env}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def job_state(base: str, job_id: str) -> dict:
    return httpx.get(f"{base}/batch-predictions/{job_id}", timeout=10).json()["data"]["job"]


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sigterm_gives_the_chunk_back_and_a_second_worker_finishes_the_job(tmp_path, database_url,
                                                                           trained_model):
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    env = {"COE_MODEL_STORE": str(store), "DATABASE_URL": database_url, "COE_BATCH_IN_SERVER": "false",
           "COE_BATCH_CHUNK_SIZE": "250", "COE_BATCH_LEASE_SECONDS": "600"}
    csv = "id,text\n" + "".join(f"item-{n},object detection with a CNN number {n}\n" for n in range(ITEMS))

    def chunks() -> dict[str, int]:
        with registry.engine.connect() as connection:
            return dict(connection.execute(
                select(BatchChunk.status, func.count()).where(BatchChunk.job_id == job_id)
                .group_by(BatchChunk.status)).all())

    with gunicorn(env, tmp_path / "server.log", workers=1) as (base, _):
        response = httpx.post(f"{base}/batch-predictions",
                              files={"file": ("items.csv", csv.encode(), "text/csv")}, timeout=60)
        assert response.status_code == 202, response.text
        job_id = response.json()["data"]["job"]["id"]

        time.sleep(1.5)  # ten of the server's polls, had it a runner
        assert job_state(base, job_id)["status"] == "queued"
        assert chunks() == {"pending": ITEMS // 250}

        with worker(env, tmp_path / "worker-1.log") as first:
            wait_for(lambda: job_state(base, job_id)["items"]["done"] >= ITEMS // 10, 60, "no work was done")
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
            attempts = set(connection.scalars(select(BatchChunk.attempts).where(
                BatchChunk.job_id == job_id, BatchChunk.status == "pending")))
        assert attempts == {0}  # a chunk given back is not counted as abandoned
        assert job_state(base, job_id)["status"] == "running"

        with worker(env, tmp_path / "worker-2.log") as second:
            wait_for(lambda: job_state(base, job_id)["status"] != "running", 180, "the job never finished")
            second.send_signal(signal.SIGTERM)  # idle now: it stops at once
            assert second.wait(timeout=20) == 0
        job = job_state(base, job_id)
        assert job["status"] == "succeeded", job
        assert job["items"] == {"total": ITEMS, "done": ITEMS}
        assert "items/s" in (tmp_path / "worker-2.log").read_text()

    with registry.engine.connect() as connection:
        stored = connection.execute(select(
            func.count(), func.count(distinct(BatchResult.item_id)),
            func.count(distinct(BatchResult.position))).where(BatchResult.job_id == job_id)).one()
    registry.engine.dispose()
    assert tuple(stored) == (ITEMS, ITEMS, ITEMS)


def test_sigterm_to_a_server_that_works_batch_leaves_no_chunk_running(tmp_path, database_url, trained_model):
    """The embedded default: the server's own runners finish or give back their chunks as it stops."""
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    env = {"COE_MODEL_STORE": str(store), "DATABASE_URL": database_url,
           "COE_BATCH_CHUNK_SIZE": "250", "COE_BATCH_LEASE_SECONDS": "600"}
    csv = "id,text\n" + "".join(f"item-{n},object detection with a CNN number {n}\n" for n in range(ITEMS))

    with gunicorn(env, tmp_path / "server.log") as (base, process):
        response = httpx.post(f"{base}/batch-predictions",
                              files={"file": ("items.csv", csv.encode(), "text/csv")}, timeout=60)
        assert response.status_code == 202, response.text
        job_id = response.json()["data"]["job"]["id"]
        wait_for(lambda: job_state(base, job_id)["items"]["done"] >= ITEMS // 10, 60, "no work was done")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, (tmp_path / "server.log").read_text()

    with registry.engine.connect() as connection:
        left = dict(connection.execute(select(BatchChunk.status, func.count())
                                       .where(BatchChunk.job_id == job_id).group_by(BatchChunk.status)).all())
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
        wait_for(lambda: "worker: batch from" in log.read_text(), 60, "the worker did not start")
        process.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop, not a KeyboardInterrupt traceback
        assert process.wait(timeout=15) == 0, log.read_text()
    assert "SIGINT received: stopping" in log.read_text()
    assert "Traceback" not in log.read_text()
