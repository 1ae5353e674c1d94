"""The registry's tables: models, their numbered versions, aliases onto versions, artifacts as blobs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, overload

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

STATUSES = ("training", "ready", "failed", "archived")
#: A training job's states: ``pending`` (nobody holds it), ``running`` (under a lease), then one of the last two.
JOB_STATUSES = ("pending", "running", "done", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def utc(moment: datetime) -> datetime: ...


@overload
def utc(moment: None) -> None: ...


def utc(moment: datetime | None) -> datetime | None:
    """The moment in UTC; SQLite hands datetimes back without their zone, so it is restored."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class Base(DeclarativeBase):
    #: Every class here maps one declared table (none a join or a select), so ``__table__`` is a Table.
    __table__: ClassVar[Table]
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class Model(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.version"
    )
    aliases: Mapped[list[Alias]] = relationship(back_populates="model", order_by="Alias.name")


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    args: Mapped[dict[str, Any]]
    dataset: Mapped[dict[str, Any] | None]
    performance: Mapped[dict[str, Any] | None]
    #: sha256 of every artifact file: the only digests loading trusts.
    artifacts: Mapped[dict[str, Any] | None]
    run_id: Mapped[str | None] = mapped_column(String(64))
    threshold: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)

    model: Mapped[Model] = relationship(back_populates="versions")


class Alias(Base):
    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    name: Mapped[str] = mapped_column(String(63))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    model: Mapped[Model] = relationship(back_populates="aliases")
    version: Mapped[ModelVersion] = relationship()


class ArtifactBlob(Base):
    """One file of a run (``COE_ARTIFACT_STORE=db``); its digest informs: the version's is the authority."""

    __tablename__ = "artifact_blobs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class TrainingJob(Base):
    """A version that must be trained: claimed by one runner at a time, under a lease it renews.

    ``lease_owner`` stays once the job is done or abandoned: it names who trained it, or
    who last held it before its lease ran out.
    """

    __tablename__ = "training_jobs"
    __table_args__ = (Index("ix_training_jobs_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: Claims so far; a claim given back by a stopping runner is not counted.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: What to train on: ``bundled`` (the server's training data) or ``bundled+labels`` (and the labelled
    #: ledger rows that kept their text).
    data: Mapped[str] = mapped_column(String(32), default="bundled", server_default="bundled")
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    version: Mapped[ModelVersion] = relationship()
