"""Engines and migrations: SQLite by default, PostgreSQL when the URL says so."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.orm import Session

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Execution option marking transactions that only read (SQLite: a plain, shared BEGIN).
READ_ONLY = "coe_read_only"


def reader(engine: Engine) -> Engine:
    """The same engine and pool, for transactions that never write."""
    return engine.execution_options(**{READ_ONLY: True})


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:
        # Let SQLAlchemy emit BEGIN itself (below), so it can be IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # In WAL mode NORMAL survives any process crash (kill -9 included); only a power
        # cut can lose the last commits. FULL would fsync every commit of every chunk.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        # Read-then-write transactions must hold the write lock from the start,
        # or two writers can both read and one fails with "database is locked".
        # Pure reads need no lock at all under WAL: they never wait for writers.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def bulk_insert(session: Session | Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert many rows, in column order, inside the session's (or connection's) transaction, fast.

    The ORM's per-row parameter handling costs more than the model's prediction;
    PostgreSQL gets COPY, SQLite one ``executemany``. JSON values must come serialised.
    """
    if not rows:
        return
    columns = [c.name for c in table.columns]
    connection = session.connection() if isinstance(session, Session) else session
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        with cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        connection.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", list(rows))
