from __future__ import annotations

import pytest

from coe_template.registry.db import make_engine


@pytest.fixture
def engine(database_url):
    """The migrated database of the test (SQLite, and PostgreSQL with TEST_DATABASE_URL)."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
