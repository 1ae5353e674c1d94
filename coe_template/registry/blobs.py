"""Artifacts in the registry's own database (``COE_ARTIFACT_STORE=db``): a cluster needs only PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine, insert, select

from coe_template.artifacts import DATABASE, ArtifactStore, LocalCache, check_key
from coe_template.registry.db import reader
from coe_template.registry.schema import ArtifactBlob
from coe_template.store import sha256

_BLOBS = ArtifactBlob.__table__


class DatabaseStore(ArtifactStore):
    """Each file a row of ``artifact_blobs``; files fetched are kept in a cache on this host's disk.

    The database's failures are already :class:`~coe_template.errors.DatabaseUnavailable`
    (a 503) or :class:`~coe_template.errors.StorageFull`, from the engine.
    """

    kind = DATABASE

    def __init__(self, engine: Engine, cache_dir: Path) -> None:
        self.engine = engine
        self.cache = LocalCache(cache_dir)

    def put(self, run_id: str, files: Mapping[str, bytes]) -> None:
        """Every file in one transaction: a run is all there or not at all."""
        for name in files:
            check_key(run_id, name)
        with self.engine.begin() as connection:
            connection.execute(insert(_BLOBS), [
                {"run_id": run_id, "name": name, "sha256": sha256(data), "data": data}
                for name, data in files.items()
            ])

    def get(self, run_id: str, name: str) -> bytes | None:
        check_key(run_id, name)
        with reader(self.engine).begin() as connection:
            return connection.scalar(select(_BLOBS.c.data)
                                     .where(_BLOBS.c.run_id == run_id, _BLOBS.c.name == name))

    def exists(self, run_id: str) -> bool:
        check_key(run_id)
        with reader(self.engine).begin() as connection:
            found = connection.scalar(select(_BLOBS.c.run_id).where(_BLOBS.c.run_id == run_id).limit(1))
        return found is not None
