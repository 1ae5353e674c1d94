"""Ledger rows written straight into the table, for tests of what reads them (labels, quality)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from coe_template.ledger.ids import new_prediction_id
from coe_template.ledger.schema import PredictionRow
from coe_template.model.data import ACCEPTED_TAGS

WHEN = datetime.fromisoformat("2026-12-01T12:00:00+00:00")


def predicted(
    engine: Engine,
    tag: str,
    *,
    model: str = "project-tagger",
    version: int = 1,
    at: datetime = WHEN,
    correlation_id: str | None = None,
    text: str | None = None,
) -> str:
    """A prediction on record of ``tag`` (every accepted tag a probability), its id."""
    prediction_id = new_prediction_id(int(at.timestamp() * 1000))
    probabilities = {t: (0.7 if t == tag else 0.1) for t in ACCEPTED_TAGS}
    body = text or f"text of {prediction_id}"
    with Session(engine) as session, session.begin():
        session.add(
            PredictionRow(
                id=prediction_id,
                created_at=at,
                model_name=model,
                model_version=version,
                alias="production",
                source="realtime",
                tag=tag,
                probabilities=probabilities,
                latency_ms=1.0,
                request_id="test",
                correlation_id=correlation_id,
                batch_job_id=None,
                text_sha256=hashlib.sha256(body.encode()).hexdigest(),
                text=text,
            )
        )
    return prediction_id


def later(seconds: float) -> datetime:
    return WHEN + timedelta(seconds=seconds)
