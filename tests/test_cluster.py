"""Two nodes on one PostgreSQL, as a cluster runs them: nothing shared but the database.

A prediction answered by node A is read back through node B (the prediction ledger).

Each node is a gunicorn server with two workers and a model store of its own, used
only as a local cache (``COE_ARTIFACT_STORE=db``: the artifacts live in PostgreSQL);
beside them one ``coe-template worker``. A version trained through node A is promoted
through node B and served by both; a 20,000-item batch job created on node A is worked
by all three, and finishes with every item stored once although node A is killed
(``kill -9``, the whole process group) in the middle of it; a rollback through node B
is what node A serves when it comes back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, distinct, func, select
from sqlalchemy.engine import Engine

from coe_template.batch.schema import BatchChunk, BatchResult
from coe_template.registry import PRODUCTION
from tests.conftest import ADMIN, ADMIN_KEY, MODEL
from tests.databases import postgres_schema
from tests.servers import PROJECT_ROOT, gunicorn, worker_pids
from tests.test_worker import worker
from tests.waiting import wait_until

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="a cluster shares one PostgreSQL: set TEST_DATABASE_URL (.ci/run does)",
)

ITEMS = 20_000
PRODUCTION_ALIAS = f"/models/{MODEL}/aliases/{PRODUCTION}"


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "coe_template.cli", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def versions_served(base: str, requests: int = 16) -> set[int]:
    """The versions a node's workers answer with, over fresh connections (so each worker takes some)."""
    return {httpx.get(base + "/", timeout=10).json()["data"]["model"]["version"] for _ in range(requests)}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Engine]]:
    """A PostgreSQL schema upgraded by ``coe-template db upgrade``, holding version 1 (production)
    trained by the CLI with its artifacts in the database; the environment every node shares."""
    with postgres_schema(os.environ["TEST_DATABASE_URL"], prefix="cluster") as url:
        shared = {
            "DATABASE_URL": url,
            "COE_ARTIFACT_STORE": "db",
            "COE_ADMIN_KEYS": ADMIN_KEY,
            "COE_BATCH_LEASE_SECONDS": "3",
            "COE_BATCH_CHUNK_SIZE": "250",
            "COE_TRAINING_LEASE_SECONDS": "5",
            # Far above every wait below: promotions must reach the nodes by notification.
            "COE_REFRESH_SECONDS": "60",
        }
        seed = tmp_path / "seed"
        cli({**shared, "COE_MODEL_STORE": str(seed)}, "db", "upgrade")
        cli({**shared, "COE_MODEL_STORE": str(seed)}, "train")
        shutil.rmtree(seed)  # nothing of the training's host is left: the database holds it all
        engine = create_engine(url)
        try:
            yield url, shared, engine
        finally:
            engine.dispose()


def node(
    shared: dict[str, str], root: Path, name: str
) -> contextlib.AbstractContextManager[tuple[str, subprocess.Popen]]:
    """A gunicorn server with two workers whose model store (an empty directory at first) is only a cache."""
    return gunicorn({**shared, "COE_MODEL_STORE": str(root / name)}, root / f"{name}.log", workers=2)


