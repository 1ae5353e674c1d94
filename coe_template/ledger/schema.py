"""The ledger's table: one row per prediction answered (real time, pinned, or a batch item)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from coe_template.registry.schema import Base

#: How a prediction was asked for: the served alias, a pinned version, or an item of a batch job.
SOURCES = ("realtime", "pinned", "batch")


class PredictionRow(Base):
    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_model_time", "model_name", "created_at"),
        Index("ix_predictions_model_version_time", "model_name", "model_version", "created_at"),
        Index("ix_predictions_correlation", "correlation_id"),
    )

    #: A UUIDv7 (:mod:`coe_template.ledger.ids`): time-ordered, so paging and expiry follow the key.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime]
    model_name: Mapped[str] = mapped_column(String(63))
    model_version: Mapped[int]
    #: The alias that chose the version (``production``), or None when the client pinned it.
    alias: Mapped[str | None] = mapped_column(String(63))
    source: Mapped[str] = mapped_column(String(16))
    tag: Mapped[str] = mapped_column(String(64))
    #: Every tag's probability, as answered.
    probabilities: Mapped[dict[str, Any]] = mapped_column(JSON)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    request_id: Mapped[str | None] = mapped_column(String(200))
    #: The client's own id for the text (``texts[].id``, a batch item's id), stored and echoed.
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    batch_job_id: Mapped[str | None] = mapped_column(String(36))
    text_sha256: Mapped[str] = mapped_column(String(64))
    #: The text itself, only when ``COE_PREDICTION_LOG=full``.
    text: Mapped[str | None] = mapped_column(Text)
