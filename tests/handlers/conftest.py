from __future__ import annotations

from datetime import datetime, timezone

import pytest


@pytest.fixture
def assert_envelope():
    """Check the seed's envelope around a successful response and return its data."""

    def check(response, method: str = "GET", status: int = 200, path: str | None = None) -> dict:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert set(body) == {"message", "method", "status-code", "timestamp", "url", "data"}
        assert body["message"] == "OK"
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
