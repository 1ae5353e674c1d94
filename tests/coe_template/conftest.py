"""Fixtures the batch suites share."""

from __future__ import annotations

import pytest

from tests.conftest import seeded_copy


@pytest.fixture
def registry(database_url, tmp_path, trained_model, migrated_databases):
    """Version 1 of the default model, ready, behind production (seeded once per session, copied)."""
    registry = seeded_copy(migrated_databases, database_url, tmp_path / "store", trained_model)
    yield registry
    registry.engine.dispose()
