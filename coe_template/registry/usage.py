"""The disk a registry uses: its database, and the model store's directories on this host.

Read when asked (a metrics scrape), cheaply: SQLite's files are stat()ed; PostgreSQL sums the
sizes of this registry's own tables (indexes and TOAST included) in the schema it uses, so
several registries sharing one database (a schema each) each report their own, and one that
owns its database reports all but the catalog. The store's directories are walked: a few
files per version.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from coe_template.registry.db import reader
from coe_template.registry.schema import Model, ModelVersion

#: Our tables' total size in the schema the connection uses (``search_path``'s first).
_POSTGRES_BYTES = text(
    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"
)
#: The model store's directories measured: versions' files (directory store) and the database store's cache.
STORE_DIRECTORIES = ("runs", "cache")


def database_bytes(engine: Engine) -> int | None:
    """SQLite: the database file and its write-ahead log; PostgreSQL: our tables in our schema."""
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return sum(_file_bytes(Path(path + suffix)) for suffix in ("", "-wal"))
    if engine.dialect.name == "postgresql":
        with reader(engine).begin() as connection:
            return int(connection.execute(_POSTGRES_BYTES).scalar_one())
    return None


def directory_bytes(path: Path) -> int:
    """The sizes of every file under ``path`` (no link followed); 0 if it does not exist."""
    total = 0
    pending = [path]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except FileNotFoundError:  # not made yet, or removed while walking
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
    return total


def _file_bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class Observed:
    """What the registry answers about itself: version counts, a ping, its disk (a mixin of :class:`Registry`)."""

    engine: Engine
    store: Path

    def version_counts(self) -> dict[tuple[str, str], int]:
        """How many versions each model has per status: every training run, by outcome."""
        query = (
            select(Model.name, ModelVersion.status, func.count())
            .join(ModelVersion.model)
            .group_by(Model.name, ModelVersion.status)
        )
        with reader(self.engine).begin() as connection:
            return {(name, status): n for name, status, n in connection.execute(query)}

    def ping(self) -> None:
        """Ask the database for ``SELECT 1`` (a readiness probe's question): raises if it cannot answer."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def database_bytes(self) -> int | None:
        """Bytes of this registry's database (a query on PostgreSQL); None where it has no size to read."""
        return database_bytes(self.engine)

    def store_bytes(self) -> dict[str, int]:
        """Bytes of this host's model store, per directory (``runs``, ``cache``): apart from the
        database, so a database that does not answer leaves these still known."""
        return {name: directory_bytes(self.store / name) for name in STORE_DIRECTORIES}
