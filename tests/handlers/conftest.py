from __future__ import annotations

from datetime import datetime, timezone
from http import HTTPStatus

import pytest


@pytest.fixture
def assert_envelope():
    """Check the seed's envelope around a successful response and return its data."""

    def check(response, method: str = "GET", status: int = 200, path: str | None = None) -> dict:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert set(body) == {"message", "method", "status-code", "timestamp", "url", "data"}
        assert body["message"] == HTTPStatus(status).phrase
        assert body["method"] == method
        assert body["status-code"] == status
        stamp = datetime.fromisoformat(body["timestamp"])
        assert stamp.utcoffset() == timezone.utc.utcoffset(None)
        assert abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 60
        if path is not None:
            assert body["url"] == f"http://testserver{path}"
        return body["data"]

    return check


@pytest.fixture
def assert_problem():
    """Check an application/problem+json error and return its detail."""

    def check(response, status: int) -> str:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == status
        assert body["title"]
        assert body["detail"]
        return body["detail"]

    return check


@pytest.fixture
def registry_store(tmp_path, database_url, trained_model):
    """A registry of its own (SQLite, or PostgreSQL with TEST_DATABASE_URL): versions 1 and 2,
    production on 1."""
    from coe_template.registry import PRODUCTION, Registry
    from tests.conftest import MODEL

    store = tmp_path / "store"
    registry = Registry.open(database_url, store)
    registry.ensure_model(MODEL, "Tags projects.")
    registry.register(MODEL, trained_model)
    registry.register(MODEL, trained_model)
    registry.set_alias(MODEL, PRODUCTION, 1)
    yield registry
    registry.engine.dispose()


@pytest.fixture
def registry_client(registry_store, database_url, settings):
    from dataclasses import replace

    from handlers.app import create_app

    app = create_app(replace(settings, model_store=registry_store.store, database_url=database_url,
                             refresh_seconds=0.2))
    with app.test_client() as client:
        yield client
    app.app.extensions["coe_template"].registry.engine.dispose()
