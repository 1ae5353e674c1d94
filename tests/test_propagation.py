"""A promotion reaches every replica at once on PostgreSQL (LISTEN/NOTIFY); polling is only the fallback.

Every server here polls every 60 s, far longer than any test waits: a swap seen in
time came from a notification, not from a poll. (SQLite, which only polls, is
covered by tests/coe_template/test_serving.py and tests/test_lifecycle.py.)
"""

from __future__ import annotations

import logging
import os
import queue
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coe_template.registry import PRODUCTION, Registry
from coe_template.serving import ModelServer, Served
from tests.conftest import ADMIN, ADMIN_KEY, MODEL, seeded_registry
from tests.databases import postgres_schema, private_postgres
from tests.servers import free_port, gunicorn, worker_pids

#: Far longer than any wait below: polling cannot be what swaps.
LONG_POLL = 60.0
#: How soon every replica must serve a promotion once the PUT (or set_alias) has returned.
SWAP_WITHIN = 2.0
PRODUCTION_ALIAS = f"/models/{MODEL}/aliases/{PRODUCTION}"


@pytest.fixture
def schema_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("needs TEST_DATABASE_URL (PostgreSQL): LISTEN/NOTIFY is PostgreSQL's")
    with postgres_schema(url) as scoped:
        yield scoped


class Replicas:
    """ModelServers on one database, each with an engine of its own (as separate processes have)."""

    def __init__(self, url: str, store: Path, count: int = 2) -> None:
        self.servers = [
            ModelServer(Registry.open(url, store), MODEL, refresh_seconds=LONG_POLL) for _ in range(count)
        ]
        self.swaps: list[queue.Queue[int]] = []
        for server in self.servers:
            server.refresh()
            swaps: queue.Queue[int] = queue.Queue()

            def swapped(served: Served, swaps: queue.Queue[int] = swaps) -> None:
                swaps.put(served.version)

            server.listeners.append(swapped)
            self.swaps.append(swaps)
            server.start()

    def all_swap_to(self, version: int, within: float) -> bool:
        """Whether every server starts serving ``version`` within ``within`` seconds (from now)."""
        deadline = time.monotonic() + within
        for swaps in self.swaps:
            while True:
                try:
                    if swaps.get(timeout=max(0.0, deadline - time.monotonic())) == version:
                        break
                except queue.Empty:
                    return False
        return True

    def stop(self) -> float:
        """Stop every server; the seconds it took."""
        started = time.monotonic()
        for server in self.servers:
            server.stop()
        took = time.monotonic() - started
        for server in self.servers:
            server.registry.engine.dispose()
        return took


def test_a_promotion_reaches_every_replica_at_once(schema_url, tmp_path, trained_model):
    store = tmp_path / "store"
    registry = seeded_registry(schema_url, store, trained_model, versions=2)
    replicas = Replicas(schema_url, store)
    try:
        registry.set_alias(MODEL, PRODUCTION, 2)
        assert replicas.all_swap_to(2, SWAP_WITHIN)
        # Both listen by now (they swapped): the rollback can only come from a notification.
        registry.set_alias(MODEL, PRODUCTION, 1)
        assert replicas.all_swap_to(1, SWAP_WITHIN)
        assert [server.current.version for server in replicas.servers] == [1, 1]
    finally:
        stopping = replicas.stop()
        registry.engine.dispose()
    assert stopping < 2.0  # shutting down waits neither for the 60 s poll nor for the listener


SWAPPED = re.compile(r"\[(\d+)\] coe_template\.serving .*: now serving (\S+) version (\d+)")


def swapped_workers(log: Path, version: int, since: int) -> set[int]:
    """The pids that logged starting to serve ``version`` after the log's first ``since`` characters."""
    found = SWAPPED.finditer(log.read_text()[since:])
    return {int(m[1]) for m in found if m[2] == MODEL and int(m[3]) == version}


def test_every_gunicorn_worker_serves_a_put_at_once(schema_url, tmp_path, trained_model):
    store = tmp_path / "store"
    seeded_registry(schema_url, store, trained_model, versions=2).engine.dispose()
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": schema_url,
        "COE_ADMIN_KEYS": ADMIN_KEY,
        "COE_REFRESH_SECONDS": str(LONG_POLL),
    }
    log = tmp_path / "server.log"
    with gunicorn(env, log, workers=2) as (base, process):
        for version in (2, 1):  # promote, then roll back
            since = len(log.read_text())
            response = httpx.put(
                base + PRODUCTION_ALIAS,
                json={"version": version, "reason": "test"},
                headers=ADMIN,
                timeout=10,
            )
            assert response.status_code == 200, response.text
            put_returned = time.monotonic()
            workers = set(worker_pids(process.pid))
            answers: Counter = Counter()
            while time.monotonic() - put_returned < 10:  # bounded, and far below the 60 s poll
                answers = Counter(
                    httpx.get(f"{base}/", timeout=10).json()["data"]["model"]["version"] for _ in range(20)
                )  # fresh connections: both workers answer some
                if answers == {version: 20} and swapped_workers(log, version, since) == workers:
                    break
                time.sleep(0.05)
            assert answers == {version: 20}, log.read_text()
            assert swapped_workers(log, version, since) == workers, log.read_text()


def test_the_listener_reconnects_after_the_database_restarts(tmp_path, trained_model, caplog):
    caplog.set_level(logging.INFO, logger="coe_template.registry.notify")
    with private_postgres(free_port()) as postgres:
        store = tmp_path / "store"
        registry = seeded_registry(postgres.url, store, trained_model, versions=3)
        replicas = Replicas(postgres.url, store)
        try:
            registry.set_alias(MODEL, PRODUCTION, 2)
            assert replicas.all_swap_to(2, SWAP_WITHIN)

            postgres.stop()  # every connection dropped: the listeners' too
            postgres.start()
            # Announced while the listeners may still be reconnecting: each refreshes once it
            # listens again, so the promotion is not left to the 60 s poll.
            registry.set_alias(MODEL, PRODUCTION, 3)
            assert replicas.all_swap_to(3, 20.0)
            # Listening again: the next promotion is seen at once.
            registry.set_alias(MODEL, PRODUCTION, 1)
            assert replicas.all_swap_to(1, SWAP_WITHIN)
        finally:
            replicas.stop()
            registry.engine.dispose()

    listener = [r for r in caplog.records if r.name == "coe_template.registry.notify"]
    assert sum("listening for promotions of project-tagger again" in r.getMessage() for r in listener) == 2
    lost = Counter(r.getMessage() for r in listener if r.levelno == logging.WARNING)
    # The listeners said they lost the connection, once per cause, not at every retry: each
    # message at most twice (once per listener), at least two in all.
    assert all(count <= 2 for count in lost.values()) and sum(lost.values()) >= 2, lost
    assert all(
        m.startswith("not listening for promotions of project-tagger (polling meanwhile") for m in lost
    )
