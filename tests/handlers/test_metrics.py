"""``/metrics``: what the service did, by operation, status and tag, from every worker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings
from handlers.app import create_app
from handlers.context import EXTENSION
from tests.conftest import MODEL, seeded_registry
from tests.handlers.test_batch_predictions import ITEMS, JOBS, wait_for
from tests.servers import PROJECT_ROOT, connect, gunicorn

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(samples: Samples, operation: str, status: int) -> float:
    return value(samples, "coe_http_requests_total", operation=operation, status=str(status))


def test_a_prediction_request_is_counted_by_operation_status_and_tag(client):
    texts = [
        "ML applied to image classification.",
        "A chatbot built with transformers.",
        "Object detection in video.",
    ]
    before = scrape(client)
    response = client.post("/predictions", json={"texts": [{"text": t} for t in texts]})
    assert response.status_code == 200
    assert client.post("/predictions", json={"texts": []}).status_code == 400
    after = scrape(client)

    assert requests(after, "predictions.create", 200) - requests(before, "predictions.create", 200) == 1
    assert requests(after, "predictions.create", 400) - requests(before, "predictions.create", 400) == 1
    latency = "coe_http_request_duration_seconds_count"
    assert (
        value(after, latency, operation="predictions.create")
        - value(before, latency, operation="predictions.create")
        == 2
    )
    tags = Counter(p["predicted_tag"] for p in response.json()["data"]["predictions"])
    assert tags["computer-vision"] == 2
    for tag, n in tags.items():
        labels = {"model": MODEL, "version": "1", "tag": tag}
        assert (
            value(after, "coe_predictions_total", **labels) - value(before, "coe_predictions_total", **labels)
            == n
        )


def test_paths_no_operation_matches_share_one_label(client):
    before = scrape(client)
    for path in ("/nope", "/models/x/y/z/w", "/random-123"):
        assert client.get(path).status_code == 404
    after = scrape(client)
    assert requests(after, "unrouted", 404) - requests(before, "unrouted", 404) == 3
    operations = {dict(labels).get("operation") for _, labels in after}
    assert not any("/" in op for op in operations if op)  # never a raw path


def test_a_body_refused_before_routing_still_counts_for_its_operation(client_for):
    client = client_for(max_body_bytes=100)
    before = scrape(client)
    assert client.post("/predictions", json={"texts": [{"text": "x" * 200}]}).status_code == 413
    after = scrape(client)
    assert requests(after, "predictions.create", 413) - requests(before, "predictions.create", 413) == 1


def test_the_database_counts_are_read_at_scrape_time(client):
    samples = scrape(client)
    assert value(samples, "coe_database_up") == 1
    assert (
        value(samples, "coe_model_versions", model=MODEL, status="ready") == 1
    )  # the app's store: version 1
    assert ("coe_batch_queue_items", frozenset()) in samples
    assert value(samples, "coe_model_version_served", model=MODEL) == 1


def test_batch_chunks_and_items_done_are_counted(client_for, assert_envelope):
    client = client_for(batch_chunk_size=3)
    before = scrape(client)
    job = assert_envelope(client.post(JOBS, json={"items": ITEMS}), method="POST", status=202)["job"]
    assert wait_for(client, job["id"])["status"] == "succeeded"
    after = scrape(client)
    assert value(after, "coe_batch_items_total") - value(before, "coe_batch_items_total") == len(ITEMS)
    done = {"outcome": "done"}
    assert (
        value(after, "coe_batch_chunks_total", **done) - value(before, "coe_batch_chunks_total", **done) == 3
    )
    assert value(after, "coe_batch_queue_items") == 0


def test_database_errors_are_counted_and_a_scrape_still_answers(tmp_path: Path, trained_model):
    store = tmp_path / "store"
    seeded_registry(Settings(model_store=store).db_url, store, trained_model).engine.dispose()
    # No poll and no runner between the two scrapes (each would count an error of its own).
    app = create_app(
        Settings(
            model_store=store,
            validate_responses=True,
            refresh_seconds=3600,
            batch_in_server=False,
            training_in_server=False,
        )
    )
    registry = app.app.extensions[EXTENSION].registry
    registry.engine.dispose()
    for extra in store.glob("registry.db-*"):
        extra.unlink()
    (store / "registry.db").write_bytes(b"this is not a database" * 100)
    try:
        with app.test_client() as client:
            before = scrape(client)
            client.get("/models")
            after = scrape(client)
    finally:
        registry.engine.dispose()
    assert value(after, "coe_database_up") == 0
    errors = "coe_database_errors_total"
    # The request's error and the scrape's two (it reads the database's counts, and the labelled
    # versions' quality, which is kept only once read); the counter is the process's, so other tests'
    # errors are in ``before`` too.
    assert value(after, errors, error="DatabaseError") - value(before, errors, error="DatabaseError") == 3


# --- the real server: two workers, one scrape ------------------------------------------------------

ACCESS_PID = re.compile(r"INFO \[(\d+)\] coe\.access \S+ POST /predictions predictions\.create 200 ")


def served_pids(samples: Samples) -> set[str]:
    return {dict(labels)["pid"] for name, labels in samples if name == "coe_model_version_served"}


@pytest.fixture(scope="module")
def two_workers(model_store: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("metrics-server")
    # A previous run's counts in the directory given: the server must start from zero, not add them in.
    metrics_dir = root / "metrics"
    metrics_dir.mkdir()
    stale = (
        "from coe_template.observability import metrics\n"
        "for _ in range(5): metrics.observe_request('predictions.create', 200, 0.001)"
    )
    subprocess.run(
        [sys.executable, "-c", stale],
        check=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
    )
    assert list(metrics_dir.glob("counter_*.db"))
    env = {
        "COE_MODEL_STORE": str(model_store),
        "COE_GRACEFUL": "5",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with gunicorn(env, root / "server.log", workers=2) as (base, _):
        yield base, root / "server.log"


def test_every_worker_counts_and_a_dead_workers_counts_are_kept(two_workers):
    """Also: the stale counts the fixture left in the directory are not added in."""
    base, log = two_workers

    def predict(_: int) -> int:
        response = httpx.post(
            f"{base}/predictions",
            json={"texts": [{"text": "image classification"}]},
            headers={"Connection": "close"},
            timeout=10,
        )
        return response.status_code

    sent = 0
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(4) as pool:
        while True:  # new connections, four at a time: the kernel spreads them over both workers
            assert list(pool.map(predict, range(8))) == [200] * 8
            sent += 8
            served_by = {int(pid) for pid in ACCESS_PID.findall(log.read_text())}
            if (len(served_by) == 2 and sent >= 24) or time.monotonic() > deadline:
                break
    assert len(served_by) == 2, "one worker answered everything: the test proves nothing"

    # A request is counted just after its response is sent: the client may be a moment ahead.
    deadline = time.monotonic() + 10
    while True:
        samples = parse(httpx.get(f"{base}/metrics", timeout=10).text)
        if requests(samples, "predictions.create", 200) >= sent or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert requests(samples, "predictions.create", 200) == sent
    assert value(samples, "coe_predictions_total", model=MODEL, version="1", tag="computer-vision") == sent
    assert served_pids(samples) == {str(pid) for pid in served_by}

    victim = min(served_by)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:  # gunicorn replaces the worker; its child_exit hook drops the dead one's live gauge
        try:
            samples = parse(httpx.get(f"{base}/metrics", timeout=5).text)
        except httpx.TransportError:
            samples = {}
        pids = served_pids(samples)
        if samples and str(victim) not in pids and len(pids) == 2:
            break
        assert time.monotonic() < deadline, (
            f"the dead worker's gauge is still there, or none replaced it: {pids}"
        )
        time.sleep(0.2)
    # Counters are kept: the dead worker's requests still count (prometheus_client's multiprocess mode).
    assert requests(samples, "predictions.create", 200) == sent
    assert value(samples, "coe_predictions_total", model=MODEL, version="1", tag="computer-vision") == sent
    # ... folded into one archive per kind: the directory does not grow with each dead worker.
    files = {path.name for path in (log.parent / "metrics").iterdir()}
    assert not [name for name in files if f"_{victim}." in name], files
    assert {"counter_archive.db", "histogram_archive.db"} <= files


def test_a_client_that_leaves_mid_body_counts_as_499_not_as_a_server_error(two_workers):
    base, log = two_workers
    for n in range(3):
        with connect(base) as sock:
            sock.sendall(
                b"POST /predictions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\nX-Request-ID: gone-%d\r\n\r\n{"texts": [' % n
            )
            time.sleep(0.2)  # the body's start is read before the client goes
    deadline = time.monotonic() + 10
    while (
        requests(samples := parse(httpx.get(f"{base}/metrics", timeout=10).text), "predictions.create", 499)
        < 3
    ):
        assert time.monotonic() < deadline, "the abandoned requests were never counted"
        time.sleep(0.1)
    assert requests(samples, "predictions.create", 500) == 0
    assert (
        len(re.findall(r"coe\.access gone-\d: POST /predictions predictions\.create 499 ", log.read_text()))
        == 3
    )


def test_the_metrics_and_their_hooks_import_without_the_web_stack():
    """``coe-template worker --metrics-port`` counts with them and should not load Flask or Connexion."""
    code = "import sys, coe_template.observability.metrics; print(sorted(m for m in ('flask', 'connexion') if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stderr


# --- the disk a registry uses ----------------------------------------------------------------------


def test_the_disk_a_registry_uses_is_read_at_scrape_time(client_for, registry_store):
    from tests.coe_template.registry.test_usage import walked

    samples = scrape(client_for())
    assert value(samples, "coe_model_store_bytes", dir="runs") == walked(registry_store.store / "runs") > 0
    assert samples[("coe_model_store_bytes", frozenset({("dir", "cache")}))] == 0
    assert value(samples, "coe_registry_database_bytes") > 0


def test_a_hung_database_leaves_its_size_out_of_the_scrape_not_the_stores(tmp_path: Path, trained_model):
    """A frozen PostgreSQL (SIGSTOP): the scrape answers after its 2 s bound, says the database is down,
    and has no database size; the model store, read apart, is still there."""
    from dataclasses import replace

    from tests.coe_template.registry.test_usage import walked
    from tests.databases import private_postgres
    from tests.servers import free_port

    with private_postgres(free_port()) as postgres:
        store = tmp_path / "store"
        seeded_registry(postgres.url, store, trained_model).engine.dispose()
        settings = replace(
            Settings(model_store=store, database_url=postgres.url, validate_responses=True),
            batch_in_server=False,
            training_in_server=False,
            db_timeout=2.0,
        )
        app = create_app(settings)
        try:
            with app.test_client() as client:
                assert value(scrape(client), "coe_registry_database_bytes") > 0
                with postgres.frozen():
                    samples = scrape(client)
        finally:
            app.app.extensions[EXTENSION].registry.engine.dispose()
    assert value(samples, "coe_database_up") == 0
    assert not any(name == "coe_registry_database_bytes" for name, _ in samples)
    assert value(samples, "coe_model_store_bytes", dir="runs") == walked(store / "runs") > 0
