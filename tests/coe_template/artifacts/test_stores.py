"""Artifacts in the registry's database: any host loads any version, from its cache once fetched, verified always."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sqlalchemy import text

from coe_template.artifacts.runs import (
    MODEL_FILE,
    PICKLED_MODEL_FILE,
    RECORD_FILE,
    RUN_FILES,
    ArtifactError,
    PickledModel,
    RunNotFound,
    sha256,
)
from coe_template.artifacts.stores import DATABASE, DIRECTORY, DirectoryStore
from coe_template.model.data import clean_text
from coe_template.model.model_file import UntrustedModelFile
from coe_template.registry import PRODUCTION, Registry
from coe_template.registry.blobs import DatabaseStore
from tests import hostile
from tests.conftest import MODEL, seeded_registry

TEXTS = [clean_text(t) for t in ["Object detection on drone video", "A transformer for legal text"]]


@pytest.fixture
def host_a(database_url, tmp_path, trained_model):
    """The host that trained version 1 (production) with ``COE_ARTIFACT_STORE=db``."""
    registry = seeded_registry(database_url, tmp_path / "host-a", trained_model, artifacts=DATABASE)
    yield registry
    registry.engine.dispose()


@pytest.fixture
def open_host(database_url, tmp_path):
    """Open the registry as another host would: the same database, a model store of its own (empty at first)."""
    opened: list[Registry] = []

    def open_(name: str) -> Registry:
        registry = Registry.open(database_url, tmp_path / name, artifacts=DATABASE)
        opened.append(registry)
        return registry

    yield open_
    for registry in opened:
        registry.engine.dispose()


def execute(registry: Registry, statement: str, **params) -> None:
    with registry.engine.begin() as connection:
        connection.execute(text(statement), params)


def test_the_database_store_writes_no_run_directory_and_keeps_every_file_as_a_blob(host_a):
    assert isinstance(host_a.artifacts, DatabaseStore)
    run_id = host_a.get_version(MODEL, 1).run_id
    assert not (host_a.store / "runs").exists()
    with host_a.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT name, sha256, data FROM artifact_blobs WHERE run_id = :r"), {"r": run_id}
        ).all()
    assert {name for name, _, _ in rows} == set(RUN_FILES) | {RECORD_FILE}
    assert all(digest == sha256(bytes(data)) for _, digest, data in rows)
    assert {name: digest for name, digest, _ in rows if name != RECORD_FILE} == host_a.get_version(
        MODEL, 1
    ).artifacts


def test_another_host_with_an_empty_store_loads_the_version_then_serves_it_from_its_cache(
    host_a, open_host, trained_model
):
    version = host_a.get_version(MODEL, 1)
    run_id = version.run_id
    host_b = open_host("host-b")
    assert not any(host_b.store.iterdir())  # nothing local: a fresh replica

    loaded = host_b.load(MODEL, 1)
    np.testing.assert_array_equal(
        loaded.pipeline.predict_proba(TEXTS), trained_model.pipeline.predict_proba(TEXTS)
    )
    cached = host_b.store / "cache" / run_id
    assert {p.name for p in cached.iterdir()} == set(RUN_FILES) | {RECORD_FILE}
    assert {name: sha256((cached / name).read_bytes()) for name in RUN_FILES} == version.artifacts

    # The blobs gone from the database: host B, restarted, still loads the version from its cache...
    execute(host_a, "DELETE FROM artifact_blobs")
    restarted = open_host("host-b").load(MODEL, 1)
    np.testing.assert_array_equal(
        restarted.pipeline.predict_proba(TEXTS), trained_model.pipeline.predict_proba(TEXTS)
    )
    # ...which is where they came from: a host without the cache finds nothing.
    with pytest.raises(RunNotFound) as info:
        open_host("host-c").load(MODEL, 1)
    assert str(info.value) == f"run {run_id}: its files are missing from the artifact store"


def test_a_tampered_cached_file_is_fetched_again_from_the_database(host_a, open_host, trained_model):
    version = host_a.get_version(MODEL, 1)
    open_host("host-b").load(MODEL, 1)
    cached = open_host("host-b").store / "cache" / version.run_id / MODEL_FILE
    cached.write_bytes(pickle.dumps("not the model"))

    loaded = open_host("host-b").load(MODEL, 1)
    np.testing.assert_array_equal(
        loaded.pipeline.predict_proba(TEXTS), trained_model.pipeline.predict_proba(TEXTS)
    )
    assert sha256(cached.read_bytes()) == version.artifacts[MODEL_FILE]  # the cache is whole again


def test_a_tampered_blob_is_refused_by_name_never_unpickled_never_cached(host_a, open_host, tmp_path):
    version = host_a.get_version(MODEL, 1)
    run_id, expected = version.run_id, version.artifacts[MODEL_FILE]
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    forged = pickle.dumps(Payload())
    execute(
        host_a,
        "UPDATE artifact_blobs SET data = :data WHERE run_id = :run AND name = :name",
        data=forged,
        run=run_id,
        name=MODEL_FILE,
    )
    message = (
        f"run {run_id}: {MODEL_FILE} does not match its recorded sha256 "
        f"(expected {expected}, found {sha256(forged)}); refusing to load it"
    )

    host_b = open_host("host-b")
    with pytest.raises(ArtifactError) as info:
        host_b.load(MODEL, 1)
    assert str(info.value) == message
    with pytest.raises(ArtifactError) as info:  # promoting it is refused the same way
        host_b.set_alias(MODEL, "staging", 1)
    assert str(info.value) == message
    assert not marker.exists()
    assert not (host_b.store / "cache" / run_id / MODEL_FILE).exists()
    assert host_b.list_aliases(MODEL) == {PRODUCTION: 1}


def test_the_directory_store_is_the_default_and_keeps_runs_under_the_store(
    database_url, tmp_path, trained_model
):
    registry = seeded_registry(database_url, tmp_path / "store", trained_model)
    try:
        assert isinstance(registry.artifacts, DirectoryStore)
        run_id = registry.get_version(MODEL, 1).run_id
        assert {p.name for p in (tmp_path / "store" / "runs" / run_id).iterdir()} == set(RUN_FILES) | {
            RECORD_FILE
        }
        assert not (tmp_path / "store" / "cache").exists()
        with registry.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM artifact_blobs")).scalar() == 0
    finally:
        registry.engine.dispose()


@pytest.mark.parametrize("kind", [DATABASE, "directory"])
def test_a_trained_version_the_database_refuses_at_commit_leaves_no_run(
    database_url, tmp_path, trained_model, kind
):
    """A run exists exactly when a version points at it: blobs commit with the version (database), a
    run directory is deleted when the version's transaction fails (directory)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a commit-time refusal needs a deferred trigger (PostgreSQL)")
    registry = seeded_registry(database_url, tmp_path / "store", trained_model, artifacts=kind)
    try:
        execute(
            registry,
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN IF NEW.status = 'ready' THEN RAISE EXCEPTION 'refused at commit'; END IF; "
            "RETURN NEW; END $$",
        )
        execute(
            registry,
            "CREATE CONSTRAINT TRIGGER refuse AFTER UPDATE ON model_versions "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()",
        )
        with pytest.raises(Exception, match="refused at commit"):
            registry.register(MODEL, trained_model)
        failed = registry.get_version(MODEL, 2)  # not left training: no runner would ever time it out
        assert (failed.status, failed.error) == (
            "failed",
            "recording the trained model failed unexpectedly; the cause is in the command's output",
        )
        run_id = registry.get_version(MODEL, 1).run_id
        with registry.engine.connect() as connection:
            assert connection.execute(text("SELECT DISTINCT run_id FROM artifact_blobs")).scalars().all() == (
                [run_id] if kind == DATABASE else []
            )
        assert [p.name for p in (registry.store / "runs").glob("*")] == ([] if kind == DATABASE else [run_id])
    finally:
        registry.engine.dispose()


