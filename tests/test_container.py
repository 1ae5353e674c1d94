"""The container image as a user runs it: ``make image``, then ``podman run`` with the defaults.

On a first start the container prepares its embedded SQLite registry (schema, the default model
trained on the bundled data) and serves; a restart keeps the model of its volume. Needs podman
(and mmdebstrap for the base image): ``.ci/run`` installs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest

from coe_template.model.data import ACCEPTED_TAGS
from tests.servers import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Passed to `make image`: the image under test, beside (not over) the developer's :latest.
IMAGE = "localhost/coe-template:test"
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(PROJECT_ROOT / "deploy" / "podman" / "containers.conf")}
#: First start: schema, training (~5 s here), gunicorn loading the model; generous for a busy CI machine.
READY_WITHIN = 180
TEXT = "ML applied to image classification."

pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(
        shutil.which("podman") is None,
        reason="podman is not installed (.ci/run installs it: apt-get install podman mmdebstrap ...)",
    ),
]


def podman(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args], env=PODMAN_ENV, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def logs(container: str) -> str:
    result = podman("logs", container, check=False)
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def image() -> str:
    """``make image``: the base image from Debian packages if missing, then the Dockerfile (layers cached)."""
    build = subprocess.run(
        ["make", "--no-print-directory", "image", f"IMAGE={IMAGE}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, f"make image failed:\n{build.stdout[-5000:]}\n{build.stderr[-5000:]}"
    return IMAGE


@pytest.fixture
def container(image: str) -> Iterator[tuple[str, str]]:
    """The image run with its defaults, port 8000 published on a free local port; removed afterwards."""
    port = free_port()
    # No systemd here to run the health check's timer: the test runs the check itself.
    started = podman(
        "run", "--detach", "--health-interval=disable", "--publish", f"127.0.0.1:{port}:8000", image
    )
    container = started.stdout.strip()
    try:
        yield container, f"http://127.0.0.1:{port}"
    finally:
        # --volumes: the anonymous model-store volume goes with it.
        podman("rm", "--force", "--volumes", container, check=False)


def wait_ready(container: str, base: str) -> dict:
    """The data of the first 200 from /readyz; fails with the container's log if it exits or takes too long."""
    deadline = time.monotonic() + READY_WITHIN
    while True:
        try:
            response = httpx.get(f"{base}/readyz", timeout=5)
            if response.status_code == 200:
                return response.json()["data"]
        except httpx.TransportError:
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        assert state == "running", f"the container is {state}:\n{logs(container)}"
        assert time.monotonic() < deadline, f"not ready within {READY_WITHIN} s:\n{logs(container)}"
        time.sleep(0.5)


def test_the_image_trains_on_first_start_serves_predictions_as_non_root_and_is_healthy(container):
    name, base = container
    ready = wait_ready(name, base)
    assert ready["status"] == "ready" and ready["database"] == "ok"
    model = ready["model"]
    assert (model["name"], model["version"]) == ("project-tagger", 1), logs(name)

    response = httpx.post(f"{base}/predictions", json={"texts": [{"text": TEXT}]}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"message", "method", "status-code", "timestamp", "url", "data"}
    assert (body["message"], body["method"], body["status-code"]) == (HTTPStatus.OK.phrase, "POST", 200)
    assert body["url"] == f"{base}/predictions"
    assert abs((datetime.now(UTC) - datetime.fromisoformat(body["timestamp"])).total_seconds()) < 60
    assert body["data"]["model"] == model
    [prediction] = body["data"]["predictions"]
    assert prediction["input_text"] == TEXT
    assert prediction["predicted_tag"] == "computer-vision"
    assert set(prediction["probabilities"]) == set(ACCEPTED_TAGS)
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)

    # Not root: a shell in the container, and every process of it (gunicorn's master and workers).
    assert podman("exec", name, "id", "-u").stdout.strip() != "0"
    processes = podman("top", name, "huser", "args").stdout.splitlines()[1:]
    assert len(processes) >= 2, processes  # the master and at least one worker
    assert all(line.split()[0] != "0" for line in processes), processes

    # The image's HEALTHCHECK (GET /livez with python's urllib) passes.
    check = podman("healthcheck", "run", name, check=False)
    assert check.returncode == 0, f"{check.stdout}{check.stderr}\n{logs(name)}"
    assert podman("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip() == "healthy"

    # A restart keeps the model in the volume: the same version and run, no second training.
    podman("restart", "--time", "10", name)
    assert wait_ready(name, base)["model"] == model
    assert "already has a production version (1); not training" in logs(name)
