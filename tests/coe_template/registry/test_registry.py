"""The model registry, against every database the suite runs on (SQLite, and PostgreSQL when set).

Each test gets an empty database from the ``database_url`` fixture and a model
store of its own; models are trained once per module on a small learnable CSV.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect

from coe_template.artifacts.runs import (
    MODEL_FILE,
    RECORD_FILE,
    RUN_ID,
    ArtifactError,
    load_artifacts,
    runs_dir,
)
from coe_template.errors import Busy, InvalidInput
from coe_template.model.args import parse_args
from coe_template.model.data import clean_text, load_dataset
from coe_template.model.model_file import dumps as dump_pipeline
from coe_template.model.train import train
from coe_template.registry import (
    PRODUCTION,
    AliasChange,
    AliasNotFound,
    Conflict,
    ModelNotFound,
    Registry,
    RegistryError,
    VersionNotFound,
)
from coe_template.registry.db import SchemaNotCurrent
from tests.coe_template.model.test_data import project_rows, write_rows

NAME = "project-tagger"
RUN_FILES = {MODEL_FILE, "args.json", "labels.json", "threshold.json", "performance.json"}
PROBES = ["Sentiment of text with a transformer", "Detection of objects in camera video"]


# --- shared helpers (the serving and training tests import these) ---------------------------------


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    return write_rows(tmp_path_factory.mktemp("registry-data") / "projects.csv", project_rows(per_tag=15))


@pytest.fixture(scope="module")
def small_dataset(small_csv):
    return load_dataset(small_csv)


@pytest.fixture(scope="module")
def small_model(small_dataset):
    """A real model, trained in well under a second on 60 rows."""
    return train(small_dataset, parse_args({}))


@pytest.fixture(scope="module")
def other_model(small_dataset):
    """A second model that predicts differently, to tell versions apart by their output."""
    return train(small_dataset, parse_args({"C": 0.01, "seed": 7}))


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def registry(database_url, store):
    registry = Registry.open(database_url, store, upgrade=True)
    yield registry
    registry.engine.dispose()


def run_path(registry: Registry, number: int, name: str = NAME) -> Path:
    return runs_dir(registry.store) / registry.get_version(name, number).run_id


def tamper(path: Path) -> None:
    """Flip one bit in the middle of a file."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


# --- opening --------------------------------------------------------------------------------------


def test_open_refuses_a_database_without_the_schema_and_upgrade_creates_it(empty_database_url, store):
    with pytest.raises(
        SchemaNotCurrent, match=r"has no registry schema yet: run `coe-template db upgrade` first"
    ):
        Registry.open(empty_database_url, store)
    registry = Registry.open(empty_database_url, store, upgrade=True)
    try:
        tables = set(inspect(registry.engine).get_table_names())
        assert {"models", "model_versions", "aliases", "alembic_version"} <= tables
        assert registry.list_models() == []
        assert store.is_dir()
    finally:
        registry.engine.dispose()
    Registry.open(empty_database_url, store).engine.dispose()  # now current: opened without a word


def test_opening_twice_keeps_what_is_there(database_url, store, small_model):
    first = Registry.open(database_url, store, upgrade=True)
    try:
        first.ensure_model(NAME, "tags projects")
        first.register(NAME, small_model)
    finally:
        first.engine.dispose()
    second = Registry.open(database_url, store, upgrade=True)  # upgrading a current schema is a no-op
    try:
        assert [m.name for m in second.list_models()] == [NAME]
        assert second.get_version(NAME, 1).status == "ready"
    finally:
        second.engine.dispose()


# --- models ---------------------------------------------------------------------------------------


def test_ensure_model_is_idempotent(registry):
    registry.ensure_model(NAME, "first description")
    registry.ensure_model(NAME, "second description")
    registry.ensure_model(NAME)
    [model] = registry.list_models()
    assert model.name == NAME
    assert model.description == "first description"
    assert model.latest_version is None
    assert model.version_count == 0
    assert model.aliases == {}


def test_ensure_model_leaves_existing_versions_alone(registry, small_model):
    registry.ensure_model(NAME)
    registry.register(NAME, small_model)
    registry.set_alias(NAME, PRODUCTION, 1)
    registry.ensure_model(NAME)
    model = registry.get_model(NAME)
    assert model.version_count == 1
    assert model.aliases == {PRODUCTION: 1}


