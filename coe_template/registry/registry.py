"""The model registry: numbered versions per model, aliases onto them, artifacts verified.

Metadata lives in SQL (SQLite or PostgreSQL); artifacts live in an artifact store
(a directory, or the database itself), each version recording the sha256 of every
file so a changed file is refused before it is read (and no file is ever unpickled).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from coe_template.artifacts.runs import (
    RECORD_FILE,
    Artifacts,
    check_run,
    load_artifacts,
    new_run_id,
    refuse_pickled,
    run_files,
    sha256,
)
from coe_template.artifacts.stores import DIRECTORY, ArtifactStore, DirectoryStore
from coe_template.errors import STORED_ERROR_LENGTH, Busy, CoeError, Conflict
from coe_template.model.args import TrainingArgs
from coe_template.model.train import TrainedModel
from coe_template.registry.blobs import artifact_store
from coe_template.registry.db import DEFAULT_LIMITS, DatabaseLimits, check_schema, make_engine, reader
from coe_template.registry.db import upgrade as upgrade_schema
from coe_template.registry.events import reason_missing, record_event
from coe_template.registry.exports import Transfers
from coe_template.registry.notify import announce
from coe_template.registry.records import (
    AliasChange,
    AliasNotFound,
    LeaseLost,
    ModelInfo,
    ModelNotFound,
    StillTraining,
    VersionInfo,
    VersionNotFound,
)
from coe_template.registry.schema import Alias, Model, ModelVersion, utcnow
from coe_template.registry.usage import Observed
from coe_template.shapes import check_description, check_model_name

if TYPE_CHECKING:
    from coe_template.jobs.queue import Held

log = logging.getLogger(__name__)

PRODUCTION = "production"
#: PostgreSQL advisory lock taken while counting running trainings (any fixed number will do).
_TRAINING_LOCK = 0x636F6574  # "coet"


class Registry(Observed, Transfers):
    def __init__(self, engine: Engine, store: Path, artifacts: ArtifactStore | None = None) -> None:
        self.engine = engine
        #: This host's model store directory: runs (directory store), cache (database store), SQLite file.
        self.store = Path(store)
        #: Where every version's files are kept and fetched from.
        self.artifacts = artifacts or DirectoryStore(self.store)

    @classmethod
    def open(
        cls,
        url: str,
        store: Path,
        limits: DatabaseLimits = DEFAULT_LIMITS,
        *,
        upgrade: bool = False,
        artifacts: str = DIRECTORY,
    ) -> Registry:
        """Connect; :class:`~coe_template.registry.db.SchemaNotCurrent` unless the schema is current.

        ``upgrade`` brings it up to date first: for ``coe-template db upgrade`` and for tests
        building a fresh database, never for servers and workers. ``artifacts`` names the
        artifact store (``COE_ARTIFACT_STORE``).
        """
        Path(store).mkdir(parents=True, exist_ok=True)  # also where the default SQLite file lives
        engine = make_engine(url, limits)
        try:
            if upgrade:
                upgrade_schema(engine)
            else:
                check_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, store, artifact_store(artifacts, engine, store))

    @contextmanager
    def _session(self, read_only: bool = False) -> Iterator[Session]:
        bind = reader(self.engine) if read_only else self.engine
        with Session(bind, expire_on_commit=False) as session, session.begin():
            yield session

    # --- lookups ---------------------------------------------------------------------------------

    @staticmethod
    def _model(session: Session, name: str) -> Model:
        model = session.scalar(select(Model).where(Model.name == name))
        if model is None:
            raise ModelNotFound(name)
        return model

    @staticmethod
    def _version(session: Session, model: Model, number: int) -> ModelVersion:
        version = session.scalar(
            select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == number)
        )
        if version is None:
            raise VersionNotFound(model.name, number)
        return version

    @staticmethod
    def _aliases_of(model: Model) -> dict[int, list[str]]:
        by_version: dict[int, list[str]] = {}
        for alias in model.aliases:
            by_version.setdefault(alias.version.version, []).append(alias.name)
        return by_version

    # --- models ----------------------------------------------------------------------------------

    def ensure_model(self, name: str, description: str = "") -> None:
        """Create model ``name`` unless it exists; :class:`InvalidInput` for a name the API could not
        address or a description that is not short text."""
        check_model_name(name)
        check_description(description)
        try:
            with self._session() as session:
                if session.scalar(select(Model.id).where(Model.name == name)) is None:
                    session.add(Model(name=name, description=description))
        except IntegrityError:
            pass  # created concurrently: fine

    def list_models(self) -> list[ModelInfo]:
        with self._session(read_only=True) as session:
            models = session.scalars(
                select(Model)
                .order_by(Model.name)
                .options(
                    selectinload(Model.versions), selectinload(Model.aliases).selectinload(Alias.version)
                )
            )
            return [ModelInfo.of(m) for m in models]

    def get_model(self, name: str) -> ModelInfo:
        with self._session(read_only=True) as session:
            return ModelInfo.of(self._model(session, name))

    # --- versions --------------------------------------------------------------------------------

    def list_versions(
        self, name: str, status: str | None = None, after: int = 0, limit: int = 20
    ) -> tuple[list[VersionInfo], int | None]:
        """Versions above ``after``, oldest first; also the cursor for the next page, if any."""
        with self._session(read_only=True) as session:
            model = self._model(session, name)
            query = select(ModelVersion).where(
                ModelVersion.model_id == model.id, ModelVersion.version > after
            )
            if status is not None:
                query = query.where(ModelVersion.status == status)
            rows = list(session.scalars(query.order_by(ModelVersion.version).limit(limit + 1)))
            aliases = self._aliases_of(model)
            page = [VersionInfo.of(v, aliases.get(v.version, [])) for v in rows[:limit]]
            return page, (rows[limit - 1].version if len(rows) > limit else None)

    def get_version(self, name: str, number: int) -> VersionInfo:
        with self._session(read_only=True) as session:
            model = self._model(session, name)
            version = self._version(session, model, number)
            return VersionInfo.of(version, self._aliases_of(model).get(number, []))

    def performance(self, name: str, number: int) -> dict[str, Any]:
        """A version's test-split performance; a version still training (or failed) has none."""
        version = self.get_version(name, number)
        if version.performance is None:
            raise Conflict(f"version {number} of {name!r} is {version.status}: it has no performance")
        return version.performance

    def create_version(
        self,
        name: str,
        args: TrainingArgs,
        max_training: int | None = None,
        also: Callable[[Session, ModelVersion], object] | None = None,
    ) -> VersionInfo:
        """A new version in status ``training``, numbered one above the highest.

        Numbering holds the model's row (PostgreSQL: ``FOR UPDATE``; SQLite: the
        transaction's ``BEGIN IMMEDIATE``), so concurrent writers take turns. With
        ``max_training``, :class:`Busy` when that many versions (of any model) are
        already training, queued or running; on PostgreSQL a transaction lock makes
        that count exact across models too. ``also`` records more in the same transaction:
        its training job, for any runner to claim (see :mod:`coe_template.registry.training`).
        """
        with self._session() as session:
            if max_training is not None and session.get_bind().dialect.name == "postgresql":
                session.execute(select(func.pg_advisory_xact_lock(_TRAINING_LOCK)))
            model = session.scalar(select(Model).where(Model.name == name).with_for_update())
            if model is None:
                raise ModelNotFound(name)
            if max_training is not None:
                training = session.execute(
                    select(func.count()).where(ModelVersion.status == "training")
                ).scalar_one()
                if training >= max_training:
                    raise Busy(
                        f"{training} version(s) are queued or training already, the most this service "
                        "runs at once: try again when one has finished"
                    )
            highest = session.scalar(
                select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
            )
            version = ModelVersion(
                model=model, version=(highest or 0) + 1, status="training", args=args.to_dict()
            )
            session.add(version)
            if also is not None:
                also(session, version)
            session.flush()
            record_event(session, "version.created", name, to_version=version.version)
            return VersionInfo.of(version)

    def complete_version(
        self, name: str, number: int, trained: TrainedModel, held: Held | None = None
    ) -> VersionInfo:
        """Mark the version ``ready`` and write its artifacts, in one transaction.

        ``held`` (a training job under its runner's lease): the job is marked done in that
        same transaction, only if that owner still holds it, else :class:`LeaseLost` and
        nothing changes: a trainer whose lease ran out never overwrites its successor.
        """
        lost = LeaseLost(
            f"training version {number} of {name!r}: {held and held.owner} no longer holds its lease"
        )
        with self._session(read_only=True) as session:  # nothing is written for a result refused anyway
            status = self._version(session, self._model(session, name), number).status
            if held is not None and not held.holds(session.connection()):
                raise lost
        if status != "training":  # e.g. failed meanwhile: write nothing
            raise Conflict(f"version {number} of {name!r} is {status}, not training")
        run_id = new_run_id()
        files = run_files(trained, run_id)  # serialised before the transaction, which then only writes

        def record(session: Session) -> VersionInfo:
            if held is not None and not held.finish(session.connection(), utcnow()):
                raise lost  # the lease ran out meanwhile
            version = self._version(session, self._model(session, name), number)
            if version.status != "training":
                raise Conflict(f"version {number} of {name!r} is {version.status}, not training")
            version.status = "ready"
            version.finished_at = utcnow()
            version.run_id = run_id
            version.artifacts = {n: sha256(data) for n, data in files.items() if n != RECORD_FILE}
            version.threshold = trained.threshold
            version.dataset = trained.dataset
            version.performance = trained.performance
            record_event(session, "version.trained", name, to_version=number)
            return VersionInfo.of(version)

        return self._record_with_run(run_id, files, record)

    def _record_with_run(
        self, run_id: str, files: Mapping[str, bytes], record: Callable[[Session], VersionInfo]
    ) -> VersionInfo:
        """``record`` the version that points at a new run, and write the run's files, as one.

        A transactional store (the database) writes them in the version's transaction; another
        writes them just before the commit and has them deleted if the transaction fails. Either
        way a run exists exactly when a version points at it (bar a crash between the two).
        """
        written = False
        try:
            with self._session() as session:
                result = record(session)
                self.artifacts.put(run_id, files, session.connection())
                written = True
                return result
        except BaseException:
            if written and not self.artifacts.transactional:
                try:
                    self.artifacts.delete(run_id)
                except OSError as exc:
                    log.warning(
                        "run %s of a version not recorded cannot be deleted (%s)", run_id, exc.strerror
                    )
            raise

    def fail_version(self, name: str, number: int, error: str) -> None:
        with self._session() as session:
            version = self._version(session, self._model(session, name), number)
            if version.status == "training":
                version.status = "failed"
                version.finished_at = utcnow()
                version.error = error[:STORED_ERROR_LENGTH]
                record_event(session, "version.failed", name, to_version=number)

    def register(self, name: str, trained: TrainedModel) -> VersionInfo:
        """Record a model trained outside the API (e.g. by the CLI) as a new version.

        The version has no training job, so no runner would ever time it out: if completing it
        fails, it is marked ``failed`` here (best effort: the database may be what failed).
        """
        version = self.create_version(name, trained.args)
        try:
            return self.complete_version(name, version.version, trained)
        except BaseException as exc:
            try:
                why = (
                    f"{type(exc).__name__}: {exc}"
                    if isinstance(exc, CoeError)
                    else "recording the trained model failed unexpectedly; the cause is in the command's output"
                )
                self.fail_version(name, version.version, why)
            except Exception as again:  # the original error is the one to raise
                log.warning(
                    "version %d of %r stays training: it could not be marked failed (%s)",
                    version.version,
                    name,
                    again,
                )
            raise

    def archive_version(self, name: str, number: int) -> VersionInfo:
        with self._session() as session:
            model = self._model(session, name)
            version = self._version(session, model, number)
            aliases = self._aliases_of(model).get(number, [])
            if aliases:
                raise Conflict(
                    f"version {number} of {name!r} is behind alias(es) {', '.join(aliases)}: "
                    "point them elsewhere before archiving it"
                )
            if version.status == "training":
                raise StillTraining(name, number)
            if version.status != "archived":
                version.status = "archived"
                record_event(session, "version.archived", name, to_version=number)
            return VersionInfo.of(version)

    # --- aliases ---------------------------------------------------------------------------------

    def list_aliases(self, name: str) -> dict[str, int]:
        with self._session(read_only=True) as session:
            return {a.name: a.version.version for a in self._model(session, name).aliases}

    def get_alias(self, name: str, alias: str) -> int:
        with self._session(read_only=True) as session:
            model = self._model(session, name)
            found = session.scalar(select(Alias).where(Alias.model_id == model.id, Alias.name == alias))
            if found is None:
                raise AliasNotFound(name, alias)
            return found.version.version

    def set_alias(
        self,
        name: str,
        alias: str,
        number: int,
        reason: str | None = None,
        *,
        why: str = "",
        rollback: bool = False,
    ) -> AliasChange:
        """Point ``alias`` at a ready version whose artifacts are intact and load (idempotent).

        A move is recorded in the history with ``reason``; ``why`` (what is being done) makes one
        required for a move (:func:`coe_template.registry.history.promote`); ``rollback`` names it one."""
        with self._session() as session:
            model = self._model(session, name)
            version = self._version(session, model, number)
            if version.status != "ready" or version.run_id is None or version.artifacts is None:
                raise Conflict(
                    f"version {number} of {name!r} is {version.status}; only ready versions can be aliased"
                )
            check_run(
                version.run_id, self.artifacts, version.artifacts, f"version {number} of {name!r}", name
            )
            found = session.scalar(select(Alias).where(Alias.model_id == model.id, Alias.name == alias))
            previous = None if found is None else found.version.version
            if found is None:
                session.add(Alias(model=model, name=alias, version=version))
            elif found.version_id != version.id:
                found.version = version
            if previous != number:
                if why and reason is None:
                    raise reason_missing(why)
                action = (
                    "alias.rolled_back" if rollback else "alias.set" if previous is None else "alias.moved"
                )
                values = {"alias": alias, "from_version": previous, "to_version": number, "reason": reason}
                record_event(session, action, name, **values)
                announce(session, name)  # delivered on commit: every replica swaps at once
        if previous != number:  # logged once committed: promotions and rollbacks leave a trace
            change = "rolled back" if previous is not None and number < previous else "promoted"
            log.info("alias %s of %r %s: version %s -> %d", alias, name, change, previous, number)
        return AliasChange(alias, number)

    def delete_alias(self, name: str, alias: str) -> AliasChange:
        if alias == PRODUCTION:
            raise Conflict(f"the {PRODUCTION!r} alias cannot be deleted: point it at another version instead")
        with self._session() as session:
            model = self._model(session, name)
            found = session.scalar(select(Alias).where(Alias.model_id == model.id, Alias.name == alias))
            if found is None:
                raise AliasNotFound(name, alias)
            session.delete(found)
            number = found.version.version
            record_event(session, "alias.removed", name, alias=alias, from_version=number)
            announce(session, name)
        log.info("alias %s of %r deleted (was version %d)", alias, name, number)
        return AliasChange(alias, number)

    # --- artifacts -------------------------------------------------------------------------------

    def load(self, name: str, number: int) -> Artifacts:
        """The fitted artifacts of a ready version, verified against the database's digests."""
        with self._session(read_only=True) as session:
            version = self._version(session, self._model(session, name), number)
            if version.status != "ready" or version.run_id is None:
                raise Conflict(f"version {number} of {name!r} is {version.status}: it has no model to load")
            run_id, digests = version.run_id, dict(version.artifacts or {})
        refuse_pickled(digests, f"version {number} of {name!r}", name)
        return load_artifacts(run_id, self.artifacts, digests)
