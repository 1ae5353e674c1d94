"""Fixtures that build real objects: a model trained on the bundled data, a real store, the real app."""

from __future__ import annotations

import copy
import csv
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import yaml
from starlette.testclient import TestClient

from coe_template.artifacts.runs import Artifacts
from coe_template.artifacts.stores import DIRECTORY
from coe_template.model.args import load_args
from coe_template.model.data import Dataset, bundled_dataset_path, load_dataset
from coe_template.model.train import TrainedModel, train
from coe_template.registry import PRODUCTION, Registry
from config.settings import Settings
from handlers.app import create_app
from tests.databases import MigratedDatabases, postgres_schema

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARGS = Settings.training_args
#: The real public dataset beside the project: for measuring only, never committed.
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "labeled_projects.csv"
MODEL = "project-tagger"
ADMIN_KEY = "test-admin-key-0123456789"
READ_KEY = "test-read-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


#: `make mutate` runs every selected test once per mutant: there each property test tries a fifth of its
#: examples, the same ones every time (HYPOTHESIS_PROFILE=mutation), and a mutant that survives is run
#: again with all of them. Otherwise hypothesis keeps its own choice (its "ci" profile when CI is set).
hypothesis.settings.register_profile("mutation", max_examples=20, derandomize=True, database=None)
if "HYPOTHESIS_PROFILE" in os.environ:
    hypothesis.settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])


def examples(count: int) -> int:
    """A property test's number of examples: ``count``, scaled as the loaded profile scales hypothesis's own."""
    default = hypothesis.settings.get_profile("default").max_examples
    return max(1, count * hypothesis.settings.default.max_examples // default)


def _parse_each_document_once() -> None:
    """``yaml.safe_load`` of a long string parses it once per test process, then hands out deep copies.

    Every ``create_app`` parses the spec twice (Connexion, and the access log's routes): with
    PyYAML's Python parser that is most of building an app, and the suite builds hundreds. The
    result is the parser's own, so nothing a test sees changes; servers started as processes
    (gunicorn) parse as in production.
    """
    parse = yaml.safe_load
    parsed: dict[str, Any] = {}

    def safe_load(stream: Any) -> Any:
        if not isinstance(stream, str) or len(stream) < 10_000:
            return parse(stream)
        if stream not in parsed:
            parsed[stream] = parse(stream)
        return copy.deepcopy(parsed[stream])

    yaml.safe_load = safe_load


_parse_each_document_once()


@pytest.fixture(scope="session")
def bundled_dataset() -> Dataset:
    return load_dataset(bundled_dataset_path())


#: SQLite always; PostgreSQL too when TEST_DATABASE_URL names one (.ci/run sets it).
DATABASES = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


@pytest.fixture(scope="session")
def migrated_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedDatabases]:
    """Where fresh databases at the schema's head come from (one migration per session and kind)."""
    databases = MigratedDatabases(tmp_path_factory.mktemp("templates"), os.environ.get("TEST_DATABASE_URL"))
    yield databases
    databases.close()


@pytest.fixture(params=DATABASES)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_databases: MigratedDatabases
) -> Iterator[str]:
    """A fresh database per test, its schema already at head, for each database the suite runs against.

    A copy of one migrated once per session: ``Registry.open(..., upgrade=True)`` on it only checks.
    """
    with migrated_databases.fresh(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test (no schema): for the tests of migrations and of upgrading."""
    if request.param == "postgresql":
        with postgres_schema(os.environ["TEST_DATABASE_URL"]) as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'registry.db'}"


def seeded_registry(
    database_url: str, store: Path, trained: TrainedModel, versions: int = 1, artifacts: str = DIRECTORY
) -> Registry:
    """A registry whose model has ``versions`` ready versions, ``production`` on version 1."""
    registry = Registry.open(database_url, store, upgrade=True, artifacts=artifacts)
    registry.ensure_model(MODEL, "Tags projects.")
    for _ in range(versions):
        registry.register(MODEL, trained)
    registry.set_alias(MODEL, PRODUCTION, 1)
    return registry


def seeded_copy(
    migrated_databases: MigratedDatabases,
    database_url: str,
    store: Path,
    trained: TrainedModel,
    versions: int = 1,
    artifacts: str = DIRECTORY,
) -> Registry:
    """What :func:`seeded_registry` makes, made once per session and copied: ``database_url`` must be
    fresh (the ``database_url`` fixture, or :meth:`MigratedDatabases.fresh`), ``store`` new."""

    def seed(url: str, template_store: Path) -> None:
        seeded_registry(url, template_store, trained, versions, artifacts).engine.dispose()

    migrated_databases.seed(database_url, store, (id(trained), versions, artifacts), seed)
    return Registry.open(database_url, store, upgrade=True, artifacts=artifacts)


@functools.cache
def _default_model() -> TrainedModel:
    # Once per process, not per session: `make mutate` runs each mutant in a fork of one process.
    return train(load_dataset(bundled_dataset_path()), load_args(DEFAULT_ARGS))


@pytest.fixture(scope="session")
def trained_model() -> TrainedModel:
    """The default model, trained once on the bundled data."""
    return _default_model()


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory, trained_model: TrainedModel) -> Path:
    """A model store (SQLite registry inside) whose production version 1 is the default model."""
    store = tmp_path_factory.mktemp("model-store")
    seeded_registry(Settings(model_store=store).db_url, store, trained_model).engine.dispose()
    return store


@pytest.fixture(scope="session")
def artifacts(model_store: Path) -> Artifacts:
    registry = Registry.open(Settings(model_store=model_store).db_url, model_store)
    try:
        return registry.load(MODEL, 1)
    finally:
        registry.engine.dispose()


@pytest.fixture(scope="session")
def settings(model_store: Path) -> Settings:
    return Settings(
        model_store=model_store,
        validate_responses=True,
        admin_keys=frozenset({ADMIN_KEY}),
        read_keys=frozenset({READ_KEY}),
    )


@pytest.fixture(scope="session")
def app(settings: Settings):
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with app.test_client() as test_client:
        yield test_client


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write rows (dicts) to a CSV under tmp_path, with the given header."""

    def write(
        rows: list[dict[str, str]],
        header: tuple[str, ...] = ("title", "description", "tag"),
        name: str = "data.csv",
    ) -> Path:
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        return path

    return write
