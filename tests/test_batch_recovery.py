"""A batch job outlives the server that started it: kill -9 everything mid-job, start again.

Every item ends up stored exactly once.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
from sqlalchemy import distinct, func, select

from coe_template.batch.schema import BatchResult
from tests.conftest import seeded_registry
from tests.servers import gunicorn

ITEMS = 20_000


def test_kill_9_mid_job_loses_and_duplicates_nothing(tmp_path, database_url, trained_model):
    store = tmp_path / "store"
    registry = seeded_registry(database_url, store, trained_model)
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": database_url,
        "COE_BATCH_CHUNK_SIZE": "250",
        "COE_BATCH_LEASE_SECONDS": "2",
    }
    csv = "id,text\n" + "".join(
        f"item-{n},object detection with a small CNN number {n}\n" for n in range(ITEMS)
    )

    with gunicorn(env, tmp_path / "first.log") as (base, process):
        response = httpx.post(
            f"{base}/batch-predictions", files={"file": ("items.csv", csv.encode(), "text/csv")}, timeout=60
        )
        assert response.status_code == 202, response.text
        job_url = base + response.headers["location"]
        deadline = time.monotonic() + 60
        while httpx.get(job_url, timeout=10).json()["data"]["job"]["items"]["done"] == 0:
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)  # master and workers, mid-job, no goodbye
        process.wait()

    job_id = job_url.rsplit("/", 1)[1]
    with registry.engine.connect() as connection:
        stored_at_kill = connection.scalar(select(func.count()).where(BatchResult.job_id == job_id))
    assert 0 < stored_at_kill < ITEMS, "the kill should land mid-job"

    with gunicorn(env, tmp_path / "second.log") as (base, _):
        deadline = time.monotonic() + 180
        while (job := httpx.get(f"{base}/batch-predictions/{job_id}", timeout=10).json()["data"]["job"])[
            "status"
        ] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["status"] == "succeeded", job
        assert job["items"] == {"total": ITEMS, "done": ITEMS}
        last = httpx.get(f"{base}/batch-predictions/{job_id}/results/item-{ITEMS - 1}", timeout=10)
        assert last.status_code == 200

    with registry.engine.connect() as connection:
        rows = connection.scalar(select(func.count()).where(BatchResult.job_id == job_id))
        distinct_items = connection.scalar(
            select(func.count(distinct(BatchResult.item_id))).where(BatchResult.job_id == job_id)
        )
        positions = connection.scalar(
            select(func.count(distinct(BatchResult.position))).where(BatchResult.job_id == job_id)
        )
    registry.engine.dispose()
    assert rows == distinct_items == positions == ITEMS
