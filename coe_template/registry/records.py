"""What the registry hands out and the refusals it makes: read by every caller, written only by the registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coe_template.errors import CoeError, Conflict, NotFound
from coe_template.registry.schema import Model, ModelVersion, utc


class RegistryError(CoeError):
    """Base of the registry's own refusals; the message says what to do."""


class ModelNotFound(NotFound, RegistryError):
    def __init__(self, name: str) -> None:
        super().__init__(f"model {name!r} not found")


class VersionNotFound(NotFound, RegistryError):
    def __init__(self, name: str, version: int) -> None:
        super().__init__(f"model {name!r} has no version {version}")


class AliasNotFound(NotFound, RegistryError):
    def __init__(self, name: str, alias: str) -> None:
        super().__init__(f"model {name!r} has no alias {alias!r}")


class StillTraining(Conflict, RegistryError):
    """A version still training (queued or running) cannot be archived: cancel it first."""

    def __init__(self, name: str, version: int) -> None:
        super().__init__(f"version {version} of {name!r} is still training: cancel it first")


class LeaseLost(Conflict, RegistryError):
    """A trainer's lease on a training job ran out (or was given back): its result is not stored."""


@dataclass(frozen=True)
class VersionInfo:
    """A version as the registry records it (``aliases``: the aliases pointing at it)."""

    model: str
    version: int
    status: str
    aliases: tuple[str, ...]
    created_at: datetime
    finished_at: datetime | None
    args: dict[str, Any]
    dataset: dict[str, Any] | None
    performance: dict[str, Any] | None
    artifacts: dict[str, str] | None
    run_id: str | None
    error: str | None

    @classmethod
    def of(cls, version: ModelVersion, aliases: Sequence[str] = ()) -> VersionInfo:
        return cls(
            model=version.model.name,
            version=version.version,
            status=version.status,
            aliases=tuple(aliases),
            created_at=utc(version.created_at),
            finished_at=utc(version.finished_at),
            args=version.args,
            dataset=version.dataset,
            performance=version.performance,
            artifacts=version.artifacts,
            run_id=version.run_id,
            error=version.error,
        )


@dataclass(frozen=True)
class ModelInfo:
    """A model with a summary of its versions and where its aliases point."""

    name: str
    description: str
    created_at: datetime
    latest_version: int | None
    version_count: int
    aliases: dict[str, int]

    @classmethod
    def of(cls, model: Model) -> ModelInfo:
        numbers = [v.version for v in model.versions]
        return cls(
            name=model.name,
            description=model.description,
            created_at=utc(model.created_at),
            latest_version=max(numbers, default=None),
            version_count=len(numbers),
            aliases={a.name: a.version.version for a in model.aliases},
        )


@dataclass(frozen=True)
class AliasChange:
    """An alias set or deleted: ``version`` is the one it points at now, or pointed at until deleted."""

    alias: str
    version: int
