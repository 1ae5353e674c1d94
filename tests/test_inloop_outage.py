"""Every one of a worker's Flask threads stuck on a frozen database: predictions, run in the event loop
(``x-coe-in-loop``), are answered while those requests are still waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODEL, seeded_registry
from tests.databases import PrivatePostgres, private_postgres
from tests.servers import free_port, gunicorn

BODY = {"texts": [{"text": "ML applied to image classification."}]}
#: More than a2wsgi's 10 threads: every one of them waits on the database, and some requests queue.
STUCK = 12


@pytest.fixture
def served(tmp_path: Path, trained_model) -> Iterator[tuple[str, PrivatePostgres]]:
    """One worker on a private PostgreSQL, with a connection for every thread and a long wait for each."""
    with private_postgres(free_port()) as postgres:
        store = tmp_path / "store"
        registry = seeded_registry(postgres.url, store, trained_model)
        registry.engine.dispose()
        env = {
            "COE_MODEL_STORE": str(store),
            "DATABASE_URL": postgres.url,
            "COE_DB_TIMEOUT": "8",
            "COE_DB_POOL_SIZE": str(STUCK),
            "COE_DB_POOL_WAIT": "8",
            "COE_BATCH_IN_SERVER": "false",
            "COE_TRAINING_IN_SERVER": "false",
        }
        with gunicorn(env, tmp_path / "server.log", workers=1) as (base, _process):
            yield base, postgres


def test_predictions_are_answered_while_every_flask_thread_waits_on_the_database(served):
    base, postgres = served
    finished: list[int] = []
    lock = threading.Lock()

    def list_versions() -> None:
        response = httpx.get(f"{base}/models/{MODEL}/versions", timeout=60)
        with lock:
            finished.append(response.status_code)

    with postgres.frozen():
        clients = [threading.Thread(target=list_versions) for _ in range(STUCK)]
        for thread in clients:
            thread.start()
        time.sleep(1)  # all of them in the server, its threads waiting on the database
        predicted = httpx.post(f"{base}/predictions", json=BODY, timeout=60)
        health = httpx.get(f"{base}/", timeout=60)
        with lock:
            done_by_then = list(finished)
        for thread in clients:
            thread.join()
    assert predicted.status_code == 200, predicted.text
    assert health.status_code == 200, health.text
    assert done_by_then == []  # answered before any of the database's requests
    assert finished == [503] * STUCK
