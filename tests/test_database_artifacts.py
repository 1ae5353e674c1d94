"""The real server with ``COE_ARTIFACT_STORE=db``: a replica whose model store is only a cache serves predictions."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from coe_template.artifacts.runs import MODEL_FILE, RECORD_FILE, RUN_FILES, sha256
from coe_template.artifacts.stores import DATABASE
from tests import hostile
from tests.conftest import ADMIN, ADMIN_KEY, MODEL, seeded_registry
from tests.servers import gunicorn

BODY = {"texts": [{"text": "Object detection on drone video"}]}


def test_a_replica_with_an_empty_store_serves_the_version_another_host_trained(
    database_url, tmp_path, trained_model
):
    trainer = seeded_registry(database_url, tmp_path / "trainer", trained_model, artifacts=DATABASE)
    version = trainer.get_version(MODEL, 1)
    replica = tmp_path / "replica"
    replica.mkdir()
    env = {
        "COE_MODEL_STORE": str(replica),
        "DATABASE_URL": database_url,
        "COE_ARTIFACT_STORE": "db",
        "COE_ADMIN_KEYS": ADMIN_KEY,
    }
    try:
        with gunicorn(env, tmp_path / "server.log") as (base, _process):
            for _ in range(4):  # each worker answers from the same version
                response = httpx.post(f"{base}/predictions", json=BODY, timeout=10)
                assert response.status_code == 200, response.text
                data = response.json()["data"]
                assert data["model"]["version"] == 1
                assert data["predictions"][0]["predicted_tag"] == "computer-vision"
            # A version whose blob was changed in the database: its promotion is refused before unpickling.
            forged = trainer.register(MODEL, trained_model)
            with trainer.engine.begin() as connection:
                connection.execute(
                    text("UPDATE artifact_blobs SET data = :data WHERE run_id = :run AND name = :name"),
                    {"data": b"forged", "run": forged.run_id, "name": MODEL_FILE},
                )
            response = httpx.put(
                f"{base}/models/{MODEL}/aliases/production",
                json={"version": 2, "reason": "test"},
                headers={**ADMIN, "X-Request-ID": "t-2"},
                timeout=10,
            )
            assert (response.status_code, response.headers["retry-after"]) == (503, "60")
            assert response.json() == {
                "type": "/problems/model-files-unverified",
                "title": "Service Unavailable",
                "status": 503,
                "detail": f"run {forged.run_id}: {MODEL_FILE} does not match its recorded sha256 "
                f"(expected {forged.artifacts[MODEL_FILE]}, found {sha256(b'forged')}); "
                "refusing to load it",
                "request_id": "t-2",
            }
            assert trainer.get_alias(MODEL, "production") == 1
            assert not (replica / "cache" / forged.run_id / MODEL_FILE).exists()
        cached = replica / "cache" / version.run_id
        assert {p.name for p in cached.iterdir()} == {*RUN_FILES, RECORD_FILE}
        assert sha256((cached / MODEL_FILE).read_bytes()) == version.artifacts[MODEL_FILE]
        assert not (replica / "runs").exists()
    finally:
        trainer.engine.dispose()


def test_a_version_whose_model_runs_code_is_refused_to_anonymous_clients_and_never_built(
    database_url, tmp_path, trained_model
):
    """Issue 18: with every digest recorded for it, a hostile model file still only ever answers 503."""
    registry = seeded_registry(
        database_url, tmp_path / "store", trained_model, versions=2, artifacts=DATABASE
    )
    marker = tmp_path / "payload-ran"
    run_id = hostile.forge_version(registry, 2, hostile.system_file(trained_model.pipeline, marker))
    env = {"COE_MODEL_STORE": str(registry.store), "DATABASE_URL": database_url, "COE_ARTIFACT_STORE": "db"}
    try:
        with gunicorn(env, tmp_path / "server.log") as (base, _process):
            for _ in range(4):  # each worker refuses it
                response = httpx.post(
                    f"{base}/models/{MODEL}/versions/2/predictions",
                    json=BODY,
                    headers={"X-Request-ID": "t-1"},
                    timeout=10,
                )
                assert (response.status_code, response.headers["retry-after"]) == (503, "60")
                assert response.json() == {
                    "type": "/problems/model-files-unverified",
                    "title": "Service Unavailable",
                    "status": 503,
                    "detail": f"run {run_id}: {MODEL_FILE}: holds os.system, ConstructorFromReduceNode nodes, "
                    "which a model of this project never holds; refusing to load it (nothing in it was built)",
                    "request_id": "t-1",
                }
            assert (
                httpx.post(f"{base}/predictions", json=BODY, timeout=10).status_code == 200
            )  # version 1 serves
        assert not marker.exists()
    finally:
        registry.engine.dispose()
