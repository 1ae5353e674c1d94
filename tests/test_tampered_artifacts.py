"""A production artifact changed on disk: the real server starts without it, says so once, and recovers.

Digests are checked before any file is read, at start and at every promotion; nothing is ever unpickled.
"""

from __future__ import annotations

import time

import httpx

from coe_template.artifacts.runs import MODEL_FILE, PICKLED_MODEL_FILE, runs_dir, sha256_file
from coe_template.registry import Registry
from tests import hostile
from tests.conftest import ADMIN, ADMIN_KEY, MODEL, seeded_registry
from tests.servers import gunicorn

BODY = {"texts": [{"text": "ML applied to image classification."}]}


def tamper(registry: Registry, version: int) -> tuple[str, bytes]:
    """Flip one byte of a version's model file; return the file's path and its original bytes."""
    path = runs_dir(registry.store) / registry.get_version(MODEL, version).run_id / MODEL_FILE
    original = path.read_bytes()
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0x01
    path.write_bytes(bytes(changed))
    return str(path), original


def refusal(registry: Registry, version: int) -> str:
    found = registry.get_version(MODEL, version)
    path = runs_dir(registry.store) / found.run_id / MODEL_FILE
    return (
        f"run {found.run_id}: {MODEL_FILE} does not match its recorded sha256 "
        f"(expected {found.artifacts[MODEL_FILE]}, found {sha256_file(path)}); refusing to load it"
    )


def predict(base: str) -> httpx.Response:
    return httpx.post(f"{base}/predictions", json=BODY, headers={"X-Request-ID": "t-1"}, timeout=10)


def test_tampered_production_at_start_then_restored_then_a_tampered_promotion(tmp_path, trained_model):
    store = tmp_path / "store"
    database_url = f"sqlite:///{tmp_path / 'registry.db'}"  # the database plays no part here
    registry = seeded_registry(database_url, store, trained_model, versions=2)
    path, original = tamper(registry, 1)
    expected_refusal = refusal(registry, 1)
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": database_url,
        "COE_ADMIN_KEYS": ADMIN_KEY,
        "COE_REFRESH_SECONDS": "0.5",
    }
    log = tmp_path / "server.log"

    def registry_answers(base: str) -> bool:
        return httpx.get(f"{base}/models", timeout=1).status_code == 200

    try:
        with gunicorn(env, log, ready=registry_answers) as (base, _process):
            # Started without a model: predictions say so, the log says why, once.
            response = predict(base)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
            assert response.json() == {
                "type": "/problems/unavailable",
                "title": "Service Unavailable",
                "status": 503,
                "detail": f"no production version of {MODEL!r} is loaded: see the server's log",
                "request_id": "t-1",
            }
            time.sleep(2)  # several polls by each worker
            lines = [line for line in log.read_text().splitlines() if expected_refusal in line]
            assert [line.split(" ", 3)[1] for line in lines] == ["ERROR"]
            assert [line.split(": ", 1)[1] for line in lines] == [
                f"serving no version of {MODEL}, predictions refused (retrying every 0.5 s): {expected_refusal}"
            ]

            # The files restored: every worker loads them at its next poll, no restart.
            with open(path, "wb") as fh:
                fh.write(original)
            deadline = time.monotonic() + 30
            while any(predict(base).status_code != 200 for _ in range(10)):  # each worker at its own poll
                assert time.monotonic() < deadline, "the server never recovered"
                time.sleep(0.2)
            for _ in range(10):
                assert predict(base).json()["data"]["model"]["version"] == 1

            # Promoting a tampered version is refused before its model is read; production is unchanged.
            tamper(registry, 2)
            response = httpx.put(
                f"{base}/models/{MODEL}/aliases/production",
                json={"version": 2, "reason": "test"},
                headers={**ADMIN, "X-Request-ID": "t-2"},
                timeout=10,
            )
            assert response.status_code == 503
            assert response.json() == {
                "type": "/problems/model-files-unverified",
                "title": "Service Unavailable",
                "status": 503,
                "detail": refusal(registry, 2),
                "request_id": "t-2",
            }
            assert registry.get_alias(MODEL, "production") == 1
            assert predict(base).json()["data"]["model"]["version"] == 1
        assert "Traceback" not in log.read_text()
    finally:
        registry.engine.dispose()


def test_a_production_version_stored_as_a_pickle_starts_unready_says_how_to_fix_it_and_is_never_unpickled(
    tmp_path, trained_model
):
    """A version trained before model.skops: the server starts, refuses to serve it, and says how to retrain."""
    store = tmp_path / "store"
    database_url = f"sqlite:///{tmp_path / 'registry.db'}"
    registry = seeded_registry(database_url, store, trained_model, versions=2)
    marker = tmp_path / "payload-ran"
    hostile.forge_version(registry, 1, hostile.pickle_file(marker), name=PICKLED_MODEL_FILE)
    how = (
        f"version 1 of {MODEL!r} was stored as a pickle ({PICKLED_MODEL_FILE}), which this release no longer "
        "loads (a pickle can run code when read): train it again with `coe-template train` or "
        f"POST /models/{MODEL}/versions, and promote the new version"
    )
    env = {
        "COE_MODEL_STORE": str(store),
        "DATABASE_URL": database_url,
        "COE_ADMIN_KEYS": ADMIN_KEY,
        "COE_REFRESH_SECONDS": "0.5",
    }
    log = tmp_path / "server.log"
    try:
        with gunicorn(
            env, log, ready=lambda base: httpx.get(f"{base}/models", timeout=1).status_code == 200
        ) as (
            base,
            _process,
        ):
            assert predict(base).status_code == 503
            assert httpx.get(f"{base}/readyz", timeout=10).status_code == 503
            response = httpx.post(
                f"{base}/models/{MODEL}/versions/1/predictions",
                json=BODY,
                headers={"X-Request-ID": "t-1"},
                timeout=10,
            )
            assert response.json() == {
                "type": "/problems/model-files-unverified",
                "title": "Service Unavailable",
                "status": 503,
                "detail": how,
                "request_id": "t-1",
            }
            time.sleep(2)  # several polls by each worker: said once
            lines = [line for line in log.read_text().splitlines() if how in line and "serving no" in line]
            assert [line.split(" ", 3)[1] for line in lines] == ["ERROR"]
            assert [line.split(": ", 1)[1] for line in lines] == [
                f"serving no version of {MODEL}, predictions refused (retrying every 0.5 s): {how}"
            ]
            # Promoting a version in the new format recovers without a restart.
            promoted = httpx.put(
                f"{base}/models/{MODEL}/aliases/production",
                json={"version": 2, "reason": "test"},
                headers=ADMIN,
                timeout=10,
            )
            assert promoted.status_code == 200, promoted.text
            deadline = time.monotonic() + 30
            while any(predict(base).status_code != 200 for _ in range(10)):
                assert time.monotonic() < deadline, "the server never served the promoted version"
                time.sleep(0.2)
        assert not marker.exists()
        assert "Traceback" not in log.read_text()
    finally:
        registry.engine.dispose()
