"""The disk a registry uses, as /metrics reports it: its database and this host's model store."""

from __future__ import annotations

import os
from pathlib import Path

from coe_template.artifacts.runs import runs_dir
from coe_template.batch.jobs import BatchJobs
from coe_template.registry import Registry
from tests.conftest import MODEL, seeded_registry


def walked(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_the_model_stores_directories_are_measured_file_by_file(database_url, tmp_path, trained_model):
    registry = seeded_registry(database_url, tmp_path / "store", trained_model)
    try:
        first = registry.store_bytes()
        assert first == {"runs": walked(runs_dir(registry.store)), "cache": 0}
        assert first["runs"] > 0
        registry.register(MODEL, trained_model)
        second = registry.store_bytes()
        assert second == {"runs": walked(runs_dir(registry.store)), "cache": 0}
        assert second["runs"] > first["runs"]
    finally:
        registry.engine.dispose()


def test_the_database_is_measured_and_grows_with_what_it_holds(database_url, tmp_path, trained_model):
    registry = seeded_registry(database_url, tmp_path / "store", trained_model)
    try:
        before = registry.database_bytes()
        if registry.engine.dialect.name == "sqlite":
            path = registry.engine.url.database
            wal = Path(path + "-wal")
            assert before == os.path.getsize(path) + (wal.stat().st_size if wal.exists() else 0)
        assert before is not None and before > 0
        # A batch job of 4 MB of text nobody can compress away.
        items = [(f"item-{n}", os.urandom(5000).hex()) for n in range(400)]
        BatchJobs(registry).create(MODEL, items)
        assert registry.database_bytes() >= before + 4_000_000
    finally:
        registry.engine.dispose()


def test_an_in_memory_database_has_no_size(tmp_path):
    registry = Registry.open("sqlite://", tmp_path / "store", upgrade=True)
    try:
        assert registry.database_bytes() is None
    finally:
        registry.engine.dispose()
