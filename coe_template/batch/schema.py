"""Batch jobs: the chunks workers claim, their items, and the stored results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from coe_template.registry.schema import Base, utcnow

#: ``uploading``: being written a chunk at a time; no runner claims it, no reader sees it.
JOB_STATUSES = ("uploading", "queued", "running", "succeeded", "failed", "cancelled")


class BatchJob(Base):
    __tablename__ = "batch_jobs"
    __table_args__ = (Index("ix_batch_jobs_status_client", "status", "client"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(63))
    model_version: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    #: A client's Idempotency-Key, with a digest of the request it came with.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    #: sha256 of the job's token, shown once to its creator: who holds it may cancel or delete the job.
    token_sha256: Mapped[str | None] = mapped_column(String(64))
    total_items: Mapped[int]
    done_items: Mapped[int] = mapped_column(default=0)
    total_chunks: Mapped[int]
    done_chunks: Mapped[int] = mapped_column(default=0)
    #: While ``uploading``, when its last chunk was written (a sign of life); then when it was queued.
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Who queued it (``key:<digest>`` or ``addr:<address>``), for per-client quotas; None: nobody's.
    client: Mapped[str | None] = mapped_column(String(80))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class BatchChunk(Base):
    """A run of consecutive items, claimed by one worker at a time under a lease.

    Its input lives in :class:`BatchChunkInput`: a claim or a completion rewrites this
    small row, and SQLite rewrites a whole row on every update.
    """

    __tablename__ = "batch_chunks"
    __table_args__ = (Index("ix_batch_chunks_claim", "status", "lease_expires_at"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("batch_jobs.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    first: Mapped[int]
    last: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)


class BatchChunkInput(Base):
    """A chunk's items, written with the job, read by each claim, deleted once the chunk is done."""

    __tablename__ = "batch_chunk_inputs"

    job_id: Mapped[str] = mapped_column(ForeignKey("batch_jobs.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ``[[item id, text], ...]`` in input order, as compact JSON.
    items: Mapped[str] = mapped_column(Text)


class BatchResult(Base):
    """One item's stored prediction.

    No foreign key to the job: a result is written only by its chunk's holder, in the
    transaction that counts it on a running job, and a job is deleted with its results
    (migration 0004 says why the per-row check went).
    """

    __tablename__ = "batch_results"
    __table_args__ = (Index("ix_batch_results_order", "job_id", "position"),)

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int]
    predicted_tag: Mapped[str] = mapped_column(String(64))
    probabilities: Mapped[dict[str, Any]]
    model_version: Mapped[int]
