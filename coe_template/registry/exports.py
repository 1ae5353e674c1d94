"""Versions moved between registries: a ready version's manifest and files out, a version trained elsewhere in.

The archive that carries them is :mod:`coe_template.artifacts.transfer`'s; this module is the
registry's side: what is read to export a version, and what is checked and written to
import one (every digest, nothing unpickled, the model and version and run's files as one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from coe_template.artifacts.runs import (
    RECORD_FILE,
    RUN_FILES,
    RunNotFound,
    read_verified,
    refuse_pickled,
    sha256,
)
from coe_template.artifacts.transfer import check_values
from coe_template.errors import Conflict, InvalidInput
from coe_template.registry.events import record_event
from coe_template.registry.records import VersionInfo
from coe_template.registry.schema import Model, ModelVersion, utcnow
from coe_template.shapes import check_description, check_model_name

if TYPE_CHECKING:
    from coe_template.registry.registry import Registry


def export_version(registry: Registry, name: str, number: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A ready version's manifest (see :mod:`coe_template.artifacts.transfer`) and its files, each verified."""
    with registry._session(read_only=True) as session:
        model = registry._model(session, name)
        version = registry._version(session, model, number)
        if version.status != "ready" or version.run_id is None:
            raise Conflict(
                f"version {number} of {name!r} is {version.status}: only ready versions can be exported"
            )
        manifest: dict[str, Any] = {
            "model": name,
            "description": model.description,
            "version": number,
            "run_id": version.run_id,
            "args": version.args,
            "dataset": version.dataset,
            "performance": version.performance,
            "threshold": version.threshold,
            "artifacts": dict(version.artifacts or {}),
        }
    refuse_pickled(manifest["artifacts"], f"version {number} of {name!r}", name)
    files = read_verified(manifest["run_id"], registry.artifacts, manifest["artifacts"])
    record = registry.artifacts.get(manifest["run_id"], RECORD_FILE)
    if record is None:
        raise RunNotFound(f"run {manifest['run_id']}: its {RECORD_FILE} is missing from the artifact store")
    return manifest, {**files, RECORD_FILE: record}


def import_version(
    registry: Registry, name: str, manifest: Mapping[str, Any], files: Mapping[str, bytes]
) -> VersionInfo:
    """Record a version trained elsewhere as this registry's next version of ``name``, ``ready``.

    Every file must match the manifest's digest, and the model file hold only trusted
    types (see :mod:`coe_template.model.model_file`; nothing is unpickled); what the version
    records comes from the run's own files (see :func:`coe_template.artifacts.transfer.run_values`).
    The model is created if missing (with the manifest's description); the model, the
    version and the run's files are written as one (see :meth:`Registry._record_with_run`). A run
    some version already points at is refused; files of a run nothing points at (left by
    a crash) are replaced.
    """
    run_id, digests = manifest["run_id"], manifest["artifacts"]
    check_model_name(name)
    description = check_description(manifest.get("description", ""))
    if set(files) != {*RUN_FILES, RECORD_FILE} or set(digests) != set(RUN_FILES):
        raise InvalidInput(
            f"run {run_id}: the files are not exactly a run's ({', '.join(RUN_FILES)}, "
            f"{RECORD_FILE}); nothing imported"
        )
    for file_name, digest in digests.items():
        if sha256(files[file_name]) != digest:
            raise InvalidInput(
                f"run {run_id}: {file_name} does not match its sha256 in the export; nothing imported"
            )
    values = check_values(manifest, files, f"run {run_id}")

    def record(session: Session) -> VersionInfo:
        model = session.scalar(select(Model).where(Model.name == name).with_for_update())
        if model is None:
            model = Model(name=name, description=description)
            session.add(model)
            session.flush()
        holder = session.execute(
            select(Model.name, ModelVersion.version)
            .join(ModelVersion.model)
            .where(ModelVersion.run_id == run_id)
            .limit(1)
        ).first()
        if holder is not None:
            raise Conflict(
                f"run {run_id} is already in this registry, as version {holder[1]} of "
                f"{holder[0]!r} (imported before, or exported from here): nothing imported"
            )
        registry.artifacts.delete(run_id, session.connection())  # files no version points at, if any
        highest = session.scalar(
            select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
        )
        version = ModelVersion(
            model=model,
            version=(highest or 0) + 1,
            status="ready",
            finished_at=utcnow(),
            artifacts=dict(digests),
            run_id=run_id,
            **values,
        )
        session.add(version)
        record_event(
            session, "version.created", name, to_version=version.version, reason=f"imported run {run_id}"
        )
        return VersionInfo.of(version)

    try:
        return registry._record_with_run(run_id, files, record)
    except IntegrityError:
        raise Conflict(
            f"run {run_id} or model {name!r} was written by another import meanwhile: "
            "nothing imported; try again"
        ) from None
    except DataError as exc:
        why = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise InvalidInput(
            f"run {run_id}: the database refused a value of the export ({why}); nothing imported"
        ) from None


class Transfers:
    """Moving versions between registries: the two methods :class:`Registry` has for it (a mixin)."""

    def export_version(self, name: str, number: int) -> tuple[dict[str, Any], dict[str, bytes]]:
        """A ready version's manifest (see :mod:`coe_template.artifacts.transfer`) and its files, each verified."""
        return export_version(self, name, number)  # type: ignore[arg-type]  # self is a Registry

    def import_version(
        self, name: str, manifest: Mapping[str, Any], files: Mapping[str, bytes]
    ) -> VersionInfo:
        """Record a version trained elsewhere as this registry's next version of ``name``, ``ready``."""
        return import_version(self, name, manifest, files)  # type: ignore[arg-type]  # self is a Registry
