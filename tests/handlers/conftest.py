from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus

import pytest

from tests import problems


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
        assert stamp.utcoffset() == UTC.utcoffset(None)
        assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
        if path is not None:
            assert body["url"] == f"http://testserver{path}"
        return body["data"]

    return check


@pytest.fixture
def assert_problem():
    """Check an application/problem+json error whole (:func:`tests.problems.assert_problem`)."""
    return problems.assert_problem


@pytest.fixture
def registry_store(tmp_path, database_url, trained_model, migrated_databases):
    """A registry of its own (SQLite, or PostgreSQL with TEST_DATABASE_URL): versions 1 and 2,
    production on 1 (seeded once per session, copied)."""
    from tests.conftest import seeded_copy

    registry = seeded_copy(migrated_databases, database_url, tmp_path / "store", trained_model, versions=2)
    yield registry
    registry.engine.dispose()


@pytest.fixture
def client_for(registry_store, database_url, settings):
    """Open a test client on the registry_store's app, with settings overridden as given."""
    from contextlib import ExitStack, contextmanager
    from dataclasses import replace

    from handlers.app import create_app

    @contextmanager
    def open_client(**overrides):
        app = create_app(
            replace(
                settings,
                model_store=registry_store.store,
                database_url=database_url,
                **{"refresh_seconds": 0.2, **overrides},
            )
        )
        try:
            with app.test_client() as client:
                yield client
        finally:
            app.app.extensions["coe_template"].registry.engine.dispose()

    with ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(open_client(**overrides))


@pytest.fixture
def registry_client(client_for):
    return client_for()
