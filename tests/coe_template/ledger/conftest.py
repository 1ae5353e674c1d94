from __future__ import annotations

import pytest

from coe_template.registry.db import make_engine


@pytest.fixture
def engine(database_url):
    """The test database's engine (its schema at head), for writing ledger rows and labels straight."""
    made = make_engine(database_url)
    yield made
    made.dispose()
