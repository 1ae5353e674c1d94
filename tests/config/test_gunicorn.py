"""The real server: gunicorn with config/gunicorn.py, spoken to over HTTP."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.servers import gunicorn


@pytest.fixture(scope="module")
def server(model_store: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    with gunicorn({"COE_MODEL_STORE": str(model_store), "COE_GRACEFUL": "5"}, log) as running:
        yield running


def test_serves_predictions_over_http(server, artifacts):
    base, _ = server
    texts = ["ML applied to image classification.", "A chatbot built with transformers."]
    response = httpx.post(f"{base}/predictions", json={"texts": [{"text": t} for t in texts]}, timeout=10)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["model"] == {"name": "project-tagger", "version": 1, "run_id": artifacts.run_id}
    assert [p["input_text"] for p in data["predictions"]] == texts
    assert data["predictions"][0]["predicted_tag"] == "computer-vision"


def test_errors_are_problems_over_http(server):
    base, _ = server
    response = httpx.post(f"{base}/predictions", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "/problems/bad-request",
        "title": "Bad Request",
        "status": 400,
        "detail": "request body is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        "request_id": response.headers["x-request-id"],
    }


def test_sigterm_shuts_down_cleanly(server):
    base, process = server
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/", timeout=1)
