"""Fixtures that build real objects: a model trained on the bundled data, a real store, the real app."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from coe_template.args import load_args
from coe_template.data import Dataset, bundled_dataset_path, load_dataset
from coe_template.store import Artifacts, latest_run_id, load_artifacts, save_run
from coe_template.train import train
from config.settings import Settings
from handlers.app import create_app

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARGS = PROJECT_ROOT / "config" / "args.json"
#: The real public dataset beside the project: for measuring only, never committed.
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "labeled_projects.csv"


@pytest.fixture(scope="session")
def bundled_dataset() -> Dataset:
    return load_dataset(bundled_dataset_path())


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory, bundled_dataset: Dataset) -> Path:
    """A model store holding one run trained on the bundled data with the default args."""
    store = tmp_path_factory.mktemp("model-store")
    save_run(train(bundled_dataset, load_args(DEFAULT_ARGS)), store)
    return store


@pytest.fixture(scope="session")
def artifacts(model_store: Path) -> Artifacts:
    return load_artifacts(latest_run_id(model_store), model_store)


@pytest.fixture(scope="session")
def settings(model_store: Path) -> Settings:
    return Settings(model_store=model_store, validate_responses=True)


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

    def write(rows: list[dict[str, str]], header: tuple[str, ...] = ("title", "description", "tag"),
              name: str = "data.csv") -> Path:
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        return path

    return write
