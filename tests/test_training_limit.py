"""Concurrent training requests to the real server (two workers) never queue more than COE_MAX_TRAININGS.

A version counts while it is `training`, its job waiting or running; the servers' own runners train them.
"""

from __future__ import annotations

import threading

import httpx

from tests.coe_template.model.test_data import project_rows, write_rows
from tests.conftest import ADMIN, ADMIN_KEY, MODEL, seeded_registry
from tests.servers import gunicorn
from tests.waiting import wait_until

VERSIONS = f"/models/{MODEL}/versions"


def wait_until_none_training(base: str) -> None:
    def versions() -> list[dict]:
        return httpx.get(base + VERSIONS, timeout=10).json()["data"]["versions"]

    wait_until(
        lambda: not any(v["status"] == "training" for v in versions()), 120, "no version training", every=0.3
    )


def test_training_requests_beyond_the_limit_are_busy(tmp_path, trained_model):
    store = tmp_path / "store"
    database_url = f"sqlite:///{tmp_path / 'registry.db'}"  # PostgreSQL's count: test_registry
    registry = seeded_registry(database_url, store, trained_model)
    data = write_rows(tmp_path / "small.csv", project_rows(per_tag=15))  # trains in a moment
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": database_url,
        "COE_ADMIN_KEYS": ADMIN_KEY,
        "COE_TRAINING_DATA": str(data),
        "COE_MAX_TRAININGS": "2",
    }
    responses: list[httpx.Response] = []
    lock = threading.Lock()
    try:
        with gunicorn(env, tmp_path / "server.log") as (base, _process):
            barrier = threading.Barrier(6)

            def train(n: int) -> None:
                barrier.wait()
                response = httpx.post(
                    base + VERSIONS, json={}, timeout=30, headers={**ADMIN, "X-Request-ID": f"train-{n}"}
                )
                with lock:
                    responses.append(response)

            clients = [threading.Thread(target=train, args=(n,)) for n in range(6)]
            for thread in clients:
                thread.start()
            for thread in clients:
                thread.join()

            statuses = sorted(r.status_code for r in responses)
            assert statuses == [202, 202, 503, 503, 503, 503], [r.text for r in responses]
            for response in responses:
                if response.status_code == 503:
                    assert response.headers["retry-after"] == "30"
                    assert response.json() == {
                        "type": "/problems/busy",
                        "title": "Service Unavailable",
                        "status": 503,
                        "detail": "2 version(s) are queued or training already, the most this service runs "
                        "at once: try again when one has finished",
                        "request_id": response.headers["x-request-id"],
                    }
            versions = httpx.get(base + VERSIONS, timeout=10).json()["data"]["versions"]
            assert [v["version"] for v in versions] == [1, 2, 3]  # nothing created for the refused ones

            # Once they have finished, training is accepted again.
            wait_until_none_training(base)
            assert httpx.post(base + VERSIONS, json={}, headers=ADMIN, timeout=30).status_code == 202
            wait_until_none_training(base)  # no trainer outlives the test
    finally:
        registry.engine.dispose()