# --- forged model files, every digest recorded for them (issue 18) --------------------------------


@pytest.fixture(params=[DIRECTORY, DATABASE])
def forged_host(request, database_url, tmp_path, trained_model):
    """A registry (either artifact store) with ready versions 1 (production) and 2."""
    registry = seeded_registry(
        database_url, tmp_path / "host", trained_model, versions=2, artifacts=request.param
    )
    yield registry
    registry.engine.dispose()


def test_a_model_file_that_runs_code_is_refused_from_either_store_and_never_built(
    forged_host, trained_model, tmp_path
):
    marker = tmp_path / "payload-ran"
    run_id = hostile.forge_version(forged_host, 2, hostile.system_file(trained_model.pipeline, marker))
    message = (
        f"run {run_id}: {MODEL_FILE}: holds os.system, ConstructorFromReduceNode nodes, which a model of this "
        "project never holds; refusing to load it (nothing in it was built)"
    )
    with pytest.raises(UntrustedModelFile) as info:
        forged_host.load(MODEL, 2)
    assert str(info.value) == message
    with pytest.raises(UntrustedModelFile) as info:  # promoting it is refused the same way
        forged_host.set_alias(MODEL, PRODUCTION, 2)
    assert str(info.value) == message
    assert forged_host.list_aliases(MODEL) == {PRODUCTION: 1}
    assert not marker.exists()


def test_a_version_stored_as_a_pickle_is_refused_unread_saying_how_to_train_it_again(forged_host, tmp_path):
    marker = tmp_path / "payload-ran"
    hostile.forge_version(forged_host, 2, hostile.pickle_file(marker), name=PICKLED_MODEL_FILE)
    message = (
        f"version 2 of {MODEL!r} was stored as a pickle ({PICKLED_MODEL_FILE}), which this release no longer "
        "loads (a pickle can run code when read): train it again with `coe-template train` or "
        f"POST /models/{MODEL}/versions, and promote the new version"
    )
    for refusal in (
        lambda: forged_host.load(MODEL, 2),
        lambda: forged_host.set_alias(MODEL, "staging", 2),
        lambda: forged_host.export_version(MODEL, 2),
    ):
        with pytest.raises(PickledModel) as info:
            refusal()
        assert str(info.value) == message
    assert forged_host.load(MODEL, 1).run_id == forged_host.get_version(MODEL, 1).run_id  # the others load
    assert not marker.exists()
