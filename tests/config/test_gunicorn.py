"""The real server: gunicorn with config/gunicorn.py, spoken to over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("gunicorn") / "server.log"
    env = {**os.environ, "COE_MODEL_STORE": str(model_store), "COE_BIND": f"127.0.0.1:{port}",
           "WEB_CONCURRENCY": "2", "COE_GRACEFUL": "5"}
    with log_path.open("w") as log:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.py", "wsgi:app"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base}/", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"gunicorn did not answer GET / within 60 s:\n{log_path.read_text()}")
        time.sleep(0.2)
    yield base, process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_serves_predictions_over_http(server, artifacts):
    base, _ = server
    texts = ["ML applied to image classification.", "A chatbot built with transformers."]
    response = httpx.post(f"{base}/predictions", json={"texts": [{"text": t} for t in texts]}, timeout=10)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["model"]["run_id"] == artifacts.run_id
    assert [p["input_text"] for p in data["predictions"]] == texts
    assert data["predictions"][0]["predicted_tag"] == "computer-vision"


def test_errors_are_problems_over_http(server):
    base, _ = server
    response = httpx.post(f"{base}/predictions", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_sigterm_shuts_down_cleanly(server):
    base, process = server
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/", timeout=1)
