"""The database's failures become the package's errors in one place (``registry/db.py``); bugs stay bugs."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from coe_template.errors import DatabaseUnavailable
from coe_template.registry.db import DatabaseLimits, make_engine
from tests.servers import connections_to


@pytest.fixture
def sqlite(tmp_path):
    engine = make_engine(
        f"sqlite:///{tmp_path / 'db.sqlite'}", DatabaseLimits(timeout=0.3, pool_size=2, pool_wait=0.2)
    )
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE things (name TEXT PRIMARY KEY)"))
    yield engine
    engine.dispose()


def test_a_constraint_violation_passes_through_untouched(sqlite):
    """Idempotent creation relies on seeing IntegrityError itself."""
    with sqlite.begin() as connection:
        connection.execute(text("INSERT INTO things VALUES ('a')"))
    with pytest.raises(IntegrityError), sqlite.begin() as connection:
        connection.execute(text("INSERT INTO things VALUES ('a')"))


def test_bad_sql_is_still_a_bug(sqlite):
    with pytest.raises(OperationalError, match="no such table"), sqlite.begin() as connection:
        connection.execute(text("SELECT * FROM nowhere"))


def test_a_writer_waits_for_the_lock_only_as_long_as_the_timeout(sqlite):
    holding, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        with sqlite.begin() as connection:
            connection.execute(text("INSERT INTO things VALUES ('held')"))
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    try:
        holding.wait(10)
        started = time.monotonic()
        locked = "^the database is locked by another writer: try again later$"
        with pytest.raises(DatabaseUnavailable, match=locked), sqlite.begin() as connection:
            connection.execute(text("INSERT INTO things VALUES ('waiting')"))
        assert time.monotonic() - started < 3
    finally:
        release.set()
        holder.join()


def test_no_free_connection_within_the_wait_is_unavailable(sqlite):
    """The pool is the bulkhead: its size is all a hung database can hold."""
    with sqlite.connect(), sqlite.connect():
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match="no database connection became free within 0.2 s"):
            sqlite.connect()
        assert time.monotonic() - started < 3
    with sqlite.connect() as connection:  # and given back, they serve again
        assert connection.execute(text("SELECT 1")).scalar() == 1


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="needs TEST_DATABASE_URL (PostgreSQL)")
def test_a_slow_postgres_statement_is_cut_at_the_timeout():
    engine = make_engine(os.environ["TEST_DATABASE_URL"], DatabaseLimits(timeout=1))
    try:
        started = time.monotonic()
        late = "^the database did not answer in time: try again later$"
        with pytest.raises(DatabaseUnavailable, match=late), engine.connect() as connection:
            connection.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 4
        with engine.connect() as connection:  # the connection pool is still good
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_a_connection_attempt_that_times_out_leaves_no_socket_open():
    """A server that accepts and never answers (frozen): each attempt ends at the timeout, its socket closed
    at once, not when the garbage collector gets to it (a frozen server used to fill a worker with them)."""
    with socket.socket() as frozen:
        frozen.bind(("127.0.0.1", 0))
        frozen.listen(16)
        port = frozen.getsockname()[1]
        engine = make_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/test", DatabaseLimits(timeout=1)
        )
        try:
            for _ in range(3):
                with pytest.raises(
                    DatabaseUnavailable, match="^the database did not answer in time: try again later$"
                ):
                    engine.connect()
                assert connections_to(port, os.getpid()) == 0
        finally:
            engine.dispose()
