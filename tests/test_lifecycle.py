"""The registry end to end on a real gunicorn server with two workers and a real database.

Train v2 through the API, promote it, see every worker answer from it, roll back,
archive; then a promotion under load that no request may notice.
"""

from __future__ import annotations

import threading
from collections import Counter, deque

import httpx
import pytest

from coe_template.registry import PRODUCTION, Registry
from tests.conftest import ADMIN, ADMIN_KEY, MODEL, READ_KEY, seeded_registry
from tests.problems import assert_problem
from tests.servers import gunicorn
from tests.waiting import wait_until

VERSIONS = f"/models/{MODEL}/versions"
PRODUCTION_ALIAS = f"/models/{MODEL}/aliases/{PRODUCTION}"
BODY = {"texts": [{"text": "ML applied to image classification."}]}


@pytest.fixture
def server(tmp_path, database_url, trained_model):
    store = tmp_path / "store"
    seeded_registry(database_url, store, trained_model).engine.dispose()
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": database_url,
        "COE_ADMIN_KEYS": ADMIN_KEY,
        "COE_READ_KEYS": READ_KEY,
        "COE_REFRESH_SECONDS": "0.5",
    }
    with gunicorn(env, tmp_path / "server.log") as (base, _process):
        yield base


def versions_served(base: str, path: str, requests: int = 40) -> Counter:
    """Which versions answer, over fresh connections (so both workers take some)."""
    seen: Counter = Counter()
    for _ in range(requests):
        if path == "/predictions":
            data = httpx.post(base + path, json=BODY, timeout=10).json()["data"]
            seen[data["model"]["version"]] += 1
        else:
            seen[httpx.get(base + path, timeout=10).json()["data"]["args"]["C"]] += 1
    return seen


def test_train_promote_roll_back_archive(server):
    # Train v2 with other args, through the API.
    response = httpx.post(server + VERSIONS, json={"args": {"C": 2.5}}, headers=ADMIN, timeout=10)
    assert response.status_code == 202, response.text
    location = server + response.headers["location"]

    def ready() -> bool:
        return httpx.get(location, timeout=10).json()["data"]["version"]["status"] != "training"

    wait_until(ready, 120, "version 2 trained")
    version = httpx.get(location, timeout=10).json()["data"]["version"]
    assert version["status"] == "ready", version["error"]
    assert versions_served(server, "/predictions") == {1: 40}  # nothing changes until promotion

    # Promote: every worker moves to v2, no restart.
    assert (
        httpx.put(
            server + PRODUCTION_ALIAS, json={"version": 2, "reason": "test"}, headers=ADMIN, timeout=10
        ).status_code
        == 200
    )
    wait_until(lambda: versions_served(server, "/predictions", 10) == {2: 10}, 30, "every worker serves 2")
    assert versions_served(server, "/predictions") == {2: 40}
    assert versions_served(server, "/args/C") == {2.5: 40}

    # Archiving the serving version is refused.
    assert_problem(
        httpx.delete(server + f"{VERSIONS}/2", headers=ADMIN, timeout=10),
        409,
        f"version 2 of {MODEL!r} is behind alias(es) production: point them elsewhere before archiving it",
    )

    # Roll back: the same PUT with the earlier version.
    assert (
        httpx.put(
            server + PRODUCTION_ALIAS, json={"version": 1, "reason": "test"}, headers=ADMIN, timeout=10
        ).status_code
        == 200
    )
    wait_until(lambda: versions_served(server, "/predictions", 10) == {1: 10}, 30, "every worker serves 1")
    assert versions_served(server, "/predictions") == {1: 40}
    assert versions_served(server, "/args/C") == {10.0: 40}

    # Now v2 can be archived.
    archived = httpx.delete(server + f"{VERSIONS}/2", headers=ADMIN, timeout=10)
    assert archived.status_code == 200
    assert archived.json()["data"]["version"]["status"] == "archived"


def test_auth_and_missing_things_over_http(server):
    assert_problem(
        httpx.put(server + PRODUCTION_ALIAS, json={"version": 1, "reason": "test"}, timeout=10),
        401,
        "No authorization token provided",
    )
    read_only = {"Authorization": f"Bearer {READ_KEY}"}
    refused = httpx.put(
        server + PRODUCTION_ALIAS, json={"version": 1, "reason": "test"}, headers=read_only, timeout=10
    )
    assert_problem(refused, 403, "this key may only read: send an admin key")
    assert_problem(
        httpx.put(
            server + PRODUCTION_ALIAS, json={"version": 9, "reason": "test"}, headers=ADMIN, timeout=10
        ),
        404,
        f"model {MODEL!r} has no version 9",
    )
    assert_problem(
        httpx.get(server + f"/models/{MODEL}/aliases/canary", timeout=10),
        404,
        f"model {MODEL!r} has no alias 'canary'",
    )


def test_promotion_under_load_fails_no_request(server, trained_model, database_url, tmp_path):
    registry = Registry.open(database_url, tmp_path / "store", upgrade=True)
    registry.register(MODEL, trained_model)  # v2, ready
    registry.engine.dispose()

    statuses: Counter = Counter()
    served: Counter = Counter()
    recent: deque[int] = deque(maxlen=20)
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                response = client.post(server + "/predictions", json=BODY)
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    served[response.json()["data"]["model"]["version"]] += 1
                    recent.append(response.json()["data"]["model"]["version"])

    clients = [threading.Thread(target=load) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        wait_until(lambda: sum(statuses.values()) >= 20, 60, lambda: f"no load: {statuses}")
        for target in (2, 1, 2):  # promote, roll back, promote again, all under load
            response = httpx.put(
                server + PRODUCTION_ALIAS,
                json={"version": target, "reason": "test"},
                headers=ADMIN,
                timeout=10,
            )
            assert response.status_code == 200
            # the load goes on until its last 20 answers, over the 4 clients' connections, are the promoted version's
            wait_until(lambda: list(recent) == [target] * 20, 30, lambda: f"not all {target}: {recent}")  # noqa: B023
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    assert set(statuses) == {200}, statuses
    assert served[1] > 0 and served[2] > 0