@pytest.mark.parametrize(
    ("name", "description", "message"),
    [
        (
            "Bad Name",
            "",
            "'Bad Name' is not a model name: lower-case letters, digits and hyphens, starting with a "
            "letter or digit, at most 63 characters",
        ),
        (
            "a" * 64,
            "",
            f"{'a' * 64!r} is not a model name: lower-case letters, digits and hyphens, starting with a "
            "letter or digit, at most 63 characters",
        ),
        ("fine-name", {"x": 1}, "a model's description must be text of at most 2000 characters"),
    ],
)
def test_a_model_the_api_could_not_address_or_describe_is_refused(registry, name, description, message):
    with pytest.raises(InvalidInput) as refused:
        registry.ensure_model(name, description)
    assert str(refused.value) == message
    assert registry.list_models() == []


def test_models_are_listed_by_name_with_their_versions_and_aliases(registry, small_model):
    for name in ("zeta", "alpha", "mid"):
        registry.ensure_model(name)
    registry.register("mid", small_model)
    registry.register("mid", small_model)
    registry.set_alias("mid", "staging", 2)
    models = registry.list_models()
    assert [m.name for m in models] == ["alpha", "mid", "zeta"]
    mid = models[1]
    assert (mid.latest_version, mid.version_count, mid.aliases) == (2, 2, {"staging": 2})


UNKNOWN_MODEL_CALLS = {
    "get_model": lambda r: r.get_model("nope"),
    "list_versions": lambda r: r.list_versions("nope"),
    "get_version": lambda r: r.get_version("nope", 1),
    "create_version": lambda r: r.create_version("nope", parse_args({})),
    "list_aliases": lambda r: r.list_aliases("nope"),
    "get_alias": lambda r: r.get_alias("nope", PRODUCTION),
    "set_alias": lambda r: r.set_alias("nope", PRODUCTION, 1),
    "archive_version": lambda r: r.archive_version("nope", 1),
    "load": lambda r: r.load("nope", 1),
}


def test_an_unknown_model_is_model_not_found(registry):
    registry.ensure_model(NAME)
    for what, call in UNKNOWN_MODEL_CALLS.items():
        with pytest.raises(ModelNotFound) as info:
            call(registry)
        assert isinstance(info.value, LookupError), what
        assert isinstance(info.value, RegistryError), what
        assert str(info.value) == "model 'nope' not found", what
    assert [m.name for m in registry.list_models()] == [NAME]  # nothing was created on the way


# --- registering versions -------------------------------------------------------------------------


