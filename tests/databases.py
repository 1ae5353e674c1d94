"""Databases for tests: fresh ones copied from one migrated per session, a schema of its own on the
shared PostgreSQL server, or a private PostgreSQL server to stop and freeze."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, make_url, text

from coe_template.registry.db import make_engine, upgrade


@contextmanager
def postgres_schema(url: str, prefix: str = "test") -> Iterator[str]:
    """``url`` with its search path set to a new, empty schema, dropped with all it holds afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_search_path(url, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class MigratedDatabases:
    """Fresh databases whose schema is already at head, one per test, made from one migration per session.

    Running every migration costs more than most tests that need a registry. SQLite: the file one
    migration made is copied (a millisecond). PostgreSQL: a new schema, as :func:`postgres_schema`
    makes, receives the statements the one migration sent (recorded as Alembic ran them; only its
    reads are left out), in one transaction. ``CREATE DATABASE ... TEMPLATE`` was measured too, and
    on a busy shared server it costs more than migrating (its files and WAL are written at once).
    Tests of the migrations themselves start from an empty database (``empty_database_url``).
    """

    def __init__(self, root: Path, postgres_url: str | None) -> None:
        self.root, self.postgres_url = root, postgres_url
        self._sqlite: Path | None = None
        self._statements: list[tuple[str, Any]] | None = None
        self._engine: Engine | None = None
        #: Seeded templates by key: the SQLite file or the PostgreSQL statements, and the store directory.
        self._seeded: dict[tuple[str, Hashable], tuple[Any, Path]] = {}

    def sqlite_template(self) -> Path:
        if self._sqlite is None:
            path = self.root / "template.db"
            engine = make_engine(f"sqlite:///{path}")
            try:
                upgrade(engine)
            finally:
                engine.dispose()
            # Everything into the main file, so that copying it alone copies the whole database.
            with contextlib.closing(sqlite3.connect(path)) as connection:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._sqlite = path
        return self._sqlite

    def postgres_statements(self) -> list[tuple[str, Any]]:
        """What migrating an empty schema sends, but its reads: replayed, they make the same schema."""
        if self._statements is None:
            assert self.postgres_url is not None, "TEST_DATABASE_URL names no PostgreSQL server"
            sent: list[tuple[str, Any]] = []

            def record(_connection, _cursor, statement, parameters, _context, executemany) -> None:
                assert not executemany, statement
                if not statement.lstrip().upper().startswith("SELECT"):
                    sent.append((statement, parameters))

            with postgres_schema(self.postgres_url, prefix="template") as url:
                engine = make_engine(url)
                event.listen(engine, "before_cursor_execute", record)
                try:
                    upgrade(engine)
                finally:
                    engine.dispose()
            self._statements = sent
        return self._statements

    @contextmanager
    def fresh(self, kind: str, directory: Path, name: str = "registry.db") -> Iterator[str]:
        """A new database of ``kind`` ("sqlite": a file ``name`` in ``directory``), at the schema's head."""
        if kind != "postgresql":
            path = directory / name
            shutil.copyfile(self.sqlite_template(), path)
            yield f"sqlite:///{path}"
            return
        statements = self.postgres_statements()
        schema = f"test_{uuid.uuid4().hex[:12]}"
        admin = self._admin()
        with admin.begin() as connection:  # one round of setting up: no durability needed for a test's tables
            connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            connection.exec_driver_sql(f'SET LOCAL search_path = "{schema}"')
            for statement, parameters in statements:
                connection.exec_driver_sql(statement, parameters)
        try:
            yield with_search_path(self.postgres_url, schema)
        finally:
            with admin.begin() as connection:
                connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
                connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')

    def seed(self, url: str, store: Path, key: Hashable, seed: Callable[[str, Path], None]) -> None:
        """Make the fresh database at ``url`` (from :meth:`fresh`) and the empty directory ``store`` what
        ``seed(url, store)`` makes of them, running ``seed`` once per session, kind and ``key``.

        Seeding a registry (each version's model serialized, compressed and hashed, then loaded back to
        check it) costs most of a registry test's setup; copying what it made costs little. SQLite: the
        seeded file and store are copied. PostgreSQL: the statements seeding sent (but its reads) are
        replayed into the fresh schema, as :meth:`fresh` replays the migration, and the store is copied.
        """
        kind = "sqlite" if url.startswith("sqlite") else "postgresql"
        if (kind, key) not in self._seeded:
            self._seeded[kind, key] = self._make_seeded(kind, seed)
        made, template_store = self._seeded[kind, key]
        shutil.copytree(template_store, store, dirs_exist_ok=True)
        if kind == "sqlite":
            shutil.copyfile(made, url.removeprefix("sqlite:///"))
            return
        schema = url.rsplit("search_path%3D", 1)[1]
        with self._admin().begin() as connection:
            connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
            connection.exec_driver_sql(f'SET LOCAL search_path = "{schema}"')
            for statement, parameters in made:
                connection.exec_driver_sql(statement, parameters)

    def _make_seeded(self, kind: str, seed: Callable[[str, Path], None]) -> tuple[Any, Path]:
        directory = Path(tempfile.mkdtemp(prefix="seeded-", dir=self.root))
        store = directory / "store"
        with self.fresh(kind, directory) as url:
            if kind == "sqlite":
                seed(url, store)
                path = directory / "registry.db"
                with contextlib.closing(sqlite3.connect(path)) as connection:
                    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                return path, store
            sent: list[tuple[str, Any]] = []
            seeding = make_url(url)

            def record(connection, _cursor, statement, parameters, _context, executemany) -> None:
                if connection.engine.url != seeding:
                    return  # another engine of this process (none should be busy during a fixture's setup)
                if not statement.lstrip().upper().startswith("SELECT"):
                    sent.append((statement, list(parameters) if executemany else parameters))

            event.listen(Engine, "before_cursor_execute", record)
            try:
                seed(url, store)
            finally:
                event.remove(Engine, "before_cursor_execute", record)
            return sent, store

    def _admin(self) -> Engine:
        if self._engine is None:
            assert self.postgres_url is not None
            self._engine = create_engine(self.postgres_url, pool_size=1)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` first."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


class PrivatePostgres:
    """A PostgreSQL server of the test's own (``initdb`` + ``pg_ctl``), so it can be stopped and frozen.

    Never the shared server: this one lives in a temporary directory, listens on a free
    port and a socket of its own, and is removed afterwards. Runs as the ``postgres`` user
    (the server refuses to run as root).
    """

    USER = "postgres"

    def __init__(self, bin_dir: Path, root: Path, port: int) -> None:
        self.bin_dir, self.root, self.port = bin_dir, root, port
        self.data = root / "data"
        self.url = f"postgresql+psycopg://{self.USER}@127.0.0.1:{port}/postgres"

    @staticmethod
    def binaries() -> Path | None:
        """The newest installed server's bin directory, if any."""
        found = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        return found[-1].parent if found else None

    def _run(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", self.USER, "--", *command],
            check=True,
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=120,
        )

    def init(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.USER,
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def pids(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = self._postmaster()
        found = subprocess.run(
            ["pgrep", "-P", str(postmaster)], stdout=subprocess.PIPE, text=True, check=False
        )
        return [postmaster, *map(int, found.stdout.split())]

    def _postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Every server process stopped (``SIGSTOP``): connections open, nothing answers.

        The postmaster stops first, so no backend it forks afterwards escapes the freeze
        (listing the children first let a connection opened in between be served).
        """
        pids = [self._postmaster()]
        try:
            os.kill(pids[0], signal.SIGSTOP)
            pids = self.pids()
            for pid in pids[1:]:
                os.kill(pid, signal.SIGSTOP)
            yield
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)


@contextmanager
def private_postgres(port: int) -> Iterator[PrivatePostgres]:
    """Initialise and start a private server; stop and remove it afterwards. Skips without PostgreSQL."""
    bin_dir = PrivatePostgres.binaries()
    if bin_dir is None or shutil.which("runuser") is None:
        pytest.skip("needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) and runuser")
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="coe-postgres-"))
    shutil.chown(root, PrivatePostgres.USER)
    server = PrivatePostgres(bin_dir, root, port)
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(Exception):
            for pid in server.pids():  # thaw anything a failed test left frozen
                os.kill(pid, signal.SIGCONT)
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
