"""Inputs the engines' tests share: the bundled data with ids, the API's answers on it, a bad-input file."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coe_template.model.data import bundled_dataset_path, project_text
from coe_template.registry import Registry
from config.settings import Settings
from tests.conftest import MODEL, seeded_registry

try:  # the tests that need them skip, saying why (a conftest cannot skip)
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq
except ImportError:
    pass

#: Why the engines' tests are skipped when their extras are missing.
NO_EXTRAS = "the engines' extras are not installed: pip install -e '.[ray,spark]'"

#: The API's limit of texts per POST /predictions (openapi/spec.yaml, PredictionRequest).
PER_REQUEST = 1000


@pytest.fixture(scope="session")
def bundled_rows() -> list[tuple[str, str]]:
    """The bundled data as (id, text) rows, the text as the API's batch input builds it."""
    with bundled_dataset_path().open(newline="", encoding="utf-8") as fh:
        return [
            (f"p-{n}", project_text(r["title"], r["description"])) for n, r in enumerate(csv.DictReader(fh))
        ]


@pytest.fixture(scope="session")
def bundled_parquet(tmp_path_factory: pytest.TempPathFactory, bundled_rows: list[tuple[str, str]]) -> Path:
    path = tmp_path_factory.mktemp("engines-input") / "projects.parquet"
    ids, texts = zip(*bundled_rows, strict=True)
    pq.write_table(pa.table({"id": list(ids), "text": list(texts)}), path)
    return path


def api_answers(client: Any, texts: list[str]) -> list[dict[str, Any]]:
    """``POST /predictions`` on ``texts`` through the real app, in requests the spec allows."""
    answers = []
    for start in range(0, len(texts), PER_REQUEST):
        body = {"texts": [{"text": t} for t in texts[start : start + PER_REQUEST]]}
        response = client.post("/predictions", json=body)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert (data["model"]["name"], data["model"]["version"]) == (MODEL, 1)
        answers += data["predictions"]
    return answers


def rows_by_id(output: Path, fmt: str = "parquet") -> dict[str, dict[str, Any]]:
    """An engine's output, read back with pyarrow: each row under its id."""
    rows = pads.dataset(output, format=fmt).to_table().to_pylist()
    by_id = {row["id"]: row for row in rows}
    assert len(by_id) == len(rows)
    return by_id


def registry_on(store: Path) -> Registry:
    return Registry.open(Settings(model_store=store).db_url, store)


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory, trained_model: Any) -> Iterator[Registry]:
    """A registry of its own (aliases move in it): versions 1 and 2, ``production`` on 1."""
    store = tmp_path_factory.mktemp("engines-registry")
    registry = seeded_registry(Settings(model_store=store).db_url, store, trained_model, versions=2)
    yield registry
    registry.engine.dispose()


#: The bad-input file: (id, text bytes) and the status each row must get.
BAD_ROWS: list[tuple[bytes, bytes, str]] = [
    (b"a", b"Semantic segmentation of satellite images with a U-Net", "ok"),
    (b"b", b"", "no text"),
    (b"c", b"   ", "no text"),
    (b"d", b"Caf\xe9 reviews sentiment with BERT", "not utf-8"),  # Latin-1, not UTF-8
    (b"e", "Caf\u00e9 reviews sentiment with BERT".encode(), "ok"),  # the same in UTF-8
    (b"f", b"Object detection\non drones", "ok"),  # a quoted line break
    (b"g", b"Transformers for text classification", "duplicate id"),
    (b"g", b"Graph neural networks for molecules", "duplicate id"),
    (b"", b"Feature store for real-time features", "no id"),
]


@pytest.fixture
def bad_csv(tmp_path: Path) -> Path:
    path = tmp_path / "bad.csv"
    lines = [b"id,text"] + [
        item_id + b',"' + text.replace(b'"', b'""') + b'"' for item_id, text, _ in BAD_ROWS
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def assert_bad_rows(output: Path) -> None:
    """Every bad row is there once, with its status; only the predicted ones have a tag."""
    rows = pads.dataset(output, format="parquet").to_table().to_pylist()
    assert len(rows) == len(BAD_ROWS)
    got = sorted((r["id"] or "", r["status"], r["tag"] is not None) for r in rows)
    want = sorted(
        (
            item_id.decode(),
            status,
            status in ("ok", "duplicate id", "no id"),
        )
        for item_id, _, status in BAD_ROWS
    )
    assert got == want


RunJob = Callable[..., dict[str, Any]]
