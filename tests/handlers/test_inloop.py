"""The operations marked ``x-coe-in-loop`` in the spec: they never wait on the database or the disk,
and they answer exactly what the stock a2wsgi path answers, successes and errors alike."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from handlers import inloop
from handlers.app import SPEC_DIR
from tests.conftest import MODEL, READ_KEY
from tests.prediction_ids import without_ids

BODY = {"texts": [{"text": "ML applied to image classification."}, {"text": "Kubernetes in production"}]}
#: A request that runs each marked operation to success: marking an operation needs a line here.
REQUESTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "handlers.general.health": ("GET", "/", {}),
    "handlers.performance.get": ("GET", "/performance?filter=overall", {}),
    "handlers.args.search": ("GET", "/args", {}),
    "handlers.args.get": ("GET", "/args/ngram_max", {}),
    "handlers.predictions.create": ("POST", "/predictions?explain=true", {"json": BODY}),
    "handlers.probes.live": ("GET", "/livez", {}),
}
#: Unmarked operations that do reach the database: the check below must see them do it.
REACHES_DATABASE = [
    ("POST", f"/models/{MODEL}/versions/1/predictions", {"json": BODY}),
    ("GET", "/readyz", {}),
    ("GET", "/models", {}),
]


def layer(client) -> inloop.InLoop:
    return client.app.app.extensions[inloop.EXTENSION]


def test_the_spec_marks_the_computing_operations():
    assert inloop.marked_operations(SPEC_DIR / "spec.yaml") == set(REQUESTS)


def test_marked_operations_never_touch_the_database_or_the_model_store(client_for, registry_store):
    """Every marked operation answers with each use of the database recorded and the model store moved
    away; the same check sees the unmarked ones reach the database."""
    client = client_for(refresh_seconds=3600, batch_in_server=False, training_in_server=False)
    engine = client.app.app.extensions["coe_template"].registry.engine
    touched: list[str] = []

    def record(_connection: Any) -> None:
        # The model's poller is woken by any promotion announced on a shared PostgreSQL: not a request's.
        if threading.current_thread().name != "model-refresh":
            touched.append(current)

    store: Path = registry_store.store
    event.listen(engine, "engine_connect", record)
    store.rename(store.with_name("store-away"))
    try:
        for current, (method, path, kwargs) in REQUESTS.items():
            response = client.request(method, path, **kwargs)
            assert response.status_code == 200, (current, response.text)
        assert touched == []
        for method, path, kwargs in REACHES_DATABASE:
            current = path
            client.request(method, path, **kwargs)
        assert touched == [path for _, path, _ in REACHES_DATABASE]
    finally:
        event.remove(engine, "engine_connect", record)
        store.with_name("store-away").rename(store)


def answer(client, operations: frozenset[str], method: str, path: str, **kwargs: Any) -> tuple:
    """Status, headers and body as sent, with ``operations`` in the loop (none: the stock path)."""
    layer(client).operations = operations
    response = client.request(
        method, path, headers={"X-Request-ID": "same-id", **kwargs.pop("headers", {})}, **kwargs
    )
    body: Any = response.content
    headers = response.headers.multi_items()
    if response.headers.get("content-type") == "application/json":
        body = json.loads(body)
        body.pop("timestamp", None)  # the envelope's time of answer
        if "x-prediction-id" in response.headers:  # fresh ids each time: checked, then set aside
            predictions = body["data"]["predictions"] = without_ids(response)
            headers = [(k, "ids" if k == "x-prediction-id" else v) for k, v in headers]
            assert len(predictions) == len(response.headers["x-prediction-id"].split(","))
    return response.status_code, headers, body


def assert_same_answers(client, requests: list[tuple[str, str, dict[str, Any]]], statuses: list[int]) -> None:
    marked = layer(client).operations
    try:
        for (method, path, kwargs), status in zip(requests, statuses, strict=True):
            in_loop = answer(client, marked, method, path, **dict(kwargs))
            stock = answer(client, frozenset(), method, path, **dict(kwargs))
            assert in_loop == stock, (method, path)
            assert in_loop[0] == status, (path, in_loop)
    finally:
        layer(client).operations = marked


def test_in_loop_answers_are_the_stock_answers(client_for):
    client = client_for(max_body_bytes=10_000)
    requests = [
        *REQUESTS.values(),
        ("POST", "/predictions", {"json": BODY}),
        ("POST", "/predictions", {"json": {"texts": []}}),  # 400: the spec's validation
        ("POST", "/predictions", {"content": b"{", "headers": {"Content-Type": "application/json"}}),  # 400
        ("POST", "/predictions", {"content": b"texts", "headers": {"Content-Type": "text/plain"}}),  # 415
        ("POST", "/predictions", {"json": {"texts": [{"text": "x" * 20_000}]}}),  # 413
        ("GET", "/args/nope", {}),  # 404, raised by the handler
        ("GET", "/performance?filter=nope", {}),  # 400: not in the enum
        ("GET", "/args?unknown=1", {}),  # 400: strict validation of the query
    ]
    assert_same_answers(client, requests, [200] * 7 + [400, 400, 415, 413, 404, 400, 400])


def test_in_loop_answers_are_the_stock_answers_with_keys_required(client_for):
    client = client_for(require_keys_for_reads=True)
    requests = [
        ("GET", "/", {}),  # 401
        ("POST", "/predictions", {"json": BODY, "headers": {"Authorization": "Bearer wrong"}}),  # 401
        ("POST", "/predictions", {"json": BODY, "headers": {"Authorization": f"Bearer {READ_KEY}"}}),
    ]
    assert_same_answers(client, requests, [401, 401, 200])


def test_in_loop_failures_are_the_stock_problems(client_for):
    """An unexpected exception in a handler (500) and no model loaded (503), both as problem+json."""
    client = client_for(refresh_seconds=3600)
    server = client.app.app.extensions["coe_template"].server
    # Its poller would reload the model when any test promotes on the shared PostgreSQL.
    server.stop()
    served = server.current
    try:
        server._current = replace(served, artifacts=None)  # a broken model: predict() fails unexpectedly
        assert_same_answers(client, [("POST", "/predictions", {"json": BODY})], [500])
        server._current = None
        assert_same_answers(client, [("GET", "/", {}), ("POST", "/predictions", {"json": BODY})], [503, 503])
    finally:
        server._current = served
    status, headers, body = answer(client, layer(client).operations, "POST", "/predictions", json=BODY)
    assert status == 200


@pytest.mark.parametrize("path", ["/", "/livez"])
def test_head_and_wrong_methods_pass_through(client_for, path):
    client = client_for()
    assert_same_answers(client, [("DELETE", path, {})], [405])