def test_two_nodes_and_a_worker_share_one_postgresql(cluster, tmp_path):
    _, shared, engine = cluster
    with (
        node(shared, tmp_path, "a") as (a, a_process),
        node(shared, tmp_path, "b") as (b, b_process),
        worker({**shared, "COE_MODEL_STORE": str(tmp_path / "w")}, tmp_path / "worker.log") as work,
    ):
        assert versions_served(a) == versions_served(b) == {1}

        # A prediction answered by A is in the ledger B reads (A's writer flushes within half a second).
        answered = httpx.post(
            f"{a}/predictions", json={"texts": [{"text": "a CNN", "id": "on-a"}]}, timeout=10
        )
        assert answered.status_code == 200, answered.text
        prediction_id = answered.headers["x-prediction-id"]

        def read_on_b() -> httpx.Response:
            return httpx.get(f"{b}/predictions/{prediction_id}", timeout=10)

        wait_until(lambda: read_on_b().status_code == 200, 10, "the prediction recorded")
        recorded = read_on_b().json()["data"]["prediction"]
        assert (recorded["prediction_id"], recorded["id"], recorded["model_version"]) == (
            prediction_id,
            "on-a",
            1,
        )
        # Labelled through B (by the client's own id), and counted in version 1's quality B reads.
        labelled = httpx.post(
            f"{b}/labels",
            json={"labels": [{"id": "on-a", "true_tag": recorded["predicted_tag"]}]},
            headers=ADMIN,
            timeout=10,
        )
        assert labelled.status_code == 200, labelled.text
        assert labelled.json()["data"]["counts"] == {"created": 1}
        quality = httpx.get(f"{b}/models/{MODEL}/versions/1/quality", timeout=10).json()["data"]["quality"]
        assert (quality["predictions"], quality["labelled"], quality["accuracy"]) == (1, 1, 1.0)

        # Train through A: whichever runner claims the job trains it, and B sees it ready.
        response = httpx.post(
            f"{a}/models/{MODEL}/versions", json={"args": {"C": 2.5}}, headers=ADMIN, timeout=10
        )
        assert response.status_code == 202, response.text
        version = response.json()["data"]["version"]["version"]
        assert version == 2

        def status_on_b() -> str:
            return httpx.get(f"{b}/models/{MODEL}/versions/{version}", timeout=10).json()["data"]["version"][
                "status"
            ]

        wait_until(lambda: status_on_b() != "training", 120, "version 2 trained")
        assert status_on_b() == "ready"

        # Promote through B: both nodes' workers swap, long before their 60 s poll.
        promoted = httpx.put(
            b + PRODUCTION_ALIAS, json={"version": version, "reason": "test"}, headers=ADMIN, timeout=10
        )
        assert promoted.status_code == 200, promoted.text
        wait_until(
            lambda: versions_served(a) == versions_served(b) == {version}, 10, "both nodes serve version 2"
        )

        # A batch job created on A, worked by everyone; A dies in the middle of it.
        csv = "id,text\n" + "".join(
            f"item-{n},object detection with a CNN number {n}\n" for n in range(ITEMS)
        )
        created = httpx.post(
            f"{a}/batch-predictions", files={"file": ("items.csv", csv.encode(), "text/csv")}, timeout=60
        )
        assert created.status_code == 202, created.text
        job_id = created.json()["data"]["job"]["id"]

        def job() -> dict:
            return httpx.get(f"{b}/batch-predictions/{job_id}", timeout=10).json()["data"]["job"]

        def workers_done() -> set[int]:
            """The processes that stored at least one chunk of the job."""
            with engine.connect() as connection:
                owners = (
                    connection.execute(
                        select(BatchChunk.lease_owner)
                        .distinct()
                        .where(BatchChunk.job_id == job_id, BatchChunk.status == "done")
                    )
                    .scalars()
                    .all()
                )
            return {int(owner.split(":")[1]) for owner in owners}

        a_workers, b_workers = set(worker_pids(a_process.pid)), set(worker_pids(b_process.pid))
        wait_until(lambda: workers_done() & a_workers, 60, "node A stored a chunk")
        os.killpg(a_process.pid, signal.SIGKILL)
        assert job()["items"]["done"] < ITEMS, (
            "the job finished before node A could be killed: nothing was proven"
        )

        wait_until(lambda: job()["status"] != "running", 120, "the job finished by B and the worker")
        assert job()["status"] == "succeeded"
        assert job()["items"] == {"total": ITEMS, "done": ITEMS}
        with engine.connect() as connection:
            stored = connection.execute(
                select(func.count(), func.count(distinct(BatchResult.item_id))).where(
                    BatchResult.job_id == job_id
                )
            ).one()
        assert tuple(stored) == (ITEMS, ITEMS)  # exactly every item, none twice
        worked_by = workers_done()
        assert work.pid in worked_by and worked_by & a_workers and worked_by & b_workers, worked_by

        # Roll back through B; A, restarted with its cache, serves what production says now.
        rolled = httpx.put(
            b + PRODUCTION_ALIAS, json={"version": 1, "reason": "test"}, headers=ADMIN, timeout=10
        )
        assert rolled.status_code == 200, rolled.text
        wait_until(lambda: versions_served(b) == {1}, 10, "B serves version 1 again")
    with node(shared, tmp_path, "a") as (a, _):
        assert versions_served(a) == {1}
    # No host kept a run of its own: each store holds only the cache of what it fetched.
    assert [path.name for name in "abw" for path in (tmp_path / name).iterdir()] == ["cache"] * 3
