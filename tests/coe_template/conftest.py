"""Fixtures the batch suites share."""

from __future__ import annotations

import pytest

from tests.conftest import seeded_registry


@pytest.fixture
def registry(database_url, tmp_path, trained_model):
    """Version 1 of the default model, ready, behind production."""
    registry = seeded_registry(database_url, tmp_path / "store", trained_model)
    yield registry
    registry.engine.dispose()
