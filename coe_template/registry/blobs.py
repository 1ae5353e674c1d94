"""Artifacts in the registry's own database (``COE_ARTIFACT_STORE=db``): a cluster needs only PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Connection, Engine, delete, insert, select

from coe_template.artifacts.runs import sha256
from coe_template.artifacts.stores import (
    DATABASE,
    DIRECTORY,
    ArtifactStore,
    DirectoryStore,
    LocalCache,
    check_key,
)
from coe_template.registry.db import reader
from coe_template.registry.schema import ArtifactBlob

_BLOBS = ArtifactBlob.__table__


class DatabaseStore(ArtifactStore):
    """Each file a row of ``artifact_blobs``; files fetched are kept in a cache on this host's disk.

    The database's failures are already :class:`~coe_template.errors.DatabaseUnavailable`
    (a 503) or :class:`~coe_template.errors.StorageFull`, from the engine.
    """

    kind = DATABASE
    transactional = True

    def __init__(self, engine: Engine, cache_dir: Path) -> None:
        self.engine = engine
        self.cache = LocalCache(cache_dir)

    def put(self, run_id: str, files: Mapping[str, bytes], connection: Connection | None = None) -> None:
        """Every file in one transaction (``connection``'s, so the version row commits with them)."""
        for name in files:
            check_key(run_id, name)
        rows = [
            {"run_id": run_id, "name": name, "sha256": sha256(data), "data": data}
            for name, data in files.items()
        ]
        if connection is not None:
            connection.execute(insert(_BLOBS), rows)
            return
        with self.engine.begin() as own:
            own.execute(insert(_BLOBS), rows)

    def delete(self, run_id: str, connection: Connection | None = None) -> None:
        check_key(run_id)
        if connection is not None:
            connection.execute(delete(_BLOBS).where(_BLOBS.c.run_id == run_id))
            return
        with self.engine.begin() as own:
            own.execute(delete(_BLOBS).where(_BLOBS.c.run_id == run_id))

    def get(self, run_id: str, name: str) -> bytes | None:
        check_key(run_id, name)
        with reader(self.engine).begin() as connection:
            return connection.scalar(
                select(_BLOBS.c.data).where(_BLOBS.c.run_id == run_id, _BLOBS.c.name == name)
            )

    def exists(self, run_id: str) -> bool:
        check_key(run_id)
        with reader(self.engine).begin() as connection:
            found = connection.scalar(select(_BLOBS.c.run_id).where(_BLOBS.c.run_id == run_id).limit(1))
        return found is not None


def artifact_store(kind: str, engine: Engine, store: Path) -> ArtifactStore:
    """The artifact store ``COE_ARTIFACT_STORE`` names: the model store's ``runs`` directory, or
    the registry's database with a cache in the model store's ``cache`` directory."""
    if kind == DIRECTORY:
        return DirectoryStore(store)
    if kind == DATABASE:
        return DatabaseStore(engine, Path(store) / "cache")
    raise ValueError(f"no artifact store {kind!r}")
