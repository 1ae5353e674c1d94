"""Fixtures that build real objects: a model trained on the bundled data, a real store, the real app."""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import hypothesis
import pytest
from starlette.testclient import TestClient

from coe_template.args import load_args
from coe_template.artifacts import DIRECTORY
from coe_template.data import Dataset, bundled_dataset_path, load_dataset
from coe_template.registry import PRODUCTION, Registry
from coe_template.store import Artifacts
from coe_template.train import TrainedModel, train
from config.settings import Settings
from handlers.app import create_app
from tests.databases import postgres_schema

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


@pytest.fixture(scope="session")
def bundled_dataset() -> Dataset:
    return load_dataset(bundled_dataset_path())


#: SQLite always; PostgreSQL too when TEST_DATABASE_URL names one (.ci/run sets it).
DATABASES = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test, for each database the suite runs against."""
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