def test_register_numbers_versions_from_one(registry, small_model):
    registry.ensure_model(NAME)
    numbers = [registry.register(NAME, small_model).version for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert registry.get_model(NAME).latest_version == 3
    # Each version has a run of its own.
    run_ids = {registry.get_version(NAME, n).run_id for n in numbers}
    assert len(run_ids) == 3


def test_register_records_what_the_version_was_made_from(registry, small_model, small_dataset):
    registry.ensure_model(NAME)
    registry.register(NAME, small_model)
    version = registry.get_version(NAME, 1)
    assert version.model == NAME
    assert version.version == 1
    assert version.status == "ready"
    assert version.error is None
    assert version.aliases == ()
    assert version.args == small_model.args.to_dict()
    assert version.dataset == small_dataset.fingerprint
    assert version.dataset["rows"] == 60
    assert version.performance == small_model.performance
    assert version.created_at is not None and version.finished_at is not None
    assert version.finished_at >= version.created_at
    assert version.created_at.tzinfo is version.finished_at.tzinfo is UTC  # also from SQLite
    assert RUN_ID.fullmatch(version.run_id)


def test_register_records_a_sha256_per_artifact_file(registry, small_model):
    registry.ensure_model(NAME)
    registry.register(NAME, small_model)
    version = registry.get_version(NAME, 1)
    run = runs_dir(registry.store) / version.run_id
    assert set(version.artifacts) == RUN_FILES
    for file_name, digest in version.artifacts.items():
        assert digest == hashlib.sha256((run / file_name).read_bytes()).hexdigest()


def test_get_version_of_an_unknown_number_names_model_and_number(registry, small_model):
    registry.ensure_model(NAME)
    registry.register(NAME, small_model)
    with pytest.raises(VersionNotFound) as info:
        registry.get_version(NAME, 7)
    assert isinstance(info.value, LookupError)
    assert str(info.value) == f"model {NAME!r} has no version 7"


# --- the training life cycle ----------------------------------------------------------------------


def test_create_version_starts_in_training(registry):
    registry.ensure_model(NAME)
    args = parse_args({"C": 2.0})
    created = registry.create_version(NAME, args)
    assert created.version == 1
    assert created.status == "training"
    assert created.args == args.to_dict()
    assert created.run_id is None and created.artifacts is None and created.finished_at is None
    assert registry.get_version(NAME, 1).status == "training"
    assert registry.create_version(NAME, args).version == 2


def test_complete_version_makes_a_training_version_ready(registry, small_model):
    registry.ensure_model(NAME)
    registry.create_version(NAME, small_model.args)
    completed = registry.complete_version(NAME, 1, small_model)
    assert completed.status == "ready"
    version = registry.get_version(NAME, 1)
    assert version.status == "ready"
    assert version.performance == small_model.performance
    assert set(version.artifacts) == RUN_FILES


def test_fail_version_records_the_error(registry):
    registry.ensure_model(NAME)
    registry.create_version(NAME, parse_args({}))
    registry.fail_version(NAME, 1, "DatasetError: data file not found: /nowhere.csv")
    version = registry.get_version(NAME, 1)
    assert version.status == "failed"
    assert version.error == "DatasetError: data file not found: /nowhere.csv"
    assert version.finished_at is not None
    assert version.run_id is None


def test_a_late_failure_does_not_undo_a_ready_version(registry, small_model):
    registry.ensure_model(NAME)
    registry.register(NAME, small_model)
    registry.fail_version(NAME, 1, "too late")
    version = registry.get_version(NAME, 1)
    assert version.status == "ready"
    assert version.error is None


def test_complete_version_on_a_finished_version_is_a_conflict(registry, small_model):
    registry.ensure_model(NAME)
    registry.register(NAME, small_model)  # 1: ready
    registry.create_version(NAME, small_model.args)  # 2: failed
    registry.fail_version(NAME, 2, "boom")
    for number, status in ((1, "ready"), (2, "failed")):
        with pytest.raises(Conflict, match=f"is {status}, not training"):
            registry.complete_version(NAME, number, small_model)
        assert registry.get_version(NAME, number).status == status


def create_concurrently(registry: Registry, threads: int, per_thread: int) -> list[int]:
    """Version numbers handed out to ``threads`` threads started together, each creating some."""
    args = parse_args({})
    barrier = threading.Barrier(threads)
    numbers: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def create() -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                number = registry.create_version(NAME, args).version
                with lock:
                    numbers.append(number)
        except BaseException as exc:  # reported below, not lost in the thread
            with lock:
                errors.append(exc)

    workers = [threading.Thread(target=create) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    return numbers


def test_concurrent_create_version_gives_distinct_consecutive_numbers(registry):
    registry.ensure_model(NAME)
    numbers = create_concurrently(registry, threads=5, per_thread=1)
    assert sorted(numbers) == [1, 2, 3, 4, 5]
    page, _ = registry.list_versions(NAME)
    assert [v.version for v in page] == [1, 2, 3, 4, 5]
    assert all(v.status == "training" for v in page)


def test_many_concurrent_writers_all_get_a_version(registry):
    registry.ensure_model(NAME)
    numbers = create_concurrently(registry, threads=12, per_thread=2)
    assert sorted(numbers) == list(range(1, 25))


def test_training_beyond_the_limit_is_busy_and_creates_nothing(registry):
    """Concurrent creators, two models: exactly ``max_training`` get a version, under the numbering lock."""
    registry.ensure_model(NAME)
    registry.ensure_model("other-model")
    args = parse_args({})
    barrier = threading.Barrier(8)
    outcomes: list[object] = []
    lock = threading.Lock()

    def create(name: str) -> None:
        barrier.wait()
        try:
            outcome: object = registry.create_version(name, args, max_training=3).version
        except Busy as exc:
            outcome = exc
        with lock:
            outcomes.append(outcome)

    workers = [threading.Thread(target=create, args=(NAME if n % 2 else "other-model",)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    refused = [o for o in outcomes if isinstance(o, Busy)]
    assert len(refused) == 5 and len(outcomes) == 8
    assert str(refused[0]) == (
        "3 version(s) are queued or training already, the most this service runs at "
        "once: try again when one has finished"
    )
    created = [v for name in (NAME, "other-model") for v in registry.list_versions(name)[0]]
    assert len(created) == 3
    # A finished training frees its place.
    registry.fail_version(created[0].model, created[0].version, "stopped by the test")
    assert registry.create_version(NAME, args, max_training=3).status == "training"
    with pytest.raises(Busy):
        registry.create_version(NAME, args, max_training=3)


# --- listing versions -----------------------------------------------------------------------------


@pytest.fixture
def seven_versions(registry, small_model):
    """Versions 1-7: 2 and 5 failed, 3 and 6 ready, the rest still training."""
    registry.ensure_model(NAME)
    for number in range(1, 8):
        registry.create_version(NAME, small_model.args)
        if number in (2, 5):
            registry.fail_version(NAME, number, "boom")
        elif number in (3, 6):
            registry.complete_version(NAME, number, small_model)
    return registry


def walk(registry: Registry, limit: int, status: str | None = None) -> list[list[int]]:
    pages, after = [], 0
    while after is not None:
        page, after = registry.list_versions(NAME, status=status, after=after, limit=limit)
        pages.append([v.version for v in page])
        assert len(pages) <= 20, "the cursor does not advance"
    return pages


def test_pages_walk_every_version_exactly_once(seven_versions):
    for limit in (1, 2, 3, 6, 7, 8, 100):
        pages = walk(seven_versions, limit)
        assert [n for page in pages for n in page] == list(range(1, 8)), limit
        assert all(0 < len(page) <= limit for page in pages), limit
        assert len(pages) == -(-7 // limit), limit  # no empty page at the end


def test_pages_follow_the_cursor(seven_versions):
    first, cursor = seven_versions.list_versions(NAME, limit=3)
    assert [v.version for v in first] == [1, 2, 3]
    assert cursor == 3
    second, cursor = seven_versions.list_versions(NAME, after=cursor, limit=3)
    assert [v.version for v in second] == [4, 5, 6]
    last, cursor = seven_versions.list_versions(NAME, after=cursor, limit=3)
    assert [v.version for v in last] == [7]
    assert cursor is None


def test_list_versions_filters_by_status(seven_versions):
    expected = {"failed": [2, 5], "ready": [3, 6], "training": [1, 4, 7], "archived": []}
    for status, numbers in expected.items():
        page, cursor = seven_versions.list_versions(NAME, status=status)
        assert [v.version for v in page] == numbers
        assert all(v.status == status for v in page)
        assert cursor is None


def test_filtered_pages_walk_every_match_exactly_once(seven_versions):
    assert walk(seven_versions, 2, status="training") == [[1, 4], [7]]
    assert walk(seven_versions, 1, status="failed") == [[2], [5]]


def test_listed_versions_carry_their_aliases(seven_versions):
    seven_versions.set_alias(NAME, PRODUCTION, 3)
    seven_versions.set_alias(NAME, "staging", 3)
    seven_versions.set_alias(NAME, "canary", 6)
    page, _ = seven_versions.list_versions(NAME, status="ready")
    assert {v.version: sorted(v.aliases) for v in page} == {3: ["production", "staging"], 6: ["canary"]}


def test_a_model_without_versions_lists_none(registry):
    registry.ensure_model(NAME)
    assert registry.list_versions(NAME) == ([], None)


# --- aliases --------------------------------------------------------------------------------------


@pytest.fixture
def two_ready(registry, small_model, other_model):
    registry.ensure_model(NAME)
    registry.register(NAME, small_model)
    registry.register(NAME, other_model)
    return registry


def test_set_alias_points_at_a_version_and_is_idempotent(two_ready):
    assert two_ready.set_alias(NAME, PRODUCTION, 1) == AliasChange(PRODUCTION, 1)
    assert two_ready.set_alias(NAME, PRODUCTION, 1) == AliasChange(PRODUCTION, 1)
    assert two_ready.get_alias(NAME, PRODUCTION) == 1
    assert two_ready.list_aliases(NAME) == {PRODUCTION: 1}
    assert two_ready.get_version(NAME, 1).aliases == (PRODUCTION,)


def test_set_alias_moves_an_alias_between_versions(two_ready):
    two_ready.set_alias(NAME, PRODUCTION, 1)
    two_ready.set_alias(NAME, PRODUCTION, 2)
    assert two_ready.get_alias(NAME, PRODUCTION) == 2
    assert two_ready.get_version(NAME, 1).aliases == ()
    assert two_ready.get_version(NAME, 2).aliases == (PRODUCTION,)
    two_ready.set_alias(NAME, PRODUCTION, 1)
    assert two_ready.get_alias(NAME, PRODUCTION) == 1


def test_several_aliases_can_share_a_version(two_ready):
    two_ready.set_alias(NAME, PRODUCTION, 2)
    two_ready.set_alias(NAME, "staging", 2)
    assert two_ready.list_aliases(NAME) == {PRODUCTION: 2, "staging": 2}
    assert sorted(two_ready.get_version(NAME, 2).aliases) == [PRODUCTION, "staging"]


def test_set_alias_to_an_unknown_version_is_version_not_found(two_ready):
    two_ready.set_alias(NAME, PRODUCTION, 1)
    with pytest.raises(VersionNotFound, match="no version 9"):
        two_ready.set_alias(NAME, PRODUCTION, 9)
    assert two_ready.get_alias(NAME, PRODUCTION) == 1


def test_set_alias_refuses_a_version_that_is_not_ready(two_ready, small_model):
    two_ready.set_alias(NAME, PRODUCTION, 1)
    two_ready.archive_version(NAME, 2)  # 2: archived
    two_ready.create_version(NAME, small_model.args)  # 3: training
    two_ready.create_version(NAME, small_model.args)  # 4: failed
    two_ready.fail_version(NAME, 4, "boom")
    for number, state in ((2, "archived"), (3, "training"), (4, "failed")):
        with pytest.raises(Conflict, match=f"is {state}; only ready versions can be aliased"):
            two_ready.set_alias(NAME, PRODUCTION, number)
        with pytest.raises(Conflict):
            two_ready.set_alias(NAME, "staging", number)
    assert two_ready.list_aliases(NAME) == {PRODUCTION: 1}


def test_set_alias_refuses_a_tampered_version_and_leaves_the_alias(two_ready):
    two_ready.set_alias(NAME, PRODUCTION, 1)
    tamper(run_path(two_ready, 2) / MODEL_FILE)
    with pytest.raises(ArtifactError, match=MODEL_FILE):
        two_ready.set_alias(NAME, PRODUCTION, 2)
    assert two_ready.get_alias(NAME, PRODUCTION) == 1
    assert two_ready.get_version(NAME, 2).aliases == ()


def test_set_alias_refuses_a_version_whose_run_is_gone(two_ready):
    for path in run_path(two_ready, 2).iterdir():
        path.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        two_ready.set_alias(NAME, "staging", 2)
    assert two_ready.list_aliases(NAME) == {}


def test_production_cannot_be_deleted(two_ready):
    two_ready.set_alias(NAME, PRODUCTION, 1)
    with pytest.raises(Conflict, match="cannot be deleted"):
        two_ready.delete_alias(NAME, PRODUCTION)
    assert two_ready.get_alias(NAME, PRODUCTION) == 1


def test_delete_alias_returns_the_version_it_pointed_to(two_ready):
    two_ready.set_alias(NAME, PRODUCTION, 1)
    two_ready.set_alias(NAME, "staging", 2)
    assert two_ready.delete_alias(NAME, "staging") == AliasChange("staging", 2)
    assert two_ready.list_aliases(NAME) == {PRODUCTION: 1}
    with pytest.raises(AliasNotFound):
        two_ready.get_alias(NAME, "staging")
    assert two_ready.get_version(NAME, 2).status == "ready"  # the version itself stays


def test_an_unknown_alias_is_alias_not_found(two_ready):
    with pytest.raises(AliasNotFound) as info:
        two_ready.delete_alias(NAME, "staging")
    assert isinstance(info.value, LookupError)
    assert str(info.value) == f"model {NAME!r} has no alias 'staging'"
    with pytest.raises(AliasNotFound):
        two_ready.get_alias(NAME, PRODUCTION)


# --- archiving ------------------------------------------------------------------------------------


def test_archive_is_refused_while_an_alias_points_at_the_version(two_ready):
    two_ready.set_alias(NAME, PRODUCTION, 1)
    with pytest.raises(Conflict) as info:
        two_ready.archive_version(NAME, 1)
    assert str(info.value) == (
        f"version 1 of {NAME!r} is behind alias(es) {PRODUCTION}: point them elsewhere before archiving it"
    )
    assert two_ready.get_version(NAME, 1).status == "ready"


def test_archive_names_every_alias_in_the_way(two_ready):
    two_ready.set_alias(NAME, "canary", 2)
    two_ready.set_alias(NAME, "staging", 2)
    with pytest.raises(Conflict) as info:
        two_ready.archive_version(NAME, 2)
    assert str(info.value) == (
        f"version 2 of {NAME!r} is behind alias(es) canary, staging: point them elsewhere before archiving it"
    )


def test_archive_works_once_no_alias_points_at_the_version(two_ready):
    two_ready.set_alias(NAME, PRODUCTION, 1)
    two_ready.set_alias(NAME, PRODUCTION, 2)
    archived = two_ready.archive_version(NAME, 1)
    assert archived.status == "archived"
    assert two_ready.get_version(NAME, 1).status == "archived"
    page, _ = two_ready.list_versions(NAME, status="archived")
    assert [v.version for v in page] == [1]


def test_a_training_version_cannot_be_archived(registry):
    registry.ensure_model(NAME)
    registry.create_version(NAME, parse_args({}))
    with pytest.raises(Conflict, match="still training"):
        registry.archive_version(NAME, 1)
    assert registry.get_version(NAME, 1).status == "training"


# --- loading --------------------------------------------------------------------------------------


def test_load_gives_back_the_registered_model(two_ready, small_model, other_model):
    for number, model in ((1, small_model), (2, other_model)):
        artifacts = two_ready.load(NAME, number)
        assert artifacts.run_id == two_ready.get_version(NAME, number).run_id
        cleaned = [clean_text(t) for t in PROBES]
        np.testing.assert_array_equal(
            artifacts.pipeline.predict_proba(cleaned), model.pipeline.predict_proba(cleaned)
        )
        assert artifacts.threshold == model.threshold
        assert artifacts.labels == model.labels


def test_load_refuses_a_tampered_artifact(two_ready):
    tamper(run_path(two_ready, 1) / MODEL_FILE)
    with pytest.raises(ArtifactError, match=MODEL_FILE):
        two_ready.load(NAME, 1)
    two_ready.load(NAME, 2)  # the other version is untouched


def test_the_database_digests_outrank_a_forged_run_record(two_ready):
    """Someone who can replace model.skops can also edit run.json beside it; the DB must win."""
    run = run_path(two_ready, 1)
    forged = two_ready.load(NAME, 1).pipeline  # the same model with other numbers: a file that loads
    forged[-1].coef_[0, 0] += 1.0
    (run / MODEL_FILE).write_bytes(dump_pipeline(forged))
    record = json.loads((run / RECORD_FILE).read_text(encoding="utf-8"))
    record["files"][MODEL_FILE] = hashlib.sha256((run / MODEL_FILE).read_bytes()).hexdigest()
    (run / RECORD_FILE).write_text(json.dumps(record), encoding="utf-8")
    load_artifacts(run.name, two_ready.artifacts)  # the forged record now vouches for the file...
    with pytest.raises(ArtifactError, match=MODEL_FILE):
        two_ready.load(NAME, 1)  # ...but the registry does not take its word for it
    with pytest.raises(ArtifactError):
        two_ready.set_alias(NAME, PRODUCTION, 1)


def test_a_version_without_a_model_cannot_be_loaded(registry):
    registry.ensure_model(NAME)
    registry.create_version(NAME, parse_args({}))  # 1: training
    registry.create_version(NAME, parse_args({}))  # 2: failed
    registry.fail_version(NAME, 2, "boom")
    for number, state in ((1, "training"), (2, "failed")):
        with pytest.raises(Conflict, match=f"is {state}: it has no model to load"):
            registry.load(NAME, number)


def test_load_of_an_unknown_version_is_version_not_found(two_ready):
    with pytest.raises(VersionNotFound, match="no version 3"):
        two_ready.load(NAME, 3)


def test_performance_exists_only_once_a_version_is_ready(registry, small_model):
    registry.ensure_model(NAME)
    registry.create_version(NAME, small_model.args)
    with pytest.raises(Conflict, match="version 1 of 'project-tagger' is training: it has no performance"):
        registry.performance(NAME, 1)
    registry.complete_version(NAME, 1, small_model)
    assert registry.performance(NAME, 1) == small_model.performance
