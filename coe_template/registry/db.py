"""Engines and migrations: SQLite by default, PostgreSQL when the URL says so.

Every database operation is bounded in time, and every way the database can fail
becomes one of the package's own errors here, in one place:

- PostgreSQL: libpq's ``connect_timeout``, a server-side ``statement_timeout``,
  and a client-side deadline on every round trip (``postgres.DeadlineConnection``),
  since a frozen server enforces nothing. SQLite: the busy timeout.
- The pool is the bulkhead: at most ``pool_size`` connections per process (no
  overflow), and a thread waits at most ``pool_wait`` seconds for one, so a hung
  database can hold only that many of a worker's request threads; the rest keep
  answering from memory (predictions). ``pool_pre_ping`` drops dead connections,
  so the service recovers when the database comes back, with no restart.
- The driver's failures (refused, closed, timed out, read-only, locked) become
  :class:`DatabaseUnavailable`; a full disk becomes :class:`StorageFull`.
  Everything else, IntegrityError first of all, passes through untouched.
"""

from __future__ import annotations

import errno
import sqlite3
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from coe_template.errors import CoeError, DatabaseUnavailable, StorageFull

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Execution option marking transactions that only read (SQLite: a plain, shared BEGIN).
READ_ONLY = "coe_read_only"

#: SQLite's primary result codes that mean "the database cannot be used right now", not "your SQL is wrong".
_SQLITE_UNAVAILABLE = {
    sqlite3.SQLITE_BUSY: "the database is locked by another writer",
    sqlite3.SQLITE_LOCKED: "the database is locked by another writer",
    sqlite3.SQLITE_READONLY: "the database is read-only, nothing can be saved",
    sqlite3.SQLITE_IOERR: "the database file cannot be read or written",
    sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened",
    sqlite3.SQLITE_PROTOCOL: "the database file is being locked by another process",
    sqlite3.SQLITE_NOTADB: "the database file is not a database",
    sqlite3.SQLITE_CORRUPT: "the database file is damaged",
}
_LATE = "the database did not answer in time: try again later"
_DOWN = "the database is not available: try again later"


@dataclass(frozen=True)
class DatabaseLimits:
    """How long anything may wait for the database, and how many threads may wait at once."""

    #: Seconds for connecting, for one statement, for SQLite's write lock.
    timeout: float = 5.0
    #: Connections per process; also how many request threads a hung database can hold.
    pool_size: int = 5
    #: Seconds a thread waits for a pooled connection before giving up.
    pool_wait: float = 1.0


#: What every engine gets unless told otherwise (the settings' defaults are these too).
DEFAULT_LIMITS = DatabaseLimits()
#: The limits each engine was made with, for connections made beside its pool (the alias listener).
_LIMITS: weakref.WeakKeyDictionary[Engine, DatabaseLimits] = weakref.WeakKeyDictionary()


def limits_of(engine: Engine) -> DatabaseLimits:
    """The limits :func:`make_engine` gave ``engine`` (the defaults for an engine made elsewhere)."""
    return _LIMITS.get(engine, DEFAULT_LIMITS)


def reader(engine: Engine) -> Engine:
    """The same engine and pool, for transactions that never write."""
    return engine.execution_options(**{READ_ONLY: True})


class _BoundedPool(QueuePool):
    """A pool whose exhaustion is the database being unavailable, not a bug."""

    def _do_get(self):  # type: ignore[no-untyped-def]
        try:
            return super()._do_get()
        except sa_exc.TimeoutError:
            raise DatabaseUnavailable(
                f"no database connection became free within {self._timeout:g} s: "
                "the database is slow or not answering"
            ) from None


