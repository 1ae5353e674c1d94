"""``/livez`` and ``/readyz``: ready means a model is loaded and the database answers in time."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from coe_template.registry.db import DatabaseLimits, make_engine
from coe_template.serving import ModelServer
from config.settings import Settings
from handlers.app import create_app
from handlers.context import EXTENSION
from tests.conftest import MODEL, seeded_registry
from tests.servers import free_port


def test_live(client, assert_envelope):
    assert assert_envelope(client.get("/livez"), path="/livez") == {"status": "live"}


def test_ready_when_a_model_is_loaded_and_the_database_answers(client, assert_envelope, artifacts):
    assert assert_envelope(client.get("/readyz"), path="/readyz") == {
        "status": "ready",
        "model": {"name": MODEL, "version": 1, "run_id": artifacts.run_id},
        "database": "ok",
    }


@pytest.fixture
def own_app(tmp_path: Path, trained_model):
    """An app with a registry of its own, which a test may break; ready_timeout short, and no
    refresh poll meanwhile (it would wait on the broken database too)."""
    store = tmp_path / "store"
    seeded_registry(Settings(model_store=store).db_url, store, trained_model).engine.dispose()
    app = create_app(
        Settings(model_store=store, validate_responses=True, ready_timeout=1.0, refresh_seconds=3600)
    )
    yield app
    app.app.extensions[EXTENSION].registry.engine.dispose()


def not_ready(response, detail: str) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert response.json() == {
        "type": "/problems/unavailable",
        "title": "Service Unavailable",
        "status": 503,
        "detail": detail,
        "request_id": response.headers["x-request-id"],
    }


def test_not_ready_without_a_model(own_app):
    services = own_app.app.extensions[EXTENSION]
    # A server that has loaded nothing (as when the production version's files fail verification).
    own_app.app.extensions[EXTENSION] = replace(services, server=ModelServer(services.registry, MODEL))
    with own_app.test_client() as client:
        not_ready(client.get("/readyz"), "not ready: model: no production version loaded")
        assert client.get("/livez").status_code == 200


def test_not_ready_when_the_database_is_broken(own_app, tmp_path: Path):
    services = own_app.app.extensions[EXTENSION]
    services.registry.engine.dispose()  # no pooled connection hides the damage
    database = tmp_path / "store" / "registry.db"
    for extra in database.parent.glob("registry.db-*"):
        extra.unlink()
    database.write_bytes(b"this is not a database" * 100)
    with own_app.test_client() as client:
        not_ready(
            client.get("/readyz"), "not ready: database: the database file is not a database: try again later"
        )
        # Predictions are served from memory meanwhile.
        assert client.post("/predictions", json={"texts": [{"text": "a chatbot"}]}).status_code == 200


@pytest.fixture
def silent_database() -> Iterator[str]:
    """A PostgreSQL URL whose server accepts connections and never answers (a frozen database)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{listener.getsockname()[1]}/test"


def test_not_ready_in_bounded_time_when_the_database_hangs(own_app, silent_database):
    services = own_app.app.extensions[EXTENSION]
    services.registry.engine = create_engine(silent_database)
    with own_app.test_client() as client:
        for _ in range(2):  # the second probe waits on the first one's stuck query, not a new one
            started = time.monotonic()
            response = client.get("/readyz")
            assert time.monotonic() - started < 10
            not_ready(response, "not ready: database: no answer to SELECT 1 within 1 s")


@pytest.fixture
def refused_database() -> str:
    """A PostgreSQL URL whose port nobody listens on: a database that is down."""
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"


def test_not_ready_when_the_database_is_down(own_app, refused_database):
    # The registry's engine, as make_engine builds it: the driver's refusal is the package's DatabaseUnavailable.
    services = own_app.app.extensions[EXTENSION]
    services.registry.engine = make_engine(refused_database, DatabaseLimits(timeout=1.0))
    with own_app.test_client() as client:
        not_ready(
            client.get("/readyz"), "not ready: database: the database is not available: try again later"
        )


def test_a_failure_the_package_did_not_translate_is_a_bug_not_a_database_outage(own_app, refused_database):
    # An engine made beside make_engine raises the driver's own error: a bug of ours, answered as one
    # (a 500 with its traceback logged), not dressed up as the database being away.
    services = own_app.app.extensions[EXTENSION]
    services.registry.engine = create_engine(refused_database, connect_args={"connect_timeout": 1})
    with own_app.test_client() as client:
        response = client.get("/readyz")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "/problems/internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "the server failed to answer this request; the error is logged under its request id",
        "request_id": response.headers["x-request-id"],
    }
