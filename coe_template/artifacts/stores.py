"""Where a run's files are kept: a directory (one host, or a shared volume) or the registry's database.

A store only keeps bytes under ``(run_id, name)``; it vouches for nothing. The
sha256 digests recorded in the registry's database are the only authority, and
:mod:`coe_template.artifacts.runs` checks them on the bytes, whichever store (or local
cache) they came from, before any file is read (and no file is ever unpickled).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coe_template.errors import ArtifactUnavailable, StorageFull

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{6}")
#: A file of a run: a plain name, never a path (``model.skops``, ``args.json``...); never a pickle.
FILE_NAME = re.compile(r"[a-z][a-z_]{0,40}\.(json|skops)")
#: The values of ``COE_ARTIFACT_STORE``.
DIRECTORY, DATABASE = "directory", "db"
ARTIFACT_STORES = (DIRECTORY, DATABASE)


class ArtifactError(ArtifactUnavailable):
    """A run cannot be found or does not match what was written: the server's fault, never the client's."""


class RunNotFound(ArtifactError):
    """A run's directory or record is missing."""


def check_key(run_id: str, name: str | None = None) -> None:
    """:class:`RunNotFound` unless ``run_id`` (and ``name``) can only name a run's file, never a path."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise RunNotFound(f"not a run id: {run_id!r}")
    if name is not None and not FILE_NAME.fullmatch(name):
        raise ArtifactError(f"run {run_id}: not a file name of a run: {name!r}")


def _storage_full(exc: BaseException, where: str) -> StorageFull | None:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(
            f"{where}'s disk is full ({exc.strerror}): "
            "no space left to write the run; free space and train again"
        )
    return None


class LocalCache:
    """Files fetched from a remote store, kept on this host's disk: a restart or a reload fetches nothing.

    Best effort: a cache that cannot be written only costs a fetch. Entries are not
    trusted: every read is checked against the registry's digests like a fetch is.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, run_id: str, name: str) -> Path:
        check_key(run_id, name)
        return self.directory / run_id / name

    def get(self, run_id: str, name: str) -> bytes | None:
        try:
            return self._path(run_id, name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cached %s of run %s cannot be read (%s): fetching it", name, run_id, exc.strerror)
            return None

    def keep(self, run_id: str, name: str, data: bytes) -> None:
        path = self._path(run_id, name)
        tmp = path.with_name(f".tmp-{secrets.token_hex(4)}-{name}")  # workers may keep the same file at once
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            log.warning("%s of run %s not cached (%s): it will be fetched again", name, run_id, exc.strerror)

    def drop(self, run_id: str, name: str) -> None:
        self._path(run_id, name).unlink(missing_ok=True)


class ArtifactStore(ABC):
    """Keeps each run's files (name -> bytes) under its run id; trusts nothing, verifies nothing.

    Adding a store is one subclass. An object store (S3 and the like) would implement:

    - ``put``: upload every file under ``<prefix>/<run_id>/<name>``, the run's record
      (``run.json``) last, so a run whose record exists is complete (uploads cannot join
      the registry's transaction: ``transactional`` stays False, and the registry deletes
      a run whose version was not recorded);
    - ``delete``: remove every object of a run;
    - ``get``: download one object; ``None`` when it does not exist (404), and
      :class:`~coe_template.errors.ArtifactUnavailable` when the service cannot be reached
      or refuses (timeouts, 5xx, 403), so a request is answered 503, never 500;
    - ``exists``: whether the run's record object is there;
    - ``cache``: a :class:`LocalCache` under the model store, as :class:`DatabaseStore` has.

    Digests stay the registry's: the object store's ETags play no part.
    """

    #: The value of ``COE_ARTIFACT_STORE`` that chooses this store.
    kind: str
    #: Where fetched files are kept on this host; None when the store is local already.
    cache: LocalCache | None = None
    #: Whether ``put``/``delete`` given the registry's connection write in its transaction (the
    #: database): the run then exists exactly when the version row does. Otherwise they write at
    #: once, and the registry deletes the run if its transaction fails.
    transactional: bool = False

    @abstractmethod
    def put(self, run_id: str, files: Mapping[str, bytes], connection: Any = None) -> None:
        """Keep every file of a new run, all or nothing; :class:`StorageFull` when there is no room.

        ``connection``: the registry's, for a ``transactional`` store to write in its transaction.
        """

    @abstractmethod
    def delete(self, run_id: str, connection: Any = None) -> None:
        """Remove every file of a run no version points at (nothing if there is none)."""

    @abstractmethod
    def get(self, run_id: str, name: str) -> bytes | None:
        """One file's bytes; None if the store has no such file; :class:`ArtifactUnavailable`
        (or the database's :class:`DatabaseUnavailable`) when the store cannot be read now."""

    @abstractmethod
    def exists(self, run_id: str) -> bool:
        """Whether the store holds any file of the run."""


class DirectoryStore(ArtifactStore):
    """Runs as directories under ``<model store>/runs``: one host, or every host sharing one volume."""

    kind = DIRECTORY

    def __init__(self, root: Path) -> None:
        #: The model store; runs live in its ``runs`` directory.
        self.root = Path(root)

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def put(self, run_id: str, files: Mapping[str, bytes], connection: Any = None) -> None:
        """Write into a hidden directory, flush every file, then rename it into place.

        A crash leaves at most a hidden ``.tmp-*`` directory, never a half-written run;
        a full disk leaves nothing and raises :class:`StorageFull`.
        """
        for name in files:
            check_key(run_id, name)
        tmp = self.runs / f".tmp-{run_id}"
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            for name, data in files.items():
                with (tmp / name).open("wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            os.rename(tmp, self.runs / run_id)  # refuses to replace a run (directory not empty)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            full = _storage_full(exc, "the model store")
            if full is not None:
                raise full from None
            raise

    def delete(self, run_id: str, connection: Any = None) -> None:
        check_key(run_id)
        shutil.rmtree(self.runs / run_id, ignore_errors=True)

    def get(self, run_id: str, name: str) -> bytes | None:
        check_key(run_id, name)
        try:
            return (self.runs / run_id / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise ArtifactError(
                f"run {run_id}: {name} cannot be read from the model store ({exc.strerror})"
            ) from None

    def exists(self, run_id: str) -> bool:
        check_key(run_id)
        return (self.runs / run_id).exists()