def _storage_full(error: BaseException) -> bool:
    """Whether an error means the disk (or the quota) is full."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(error, sqlite3.Error) and getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return True
    return getattr(error, "sqlstate", None) == "53100"  # PostgreSQL's disk_full


def _translate(context: ExceptionContext) -> CoeError | None:
    """``handle_error``: the driver's failures to reach or use the database, as the package's errors.

    The message is what a client is told; the driver's own message stays the cause (logged).
    Returned, not raised (``retval=True``): listeners after this one, such as the metrics', still run.
    """
    error = context.original_exception
    if context.is_pre_ping:
        # The pool is checking a pooled connection. Closed (e.g. the server restarted): let it
        # reconnect; a failed connect comes back here. Silent until the deadline: do not wait
        # a second time for a new connection to a server that has stopped answering.
        if _postgres_timed_out(error):
            return DatabaseUnavailable(_LATE)
        return None
    if _storage_full(error):
        return StorageFull("the database's disk is full: nothing can be written until space is freed")
    if isinstance(error, sqlite3.Error):
        reason = _SQLITE_UNAVAILABLE.get(getattr(error, "sqlite_errorcode", 0) & 0xFF)
        if reason is not None:
            return DatabaseUnavailable(f"{reason}: try again later")
        return None  # e.g. "no such table", a syntax error: a bug, answered as one
    if (
        isinstance(context.sqlalchemy_exception, (sa_exc.OperationalError, sa_exc.InterfaceError))
        or context.is_disconnect
    ):
        # psycopg: refused, closed, timed out, cancelled by statement_timeout, shut down, out of resources.
        return DatabaseUnavailable(_LATE if _postgres_timed_out(error) else _DOWN)
    return None


def _postgres_timed_out(error: BaseException) -> bool:
    if isinstance(error, sqlite3.Error):
        return False
    from coe_template.registry.postgres import timed_out  # psycopg only when PostgreSQL is used

    return timed_out(error)


def make_engine(url: str, limits: DatabaseLimits = DEFAULT_LIMITS) -> Engine:
    """An engine whose every wait is bounded by ``limits`` and whose failures are the package's errors."""
    pool = {
        "poolclass": _BoundedPool,
        "pool_size": limits.pool_size,
        "max_overflow": 0,
        "pool_timeout": limits.pool_wait,
        "pool_pre_ping": True,
    }
    if not url.startswith("sqlite"):
        engine = create_engine(url, **pool)
        _bound_postgres(engine, limits.timeout)
    else:
        engine = create_engine(url, connect_args={"timeout": limits.timeout}, **pool)
        _sqlite_setup(engine, limits.timeout)
    event.listen(engine, "handle_error", _translate, retval=True)
    _LIMITS[engine] = limits
    return engine


def _bound_postgres(engine: Engine, timeout: float) -> None:
    from coe_template.registry.postgres import connect_params, connection_class

    connection = connection_class(timeout)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):  # type: ignore[no-untyped-def]
        return connection.connect(*cargs, **connect_params(cparams, timeout))


def _sqlite_setup(engine: Engine, timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy emit BEGIN itself (below), so it can be IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # A writer waits this long for another's lock, then the request is answered 503.
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        # In WAL mode NORMAL survives any process crash (kill -9 included); only a power
        # cut can lose the last commits. FULL would fsync every commit of every chunk.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # Read-then-write transactions must hold the write lock from the start,
        # or two writers can both read and one fails with "database is locked".
        # Pure reads need no lock at all under WAL: they never wait for writers.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class SchemaNotCurrent(CoeError):
    """The database's schema is not the one this code was written for: nothing may use it yet."""


#: PostgreSQL advisory lock held while upgrading, so upgrades started together take turns.
_UPGRADE_LOCK = 0x636F6575  # "coeu"


def _alembic() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(_alembic()).get_current_head()
    assert head is not None, "the package ships its migrations"
    return head


def schema_revision(engine: Engine) -> str | None:
    """The revision the database's schema is at; None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; the revisions before and after.

    The only place the schema changes (``coe-template db upgrade``): servers and
    workers only check it (:func:`check_schema`), so replicas starting together
    never race to migrate, and their database role needs no right to change tables.
    """
    config = _alembic()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
        before = MigrationContext.configure(connection).get_current_revision()
        if before is not None and before not in _known_revisions():
            raise SchemaNotCurrent(_newer_than_known(engine, before))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, head_revision()


def _known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(_alembic()).walk_revisions()}


def _newer_than_known(engine: Engine, current: str) -> str:
    return (
        f"the database {engine.url.render_as_string(hide_password=True)} is at schema revision {current}, "
        f"newer than this code knows (its newest is {head_revision()}): run the newer code, "
        "or a matching release"
    )


def check_schema(engine: Engine) -> None:
    """:class:`SchemaNotCurrent` unless the schema is exactly at this code's newest revision."""
    current, head = schema_revision(engine), head_revision()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaNotCurrent(
            f"the database {where} has no registry schema yet: run `coe-template db upgrade` first"
        )
    if current not in _known_revisions():
        raise SchemaNotCurrent(_newer_than_known(engine, current))
    raise SchemaNotCurrent(
        f"the database {where} is at schema revision {current}, this code needs {head}: "
        "run `coe-template db upgrade` first"
    )


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
        driver = connection.connection.driver_connection  # psycopg's: None only once invalidated
        assert driver is not None
        cursor = driver.cursor()
        with cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        connection.exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", list(rows)
        )
